// `--gradient-checkpointing` and `--bf16` on `loom pretrain` / `loom finetune`, run as a user runs them:
// checkpointing gives the same losses as the plain run; bf16 mixed precision trains to about the
// same losses without being identical, and is recorded in training_config.json.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { demoCorpus, demoLabelled } from '../src/cli/demo_data.js';
import { jsonl, ok, readMetrics, suiteTempDir } from './cli_helpers.js';

describe('loom memory and precision flags', () => {
  const p = suiteTempDir('loom-flags-');
  before(() => {
    writeFileSync(p('corpus.txt'), demoCorpus(200));
    writeFileSync(p('train.jsonl'), jsonl(demoLabelled(40, 0, 1)));
    writeFileSync(p('model.json'), JSON.stringify({ n_layer: 2, n_embd: 32, n_head: 2, n_inner: 64, n_positions: 64, resid_pdrop: 0.1, attn_pdrop: 0.1 }));
    ok('tokenizer', 'train', '--type', 'bpe', '--vocab-size', '300', '--out', p('tok'), p('corpus.txt'));
    ok('init', '--arch', 'gpt2', '--preset', 'tiny', '--config', p('model.json'), '--tokenizer', p('tok'), '--out', p('init'));
  });

  const pretrain = (out: string, ...extra: string[]): { step: number; loss: number }[] => {
    ok('pretrain', '--model', p('init'), '--objective', 'clm', '--data', p('corpus.txt'), '--out', p(out), '--steps', '6', '--batch-size', '4', '--seq-len', '32', '--lr', '3e-3', '--log-every', '1', ...extra);
    return readMetrics(p(out)).filter((r) => r.split === 'train');
  };

  it('pretrain --gradient-checkpointing: the losses of the plain run (dropout on)', () => {
    const plain = pretrain('plain');
    const ckpt = pretrain('ckpt', '--gradient-checkpointing');
    assert.equal(ckpt.length, 6);
    for (let i = 0; i < plain.length; i++) assert.ok(Math.abs(plain[i]!.loss - ckpt[i]!.loss) <= 1e-5 * plain[i]!.loss, `step ${i + 1}: ${plain[i]!.loss} vs ${ckpt[i]!.loss}`);

    const bf16 = pretrain('bf16', '--bf16');
    const config = JSON.parse(readFileSync(p('bf16', 'training_config.json'), 'utf8')) as { mixedPrecision: string };
    assert.equal(config.mixedPrecision, 'bf16');
    assert.notDeepEqual(bf16.map((r) => r.loss), plain.map((r) => r.loss));
    for (let i = 0; i < plain.length; i++) assert.ok(Math.abs(plain[i]!.loss - bf16[i]!.loss) <= 0.02 * plain[i]!.loss, `step ${i + 1}: ${plain[i]!.loss} vs bf16 ${bf16[i]!.loss}`);
  });

  it('finetune --lora --gradient-checkpointing --bf16 trains and saves', () => {
    const out = JSON.parse(ok('finetune', '--model', p('init'), '--task', 'classify', '--train', p('train.jsonl'), '--out', p('cls'), '--steps', '4', '--batch-size', '8', '--lora', '--gradient-checkpointing', '--bf16', '--log-every', '1', '--json')) as { steps: number };
    assert.equal(out.steps, 4);
    const losses = readMetrics(p('cls')).filter((r) => r.split === 'train').map((r) => r.loss);
    assert.ok(losses.length > 0 && losses.every(Number.isFinite));
  });
});
