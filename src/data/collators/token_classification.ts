// Token classification (NER): word-level IOB2 tags aligned to subword tokens. The first subword of a
// word carries the word's tag; the other subwords and the special tokens get -100.

import type { LoomTokenizer } from '../../io/tokenizer.js';
import type { LabelSet } from '../labels.js';
import type { Source } from '../readers/common.js';
import { chunks, ENCODE_GROUP, IGNORE_INDEX, padRows, type Batch, type PadOptions } from './batch.js';
import type { EncodedSet } from './classification.js';

export interface TaggedSentence {
  tokens: string[];
  tags: string[];
  source?: Source;
}

export interface TokenClassificationExample {
  ids: Int32Array;
  /** Per token: the tag id on a word's first subword, else -100. */
  labels: Int32Array;
  /** Per token: its word's index, -1 for special tokens (to map predictions back to words). */
  wordIds: Int32Array;
}

export interface EncodeTokenClassificationOptions {
  labels: LabelSet;
  maxLength: number;
  /**
   * Label every subword instead of only the first (an I- tag for the continuation of a B- word).
   * Default false, which is what evaluation by word (seqeval) assumes.
   */
  labelAllSubwords?: boolean;
}

/** Tokenizes tagged sentences and aligns the tags; an unknown tag is an error naming file:line. */
export async function encodeTokenClassification(
  tokenizer: LoomTokenizer,
  sentences: Iterable<TaggedSentence> | AsyncIterable<TaggedSentence>,
  options: EncodeTokenClassificationOptions,
): Promise<EncodedSet<TokenClassificationExample>> {
  const out: EncodedSet<TokenClassificationExample> = { examples: [], truncated: 0, dropped: 0 };
  for await (const group of chunks(sentences, ENCODE_GROUP)) {
    const tagIds = group.map((s) => {
      if (s.tokens.length !== s.tags.length) {
        throw new Error(`${s.source ? `${s.source.file}:${s.source.line}: ` : ''}${s.tokens.length} tokens but ${s.tags.length} tags`);
      }
      return s.tags.map((t) => options.labels.id(t, s.source));
    });
    const encs = await tokenizer.encodeWordsBatch(group.map((s) => s.tokens), { maxLength: options.maxLength });
    encs.forEach((enc, i) => {
      if (enc.truncated > 0) out.truncated++;
      out.examples.push({ ids: enc.ids, labels: alignLabels(enc.wordIds, tagIds[i]!, options), wordIds: enc.wordIds });
    });
  }
  return out;
}

/** Word tags -> token labels, given each token's word id (-1 for special tokens). */
export function alignLabels(
  wordIds: Int32Array,
  tagIds: readonly number[],
  options: Pick<EncodeTokenClassificationOptions, 'labels' | 'labelAllSubwords'>,
): Int32Array {
  const labels = new Int32Array(wordIds.length).fill(IGNORE_INDEX);
  let prev = -1;
  for (let i = 0; i < wordIds.length; i++) {
    const w = wordIds[i]!;
    if (w < 0) {
      prev = -1;
      continue;
    }
    if (w !== prev) labels[i] = tagIds[w]!;
    else if (options.labelAllSubwords) labels[i] = insideOf(tagIds[w]!, options.labels);
    prev = w;
  }
  return labels;
}

// A B-X word's later subwords are inside the entity: I-X when the label set has it.
function insideOf(tagId: number, labels: LabelSet): number {
  const name = labels.name(tagId);
  if (!name.startsWith('B-')) return tagId;
  const inside = `I-${name.slice(2)}`;
  return labels.has(inside) ? labels.id(inside) : tagId;
}

/** Pads a batch; label padding is -100. */
export function collateTokenClassification(examples: readonly TokenClassificationExample[], options: PadOptions): Batch {
  const padded = padRows(examples.map((e) => ({ ids: e.ids, labels: e.labels })), options);
  return { ...padded, labelsShape: padded.shape };
}
