// End-to-end tests of the `loom` command: spawned as a user runs it, on tiny generated data in a
// temp folder: tokenizer -> init -> pretrain -> finetune (full, LoRA) -> evaluate / predict / generate.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { demoCorpus, demoLabelled } from '../src/cli/demo_data.js';
import { jsonl, loom, ok, readMetrics, suiteTempDir } from './cli_helpers.js';

describe('loom CLI end to end', () => {
  const p = suiteTempDir('loom-cli-');
  before(() => {
    writeFileSync(p('corpus.txt'), demoCorpus(300));
    writeFileSync(p('train.jsonl'), jsonl(demoLabelled(60, 0, 1)));
    writeFileSync(p('test.jsonl'), jsonl(demoLabelled(30, 0, 2)));
    writeFileSync(p('model.json'), JSON.stringify({ n_layer: 1, n_embd: 32, n_head: 2, n_inner: 64, n_positions: 64 }));
  });

  it('tokenizer -> init -> pretrain -> finetune -> evaluate -> predict -> generate', () => {
    const tok = JSON.parse(ok('tokenizer', 'train', '--type', 'bpe', '--vocab-size', '300', '--out', p('tok'), p('corpus.txt'), '--json')) as { vocab_size: number };
    assert.equal(tok.vocab_size, 300);
    ok('init', '--arch', 'gpt2', '--preset', 'tiny', '--config', p('model.json'), '--tokenizer', p('tok'), '--out', p('init'));
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) assert.ok(existsSync(p('init', f)), f);

    const pre = JSON.parse(ok('pretrain', '--model', p('init'), '--objective', 'clm', '--data', p('corpus.txt'), '--out', p('pre'), '--steps', '6', '--batch-size', '4', '--seq-len', '32', '--lr', '3e-3', '--log-every', '2', '--json')) as { steps: number; eval: { perplexity: number } };
    assert.equal(pre.steps, 6);
    assert.ok(pre.eval.perplexity > 1 && pre.eval.perplexity < 300, `perplexity ${pre.eval.perplexity}`);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'metrics.jsonl']) assert.ok(existsSync(p('pre', f)), f);
    assert.ok(existsSync(p('pre', 'checkpoints', 'checkpoint-6')));
    const lines = readFileSync(p('pre', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; split: string; loss: number });
    assert.ok(lines.some((l) => l.split === 'train') && lines.some((l) => l.split === 'eval'));

    // --resume continues to a larger --steps from the newest checkpoint.
    const resumed = JSON.parse(ok('pretrain', '--model', p('init'), '--objective', 'clm', '--data', p('corpus.txt'), '--out', p('pre'), '--steps', '8', '--batch-size', '4', '--seq-len', '32', '--lr', '3e-3', '--resume', '--json')) as { steps: number };
    assert.equal(resumed.steps, 8);

    ok('finetune', '--model', p('pre'), '--task', 'classify', '--train', p('train.jsonl'), '--eval', p('test.jsonl'), '--out', p('cls'), '--epochs', '6', '--batch-size', '8', '--seq-len', '48', '--lr', '3e-3');
    const config = JSON.parse(readFileSync(p('cls', 'config.json'), 'utf8')) as { architectures: string[]; id2label: Record<string, string> };
    assert.equal(config.architectures[0], 'GPT2ForSequenceClassification');
    assert.deepEqual(Object.values(config.id2label), ['negative', 'neutral', 'positive']);

    const m = JSON.parse(ok('evaluate', '--model', p('cls'), '--task', 'classify', '--data', p('train.jsonl'), '--json')) as { accuracy: number; macro_f1: number; examples: number };
    assert.equal(m.examples, 60);
    assert.ok(m.accuracy > 0.5, `training-set accuracy ${m.accuracy} should beat chance (0.33)`);

    const pred = JSON.parse(ok('predict', '--model', p('cls'), '--text', 'the battery is great. what a lovely phone.', '--json')) as { predictions: { label: string; score: number }[] };
    assert.equal(pred.predictions.length, 1);
    assert.ok(['negative', 'neutral', 'positive'].includes(pred.predictions[0]!.label));

    const gen = JSON.parse(ok('generate', '--model', p('pre'), '--prompt', 'the battery', '--max-new-tokens', '5', '--seed', '1', '--json')) as { text: string; tokens: number };
    assert.ok(gen.tokens >= 1 && gen.tokens <= 5);

    const info = JSON.parse(ok('info', p('cls'), '--json')) as { architecture: string; parameters: number; labels: string[] };
    assert.equal(info.architecture, 'GPT2ForSequenceClassification');
    assert.ok(info.parameters > 0);

    ok('report', p('cls'));
    const html = readFileSync(p('cls', 'report.html'), 'utf8');
    assert.match(html, /<svg[^>]*>[\s\S]*<path class="series"/);
    assert.match(html, /Confusion matrix/);
    assert.doesNotMatch(html, /<script|<link|src="http/);

    // LoRA: the adapter in PEFT's layout beside the merged model; merge-lora rebuilds the same model.
    ok('finetune', '--model', p('pre'), '--task', 'classify', '--train', p('train.jsonl'), '--out', p('lora'), '--steps', '4', '--batch-size', '8', '--seq-len', '48', '--lora', '--lora-rank', '4');
    for (const f of ['adapter/adapter_config.json', 'adapter/adapter_model.safetensors', 'config.json', 'model.safetensors']) assert.ok(existsSync(p('lora', f)), f);
    ok('merge-lora', '--model', p('pre'), '--adapter', p('lora', 'adapter'), '--out', p('merged'));
    const a = JSON.parse(ok('evaluate', '--model', p('lora'), '--task', 'classify', '--data', p('test.jsonl'), '--json')) as { loss: number };
    const b = JSON.parse(ok('evaluate', '--model', p('merged'), '--task', 'classify', '--data', p('test.jsonl'), '--json')) as { loss: number };
    assert.ok(Math.abs(a.loss - b.loss) < 1e-4, `${a.loss} vs ${b.loss}`);
  });

  it('pretrain --eval (held-out files, --eval-batches 0 = loom evaluate), --max-minutes stops early and resumes, --min-lr / --adam-beta2', () => {
    const text = readFileSync(p('corpus.txt'), 'utf8');
    const cut = text.indexOf('\n', Math.floor(text.length * 0.9)) + 1;
    writeFileSync(p('head.txt'), text.slice(0, cut));
    writeFileSync(p('tail.txt'), text.slice(cut));
    const common = ['--model', p('init'), '--objective', 'clm', '--data', p('head.txt'), '--eval', p('tail.txt'), '--text-unit', 'file', '--out', p('held'), '--steps', '5', '--batch-size', '4', '--seq-len', '32', '--lr', '3e-3', '--min-lr', '3e-4', '--adam-beta2', '0.99', '--eval-batches', '0', '--json'];
    // A budget far below one step: the run stops after step 1, evaluates and publishes a model.
    const first = JSON.parse(ok('pretrain', ...common, '--max-minutes', '0.00001')) as { steps: number; stoppedBy: string; eval: { loss: number } };
    assert.equal(first.stoppedBy, 'maxMinutes');
    assert.equal(first.steps, 1);
    assert.ok(existsSync(p('held', 'config.json')) && existsSync(p('held', 'checkpoints', 'checkpoint-1')));
    const stop = readMetrics(p('held')).find((l) => l.split === 'stop');
    assert.deepEqual(stop && { step: stop.step, reason: stop.reason }, { step: 1, reason: 'maxMinutes' });
    // Everything in head.txt is for training; the held-out file was prepared beside it, whole.
    const manifest = (d: string) => JSON.parse(readFileSync(p('held', d, 'manifest.json'), 'utf8')) as { splits: { train: { tokens: number }; validation: { tokens: number } } };
    assert.equal(manifest('data').splits.validation.tokens, 0);
    assert.ok(manifest('eval-data').splits.train.tokens > 100);
    const config = JSON.parse(readFileSync(p('held', 'training_config.json'), 'utf8')) as { minLrRatio: number; betas: number[]; maxMinutes: number };
    assert.ok(Math.abs(config.minLrRatio - 0.1) < 1e-12);
    assert.deepEqual(config.betas, [0.9, 0.99]);

    const done = JSON.parse(ok('pretrain', ...common, '--resume')) as { steps: number; stoppedBy: string; eval: { loss: number } };
    assert.deepEqual([done.steps, done.stoppedBy], [5, 'maxSteps']);
    // The whole held-out file is evaluated: the same loss as loom evaluate on it.
    const ev = JSON.parse(ok('evaluate', '--model', p('held'), '--task', 'clm', '--data', p('tail.txt'), '--text-unit', 'file', '--seq-len', '32', '--batch-size', '4', '--json')) as { loss: number };
    assert.ok(Math.abs(ev.loss - done.eval.loss) < 1e-5, `${ev.loss} vs ${done.eval.loss}`);
    // evaluate --task clm also reads a Markdown folder.
    mkdirSync(p('docs'), { recursive: true });
    writeFileSync(p('docs', 'a.md'), `# Title\n\n${text.slice(cut)}`);
    const md = JSON.parse(ok('evaluate', '--model', p('held'), '--task', 'clm', '--data', p('docs'), '--seq-len', '32', '--json')) as { loss: number };
    assert.ok(Number.isFinite(md.loss) && md.loss > 0);

    const ft = JSON.parse(ok('finetune', '--model', p('held'), '--task', 'classify', '--train', p('train.jsonl'), '--out', p('ft-time'), '--steps', '50', '--batch-size', '8', '--seq-len', '48', '--max-minutes', '0.00001', '--json')) as { steps: number; stoppedBy: string };
    assert.deepEqual([ft.steps, ft.stoppedBy], [1, 'maxMinutes']);
    assert.ok(existsSync(p('ft-time', 'config.json')));

    const r = loom('pretrain', ...common, '--validation-fraction', '0.1');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /either --eval or --validation-fraction/);
    const m = loom('pretrain', ...common, '--min-lr', '1');
    assert.equal(m.code, 1);
    assert.match(m.stderr, /--min-lr 1 must be between 0 and the peak --lr 0.003/);
  });

  it('bad usage exits 2 naming the flag; bad input exits 1 naming the file', () => {
    let r = loom('pretrain', '--model', p('x'), '--bogus', '1');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--bogus/);
    r = loom('finetune', '--model', p('x'), '--task', 'classify', '--out', p('y'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--train/);
    r = loom('finetune', '--model', p('x'), '--task', 'summarise', '--train', 'a', '--out', 'b');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--task/);
    r = loom('evaluate', '--model', p('missing-model'), '--task', 'classify', '--data', p('train.jsonl'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /missing-model/);
    r = loom('evaluate', '--model', p('init'), '--task', 'classify', '--data', p('nope.jsonl'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nope\.jsonl/);
    // A task that does not fit the model's head.
    r = loom('evaluate', '--model', p('init'), '--task', 'classify', '--data', p('train.jsonl'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /causal-lm head/);
    r = loom('finetune', '--model', p('init'), '--task', 'classify', '--train', p('train.jsonl'), '--out', p('bad'), '--label-column', 'sentiment', '--steps', '1');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /sentiment/);
    assert.ok(!existsSync(p('bad', 'config.json')), 'no model left behind by a failed run');
    writeFileSync(p('run.yaml'), 'steps: 2\nbatch-size: [1, 2]\n');
    r = loom('pretrain', '--config', p('run.yaml'), '--model', p('init'), '--objective', 'clm', '--data', p('corpus.txt'), '--out', p('z'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /run\.yaml/);
    r = loom('nonsense');
    assert.equal(r.code, 2);
    assert.equal(loom('finetune', '--help').code, 0);
    assert.match(ok('--version'), /^loom /);
  });
});
