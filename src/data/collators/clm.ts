// Causal LM: documents packed end to end into fixed-length blocks with an EOS after each document
// (no padding, no wasted compute), and the collator that turns blocks into a batch.

import type { TokenBlocks } from '../shard_reader.js';
import { IGNORE_INDEX, type Batch } from './batch.js';

export interface PackOptions {
  blockSize: number;
  /** Appended after every document; omit when the ids already end with a separator (shards do). */
  eosId?: number;
  /** Prepended to every document (Llama-style tokenizers that expect <s> at a document start). */
  bosId?: number;
}

/**
 * Streams documents into blocks of exactly `blockSize` tokens. A document may span blocks; that is
 * what transformers' `group_texts` does, and the EOS tells the model where one text ended.
 */
export class ClmPacker {
  private readonly buffer: Int32Array;
  private used = 0;

  constructor(private readonly options: PackOptions) {
    if (!(options.blockSize > 0)) throw new Error(`blockSize must be positive, got ${options.blockSize}`);
    this.buffer = new Int32Array(options.blockSize);
  }

  /** Adds a document; returns the blocks it completed (copies, safe to keep). */
  push(ids: ArrayLike<number>): Int32Array[] {
    const out: Int32Array[] = [];
    const put = (id: number): void => {
      this.buffer[this.used++] = id;
      if (this.used === this.buffer.length) {
        out.push(this.buffer.slice());
        this.used = 0;
      }
    };
    if (this.options.bosId !== undefined) put(this.options.bosId);
    for (let i = 0; i < ids.length; i++) put(ids[i]!);
    if (this.options.eosId !== undefined) put(this.options.eosId);
    return out;
  }

  /** The tokens left over (fewer than a block); transformers drops them, and so does `packDocuments`. */
  remainder(): Int32Array {
    return this.buffer.slice(0, this.used);
  }
}

/** Packs a stream of documents into blocks, dropping the final partial block. */
export function* packDocuments(docs: Iterable<ArrayLike<number>>, options: PackOptions): Generator<Int32Array> {
  const packer = new ClmPacker(options);
  for (const d of docs) yield* packer.push(d);
}

/**
 * Collates blocks (from ClmPacker or TokenShards) into a causal-LM batch: attention everywhere, labels
 * equal to the inputs (the model shifts them). A shorter block (a final remainder) is padded with
 * `padId`, attention 0 and label -100.
 */
export function collateClm(blocks: readonly ArrayLike<number>[] | TokenBlocks, padId = 0): Batch {
  if (!Array.isArray(blocks)) {
    const tb = blocks as TokenBlocks;
    const inputIds = tb.tokens.slice();
    const attentionMask = new Int32Array(inputIds.length).fill(1);
    return { inputIds, attentionMask, labels: inputIds.slice(), shape: [...tb.shape], labelsShape: [...tb.shape] };
  }
  const rows = blocks as readonly ArrayLike<number>[];
  if (rows.length === 0) throw new Error('cannot collate an empty batch');
  const t = Math.max(...rows.map((r) => r.length));
  const b = rows.length;
  const inputIds = new Int32Array(b * t).fill(padId);
  const attentionMask = new Int32Array(b * t);
  const labels = new Int32Array(b * t).fill(IGNORE_INDEX);
  rows.forEach((r, i) => {
    for (let j = 0; j < r.length; j++) {
      inputIds[i * t + j] = r[j]!;
      attentionMask[i * t + j] = 1;
      labels[i * t + j] = r[j]!;
    }
  });
  return { inputIds, attentionMask, labels, shape: [b, t], labelsShape: [b, t] };
}
