// Pre-training recipes: causal LM (GPT-2, Llama) and masked LM (BERT) on tokenized shards, prepared
// on the fly from raw text / Markdown / JSONL into <out>/data when not given as a shard folder.

import { join, extname } from 'node:path';
import { stat } from 'node:fs/promises';
import type { LoomTokenizer } from '../io/tokenizer.js';
import { readTextFiles, type TextDoc } from '../data/readers/text.js';
import { readMarkdownFolder } from '../data/readers/markdown.js';
import { readJsonl } from '../data/readers/jsonl.js';
import { DataError } from '../data/readers/common.js';
import { prepareCorpus, MANIFEST } from '../data/shards.js';
import { TokenShards, BlockIterator, type DataCursor, type SplitReader } from '../data/shard_reader.js';
import { collateClm } from '../data/collators/clm.js';
import { MlmCollator, continuationTable } from '../data/collators/mlm.js';
import type { Batch } from '../data/collators/batch.js';
import { toTensors } from '../data/tensors.js';
import { loadPretrained } from '../models/pretrained.js';
import type { PretrainedModel } from '../models/model.js';
import { Trainer } from '../train/trainer.js';
import { perplexityEvaluator } from '../train/metrics.js';
import type { JsonValue, StepFn, TrainData } from '../train/types.js';
import { TaskError, checkMemory, maxPositions, exists, publishModel, requireModelDir, tokenizerFor, trainerConfig, type RunResult, type TrainFlags } from './common.js';

export interface PretrainOptions extends TrainFlags {
  /** Model folder to start from (`loom init` output or a Hub download). */
  model: string;
  objective: 'clm' | 'mlm';
  /** A prepared shard folder, or text / Markdown-folder / JSONL inputs to prepare into <out>/data. */
  data: readonly string[];
  out: string;
  /** Tokenizer folder when the model folder has none. */
  tokenizer?: string;
  /** JSONL field holding the text (default "text"). */
  textColumn?: string;
  /** Fraction held out for evaluation when preparing (default 0.05; 0 when `eval` is given). */
  validationFraction?: number;
  /**
   * Held-out data used instead of a random validation split: text files / Markdown folders / .jsonl
   * (prepared into <out>/eval-data), or a prepared shard folder (its validation split, else its train split).
   */
  eval?: readonly string[];
  /** Evaluation batches at most (default 20; 0: the whole validation data). */
  evalBatches?: number;
  /** How plain text files become documents (default paragraph; see TextUnit). */
  textUnit?: TextUnit;
  /** MLM masking probability (default 0.15). */
  mlmProbability?: number;
}

/**
 * How a plain text file becomes documents: `paragraph` (blocks between blank lines, a separator
 * token between them), `file` (one document, its text kept exactly, e.g. for per-character loss),
 * `line` (each non-empty line).
 */
export type TextUnit = 'file' | 'paragraph' | 'line';

/** Documents of the inputs: folders as Markdown/text trees, .jsonl by field, anything else as text. */
export async function* documents(inputs: readonly string[], textColumn: string, textUnit: TextUnit = 'paragraph'): AsyncGenerator<TextDoc> {
  for (const input of inputs) {
    const s = await stat(input).catch(() => undefined);
    if (!s) throw new TaskError(`${input}: data file not found`);
    if (s.isDirectory()) yield* readMarkdownFolder(input);
    else if (extname(input).toLowerCase() === '.jsonl') {
      for await (const r of readJsonl(input)) {
        const v = r.value[textColumn];
        if (typeof v !== 'string') throw new DataError(r.source.file, r.source.line, `no string field "${textColumn}" (set --text-column)`);
        yield { text: v, source: r.source };
      }
    } else yield* readTextFiles(input, { unit: textUnit });
  }
}

/** Opens the shards to train on: a given shard folder, or <out>/data, prepared unless already there. */
export async function openShards(
  o: { data: readonly string[]; out: string; textColumn?: string; textUnit?: TextUnit; validationFraction?: number; seed?: number; onProgress?: (m: string) => void },
  tokenizer: LoomTokenizer,
  heldOut = false,
): Promise<TokenShards> {
  if (o.data.length === 0) throw new TaskError('no data given (--data PATH...)');
  if (o.data.length === 1 && (await exists(join(o.data[0]!, MANIFEST)))) return TokenShards.open(o.data[0]!, { tokenizer });
  const dir = join(o.out, heldOut ? 'eval-data' : 'data');
  if (await exists(join(dir, MANIFEST))) {
    const shards = await TokenShards.open(dir, { tokenizer }).catch(() => null);
    if (shards) return shards; // a resumed run reuses what the first one prepared
  }
  for (const d of o.data) if (!(await exists(d))) throw new TaskError(`${d}: data file not found`);
  const m = await prepareCorpus({
    tokenizer,
    documents: documents(o.data, o.textColumn ?? 'text', o.textUnit),
    outDir: dir,
    validationFraction: o.validationFraction ?? 0.05,
    // Small chunks so that a small corpus still gets a validation split (the default is 8192).
    splitChunkTokens: 1024,
    seed: o.seed ?? 0,
  });
  const counts = heldOut ? `${m.splits.train.tokens} held-out tokens` : `${m.splits.train.tokens} train and ${m.splits.validation.tokens} validation tokens`;
  o.onProgress?.(`prepared ${m.documents} documents: ${counts} in ${dir}`);
  return TokenShards.open(dir, { tokenizer });
}

/** A TrainData over shard blocks; the cursor is the BlockIterator's, so resume continues exactly. */
export function shardTrainData(reader: SplitReader, blockSize: number, batchSize: number, seed: number): TrainData<Batch> {
  let it = new BlockIterator(reader, { blockSize, batchSize, seed, shuffle: true });
  return {
    batchesPerEpoch: Math.max(1, Math.floor(it.blocksPerEpoch / batchSize)),
    next: () => collateClm(it.next().value),
    cursor: () => it.cursor as unknown as JsonValue,
    restore(c: JsonValue) {
      it = new BlockIterator(reader, { blockSize, batchSize, cursor: c as unknown as DataCursor });
    },
    epoch: () => it.cursor.epoch + it.cursor.index / it.blocksPerEpoch,
  };
}

/** The held-out split of an --eval shard folder: its validation split, else (all held out) its train split. */
function evalSplit(shards: TokenShards): SplitReader {
  const v = shards.split('validation');
  if (v.tokens > 0) return v;
  v.close();
  return shards.split('train');
}

/** The first `max` validation batches in order (the same ones at every evaluation). */
function evalBatches(reader: SplitReader, blockSize: number, batchSize: number, max: number): Batch[] {
  const blocks = reader.numBlocks(blockSize);
  if (blocks === 0) return [];
  // Whole batches, plus the remainder as a smaller last batch when every block is asked for.
  const n = max > 0 ? Math.min(max, Math.floor(blocks / batchSize)) : Math.ceil(blocks / batchSize);
  const block = (k: number): Int32Array => reader.read(k * blockSize, blockSize);
  return Array.from({ length: n }, (_, i) => collateClm(Array.from({ length: Math.min(batchSize, blocks - i * batchSize) }, (_, j) => block(i * batchSize + j))));
}

/** The LM step: loss per (predicted) token, weighted by token count in evaluation. */
function lmStep(mlm: MlmCollator | null): StepFn<PretrainedModel, Batch> {
  return (model, batch, ctx) => {
    // Training batches are masked here with the step's seed (a resume masks identically); evaluation
    // batches arrive masked once, so every evaluation scores the same positions.
    const b = mlm && ctx.training ? mlm.collate(batch, ctx.seed) : batch;
    const t = toTensors(b);
    const out = model.forward({ inputIds: t.inputIds, attentionMask: t.attentionMask, labels: t.labels, tokenTypeIds: t.tokenTypeIds });
    return { loss: out.loss!, count: b.inputIds.length, tokens: b.inputIds.length };
  };
}

/** Pre-trains (or continues pre-training) `model` and writes the result as an HF folder at `out`. */
export async function pretrain(o: PretrainOptions): Promise<RunResult> {
  await requireModelDir(o.model);
  const tokenizer = await tokenizerFor(o.model, o.tokenizer);
  const task = o.objective === 'mlm' ? 'masked-lm' : 'causal-lm';
  const { model } = await loadPretrained(o.model, { task, warn: false }).catch((e: Error) => {
    throw new TaskError(`${o.model}: ${e.message}`);
  });
  model.setGradientCheckpointing(o.gradientCheckpointing ?? false);
  try {
    if (model.config.vocab_size < tokenizer.vocabSize) {
      throw new TaskError(`${o.model}: vocab_size ${model.config.vocab_size} is smaller than the tokenizer's ${tokenizer.vocabSize}`);
    }
    const say = (m: string): void => void (o.output ?? process.stderr).write(`${m}\n`);
    const held = o.eval !== undefined && o.eval.length > 0;
    if (held && o.validationFraction !== undefined && o.validationFraction > 0) throw new TaskError('give either --eval or --validation-fraction, not both');
    const shards = await openShards({ ...o, validationFraction: held ? 0 : o.validationFraction, onProgress: say }, tokenizer);
    const evalShards = held ? await openShards({ ...o, data: o.eval!, validationFraction: 0, onProgress: say }, tokenizer, true) : null;
    const seqLen = o.seqLen ?? Math.min(128, maxPositions(model));
    if (seqLen > maxPositions(model)) throw new TaskError(`--seq-len ${seqLen} exceeds the model's ${maxPositions(model)} positions`);
    const batchSize = o.batchSize ?? 8;
    const train = shards.split('train');
    const valid = evalShards ? evalSplit(evalShards) : shards.split('validation');
    try {
      if (evalShards && valid.numBlocks(seqLen) === 0) throw new TaskError(`${evalShards.dir}: ${valid.tokens} held-out tokens make no block of --seq-len ${seqLen}`);
      if (train.numBlocks(seqLen) === 0) throw new TaskError(`${shards.dir}: ${train.tokens} training tokens make no block of --seq-len ${seqLen}`);
      let mlm: MlmCollator | null = null;
      if (o.objective === 'mlm') {
        if (tokenizer.maskId === undefined) throw new TaskError(`${o.model}: the tokenizer has no mask token, needed for --objective mlm`);
        mlm = new MlmCollator({ maskId: tokenizer.maskId, vocabSize: tokenizer.vocabSize, specialIds: tokenizer.specialIds(), probability: o.mlmProbability, seed: o.seed ?? 42, continuation: continuationTable(tokenizer) });
      }
      checkMemory(model, { batchSize, seqLen, lora: null, skip: o.skipMemoryCheck });
      let tokens = 0;
      const evalSet = evalBatches(valid, seqLen, batchSize, o.evalBatches ?? 20).map((b, i) => (mlm ? mlm.collate(b, 1_000_000 + i) : b));
      const trainer = new Trainer<PretrainedModel, Batch>({
        model,
        step: lmStep(mlm),
        trainData: shardTrainData(train, seqLen, batchSize, o.seed ?? 42),
        evalData: evalSet.length ? () => evalSet : undefined,
        evaluator: () => perplexityEvaluator(),
        config: trainerConfig(o, o.out, { lr: 1e-3, steps: 200 }),
        output: o.output,
        callbacks: { onStep: (info) => void (tokens = info.tokens) },
      });
      const started = Date.now();
      const result = await trainer.train();
      await publishModel(o.out, async (tmp) => {
        await model.save(tmp);
        await tokenizer.save(tmp);
      });
      const evals = result.history.filter((h) => h.split === 'eval');
      return { out: o.out, steps: result.step, stoppedBy: result.stoppedBy, seconds: (Date.now() - started) / 1000, tokens, eval: evals[evals.length - 1] ?? {} };
    } finally {
      train.close();
      valid.close();
    }
  } finally {
    model.dispose();
  }
}
