// The batch format every collator produces (plain typed arrays + shapes, no engine dependency) and
// the padding helper they share. toTensors (../tensors.ts) turns a batch into engine tensors.

/** Label value the loss ignores (transformers' and PyTorch's convention). */
export const IGNORE_INDEX = -100;

/**
 * A collated batch, row-major. Labels follow transformers: for causal LM they equal the input ids
 * and the model shifts them; -100 marks positions without a loss.
 */
export interface Batch {
  inputIds: Int32Array;
  attentionMask: Int32Array;
  labels: Int32Array;
  /** Segment ids for text pairs (BERT); absent when every row is a single text. */
  tokenTypeIds?: Int32Array;
  /** [batch, sequence] of inputIds, attentionMask and tokenTypeIds. */
  shape: [number, number];
  /** [batch, sequence] for token-level labels, [batch] for sequence classification. */
  labelsShape: [number, number] | [number];
}

export interface PadOptions {
  padId: number;
  /** Round the padded length up to a multiple of this (8 or 64 suit matrix kernels). */
  padToMultipleOf?: number;
  /** Pad every batch to this length instead of its longest row. */
  padToLength?: number;
  /** Pad on the left (decoder-only generation) instead of the right. Default right. */
  side?: 'right' | 'left';
}

/** One row before padding. */
export interface Row {
  ids: ArrayLike<number>;
  labels?: ArrayLike<number>;
  typeIds?: ArrayLike<number>;
}

/**
 * Pads rows to a common length (dynamic padding: the longest row of this batch, not a global
 * maximum, which is most of the speed of fine-tuning on short texts).
 */
export function padRows(rows: readonly Row[], options: PadOptions): Omit<Batch, 'labelsShape'> {
  if (rows.length === 0) throw new Error('cannot collate an empty batch');
  let t = options.padToLength ?? Math.max(...rows.map((r) => r.ids.length));
  const longest = Math.max(...rows.map((r) => r.ids.length));
  if (longest > t) throw new Error(`a row has ${longest} tokens, more than padToLength ${t}`);
  const m = options.padToMultipleOf ?? 1;
  t = Math.ceil(t / m) * m;
  const b = rows.length;
  const inputIds = new Int32Array(b * t).fill(options.padId);
  const attentionMask = new Int32Array(b * t);
  const labels = new Int32Array(b * t).fill(IGNORE_INDEX);
  const withTypes = rows.some((r) => r.typeIds !== undefined);
  const tokenTypeIds = withTypes ? new Int32Array(b * t) : undefined;
  const left = options.side === 'left';
  rows.forEach((r, i) => {
    const n = r.ids.length;
    const at = i * t + (left ? t - n : 0);
    for (let j = 0; j < n; j++) {
      inputIds[at + j] = r.ids[j]!;
      attentionMask[at + j] = 1;
      if (r.labels !== undefined) labels[at + j] = r.labels[j]!;
      if (tokenTypeIds !== undefined && r.typeIds !== undefined) tokenTypeIds[at + j] = r.typeIds[j]!;
    }
  });
  return { inputIds, attentionMask, labels, tokenTypeIds, shape: [b, t] };
}

/** Groups a (sync or async) stream into arrays of `size`: encoders send one batch per group to Rust. */
export async function* chunks<T>(items: Iterable<T> | AsyncIterable<T>, size: number): AsyncGenerator<T[]> {
  let group: T[] = [];
  for await (const item of items as AsyncIterable<T>) {
    group.push(item);
    if (group.length === size) {
      yield group;
      group = [];
    }
  }
  if (group.length > 0) yield group;
}

/** Records per encodeBatch call in the task encoders: big enough to amortise the call, small in memory. */
export const ENCODE_GROUP = 512;
