// `loom demo`: the main job. Trains a tokenizer, pre-trains a small GPT-2 on a generated review
// corpus, fine-tunes it and a from-scratch twin on a small sentiment set, and compares them.

import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { trainByteLevelBpe } from '../io/tokenizer_train.js';
import { fromPreset } from '../models/pretrained.js';
import { publishModel } from '../tasks/common.js';
import { pretrain } from '../tasks/pretrain.js';
import { finetune } from '../tasks/finetune.js';
import { evaluate } from '../tasks/inference.js';
import { demoCorpus, demoLabelled } from './demo_data.js';
import { writeReport } from './report.js';
import { say, type Command } from './train_commands.js';

/** The demo model: GPT-2 with 2 layers of width 128, small enough for 2 CPU cores in minutes. */
const MODEL = { n_layer: 2, n_embd: 128, n_head: 4, n_inner: 512, n_positions: 128 };

export const DEMO_COMMAND: Command = {
  spec: {
    name: 'demo',
    summary: 'the main job: pre-train on generated reviews, fine-tune for sentiment, compare with training from scratch',
    usage: 'loom demo [--out DIR] [--quick] [--json]',
    flags: {
      out: { type: 'string', help: 'working folder (data, models, reports)', default: 'loom-demo' },
      quick: { type: 'boolean', help: 'fewer steps (a smoke test; the margin is smaller)' },
      json: { type: 'boolean', help: 'print the comparison as one JSON object' },
    },
  },
  async run(f) {
    const dir = resolve((f.out as string | undefined) ?? 'loom-demo');
    const quick = f.quick === true;
    const data = join(dir, 'data');
    await mkdir(data, { recursive: true });
    const corpus = join(data, 'corpus.txt');
    await writeFile(corpus, demoCorpus(quick ? 3000 : 12000));
    const toJsonl = (rows: { text: string; label: string }[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
    await writeFile(join(data, 'train.jsonl'), toJsonl(demoLabelled(150, 0, 11)));
    await writeFile(join(data, 'test.jsonl'), toJsonl(demoLabelled(300, 1, 12)));
    say(`demo: data in ${data} (unlabelled corpus, 150 labelled training reviews, 300 held-out test reviews)`);

    const tok = await trainByteLevelBpe(
      (async function* () {
        for (const line of demoCorpus(quick ? 3000 : 12000).split('\n\n')) yield line;
      })(),
      { vocabSize: 1024, specialTokens: ['<|endoftext|>', '<pad>'] },
    );
    const tokenizer = tok.tokenizer;
    const tokDir = join(dir, 'tokenizer');
    await tokenizer.save(tokDir);
    const initDir = join(dir, 'init');
    const model = fromPreset('gpt2', 'tiny', 'causal-lm', { config: { ...MODEL, vocab_size: tokenizer.vocabSize, pad_token_id: tokenizer.padId, bos_token_id: tokenizer.eosId, eos_token_id: tokenizer.eosId }, seed: 0 });
    await publishModel(initDir, async (tmp) => {
      await model.save(tmp);
      await tokenizer.save(tmp);
    });
    model.dispose();
    say(`demo: tokenizer (${tokenizer.vocabSize} tokens) and a fresh GPT-2 (${MODEL.n_layer} layers, width ${MODEL.n_embd}) in ${initDir}`);

    const pre = await pretrain({ model: initDir, objective: 'clm', data: [corpus], out: join(dir, 'pretrained'), steps: quick ? 120 : 500, batchSize: 16, seqLen: 64, lr: 2e-3, evalEvery: quick ? 60 : 100, logEvery: 25, saveEvery: 0 });
    say(`demo: pre-trained ${pre.steps} steps in ${pre.seconds.toFixed(1)} s, validation perplexity ${Number(pre.eval.perplexity ?? NaN).toFixed(2)}`);

    const results: Record<string, { accuracy: number; macro_f1: number; seconds: number; tokens: number; out: string }> = {};
    for (const [name, base] of [['pretrained', join(dir, 'pretrained')], ['scratch', initDir]] as const) {
      const out = join(dir, `finetuned-${name}`);
      const run = await finetune({ model: base, task: 'classify', train: join(data, 'train.jsonl'), eval: join(data, 'test.jsonl'), out, epochs: quick ? 4 : 10, batchSize: 16, seqLen: 64, lr: 1e-3, logEvery: 5, evalEvery: 0 });
      const m = await evaluate({ model: out, task: 'classify', data: join(data, 'test.jsonl') });
      const seconds = run.seconds + (name === 'pretrained' ? pre.seconds : 0);
      const tokens = run.tokens + (name === 'pretrained' ? pre.tokens : 0);
      results[name] = { accuracy: m.accuracy as number, macro_f1: m.macro_f1 as number, seconds, tokens, out };
      await writeReport(out);
    }
    await writeReport(join(dir, 'pretrained'));
    const p = results.pretrained!;
    const s = results.scratch!;
    const row = (n: string, r: typeof p): string => `${n.padEnd(12)} ${r.accuracy.toFixed(3).padStart(8)} ${r.macro_f1.toFixed(3).padStart(8)} ${r.seconds.toFixed(1).padStart(8)} ${String(r.tokens).padStart(10)}`;
    const table = [
      '',
      `${'model'.padEnd(12)} ${'accuracy'.padStart(8)} ${'macro-F1'.padStart(8)} ${'seconds'.padStart(8)} ${'tokens'.padStart(10)}`,
      row('pretrained', p),
      row('scratch', s),
      '',
      `held-out test: 300 reviews whose sentiment words never occur in the 150 labelled training reviews`,
      `checkpoints: ${p.out}/checkpoints, ${s.out}/checkpoints; reports: ${p.out}/report.html, ${s.out}/report.html, ${join(dir, 'pretrained')}/report.html`,
    ].join('\n');
    if (f.json !== true) process.stdout.write(`${table}\n`);
    else say(table);
    return { pretrained: p, scratch: s, margin: { accuracy: p.accuracy - s.accuracy, macro_f1: p.macro_f1 - s.macro_f1 }, dir };
  },
};
