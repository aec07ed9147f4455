// The commands that use a model: evaluate, predict, generate, chat, info, merge-lora. Each is a
// spec plus a run function; model loading and metrics come from src/tasks.

import { createInterface } from 'node:readline';
import { readFile, readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { GenerateOptions } from '../models/generate.js';
import { loadPretrained } from '../models/pretrained.js';
import { loadAdapter } from '../models/peft.js';
import { mergeAndUnload } from '../nn/lora.js';
import { openCheckpoint } from '../io/safetensors.js';
import type { PretrainedModel, Task } from '../models/model.js';
import type { LoomTokenizer } from '../io/tokenizer.js';
import type { ChatMessage } from '../io/chat_template.js';
import { TaskError, exists, maxPositions, publishModel, readRows, requireModelDir, tokenizerFor } from '../tasks/common.js';
import { evaluate, loadModel, predict, streamText, type EvalTask } from '../tasks/inference.js';
import { TEXT_UNIT_FLAG, say, type Command, type Flags } from './train_commands.js';
import type { TextUnit } from '../tasks/pretrain.js';
import type { FlagSpec } from './args.js';

const SAMPLING: Record<string, FlagSpec> = {
  'max-new-tokens': { type: 'int', help: 'tokens to generate at most', default: '64' },
  temperature: { type: 'number', help: 'sampling temperature (0: greedy)', default: '0.8' },
  'top-k': { type: 'int', help: 'sample among the k most likely tokens (0: off)', default: '50' },
  'top-p': { type: 'number', help: 'nucleus sampling threshold', default: '1' },
  'repetition-penalty': { type: 'number', help: '> 1 discourages repeats', default: '1' },
  seed: { type: 'int', help: 'sampling seed' },
};

function sampling(f: Flags, model: PretrainedModel, stop: number[]): GenerateOptions {
  const temperature = (f.temperature as number | undefined) ?? 0.8;
  const eos = model.config.eos_token_id;
  const stops = [...stop, ...(eos === null ? [] : Array.isArray(eos) ? eos : [eos])];
  return {
    maxNewTokens: (f.maxNewTokens as number | undefined) ?? 64,
    doSample: temperature > 0,
    temperature: temperature > 0 ? temperature : 1,
    topK: (f.topK as number | undefined) ?? 50,
    topP: (f.topP as number | undefined) ?? 1,
    repetitionPenalty: (f.repetitionPenalty as number | undefined) ?? 1,
    seed: f.seed as number | undefined,
    stopTokens: stops,
  };
}

const evaluateCmd: Command = {
  spec: {
    name: 'evaluate',
    summary: 'evaluate a model on a labelled file (loss, perplexity, accuracy / F1)',
    usage: 'loom evaluate --model DIR --task clm|mlm|classify|ner|chat --data FILE [--json]',
    flags: {
      model: { type: 'string', help: 'model folder', required: true },
      task: { type: 'string', help: 'task (must fit the model head)', choices: ['clm', 'mlm', 'classify', 'ner', 'chat'], required: true },
      data: { type: 'string', help: 'evaluation file (clm/mlm: also a text file, Markdown folder or .jsonl)', required: true },
      'batch-size': { type: 'int', help: 'examples per batch', default: '16' },
      'seq-len': { type: 'int', help: 'truncation / block length', default: '128' },
      'text-column': { type: 'string', help: 'text field', default: 'text' },
      'text-pair-column': { type: 'string', help: 'second text field' },
      'label-column': { type: 'string', help: 'label field', default: 'label' },
      'text-unit': TEXT_UNIT_FLAG,
      json: { type: 'boolean', help: 'print the metrics as one JSON object' },
    },
    config: true,
  },
  async run(f) {
    const m = await evaluate({
      textUnit: f.textUnit as TextUnit | undefined,
      model: f.model as string,
      task: f.task as EvalTask,
      data: f.data as string,
      batchSize: f.batchSize as number | undefined,
      seqLen: f.seqLen as number | undefined,
      textColumn: f.textColumn as string | undefined,
      textPairColumn: f.textPairColumn as string | undefined,
      labelColumn: f.labelColumn as string | undefined,
    });
    if (!f.json) for (const [k, v] of Object.entries(m)) if (typeof v === 'number') say(`${k}: ${Number.isInteger(v) ? v : v.toFixed(4)}`);
    return m;
  },
};

const predictCmd: Command = {
  spec: {
    name: 'predict',
    summary: 'label texts (classification model) or find entities (NER model)',
    usage: 'loom predict --model DIR (--text "..." | --input FILE) [--json]',
    flags: {
      model: { type: 'string', help: 'fine-tuned model folder', required: true },
      text: { type: 'string', help: 'one text' },
      input: { type: 'string', help: 'a file of texts: .txt (one per line), .jsonl or .csv' },
      'text-column': { type: 'string', help: 'text field of .jsonl / .csv input', default: 'text' },
      json: { type: 'boolean', help: 'print {"predictions": [...]} as one JSON object' },
    },
  },
  async run(f) {
    let texts: string[];
    if (typeof f.text === 'string') texts = [f.text];
    else if (typeof f.input === 'string') {
      if (!(await exists(f.input))) throw new TaskError(`${f.input}: input file not found`);
      if (extname(f.input).toLowerCase() === '.txt') texts = (await readFile(f.input, 'utf8')).split('\n').filter((l) => l.trim());
      else {
        texts = [];
        const col = (f.textColumn as string | undefined) ?? 'text';
        for await (const r of readRows(f.input)) {
          const v = (r.value ?? r.row ?? {})[col];
          if (typeof v !== 'string') throw new TaskError(`${r.source.file}:${r.source.line}: no text field "${col}" (set --text-column)`);
          texts.push(v);
        }
      }
    } else throw new UsageErrorLike('give --text "..." or --input FILE');
    const predictions = await predict(f.model as string, texts);
    if (!f.json) {
      for (const p of predictions) {
        if (p.label !== undefined) process.stdout.write(`${p.label}\t${p.score!.toFixed(3)}\t${p.text}\n`);
        else process.stdout.write(`${p.entities!.map((e) => `[${e.type}: ${e.text}]`).join(' ') || '(no entities)'}\t${p.text}\n`);
      }
    }
    return { predictions };
  },
};

/** A usage problem found after parsing (exit 2); loom.ts maps it like UsageError. */
export class UsageErrorLike extends Error {
  override name = 'UsageError';
}

const generateCmd: Command = {
  spec: {
    name: 'generate',
    summary: 'continue a prompt with a causal LM',
    usage: 'loom generate --model DIR --prompt "..." [--max-new-tokens N --temperature T --top-k K --top-p P --seed S]',
    flags: {
      model: { type: 'string', help: 'causal LM folder', required: true },
      prompt: { type: 'string', help: 'the text to continue', required: true },
      ...SAMPLING,
      json: { type: 'boolean', help: 'print {"prompt", "text", "tokens"} as one JSON object' },
    },
  },
  async run(f) {
    const { model, tokenizer } = await loadModel(f.model as string, ['causal-lm']);
    try {
      const prompt = Array.from(await tokenizer.encode(f.prompt as string));
      if (prompt.length === 0) throw new UsageErrorLike('--prompt is empty');
      if (!f.json) process.stdout.write(f.prompt as string);
      const r = await streamText(model, tokenizer, prompt, sampling(f, model, []), (s) => void (f.json ? undefined : process.stdout.write(s)));
      if (!f.json) process.stdout.write('\n');
      return { prompt: f.prompt, text: r.text, tokens: r.tokens.length };
    } finally {
      model.dispose();
    }
  },
};

const chatCmd: Command = {
  spec: {
    name: 'chat',
    summary: 'talk to a chat model (its chat template; reads lines from a terminal or piped stdin)',
    usage: 'loom chat --model DIR [--system "..."]',
    flags: { model: { type: 'string', help: 'chat model folder (causal LM)', required: true }, system: { type: 'string', help: 'system message' }, ...SAMPLING },
  },
  async run(f) {
    const { model, tokenizer } = await loadModel(f.model as string, ['causal-lm']);
    try {
      const end = ['<|im_end|>', '</s>', '<|eot_id|>'].map((t) => tokenizer.tokenToId(t)).filter((x): x is number => x !== undefined);
      const options = sampling(f, model, end);
      const limit = maxPositions(model);
      const history: ChatMessage[] = typeof f.system === 'string' ? [{ role: 'system', content: f.system }] : [];
      const tty = process.stdin.isTTY === true;
      const rl = createInterface({ input: process.stdin, terminal: tty });
      if (tty) process.stderr.write('type a message; Ctrl-D or /exit to quit\n> ');
      for await (const line of rl) {
        if (line.trim() === '/exit') break;
        if (!line.trim()) continue;
        history.push({ role: 'user', content: line });
        const encode = async (): Promise<number[]> => Array.from(await tokenizer.encode(tokenizer.applyChatTemplate(history, { addGenerationPrompt: true }), { addSpecialTokens: false }));
        let ids = await encode();
        // Keep the conversation within the model's positions: drop the oldest exchanges (not the system message).
        const first = typeof f.system === 'string' ? 1 : 0;
        while (ids.length + options.maxNewTokens! > limit && history.length > first + 1) {
          history.splice(first, 2);
          ids = await encode();
        }
        if (ids.length >= limit) throw new TaskError(`the message (${ids.length} tokens with the chat template) does not fit the model's ${limit} positions`);
        const r = await streamText(model, tokenizer, ids, { ...options, maxNewTokens: Math.min(options.maxNewTokens!, limit - ids.length) }, (s) => void process.stdout.write(s));
        process.stdout.write('\n');
        history.push({ role: 'assistant', content: r.text.trim() });
        if (tty) process.stderr.write('> ');
      }
      rl.close();
      return undefined;
    } finally {
      model.dispose();
    }
  },
};

const infoCmd: Command = {
  spec: {
    name: 'info',
    summary: 'describe a model or run folder: architecture, parameters, tokenizer, labels, last metrics',
    usage: 'loom info DIR [--json]',
    flags: { json: { type: 'boolean', help: 'print as one JSON object' } },
    positionals: { name: 'DIR', min: 1, max: 1 },
  },
  async run(f, [dir]) {
    await requireModelDir(dir!);
    const config = JSON.parse(await readFile(join(dir!, 'config.json'), 'utf8')) as Record<string, unknown>;
    const ck = await openCheckpoint(dir!);
    let parameters = 0;
    for (const t of ck.tensors.values()) parameters += t.shape.reduce((a, b) => a * b, 1);
    await ck.close();
    const tokenizer = (await exists(join(dir!, 'tokenizer.json'))) ? await tokenizerFor(dir!) : null;
    const info: Record<string, unknown> = {
      dir,
      architecture: (config.architectures as string[] | undefined)?.[0] ?? null,
      model_type: config.model_type,
      parameters,
      labels: config.id2label ? Object.values(config.id2label as Record<string, string>) : null,
      tokenizer: tokenizer ? { type: tokenizer.modelType, vocab_size: tokenizer.vocabSize, special: Object.fromEntries(Object.entries(tokenizer.special).map(([k, v]) => [k, v.token])) } : null,
      adapter: await exists(join(dir!, 'adapter', 'adapter_config.json')),
    };
    const metrics = join(dir!, 'metrics.jsonl');
    if (await exists(metrics)) {
      const lines = (await readFile(metrics, 'utf8')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
      info.last_eval = [...lines].reverse().find((l) => l.split === 'eval') ?? null;
      info.steps = lines.length ? lines[lines.length - 1]!.step : 0;
      const cks = await readdir(join(dir!, 'checkpoints')).catch(() => []);
      info.checkpoints = cks.filter((c) => c.startsWith('checkpoint-'));
    }
    if (!f.json) {
      for (const [k, v] of Object.entries(info)) process.stdout.write(`${k}: ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}\n`);
    }
    return info;
  },
};

const mergeCmd: Command = {
  spec: {
    name: 'merge-lora',
    summary: 'merge a LoRA adapter (PEFT folder) into its base model and save a plain model',
    usage: 'loom merge-lora --model DIR --adapter DIR --out DIR',
    flags: {
      model: { type: 'string', help: 'base model folder', required: true },
      adapter: { type: 'string', help: 'adapter folder (adapter_config.json, adapter_model.safetensors)', required: true },
      out: { type: 'string', help: 'output model folder', required: true },
      json: { type: 'boolean', help: 'print the result as one JSON object' },
    },
  },
  async run(f) {
    const adapterDir = f.adapter as string;
    const cfgPath = join(adapterDir, 'adapter_config.json');
    if (!(await exists(cfgPath))) throw new TaskError(`${adapterDir}: not a LoRA adapter folder (no adapter_config.json)`);
    await requireModelDir(f.model as string);
    const cfg = JSON.parse(await readFile(cfgPath, 'utf8')) as { task_type?: string };
    const task: Task | undefined = { SEQ_CLS: 'sequence-classification', TOKEN_CLS: 'token-classification', CAUSAL_LM: 'causal-lm' }[cfg.task_type ?? ''] as Task | undefined;
    let id2label: string[] | undefined;
    if (await exists(join(adapterDir, 'labels.json'))) id2label = JSON.parse(await readFile(join(adapterDir, 'labels.json'), 'utf8')) as string[];
    const { model } = await loadPretrained(f.model as string, { task, id2label, ignoreMismatchedSizes: true, warn: false }).catch((e: Error) => {
      throw new TaskError(`${f.model as string}: ${e.message}`);
    });
    try {
      await loadAdapter(model, adapterDir).catch((e: Error) => {
        throw new TaskError(e.message);
      });
      mergeAndUnload(model);
      const tokenizer = (await exists(join(f.model as string, 'tokenizer.json'))) ? await tokenizerFor(f.model as string) : null;
      await publishModel(f.out as string, async (tmp) => {
        await model.save(tmp);
        await tokenizer?.save(tmp);
      });
      say(`merged ${adapterDir} into ${f.model as string} -> ${f.out as string}`);
      return { out: f.out, architecture: model.architecture };
    } finally {
      model.dispose();
    }
  },
};

export const USE_COMMANDS: Record<string, Command> = {
  evaluate: evaluateCmd,
  predict: predictCmd,
  generate: generateCmd,
  chat: chatCmd,
  info: infoCmd,
  'merge-lora': mergeCmd,
};
