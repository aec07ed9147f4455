// Labelled files -> encoded examples -> batches for the three fine-tuning tasks (and evaluate): the
// part of each recipe that finetune, evaluate and the demo share. No training here.

import { extname } from 'node:path';
import type { LoomTokenizer } from '../io/tokenizer.js';
import { readConll } from '../data/readers/conll.js';
import { readJsonl } from '../data/readers/jsonl.js';
import { DataError } from '../data/readers/common.js';
import { LabelSet } from '../data/labels.js';
import { toChatRecord, toClassificationRecord } from '../data/records.js';
import { encodeClassification, collateClassification, type ClassificationRecord } from '../data/collators/classification.js';
import { encodeTokenClassification, collateTokenClassification, type TaggedSentence } from '../data/collators/token_classification.js';
import { encodeChat, collateChat } from '../data/collators/chat.js';
import type { Batch } from '../data/collators/batch.js';
import type { Task } from '../models/model.js';
import { batchesOf, collect, padIdOf, readRows, requireFile } from './common.js';

export type FinetuneTask = 'classify' | 'ner' | 'chat';

/** The model head each fine-tuning task trains. */
export const HEAD_OF: Readonly<Record<FinetuneTask, Task>> = {
  classify: 'sequence-classification',
  ner: 'token-classification',
  chat: 'causal-lm',
};

export interface ColumnOptions {
  textColumn?: string;
  textPairColumn?: string;
  labelColumn?: string;
}

/** Raw records of a task file (not yet tokenized), so labels can be discovered first. */
export type TaskRecords =
  | { task: 'classify'; records: ClassificationRecord[] }
  | { task: 'ner'; records: TaggedSentence[] }
  | { task: 'chat'; records: Awaited<ReturnType<typeof toChatRecord>>[] };

/** The records of a task file; a file without any is an error naming it (labels come from the records). */
export async function readTaskFile(task: FinetuneTask, file: string, c: ColumnOptions): Promise<TaskRecords> {
  const r = await readRecords(task, file, c);
  if (r.records.length === 0) throw new DataError(file, undefined, `no ${task === 'ner' ? 'sentences' : 'examples'} in the file`);
  return r;
}

async function readRecords(task: FinetuneTask, file: string, c: ColumnOptions): Promise<TaskRecords> {
  await requireFile(file, 'data file');
  if (task === 'classify') {
    const cols = { text: c.textColumn ?? 'text', textPair: c.textPairColumn, label: c.labelColumn ?? 'label' };
    const records: ClassificationRecord[] = [];
    for await (const r of readRows(file)) records.push(toClassificationRecord(r, cols));
    return { task, records };
  }
  if (task === 'ner') {
    if (extname(file).toLowerCase() !== '.jsonl') {
      const records = (await collect(readConll(file))).map((s) => ({ tokens: s.tokens, tags: s.tags, source: s.source }));
      return { task, records };
    }
    const tokensField = c.textColumn ?? 'tokens';
    const tagsField = c.labelColumn ?? 'tags';
    const records: TaggedSentence[] = [];
    for await (const r of readJsonl(file)) {
      const tokens = r.value[tokensField];
      const tags = r.value[tagsField];
      const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
      if (!strings(tokens)) throw new DataError(r.source.file, r.source.line, `field "${tokensField}" is not a list of strings (set --text-column)`);
      if (!strings(tags)) throw new DataError(r.source.file, r.source.line, `field "${tagsField}" is not a list of tag strings (set --label-column)`);
      records.push({ tokens, tags, source: r.source });
    }
    return { task, records };
  }
  const records = [];
  for await (const r of readRows(file)) records.push(toChatRecord(r));
  return { task, records };
}

/** Labels found in the records (sorted; IOB tags grouped by entity type). */
export function discoverLabels(r: TaskRecords): LabelSet | null {
  if (r.task === 'classify') return LabelSet.discover(r.records.map((x) => x.label));
  if (r.task === 'ner') return LabelSet.discover(r.records.flatMap((x) => x.tags), 'ner');
  return null;
}

export interface Encoded {
  batches: Batch[];
  examples: number;
  truncated: number;
  /** Records left out (chat: the first assistant turn does not fit in seqLen). */
  dropped: number;
}

/** Tokenizes and collates records into padded batches (in the order given). */
export async function encodeTask(tokenizer: LoomTokenizer, r: TaskRecords, labels: LabelSet | null, o: { seqLen: number; batchSize: number; order?: (n: number) => number[] }): Promise<Encoded> {
  const pad = { padId: padIdOf(tokenizer) };
  const reorder = <T>(xs: T[]): T[] => (o.order ? o.order(xs.length).map((i) => xs[i]!) : xs);
  if (r.task === 'classify') {
    const enc = await encodeClassification(tokenizer, r.records, { labels: labels!, maxLength: o.seqLen });
    const ex = reorder(enc.examples);
    return { batches: batchesOf(ex, o.batchSize).map((b) => collateClassification(b, pad)), examples: ex.length, truncated: enc.truncated, dropped: enc.dropped };
  }
  if (r.task === 'ner') {
    const enc = await encodeTokenClassification(tokenizer, r.records, { labels: labels!, maxLength: o.seqLen });
    const ex = reorder(enc.examples);
    return { batches: batchesOf(ex, o.batchSize).map((b) => collateTokenClassification(b, pad)), examples: ex.length, truncated: enc.truncated, dropped: enc.dropped };
  }
  const enc = await encodeChat(tokenizer, r.records, { maxLength: o.seqLen, onOverflow: 'drop' });
  const ex = reorder(enc.examples);
  return { batches: batchesOf(ex, o.batchSize).map((b) => collateChat(b, pad)), examples: ex.length, truncated: enc.truncated, dropped: enc.dropped };
}
