// arrayData: a TrainData over batches held in memory (small fine-tuning sets, tests), reshuffled
// each epoch by a permutation seeded with (seed, epoch), so the cursor {epoch, index} is all it needs.

import { hashInts, permutation } from '../data/rng.js';
import { shortJson, shortText } from '../short_json.js';
import type { JsonValue, TrainData } from './types.js';

export interface ArrayDataOptions {
  shuffle?: boolean;
  seed?: number;
}

export function arrayData<B>(batches: readonly B[], options: ArrayDataOptions = {}): TrainData<B> {
  if (batches.length === 0) throw new Error('arrayData: no batches');
  const shuffle = options.shuffle ?? true;
  const seed = options.seed ?? 0;
  let epoch = 0;
  let index = 0;
  let order: Uint32Array | null = null;
  const orderFor = (e: number): Uint32Array | null => (shuffle ? permutation(batches.length, hashInts(seed, e)) : null);
  order = orderFor(0);
  return {
    batchesPerEpoch: batches.length,
    next(): B {
      if (index >= batches.length) {
        epoch += 1;
        index = 0;
        order = orderFor(epoch);
      }
      const i = order ? order[index]! : index;
      index += 1;
      return batches[i]!;
    },
    cursor(): JsonValue {
      return { epoch, index, seed, shuffle };
    },
    restore(cursor: JsonValue): void {
      const c = cursor as { epoch?: unknown; index?: unknown; seed?: unknown; shuffle?: unknown } | null;
      const count = (v: unknown, max: number): boolean => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max;
      if (!c || !count(c.epoch, Number.MAX_SAFE_INTEGER) || !count(c.index, batches.length)) {
        throw new Error(`arrayData: bad cursor ${shortJson(cursor)} (expected {epoch, index} with 0 <= index <= ${batches.length})`);
      }
      if (c.seed !== seed || c.shuffle !== shuffle) {
        throw new Error(`arrayData: cursor is for seed ${shortText(c.seed)} shuffle ${shortText(c.shuffle)}, this data has seed ${seed} shuffle ${shuffle}`);
      }
      epoch = c.epoch as number;
      index = c.index as number;
      order = orderFor(epoch);
    },
    epoch(): number {
      return epoch + index / batches.length;
    },
  };
}
