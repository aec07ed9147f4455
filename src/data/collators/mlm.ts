// Masked LM (BERT): pick 15% of the tokens (or of the words), replace 80% of those with [MASK], 10%
// with a random token, keep 10%; special and padding tokens are never picked. Seeded per batch.

import type { LoomTokenizer } from '../../io/tokenizer.js';
import { DataRng, hashInts } from '../rng.js';
import { IGNORE_INDEX, type Batch } from './batch.js';

export interface MlmOptions {
  maskId: number;
  vocabSize: number;
  /** Ids never masked (CLS, SEP, PAD, ...). */
  specialIds: Iterable<number>;
  /** Fraction of tokens (or words) to predict. Default 0.15. */
  probability?: number;
  seed?: number;
  /**
   * Whole-word masking: `continuation[id] === 1` marks tokens that continue the previous token's
   * word (WordPiece `##x`); a word is picked or not as a whole. See `continuationTable`.
   */
  continuation?: Uint8Array;
}

/**
 * Marks the ids that continue a word: `##`-prefixed WordPiece tokens; for byte-level BPE and
 * SentencePiece, tokens that neither start with a space marker (Ġ, ▁) nor with punctuation.
 */
export function continuationTable(tokenizer: LoomTokenizer): Uint8Array {
  const table = new Uint8Array(tokenizer.vocabSize);
  const special = tokenizer.specialIds();
  const wordPiece = tokenizer.modelType === 'WordPiece';
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    const t = tokenizer.idToToken(id);
    if (t === undefined || special.has(id)) continue;
    if (wordPiece) table[id] = t.startsWith('##') ? 1 : 0;
    else table[id] = /^[\p{L}\p{N}]/u.test(t) && !/^<0x[0-9A-F]{2}>$/.test(t) ? 1 : 0;
  }
  return table;
}

export class MlmCollator {
  private readonly o: Required<Omit<MlmOptions, 'continuation' | 'specialIds'>>;
  private readonly special: Set<number>;
  private readonly continuation: Uint8Array | undefined;
  private readonly randomPool: Int32Array;
  /** Batches collated so far; part of each batch's seed, so set it when resuming. */
  step = 0;

  constructor(options: MlmOptions) {
    this.o = { maskId: options.maskId, vocabSize: options.vocabSize, probability: options.probability ?? 0.15, seed: options.seed ?? 0 };
    this.special = new Set(options.specialIds);
    this.special.add(options.maskId);
    this.continuation = options.continuation;
    // Random replacements are drawn from ordinary tokens: a random [CLS] would teach nothing useful.
    const pool: number[] = [];
    for (let id = 0; id < options.vocabSize; id++) if (!this.special.has(id)) pool.push(id);
    this.randomPool = Int32Array.from(pool);
  }

  /**
   * Masks a batch. `batch` holds the unmasked ids (a CLM-style batch, e.g. from collateClm or
   * padRows); positions with attention 0 are padding. The same (seed, step) gives the same masks.
   */
  collate(batch: Pick<Batch, 'inputIds' | 'attentionMask' | 'shape'> & { tokenTypeIds?: Int32Array }, step = this.step++): Batch {
    const [b, t] = batch.shape;
    const inputIds = batch.inputIds.slice();
    const labels = new Int32Array(b * t).fill(IGNORE_INDEX);
    const rng = new DataRng(hashInts(this.o.seed, step));
    const p = this.o.probability;
    for (let row = 0; row < b; row++) {
      let picked = false;
      for (let j = 0; j < t; j++) {
        const i = row * t + j;
        const id = batch.inputIds[i]!;
        if (batch.attentionMask[i] === 0 || this.special.has(id)) continue;
        const continues =
          this.continuation?.[id] === 1 && j > 0 && batch.attentionMask[i - 1] === 1 && !this.special.has(batch.inputIds[i - 1]!);
        // A continuation token follows its word's first token: picked iff the word was.
        if (!continues) picked = rng.next() < p;
        if (!picked) continue;
        labels[i] = id;
        const r = rng.next();
        if (r < 0.8) inputIds[i] = this.o.maskId;
        else if (r < 0.9) inputIds[i] = this.randomPool[rng.int(this.randomPool.length)]!;
      }
    }
    const attentionMask = batch.attentionMask.slice();
    return { inputIds, attentionMask, labels, tokenTypeIds: batch.tokenTypeIds?.slice(), shape: [b, t], labelsShape: [b, t] };
  }
}
