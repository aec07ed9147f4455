// Fine-tuning recipes: sequence classification, token classification (NER) and chat SFT, full or
// LoRA. The final model goes to <out> as an HF folder; with LoRA also the PEFT adapter in <out>/adapter.

import { resolve, join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import type { Batch } from '../data/collators/batch.js';
import { toTensors } from '../data/tensors.js';
import type { LabelSet } from '../data/labels.js';
import { loadPretrained } from '../models/pretrained.js';
import type { PretrainedModel, Task } from '../models/model.js';
import { addLoraAdapter, saveAdapter } from '../models/peft.js';
import { mergeAndUnload } from '../nn/lora.js';
import { familyOf } from '../models/config.js';
import { Trainer } from '../train/trainer.js';
import { arrayData } from '../train/data.js';
import { classificationEvaluator, perplexityEvaluator, tokenClassificationEvaluator } from '../train/metrics.js';
import type { Evaluator, StepFn, TrainableModel } from '../train/types.js';
import { checkMemory, TaskError, fitLength, countLabels, ensurePadToken, publishModel, requireModelDir, shuffled, tokenizerFor, trainerConfig, type RunResult, type TrainFlags } from './common.js';
import { HEAD_OF, discoverLabels, encodeTask, readTaskFile, type ColumnOptions, type FinetuneTask } from './examples.js';

export interface LoraFlags {
  lora?: boolean;
  loraRank?: number;
  loraAlpha?: number;
  loraDropout?: number;
  /** Module names (or dotted suffixes) to adapt; default per family (PEFT's defaults). */
  loraTargets?: string[];
}

export interface FinetuneOptions extends TrainFlags, ColumnOptions, LoraFlags {
  model: string;
  task: FinetuneTask;
  train: string;
  eval?: string;
  out: string;
  tokenizer?: string;
}

/** PEFT's default target modules per family. */
export const DEFAULT_LORA_TARGETS: Record<'gpt2' | 'bert' | 'llama', string[]> = {
  gpt2: ['c_attn'],
  bert: ['query', 'value'],
  llama: ['q_proj', 'v_proj'],
};

/** The forward step of a head: loss, plus logits/labels for the evaluator, weighted per example or token. */
export function taskStep(task: Task): StepFn<PretrainedModel, Batch> {
  return (model, batch) => {
    const t = toTensors(batch);
    const out = model.forward({ inputIds: t.inputIds, attentionMask: t.attentionMask, labels: t.labels, tokenTypeIds: t.tokenTypeIds });
    const count = task === 'sequence-classification' ? batch.labels.length : Math.max(1, countLabels(batch.labels));
    return { loss: out.loss!, logits: out.logits, labels: batch.labels, count, tokens: batch.inputIds.length };
  };
}

export function taskEvaluator(task: Task, labels: LabelSet | null): Evaluator<Batch> {
  if (task === 'sequence-classification') return classificationEvaluator({ labelNames: labels?.names });
  if (task === 'token-classification') return tokenClassificationEvaluator({ labelNames: labels!.names });
  return perplexityEvaluator();
}

/** Loads the model with the head of `task` (a new head of the right size when the checkpoint's differs). */
export async function loadForTask(dir: string, task: Task, labels: LabelSet | null, seed: number): Promise<{ model: PretrainedModel; newHead: string[] }> {
  const { model, report } = await loadPretrained(dir, { task, id2label: labels?.names, ignoreMismatchedSizes: true, seed, warn: false }).catch((e: Error) => {
    throw new TaskError(`${dir}: ${e.message}`);
  });
  return { model, newHead: [...report.missing, ...report.mismatched] };
}

/** Fine-tunes `model` on a labelled file. */
export async function finetune(o: FinetuneOptions): Promise<RunResult> {
  await requireModelDir(o.model);
  const say = (m: string): void => void (o.output ?? process.stderr).write(`${m}\n`);
  const tokenizer = await tokenizerFor(o.model, o.tokenizer);
  const trainRecords = await readTaskFile(o.task, o.train, o);
  const labels = discoverLabels(trainRecords);
  const evalRecords = o.eval ? await readTaskFile(o.task, o.eval, o) : null;
  const head = HEAD_OF[o.task];
  const seed = o.seed ?? 42;
  const { model, newHead } = await loadForTask(o.model, head, labels, seed);
  model.setGradientCheckpointing(o.gradientCheckpointing ?? false);
  try {
    if (newHead.length) say(`new weights initialised: ${newHead.slice(0, 4).join(', ')}${newHead.length > 4 ? ', ...' : ''}`);
    if (head === 'sequence-classification') ensurePadToken(model, tokenizer);
    const seqLen = fitLength(model, o.seqLen ?? 128);
    const batchSize = o.batchSize ?? 16;
    const train = await encodeTask(tokenizer, trainRecords, labels, { seqLen, batchSize, order: (n) => shuffled([...Array(n).keys()], seed) });
    const evalSet = evalRecords ? await encodeTask(tokenizer, evalRecords, labels, { seqLen, batchSize }) : null;
    if (train.examples === 0) throw new TaskError(`${o.train}: no usable examples`);
    say(`${o.task}: ${train.examples} training examples${evalSet ? `, ${evalSet.examples} evaluation examples` : ''}${labels ? `, labels ${labels.names.join(' ')}` : ''}`);
    const cut = (e: { truncated: number; dropped: number }, file: string): void => {
      if (e.dropped) say(`${file}: ${e.dropped} examples left out (the first reply does not fit in --seq-len ${seqLen})`);
      if (e.truncated) say(`${file}: ${e.truncated} examples truncated to --seq-len ${seqLen}`);
    };
    cut(train, o.train);
    if (evalSet) cut(evalSet, o.eval!);

    let trainable: TrainableModel = model;
    if (o.lora) {
      const family = familyOf(model.config.model_type);
      addLoraAdapter(model, { r: o.loraRank ?? 8, alpha: o.loraAlpha ?? 16, dropout: o.loraDropout ?? 0, targetModules: o.loraTargets ?? DEFAULT_LORA_TARGETS[family], seed });
      const n = model.numParameters({ trainableOnly: true });
      say(`LoRA: ${n} trainable parameters of ${model.numParameters()}`);
      // Checkpoints hold the adapter (PEFT layout); the Trainer adds the trained tensors beside it.
      trainable = { namedParameters: () => model.namedParameters(), train: () => model.train(), eval: () => model.eval(), save: (dir) => saveAdapter(model, dir, { baseModelNameOrPath: resolve(o.model) }) };
    }
    checkMemory(model, { batchSize, seqLen, lora: o.lora === true, skip: o.skipMemoryCheck });
    const step = taskStep(head);
    let tokens = 0;
    const trainer = new Trainer<TrainableModel, Batch>({
      model: trainable,
      // The step runs the model itself; `trainable` (maybe a LoRA wrapper) is what the Trainer saves.
      step: (_m, batch, ctx) => step(model, batch, ctx),
      trainData: arrayData(train.batches, { seed }),
      evalData: evalSet ? () => evalSet.batches : undefined,
      evaluator: () => taskEvaluator(head, labels),
      config: trainerConfig(o, o.out, { lr: o.lora ? 2e-3 : 5e-4, epochs: 3 }),
      output: o.output,
      callbacks: { onStep: (info) => void (tokens = info.tokens) },
    });
    const started = Date.now();
    const result = await trainer.train();
    await publishModel(o.out, async (tmp) => {
      if (o.lora) {
        await saveAdapter(model, join(tmp, 'adapter'), { baseModelNameOrPath: resolve(o.model) });
        // A classification head's labels are not part of PEFT's files; merge-lora reads them here.
        if (labels) await writeFile(join(tmp, 'adapter', 'labels.json'), `${JSON.stringify(labels.names)}\n`);
        mergeAndUnload(model);
      }
      await model.save(tmp);
      await tokenizer.save(tmp);
    });
    const evals = result.history.filter((h) => h.split === 'eval');
    return { out: o.out, steps: result.step, stoppedBy: result.stoppedBy, seconds: (Date.now() - started) / 1000, tokens, eval: evals[evals.length - 1] ?? {} };
  } finally {
    model.dispose();
  }
}
