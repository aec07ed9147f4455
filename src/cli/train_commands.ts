// The commands that build things: tokenizer train, init, data prepare, pretrain, finetune. Each is
// a spec (flags, help) plus a run function over the parsed flags; recipes live in src/tasks.

import { resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { trainByteLevelBpe, trainWordPiece } from '../io/tokenizer_train.js';
import { prepareCorpus } from '../data/shards.js';
import { fromPreset } from '../models/pretrained.js';
import type { Family, Preset } from '../models/config.js';
import type { Task } from '../models/model.js';
import { TaskError, exists, publishModel, tokenizerFor, type TrainFlags } from '../tasks/common.js';
import { documents, pretrain, type TextUnit } from '../tasks/pretrain.js';
import { finetune } from '../tasks/finetune.js';
import type { CommandSpec, FlagSpec, FlagValue } from './args.js';

export type Flags = Record<string, FlagValue>;
export interface Command {
  spec: CommandSpec;
  run(flags: Flags, positionals: string[]): Promise<unknown>;
}

/** Prints a progress line (stderr keeps stdout for --json). */
export const say = (m: string): void => void process.stderr.write(`${m}\n`);

export const TEXT_UNIT_FLAG: FlagSpec = {
  type: 'string',
  help: 'plain text files as documents: paragraph (blank-line blocks), file (whole file, text kept exactly) or line',
  choices: ['paragraph', 'file', 'line'],
  default: 'paragraph',
};

export const TRAIN_FLAGS: Record<string, FlagSpec> = {
  steps: { type: 'int', help: 'optimiser steps to run (total, also with --resume)' },
  epochs: { type: 'number', help: 'passes over the training data (when --steps is not given)' },
  'batch-size': { type: 'int', help: 'examples (or blocks) per micro-batch' },
  'grad-accum': { type: 'int', help: 'micro-batches per optimiser step', default: '1' },
  bf16: { type: 'boolean', help: 'mixed precision: matrix products in bf16 with fp32 sums; fp32 weights and optimiser' },
  'gradient-checkpointing': { type: 'boolean', help: 'recompute each block in backward: less activation memory, ~1/3 more compute' },
  'seq-len': { type: 'int', help: 'block length (pretrain) or truncation length (finetune)', default: '128' },
  lr: { type: 'number', help: 'peak learning rate' },
  'min-lr': { type: 'number', help: 'learning-rate floor that the schedule decays to (default 0)' },
  'adam-beta2': { type: 'number', help: 'AdamW beta2 (default 0.999)' },
  warmup: { type: 'int', help: 'warmup steps (default: 5% of the run)' },
  schedule: { type: 'string', help: 'learning-rate schedule', choices: ['constant', 'linear', 'cosine'], default: 'linear' },
  'weight-decay': { type: 'number', help: 'AdamW weight decay of matrices', default: '0.01' },
  'eval-every': { type: 'int', help: 'evaluate every N steps (0: at the end only)', default: '0' },
  'save-every': { type: 'int', help: 'checkpoint every N steps (0: at the end only)', default: '0' },
  'log-every': { type: 'int', help: 'train-loss line every N steps', default: '10' },
  seed: { type: 'int', help: 'random seed', default: '42' },
  resume: { type: 'boolean', help: 'continue the run in --out from its newest checkpoint' },
  'skip-memory-check': { type: 'boolean', help: 'train even if the memory estimate exceeds RAM (LOOM_MEMORY_LIMIT sets the budget)' },
  'max-minutes': { type: 'number', help: 'wall-clock budget: stop after the step that spends it, evaluate and save (resumable)' },
  json: { type: 'boolean', help: 'print the result as one JSON object on stdout' },
};

export function trainFlags(f: Flags): TrainFlags {
  return {
    steps: f.steps as number | undefined,
    epochs: f.epochs as number | undefined,
    batchSize: f.batchSize as number | undefined,
    gradAccum: f.gradAccum as number | undefined,
    gradientCheckpointing: f.gradientCheckpointing === true,
    bf16: f.bf16 === true,
    seqLen: f.seqLen as number | undefined,
    lr: f.lr as number | undefined,
    minLr: f.minLr as number | undefined,
    adamBeta2: f.adamBeta2 as number | undefined,
    warmup: f.warmup as number | undefined,
    schedule: f.schedule as TrainFlags['schedule'],
    weightDecay: f.weightDecay as number | undefined,
    evalEvery: f.evalEvery as number | undefined,
    saveEvery: f.saveEvery as number | undefined,
    logEvery: f.logEvery as number | undefined,
    seed: f.seed as number | undefined,
    resume: f.resume === true,
    skipMemoryCheck: f.skipMemoryCheck === true,
    maxMinutes: f.maxMinutes as number | undefined,
  };
}

const tokenizerTrain: Command = {
  spec: {
    name: 'tokenizer train',
    summary: 'train a byte-level BPE (GPT-2, Llama) or WordPiece (BERT) tokenizer on text files',
    usage: 'loom tokenizer train --type bpe|wordpiece --vocab-size N --out DIR INPUT...',
    flags: {
      type: { type: 'string', help: 'tokenizer model', choices: ['bpe', 'wordpiece'], required: true },
      'vocab-size': { type: 'int', help: 'vocabulary size including special tokens', required: true },
      out: { type: 'string', help: 'output folder (tokenizer.json, tokenizer_config.json)', required: true },
      'chat-template': { type: 'boolean', help: 'add the ChatML template and its two special tokens (for chat SFT)' },
      'text-column': { type: 'string', help: 'JSONL field holding the text', default: 'text' },
      'min-frequency': { type: 'int', help: 'pairs seen fewer times are never merged', default: '2' },
      cased: { type: 'boolean', help: 'wordpiece: keep case and accents (the default lower-cases, as bert-base-uncased; NER wants case)' },
      json: { type: 'boolean', help: 'print the result as one JSON object' },
    },
    positionals: { name: 'INPUT (text files, Markdown folders or .jsonl)', min: 1 },
    config: true,
  },
  async run(f, inputs) {
    for (const i of inputs) if (!(await exists(i))) throw new TaskError(`${i}: input file not found`);
    if (f.cased === true && f.type !== 'wordpiece') throw new TaskError('--cased is for --type wordpiece (byte-level BPE always keeps case)');
    const source = documents(inputs, (f.textColumn as string | undefined) ?? 'text');
    const common = { vocabSize: f.vocabSize as number, minFrequency: f.minFrequency as number | undefined, chatTemplate: f.chatTemplate === true ? (true as const) : undefined };
    const trained =
      f.type === 'bpe'
        ? await trainByteLevelBpe(source, { ...common, specialTokens: ['<|endoftext|>', '<pad>'] })
        : await trainWordPiece(source, { ...common, lowercase: f.cased !== true });
    await trained.tokenizer.save(f.out as string);
    const s = trained.stats;
    say(`tokenizer: ${s.vocabSize} tokens (${s.merges} merges over ${s.words} distinct words) in ${s.seconds.toFixed(2)} s -> ${f.out as string}`);
    return { out: f.out, vocab_size: s.vocabSize, merges: s.merges, words: s.words, seconds: s.seconds };
  },
};

const init: Command = {
  spec: {
    name: 'init',
    summary: 'create a model with fresh weights, sized for a tokenizer, as a Hugging Face folder',
    usage: 'loom init --arch gpt2|bert|llama --preset tiny|small|base --tokenizer DIR --out DIR [--config FILE.json]',
    flags: {
      arch: { type: 'string', help: 'model family', choices: ['gpt2', 'bert', 'llama'], required: true },
      preset: { type: 'string', help: 'model size', choices: ['tiny', 'small', 'base'], default: 'tiny' },
      config: { type: 'string', help: 'JSON file of config.json fields overriding the preset (n_layer, hidden_size, ...)' },
      tokenizer: { type: 'string', help: 'tokenizer folder (copied into the model folder)', required: true },
      out: { type: 'string', help: 'output model folder', required: true },
      seed: { type: 'int', help: 'initialisation seed', default: '0' },
      json: { type: 'boolean', help: 'print the result as one JSON object' },
    },
  },
  async run(f) {
    const tokenizer = await tokenizerFor(f.tokenizer as string);
    let overrides: Record<string, unknown> = {};
    if (typeof f.config === 'string') {
      const text = await readFile(f.config, 'utf8').catch(() => {
        throw new TaskError(`${f.config as string}: config file not found`);
      });
      try {
        overrides = JSON.parse(text) as Record<string, unknown>;
      } catch (e) {
        throw new TaskError(`${f.config}: not valid JSON (${(e as Error).message})`);
      }
    }
    const arch = f.arch as Family;
    const ids: Record<string, unknown> = { vocab_size: tokenizer.vocabSize };
    if (tokenizer.padId !== undefined) ids.pad_token_id = tokenizer.padId;
    const bos = tokenizer.bosId ?? tokenizer.clsId;
    const eos = tokenizer.eosId ?? tokenizer.sepId;
    if (arch !== 'bert') Object.assign(ids, { bos_token_id: bos ?? null, eos_token_id: eos ?? null });
    const task: Task = arch === 'bert' ? 'masked-lm' : 'causal-lm';
    let model;
    try {
      model = fromPreset(arch, (f.preset as Preset | undefined) ?? 'tiny', task, { config: { ...ids, ...overrides }, seed: (f.seed as number | undefined) ?? 0 });
    } catch (e) {
      throw new TaskError(`init: ${(e as Error).message}`);
    }
    try {
      await publishModel(f.out as string, async (tmp) => {
        await model.save(tmp);
        await tokenizer.save(tmp);
      });
      const params = model.numParameters();
      say(`${model.architecture}: ${params} parameters -> ${f.out as string}`);
      return { out: f.out, architecture: model.architecture, parameters: params, vocab_size: tokenizer.vocabSize };
    } finally {
      model.dispose();
    }
  },
};

const dataPrepare: Command = {
  spec: {
    name: 'data prepare',
    summary: 'tokenize a corpus into shards on disk (train + validation) for loom pretrain --data DIR',
    usage: 'loom data prepare --tokenizer DIR --out DIR INPUT...',
    flags: {
      tokenizer: { type: 'string', help: 'tokenizer or model folder', required: true },
      out: { type: 'string', help: 'shard folder', required: true },
      'validation-fraction': { type: 'number', help: 'fraction of tokens held out', default: '0.01' },
      'text-column': { type: 'string', help: 'JSONL field holding the text', default: 'text' },
      seed: { type: 'int', help: 'seed of the validation split', default: '0' },
      'text-unit': TEXT_UNIT_FLAG,
      json: { type: 'boolean', help: 'print the manifest summary as one JSON object' },
    },
    positionals: { name: 'INPUT (text files, Markdown folders or .jsonl)', min: 1 },
    config: true,
  },
  async run(f, inputs) {
    for (const i of inputs) if (!(await exists(i))) throw new TaskError(`${i}: input file not found`);
    const tokenizer = await tokenizerFor(f.tokenizer as string);
    const m = await prepareCorpus({
      tokenizer,
      documents: documents(inputs, (f.textColumn as string | undefined) ?? 'text', f.textUnit as TextUnit | undefined),
      outDir: f.out as string,
      validationFraction: f.validationFraction as number | undefined,
      seed: f.seed as number | undefined,
    });
    say(`prepared ${m.documents} documents: ${m.splits.train.tokens} train + ${m.splits.validation.tokens} validation tokens -> ${f.out as string}`);
    return { out: f.out, documents: m.documents, train_tokens: m.splits.train.tokens, validation_tokens: m.splits.validation.tokens };
  },
};

const pretrainCmd: Command = {
  spec: {
    name: 'pretrain',
    summary: 'pre-train (or continue pre-training) a model: causal LM or masked LM',
    usage: 'loom pretrain --model DIR --objective clm|mlm --data PATH... --out DIR [training flags]',
    flags: {
      model: { type: 'string', help: 'model folder to start from', required: true },
      objective: { type: 'string', help: 'training objective', choices: ['clm', 'mlm'], required: true },
      data: { type: 'list', help: 'a prepared shard folder, or text files / Markdown folders / .jsonl', required: true },
      out: { type: 'string', help: 'run folder: final model, checkpoints/, metrics.jsonl', required: true },
      tokenizer: { type: 'string', help: 'tokenizer folder when the model folder has none' },
      'text-column': { type: 'string', help: 'JSONL field holding the text', default: 'text' },
      eval: { type: 'list', help: 'held-out data instead of a random split: text files / Markdown folders / .jsonl, or a prepared shard folder' },
      'validation-fraction': { type: 'number', help: 'held-out fraction when preparing without --eval (default 0.05)' },
      'eval-batches': { type: 'int', help: 'evaluation batches at most (0: all the held-out data)', default: '20' },
      'text-unit': TEXT_UNIT_FLAG,
      ...TRAIN_FLAGS,
    },
    config: true,
  },
  run: (f) =>
    pretrain({
      ...trainFlags(f),
      model: f.model as string,
      objective: f.objective as 'clm' | 'mlm',
      data: f.data as string[],
      out: f.out as string,
      tokenizer: f.tokenizer as string | undefined,
      textColumn: f.textColumn as string | undefined,
      validationFraction: f.validationFraction as number | undefined,
      eval: f.eval as string[] | undefined,
      evalBatches: f.evalBatches as number | undefined,
      textUnit: f.textUnit as TextUnit | undefined,
    }),
};

const finetuneCmd: Command = {
  spec: {
    name: 'finetune',
    summary: 'fine-tune a model: sequence classification, NER or chat SFT; full or LoRA',
    usage: 'loom finetune --model DIR --task classify|ner|chat --train FILE [--eval FILE] --out DIR [--lora]',
    flags: {
      model: { type: 'string', help: 'pre-trained model folder', required: true },
      task: { type: 'string', help: 'what to train', choices: ['classify', 'ner', 'chat'], required: true },
      train: { type: 'string', help: 'training file (.jsonl, .csv, .tsv; CoNLL for ner)', required: true },
      eval: { type: 'string', help: 'evaluation file, same format' },
      out: { type: 'string', help: 'run folder: final model, checkpoints/, metrics.jsonl', required: true },
      tokenizer: { type: 'string', help: 'tokenizer folder when the model folder has none' },
      'text-column': { type: 'string', help: 'text field (ner .jsonl: the tokens field)', default: 'text' },
      'text-pair-column': { type: 'string', help: 'second text field (sentence pairs)' },
      'label-column': { type: 'string', help: 'label field (ner .jsonl: the tags field)', default: 'label' },
      lora: { type: 'boolean', help: 'train a LoRA adapter instead of all weights' },
      'lora-rank': { type: 'int', help: 'LoRA rank r', default: '8' },
      'lora-alpha': { type: 'number', help: 'LoRA alpha', default: '16' },
      'lora-dropout': { type: 'number', help: 'LoRA dropout', default: '0' },
      'lora-targets': { type: 'list', help: 'modules to adapt (default per family: c_attn; query,value; q_proj,v_proj)' },
      ...TRAIN_FLAGS,
    },
    config: true,
  },
  run: (f) =>
    finetune({
      ...trainFlags(f),
      model: f.model as string,
      task: f.task as 'classify' | 'ner' | 'chat',
      train: f.train as string,
      eval: f.eval as string | undefined,
      out: resolve(f.out as string),
      tokenizer: f.tokenizer as string | undefined,
      textColumn: f.textColumn as string | undefined,
      textPairColumn: f.textPairColumn as string | undefined,
      labelColumn: f.labelColumn as string | undefined,
      lora: f.lora === true,
      loraRank: f.loraRank as number | undefined,
      loraAlpha: f.loraAlpha as number | undefined,
      loraDropout: f.loraDropout as number | undefined,
      loraTargets: f.loraTargets as string[] | undefined,
    }),
};

export const TRAIN_COMMANDS: Record<string, Command> = {
  'tokenizer train': tokenizerTrain,
  init,
  'data prepare': dataPrepare,
  pretrain: pretrainCmd,
  finetune: finetuneCmd,
};
