// Text generation for causal LMs (GPT-2, Llama): KV-cached decoding, greedy or sampled (temperature,
// top-k, top-p), repetition penalty, stop tokens, seeded; batch results or a token stream.

import { Generator as Rng, defaultGenerator } from '../engine/random.js';
import { noGrad, scope } from '../engine/engine.js';
import { tensor } from '../engine/create.js';
import { KVCache, type PretrainedModel } from './model.js';

export interface GenerateOptions {
  /** Tokens to generate at most per sequence (default 20). */
  maxNewTokens?: number;
  /** Sample from the distribution; false (default, as transformers) picks the most likely token. */
  doSample?: boolean;
  /** Divides the logits before sampling (default 1). */
  temperature?: number;
  /** Sample among the k most likely tokens only (default 50, transformers' default; 0 = off). */
  topK?: number;
  /** Sample from the smallest set whose probability reaches p (default 1 = off). */
  topP?: number;
  /** > 1 discourages tokens already in the sequence (CTRL's penalty, as transformers). Default 1. */
  repetitionPenalty?: number;
  /** Token ids that end a sequence (included in its output). Default: the config's eos_token_id. */
  stopTokens?: readonly number[];
  /** Seed of the sampling; without it the default generator's stream is used. */
  seed?: number;
  /** Id used to left-pad prompts of different lengths (default pad_token_id, else eos, else 0). */
  padTokenId?: number;
  /** Decode with a KV cache (default true); false recomputes every position each step. */
  useCache?: boolean;
}

export interface GenerateResult {
  /** The new tokens of each prompt (stop token included when one was produced). */
  tokens: number[][];
  /** Why each sequence ended. */
  finishReasons: ('stop' | 'length')[];
}

function stopSet(model: PretrainedModel, options: GenerateOptions): Set<number> {
  if (options.stopTokens) return new Set(options.stopTokens);
  const eos = model.config.eos_token_id;
  return new Set(eos === null ? [] : Array.isArray(eos) ? eos : [eos]);
}

/** The logits processors and the choice of one token, on the host, for one sequence. */
export function chooseToken(logits: Float32Array, history: readonly number[], options: GenerateOptions, generator: Rng): number {
  const scores = Float64Array.from(logits);
  const penalty = options.repetitionPenalty ?? 1;
  if (penalty !== 1) {
    for (const id of new Set(history)) {
      const s = scores[id]!;
      scores[id] = s < 0 ? s * penalty : s / penalty;
    }
  }
  if (!options.doSample) {
    let best = 0;
    for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
    return best;
  }
  const temperature = options.temperature ?? 1;
  if (!(temperature > 0)) throw new Error(`generate: temperature must be > 0 when sampling, got ${temperature}`);
  for (let i = 0; i < scores.length; i++) scores[i] = scores[i]! / temperature;
  const order = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]! || a - b);
  let keep = order.length;
  const topK = options.topK ?? 50;
  if (topK > 0 && topK < keep) {
    // transformers keeps every token scoring at least the k-th best (ties included).
    const kth = scores[order[topK - 1]!]!;
    while (keep > topK && scores[order[keep - 1]!]! < kth) keep--;
  }
  const max = scores[order[0]!]!;
  const probs = order.slice(0, keep).map((i) => Math.exp(scores[i]! - max));
  let total = probs.reduce((a, b) => a + b, 0);
  const topP = options.topP ?? 1;
  if (topP < 1) {
    // Smallest prefix of the sorted tokens whose probability reaches topP (at least one token).
    let cum = 0;
    let n = 0;
    while (n < probs.length && cum < topP * total) cum += probs[n++]!;
    probs.length = Math.max(1, n);
    total = probs.reduce((a, b) => a + b, 0);
  }
  let u = generator.uniform() * total;
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i]!;
    if (u < 0) return order[i]!;
  }
  return order[probs.length - 1]!;
}

/**
 * Decodes step by step, yielding each step's new token per sequence (null once a sequence has
 * stopped). The whole generation runs without gradients; the cache is freed when it ends. Call
 * model.eval() first: in training mode dropout stays on, as in transformers.
 */
export function* generateSteps(model: PretrainedModel, prompts: readonly (readonly number[])[], options: GenerateOptions = {}): Generator<(number | null)[], GenerateResult> {
  if (model.task !== 'causal-lm') throw new Error(`generate: ${model.architecture} is not a causal LM`);
  if (prompts.length === 0 || prompts.some((p) => p.length === 0)) throw new Error('generate: every prompt needs at least one token');
  const maxNew = options.maxNewTokens ?? 20;
  const b = prompts.length;
  const longest = Math.max(...prompts.map((p) => p.length));
  const limit = model.config.model_type === 'gpt2' ? model.config.n_positions : Infinity;
  if (longest + maxNew > limit) throw new Error(`generate: ${longest} prompt tokens + ${maxNew} new exceed the model's ${limit} positions`);
  const config = model.config;
  const eos = config.eos_token_id;
  const pad = options.padTokenId ?? config.pad_token_id ?? (Array.isArray(eos) ? eos[0] : eos) ?? 0;
  const stops = stopSet(model, options);
  const generator = options.seed === undefined ? defaultGenerator : new Rng(options.seed);
  const useCache = options.useCache ?? true;
  const padded = prompts.some((p) => p.length !== longest);

  // Rows are left-padded; positions count real tokens only (pads get 1), as transformers' generate.
  const ids = prompts.map((p) => [...new Array<number>(longest - p.length).fill(pad), ...p]);
  const mask = prompts.map((p) => [...new Array<number>(longest - p.length).fill(0), ...new Array<number>(p.length).fill(1)]);
  const positions = mask.map((m) => {
    let c = 0;
    return m.map((v) => (v ? c++ : 1));
  });
  const histories = prompts.map((p) => [...p]);
  const out: number[][] = prompts.map(() => []);
  const reasons: ('stop' | 'length')[] = prompts.map(() => 'length');
  const done = new Array<boolean>(b).fill(false);
  // Reserved for the whole generation, so the cache never grows mid-way.
  const cache = useCache ? new KVCache({ capacity: longest + maxNew }) : null;
  try {
    for (let step = 0; step < maxNew; step++) {
      const total = ids[0]!.length;
      const from = cache && step > 0 ? total - 1 : 0;
      const t = total - from;
      const logits = noGrad(() =>
        scope(() => {
          const rows = (a: number[][]) => Int32Array.from(a.flatMap((r) => r.slice(from)));
          const result = model.forward({
            inputIds: tensor(rows(ids), [b, t], { dtype: 'i32' }),
            attentionMask: padded ? tensor(Int32Array.from(mask.flat()), [b, total], { dtype: 'i32' }) : null,
            positionIds: tensor(rows(positions), [b, t], { dtype: 'i32' }),
            cache,
            lastTokenOnly: true,
          });
          return result.logits.dataSync() as Float32Array;
        }),
      );
      const vocab = logits.length / b;
      const next: (number | null)[] = [];
      for (let i = 0; i < b; i++) {
        const token = done[i] ? pad : chooseToken(logits.subarray(i * vocab, (i + 1) * vocab), histories[i]!, options, generator);
        ids[i]!.push(token);
        mask[i]!.push(1);
        positions[i]!.push(positions[i]![positions[i]!.length - 1]! + 1);
        if (done[i]) {
          next.push(null);
          continue;
        }
        histories[i]!.push(token);
        out[i]!.push(token);
        next.push(token);
        if (stops.has(token)) {
          done[i] = true;
          reasons[i] = 'stop';
        }
      }
      yield next;
      if (done.every((d) => d)) break;
    }
  } finally {
    cache?.dispose();
  }
  return { tokens: out, finishReasons: reasons };
}

/** Generates for a batch of prompts (token ids), returning the new tokens of each. */
export function generate(model: PretrainedModel, prompts: readonly (readonly number[])[], options: GenerateOptions = {}): GenerateResult {
  const steps = generateSteps(model, prompts, options);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * Streams the new tokens of one prompt as they are produced. Each step yields to the event loop,
 * so a server can send tokens while the next one is computed.
 */
export async function* streamGenerate(model: PretrainedModel, prompt: readonly number[], options: GenerateOptions = {}): AsyncGenerator<number, GenerateResult> {
  const steps = generateSteps(model, [prompt], options);
  try {
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      const token = r.value[0];
      if (token !== null && token !== undefined) yield token;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    steps.return({ tokens: [], finishReasons: [] });
  }
}
