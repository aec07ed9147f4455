// Turns a collated batch (plain typed arrays) into engine tensors. Kept apart from the collators so
// that data preparation and its tests never load the engine or a backend.

import { tensor, type Tensor } from '../engine/index.js';
import type { Batch } from './collators/batch.js';

export interface BatchTensors {
  inputIds: Tensor;
  attentionMask: Tensor;
  labels: Tensor;
  tokenTypeIds?: Tensor;
}

/** i32 tensors of the batch's arrays, with its shapes. The caller owns (and disposes) them. */
export function toTensors(batch: Batch): BatchTensors {
  const out: BatchTensors = {
    inputIds: tensor(batch.inputIds, batch.shape, { dtype: 'i32' }),
    attentionMask: tensor(batch.attentionMask, batch.shape, { dtype: 'i32' }),
    labels: tensor(batch.labels, batch.labelsShape, { dtype: 'i32' }),
  };
  if (batch.tokenTypeIds !== undefined) out.tokenTypeIds = tensor(batch.tokenTypeIds, batch.shape, { dtype: 'i32' });
  return out;
}
