// Limits under load (issue 9): `loom predict` over 100k short texts and `loom generate` for 1,000
// prompts in one process with a tiny model, RSS sampled over the run. Memory must stay flat (no
// leak per call): the lines report throughput and RSS at start / middle / end and the growth.

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { demoCorpus, demoLabelled } from '../src/cli/demo_data.js';
import { trainByteLevelBpe } from '../src/io/tokenizer_train.js';
import { fromPreset } from '../src/models/pretrained.js';
import { loadModel, openPredictor, streamText } from '../src/tasks/inference.js';
import { collectNativeGarbage } from '../src/io/tokenizer.js';

const WORK = '/tmp/loom-bench-load';
const MiB = 2 ** 20;

/** RSS samples at evenly spaced progress points, so start / middle / end can be read off. */
class RssTrack {
  readonly samples: { done: number; rss: number }[] = [];
  sample(done: number): void {
    this.samples.push({ done, rss: process.memoryUsage().rss / MiB });
  }
  /** RSS after the first tenth of the work (caches warm) vs the end: what a leak would grow. */
  summary(): Record<string, number> {
    const s = this.samples;
    const at = (f: number): number => s[Math.min(s.length - 1, Math.floor(f * (s.length - 1)))]!.rss;
    const warm = s[Math.max(1, Math.floor(0.1 * (s.length - 1)))]!.rss; // after the first call at least
    return {
      rss_start_mib: round(s[0]!.rss), rss_warm_mib: round(warm), rss_middle_mib: round(at(0.5)), rss_end_mib: round(at(1)),
      rss_max_mib: round(Math.max(...s.map((x) => x.rss))), growth_after_warmup_mib: round(at(1) - warm),
    };
  }
}

const round = (x: number): number => Math.round(x * 10) / 10;

/** `npm run bench -- load [--texts N] [--prompts N] [--new-tokens N]`: one JSON line per case. */
export async function benchLoad(argv: string[]): Promise<void> {
  const flag = (name: string, def: number): number => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : def;
  };
  const nTexts = flag('--texts', 100_000);
  const nPrompts = flag('--prompts', 1000);
  const newTokens = flag('--new-tokens', 16);
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });

  // A tiny classification model and a tiny causal LM on the demo data's tokenizer, saved as folders
  // so the runs below load them as `loom predict` / `loom generate` do.
  const { tokenizer } = await trainByteLevelBpe([demoCorpus(300)], { vocabSize: 1000, specialTokens: ['<|endoftext|>', '<pad>'] });
  const config = { n_layer: 2, n_embd: 64, n_head: 2, n_positions: 128, vocab_size: tokenizer.vocabSize, pad_token_id: tokenizer.padId ?? 0, bos_token_id: 0, eos_token_id: 0 };
  for (const [name, task] of [['cls', 'sequence-classification'], ['lm', 'causal-lm']] as const) {
    const model = fromPreset('gpt2', 'tiny', task, { config, id2label: task === 'causal-lm' ? undefined : ['negative', 'neutral', 'positive'] });
    await model.save(join(WORK, name));
    await tokenizer.save(join(WORK, name));
    model.dispose();
  }

  // predict: 100k short texts in calls of 1,000 (a service answering requests), one model load.
  // Short texts (a review's first sentence, 5-15 words), as a request to a classifier would carry.
  const texts = demoLabelled(1000, 0, 7).map((r) => `${r.text.split('.')[0]!.trim()}.`);
  const predictor = await openPredictor(join(WORK, 'cls'), { batchSize: 64, seqLen: 64 });
  const track = new RssTrack();
  track.sample(0);
  let started = performance.now();
  for (let done = 0; done < nTexts; ) {
    const n = Math.min(1000, nTexts - done);
    const out = await predictor.predict(texts.slice(0, n));
    if (out.length !== n) throw new Error(`predict returned ${out.length} of ${n}`);
    done += n;
    collectNativeGarbage(); // the tokenizer's encodings hold native memory V8 does not see (see collectNativeGarbage)
    track.sample(done);
  }
  let seconds = (performance.now() - started) / 1000;
  predictor.dispose();
  console.log(JSON.stringify({ bench: 'load', case: 'predict', texts: nTexts, seconds: round(seconds), texts_per_s: Math.round(nTexts / seconds), ...track.summary() }));

  // generate: 1,000 prompts one after another, streamed and decoded as `loom generate` does.
  const { model, tokenizer: tok } = await loadModel(join(WORK, 'lm'), ['causal-lm']);
  model.eval();
  const gen = new RssTrack();
  gen.sample(0);
  let tokens = 0;
  started = performance.now();
  for (let i = 0; i < nPrompts; i++) {
    const prompt = Array.from(await tok.encode(texts[i % texts.length]!.split(' ').slice(0, 6).join(' ')));
    const r = await streamText(model, tok, prompt, { maxNewTokens: newTokens, doSample: true, temperature: 0.8, topK: 50, seed: i, stopTokens: [] }, () => undefined);
    tokens += r.tokens.length;
    if ((i + 1) % Math.max(1, Math.floor(nPrompts / 20)) === 0 || i + 1 === nPrompts) {
      collectNativeGarbage();
      gen.sample(i + 1);
    }
  }
  seconds = (performance.now() - started) / 1000;
  model.dispose();
  console.log(JSON.stringify({ bench: 'load', case: 'generate', prompts: nPrompts, new_tokens: tokens, seconds: round(seconds), tokens_per_s: Math.round(tokens / seconds), ...gen.summary() }));
}
