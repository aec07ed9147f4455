// Using a trained model: evaluate on a labelled file, predict labels / entities for texts, and load
// a model checked against the head a command needs. No training here.

import { noGrad, scope } from '../engine/engine.js';
import { tensor } from '../engine/create.js';
import { LabelSet } from '../data/labels.js';
import { packDocuments, collateClm } from '../data/collators/clm.js';
import { MlmCollator, continuationTable } from '../data/collators/mlm.js';
import { padRows, type Batch } from '../data/collators/batch.js';
import { loadPretrained } from '../models/pretrained.js';
import { streamGenerate, type GenerateOptions } from '../models/generate.js';
import type { PretrainedModel, Task } from '../models/model.js';
import { getEntities } from '../train/metrics.js';
import type { MetricRecord } from '../train/types.js';
import type { LoomTokenizer } from '../io/tokenizer.js';
import { TaskError, fitLength, batchesOf, collect, padIdOf, requireFile, requireModelDir, tokenizerFor } from './common.js';
import { HEAD_OF, encodeTask, readTaskFile, type ColumnOptions, type FinetuneTask } from './examples.js';
import { taskEvaluator, taskStep } from './finetune.js';
import { documents, type TextUnit } from './pretrain.js';

export type EvalTask = 'clm' | 'mlm' | FinetuneTask;
const EVAL_HEAD: Record<EvalTask, Task> = { clm: 'causal-lm', mlm: 'masked-lm', ...HEAD_OF };

/** Loads a model folder and its tokenizer; `need` names the heads the command can use. */
export async function loadModel(dir: string, need?: readonly Task[], tokenizerPath?: string): Promise<{ model: PretrainedModel; tokenizer: LoomTokenizer }> {
  await requireModelDir(dir);
  const tokenizer = await tokenizerFor(dir, tokenizerPath);
  const { model } = await loadPretrained(dir, { warn: false }).catch((e: Error) => {
    throw new TaskError(`${dir}: ${e.message}`);
  });
  if (need && !need.includes(model.task)) {
    model.dispose();
    throw new TaskError(`${dir}: the model has a ${model.task} head (${model.architecture}); this needs ${need.join(' or ')}`);
  }
  return { model, tokenizer };
}

export interface EvaluateOptions extends ColumnOptions {
  model: string;
  task: EvalTask;
  data: string;
  batchSize?: number;
  seqLen?: number;
  tokenizer?: string;
  seed?: number;
  /** clm/mlm: how plain text files become documents (default paragraph). */
  textUnit?: TextUnit;
}

/** Evaluates a model on a file: loss plus the task's metrics, and the number of examples. */
export async function evaluate(o: EvaluateOptions): Promise<MetricRecord> {
  const head = EVAL_HEAD[o.task];
  await requireFile(o.data, 'data file');
  const { model, tokenizer } = await loadModel(o.model, [head], o.tokenizer);
  try {
    const seqLen = fitLength(model, o.seqLen ?? 128);
    const batchSize = o.batchSize ?? 16;
    let batches: Batch[];
    let labels: LabelSet | null = null;
    if (o.task === 'clm' || o.task === 'mlm') {
      // Text files, Markdown folders or .jsonl, as pre-training reads them; pieces of one streamed
      // document are joined again so that no separator goes between them.
      const texts: string[] = [];
      let open = '';
      for await (const d of documents([o.data], o.textColumn ?? 'text', o.textUnit)) {
        open += d.text;
        if (!d.continues) (texts.push(open), (open = ''));
      }
      if (open) texts.push(open);
      const ids = await tokenizer.encodeBatch(texts, { addSpecialTokens: o.task === 'mlm' });
      const eos = o.task === 'clm' ? tokenizer.eosId : undefined;
      const blocks = [...packDocuments(ids, { blockSize: seqLen, eosId: eos })];
      if (blocks.length === 0) throw new TaskError(`${o.data}: fewer than --seq-len ${seqLen} tokens`);
      batches = batchesOf(blocks, batchSize).map((b) => collateClm(b));
      if (o.task === 'mlm') {
        if (tokenizer.maskId === undefined) throw new TaskError(`${o.model}: the tokenizer has no mask token`);
        const mlm = new MlmCollator({ maskId: tokenizer.maskId, vocabSize: tokenizer.vocabSize, specialIds: tokenizer.specialIds(), seed: o.seed ?? 42, continuation: continuationTable(tokenizer) });
        batches = batches.map((b, i) => mlm.collate(b, i));
      }
    } else {
      const id2label = model.config.id2label;
      labels = id2label ? LabelSet.fromConfig({ id2label }) : null;
      const records = await readTaskFile(o.task, o.data, o);
      batches = (await encodeTask(tokenizer, records, labels, { seqLen, batchSize })).batches;
    }
    const step = taskStep(head);
    const evaluator = taskEvaluator(head, labels);
    let lossSum = 0;
    let weight = 0;
    let examples = 0;
    model.eval();
    for (const batch of batches) {
      scope(() =>
        noGrad(() => {
          const out = step(model, batch, { step: 0, micro: 0, training: false, seed: 0 });
          lossSum += out.loss.item() * (out.count ?? 1);
          weight += out.count ?? 1;
          examples += batch.shape[0];
          evaluator.update(out, batch);
        }),
      );
    }
    const loss = lossSum / Math.max(weight, 1);
    return { loss, ...evaluator.compute(loss), examples };
  } finally {
    model.dispose();
  }
}

export interface Prediction {
  text: string;
  /** Sequence classification: the label and its probability, and every label's probability. */
  label?: string;
  score?: number;
  scores?: Record<string, number>;
  /** Token classification: entities over whitespace-separated words, and each word's tag. */
  entities?: { type: string; text: string; start: number; end: number }[];
  tags?: string[];
}

function softmax(v: ArrayLike<number>, from: number, n: number): number[] {
  let max = -Infinity;
  for (let j = 0; j < n; j++) max = Math.max(max, v[from + j]!);
  const e = Array.from({ length: n }, (_, j) => Math.exp(v[from + j]! - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** Labels (classification head) or entities (token-classification head) for each text. */
export async function predict(modelDir: string, texts: readonly string[], o: PredictOptions = {}): Promise<Prediction[]> {
  const predictor = await openPredictor(modelDir, o);
  try {
    return await predictor.predict(texts);
  } finally {
    predictor.dispose();
  }
}

export interface PredictOptions {
  batchSize?: number;
  seqLen?: number;
  tokenizer?: string;
}

/** A model loaded once for many predict() calls (a server, or bench/load.ts's 100k texts). */
export interface Predictor {
  predict(texts: readonly string[]): Promise<Prediction[]>;
  dispose(): void;
}

export async function openPredictor(modelDir: string, o: PredictOptions = {}): Promise<Predictor> {
  const { model, tokenizer } = await loadModel(modelDir, ['sequence-classification', 'token-classification'], o.tokenizer);
  return { predict: (texts) => predictWith(model, tokenizer, texts, o), dispose: () => model.dispose() };
}

async function predictWith(model: PretrainedModel, tokenizer: LoomTokenizer, texts: readonly string[], o: PredictOptions): Promise<Prediction[]> {
  const names = Object.entries(model.config.id2label ?? {}).sort((a, b) => Number(a[0]) - Number(b[0])).map(([, v]) => v);
  const padId = padIdOf(tokenizer);
  const maxLength = fitLength(model, o.seqLen ?? 512);
  const out: Prediction[] = [];
  model.eval();
  for (const group of batchesOf([...texts], o.batchSize ?? 16)) {
    if (model.task === 'sequence-classification') {
      const encs = await tokenizer.encodeDetailedBatch(group.map((text) => ({ text })), { maxLength });
      const b = padRows(encs.map((e) => ({ ids: e.ids })), { padId });
      const logits = scope(() => noGrad(() => model.forward({ inputIds: tensor(b.inputIds, b.shape, { dtype: 'i32' }), attentionMask: tensor(b.attentionMask, b.shape, { dtype: 'i32' }) }).logits.dataSync()));
      const c = logits.length / group.length;
      group.forEach((text, i) => {
        const p = softmax(logits, i * c, c);
        const best = p.indexOf(Math.max(...p));
        out.push({ text, label: names[best] ?? String(best), score: p[best]!, scores: Object.fromEntries(p.map((x, j) => [names[j] ?? String(j), x])) });
      });
    } else {
      const words = group.map((t) => t.split(/\s+/).filter((w) => w.length > 0));
      const encs = await tokenizer.encodeWordsBatch(words, { maxLength });
      const b = padRows(encs.map((e) => ({ ids: e.ids })), { padId });
      const logits = scope(() => noGrad(() => model.forward({ inputIds: tensor(b.inputIds, b.shape, { dtype: 'i32' }), attentionMask: tensor(b.attentionMask, b.shape, { dtype: 'i32' }) }).logits.dataSync()));
      const [, t] = b.shape;
      const c = logits.length / (group.length * t);
      group.forEach((text, i) => {
        // A word's tag is its first subword's argmax (what training labelled); words cut off by truncation get O.
        const tags = words[i]!.map(() => 'O');
        const seen = new Set<number>();
        encs[i]!.wordIds.forEach((w, j) => {
          if (w < 0 || seen.has(w)) return;
          seen.add(w);
          const p = softmax(logits, (i * t + j) * c, c);
          tags[w] = names[p.indexOf(Math.max(...p))] ?? 'O';
        });
        const entities = getEntities([tags]).map((e) => ({ type: e.type, text: words[i]!.slice(e.start, e.end + 1).join(' '), start: e.start, end: e.end }));
        out.push({ text, entities, tags });
      });
    }
  }
  return out;
}

/** Streams generated text to `write` as it decodes (re-decoding the tail keeps multi-byte characters whole). */
export async function streamText(model: PretrainedModel, tokenizer: LoomTokenizer, prompt: number[], options: GenerateOptions, write: (s: string) => void): Promise<{ text: string; tokens: number[] }> {
  const tokens: number[] = [];
  let shown = '';
  const special = tokenizer.specialIds();
  for await (const id of streamGenerate(model, prompt, options)) {
    tokens.push(id);
    const text = await tokenizer.decode(tokens.filter((t) => !special.has(t)));
    if (!text.endsWith('\uFFFD')) {
      write(text.slice(shown.length));
      shown = text;
    }
  }
  return { text: shown, tokens };
}
