// Sequence classification (sentiment, NLI): texts or text pairs tokenized with truncation that keeps
// the special tokens, labels mapped through a LabelSet, batches padded dynamically.

import type { LoomTokenizer } from '../../io/tokenizer.js';
import type { Label, LabelSet } from '../labels.js';
import type { Source } from '../readers/common.js';
import { chunks, ENCODE_GROUP, padRows, type Batch, type PadOptions } from './batch.js';

export interface ClassificationRecord {
  text: string;
  /** Second text of a pair (premise / hypothesis), encoded as segment B. */
  textPair?: string;
  label: Label;
  source?: Source;
}

export interface ClassificationExample {
  ids: Int32Array;
  typeIds?: Int32Array;
  label: number;
}

export interface EncodeClassificationOptions {
  labels: LabelSet;
  /** Truncate longer inputs (content from the end of the longer text; special tokens kept). */
  maxLength: number;
  /** Skip records whose label is not in `labels` instead of failing. */
  skipUnknownLabels?: boolean;
}

export interface EncodedSet<T> {
  examples: T[];
  /** Examples that were cut to maxLength. */
  truncated: number;
  /** Records left out (unknown label, or an overflow the caller chose to drop). */
  dropped: number;
}

/** Tokenizes labelled texts; an unknown label is an error naming file:line. */
export async function encodeClassification(
  tokenizer: LoomTokenizer,
  records: Iterable<ClassificationRecord> | AsyncIterable<ClassificationRecord>,
  options: EncodeClassificationOptions,
): Promise<EncodedSet<ClassificationExample>> {
  const out: EncodedSet<ClassificationExample> = { examples: [], truncated: 0, dropped: 0 };
  for await (const group of chunks(records, ENCODE_GROUP)) {
    const kept: { r: ClassificationRecord; label: number }[] = [];
    for (const r of group) {
      if (options.skipUnknownLabels && !options.labels.has(r.label)) out.dropped++;
      else kept.push({ r, label: options.labels.id(r.label, r.source) });
    }
    const encs = await tokenizer.encodeDetailedBatch(kept.map(({ r }) => ({ text: r.text, pair: r.textPair })), { maxLength: options.maxLength });
    encs.forEach((enc, i) => {
      if (enc.truncated > 0) out.truncated++;
      const r = kept[i]!.r;
      out.examples.push({ ids: enc.ids, typeIds: r.textPair !== undefined ? enc.typeIds : undefined, label: kept[i]!.label });
    });
  }
  return out;
}

/** Pads a batch of examples to its longest row; labels are one id per row, shape [B]. */
export function collateClassification(examples: readonly ClassificationExample[], options: PadOptions): Batch {
  const padded = padRows(examples.map((e) => ({ ids: e.ids, typeIds: e.typeIds })), options);
  return {
    inputIds: padded.inputIds,
    attentionMask: padded.attentionMask,
    tokenTypeIds: padded.tokenTypeIds,
    labels: Int32Array.from(examples, (e) => e.label),
    shape: padded.shape,
    labelsShape: [examples.length],
  };
}
