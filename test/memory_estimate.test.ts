// Out-of-memory before it happens: parameter counts from a config match the built models exactly,
// the training estimate is within 2x of a measured run's peak RSS, a config too large for the
// machine is refused before allocation, and `loom pretrain` refuses (exit 1) with the estimate and
// what to change, unless told to skip the check.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { presetConfig, type Family } from '../src/models/config.js';
import { createModel, FAMILY_TASKS, loadPretrained } from '../src/models/pretrained.js';
import { modelShape, parameterCount } from '../src/models/size.js';
import { estimateTrainingMemory, checkTrainingMemory } from '../src/train/memory_estimate.js';
import { memoryBudget, parseBytes } from '../src/system_memory.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { LOOM, tinyModelFolder, suiteTempDir } from './cli_helpers.js';

describe('memory estimate', () => {
  it('parameterCount(config) equals the built model\'s numParameters for every family, head and option', () => {
    const variants: [Family, Record<string, unknown>][] = [
      ['gpt2', {}], ['gpt2', { tie_word_embeddings: false, n_inner: 96 }], ['bert', {}], ['bert', { tie_word_embeddings: false }],
      ['llama', {}], ['llama', { tie_word_embeddings: true, attention_bias: true, mlp_bias: true, head_dim: 16 }],
      ['llama', { model_type: 'qwen2' }], ['llama', { model_type: 'mistral', num_labels: 5 }],
    ];
    const small = { gpt2: { n_layer: 2, n_embd: 32, n_head: 2, vocab_size: 101 }, bert: { num_hidden_layers: 2, hidden_size: 32, num_attention_heads: 2, intermediate_size: 48, vocab_size: 101 }, llama: { num_hidden_layers: 2, hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 40, vocab_size: 101 } };
    for (const [family, extra] of variants) {
      const config = presetConfig(family, 'tiny', { ...small[family], ...extra });
      for (const task of FAMILY_TASKS[family]) {
        const model = createModel(config, task);
        assert.equal(parameterCount(config, task), model.numParameters(), `${family} ${JSON.stringify(extra)} ${task}`);
        model.dispose();
      }
    }
  });

  it('budget: LOOM_MEMORY_LIMIT sizes, none, and a clear error for nonsense', () => {
    assert.equal(parseBytes('200MiB'), 200 * 2 ** 20);
    assert.equal(parseBytes('1.5 GB'), 1.5e9);
    assert.equal(parseBytes('lots'), undefined);
    assert.deepEqual(memoryBudget({ LOOM_MEMORY_LIMIT: '8GiB' }), { bytes: 8 * 2 ** 30, source: 'LOOM_MEMORY_LIMIT=8GiB' });
    assert.equal(memoryBudget({ LOOM_MEMORY_LIMIT: 'none' }).bytes, Infinity);
    assert.ok(memoryBudget({}).bytes > 0);
    assert.throws(() => memoryBudget({ LOOM_MEMORY_LIMIT: 'lots' }), /LOOM_MEMORY_LIMIT=lots is not a size/);
  });

  it('refusal names the estimate and suggests smaller batches, accumulation, a shorter length and LoRA', () => {
    const config = presetConfig('gpt2', 'small');
    const shape = { ...modelShape(config, 'causal-lm'), trainable: 0, perToken: true, batchSize: 64, seqLen: 512, optimizerStates: 2 };
    shape.trainable = shape.parameters;
    const est = estimateTrainingMemory(shape);
    assert.ok(est.parts.activations > est.parts.weights);
    assert.throws(() => checkTrainingMemory(shape, { lora: false, budget: { bytes: est.total / 2, source: 'test' } }),
      /this run needs about [\d.]+ GiB \(weights .*activations .*\), more than 85% of the [\d.]+ GiB available \(test\)\. Try --batch-size \d+ \(with --grad-accum \d+ to keep the same effective batch\), or --gradient-checkpointing \(keeps one block's activations instead of all of them\), or a shorter --seq-len .*LOOM_MEMORY_LIMIT=none/);
    // Checkpointing keeps each block's input and one block's worth: far less, and no longer suggested.
    const ckpt = estimateTrainingMemory({ ...shape, gradientCheckpointing: true });
    assert.ok(ckpt.parts.activations < est.parts.activations / 3, `${ckpt.parts.activations} vs ${est.parts.activations}`);
    assert.throws(() => checkTrainingMemory({ ...shape, gradientCheckpointing: true }, { lora: false, budget: { bytes: ckpt.total / 2, source: 'test' } }),
      (e: Error) => !e.message.includes('--gradient-checkpointing') && /Try --batch-size/.test(e.message));
    // Short sequences: the weights, gradients and AdamW moments dominate, so LoRA is what helps.
    const short = { ...shape, batchSize: 1, seqLen: 32 };
    assert.throws(() => checkTrainingMemory(short, { lora: false, budget: { bytes: 2 ** 20, source: 'test' } }), /Try --lora \(gradients and optimiser state for the adapters only\)/);
    const fits = checkTrainingMemory(shape, { lora: false, budget: { bytes: est.total * 2, source: 'test' } });
    assert.equal(fits.total, est.total);
  });

  it('a config.json too large for the budget, or for its weights, is refused before anything is allocated', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-mem-'));
    try {
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2', vocab_size: 2_000_000_000, n_embd: 64, n_head: 2, n_layer: 1 }));
      await assert.rejects(loadPretrained(dir), /config\.json: describes a model of 1\.28e\+11 parameters \([\d.]+ GiB of weights\), more than the .* available .*refusing to allocate it/);
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_layer: 1e6, n_embd: 8, n_head: 1, vocab_size: 10 }));
      await assert.rejects(loadPretrained(dir), /config\.json: field "n_layer" must be an integer in \[1, 1000\], got 1000000/);
      // Within any memory budget, but 2^31 parameters for a few bytes of weights: refused before allocating.
      await writeSafetensors(join(dir, 'model.safetensors'), [{ name: 'transformer.wte.weight', shape: [10, 2], data: new Float32Array(20) }]);
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_positions: 2 ** 30, n_embd: 2, n_head: 1, n_layer: 1, vocab_size: 10 }));
      const limit = process.env.LOOM_MEMORY_LIMIT;
      process.env.LOOM_MEMORY_LIMIT = 'none';
      try {
        await assert.rejects(loadPretrained(dir), /config\.json: describes a model of \d+ parameters, but its weights \(model\.safetensors\) hold 20 values; refusing to build it/);
      } finally {
        if (limit === undefined) delete process.env.LOOM_MEMORY_LIMIT;
        else process.env.LOOM_MEMORY_LIMIT = limit;
      }
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2', vocab_size: 1e308 }));
      await assert.rejects(loadPretrained(dir), /config\.json: field "vocab_size" must be an integer in \[1, 2147483647\], got 1e\+308/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('CLI', () => {
    const p = suiteTempDir('loom-mem-cli-');
    before(() => {
      tinyModelFolder(p(), { layers: 2, width: 64, positions: 256 });
    });
    const pretrain = (env: Record<string, string>, extra: string[]) => spawnSync(process.execPath, [LOOM, 'pretrain', '--model', p('init'), '--objective', 'clm', '--data', p('corpus.txt'),
      '--out', p('run'), '--steps', '2', '--seq-len', '128', ...extra], { encoding: 'utf8', env: { ...process.env, LOOM_NUM_THREADS: '1', ...env } });

    it('refuses a run over LOOM_MEMORY_LIMIT with exit 1 and the estimate; --skip-memory-check runs it', () => {
      const r = pretrain({ LOOM_MEMORY_LIMIT: '150MiB' }, ['--batch-size', '64']);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /^loom pretrain: error: this run needs about \d+ MiB \(weights .* activations \d+ MiB, logits \d+ MiB, runtime 96 MiB\), more than 85% of the 150 MiB available \(LOOM_MEMORY_LIMIT=150MiB\)\. Try --batch-size \d+ \(with --grad-accum \d+ to keep the same effective batch\)/m);
      assert.doesNotMatch(r.stderr, /--lora/, 'pretrain has no --lora');
      const skipped = pretrain({ LOOM_MEMORY_LIMIT: '150MiB' }, ['--batch-size', '64', '--skip-memory-check']);
      assert.equal(skipped.status, 0, skipped.stderr);
    });

    it('the estimate is within 2x of the measured peak RSS of a training run', () => {
      // The run reports its own peak RSS (the kernel's high-water mark) after training in-process.
      const script = `
        import { pretrain } from ${JSON.stringify(new URL('../src/tasks/pretrain.js', import.meta.url).href)};
        import { loadPretrained } from ${JSON.stringify(new URL('../src/models/pretrained.js', import.meta.url).href)};
        import { modelShape } from ${JSON.stringify(new URL('../src/models/size.js', import.meta.url).href)};
        import { estimateTrainingMemory } from ${JSON.stringify(new URL('../src/train/memory_estimate.js', import.meta.url).href)};
        const { model } = await loadPretrained(${JSON.stringify(p('init'))}, { warn: false });
        const s = modelShape(model.config, model.task);
        const est = estimateTrainingMemory({ ...s, trainable: s.parameters, perToken: true, batchSize: 32, seqLen: 128, optimizerStates: 2 });
        model.dispose();
        await pretrain({ model: ${JSON.stringify(p('init'))}, objective: 'clm', data: [${JSON.stringify(p('corpus.txt'))}], out: ${JSON.stringify(p('measured'))}, steps: 3, batchSize: 32, seqLen: 128, progress: 'none', output: { write: () => true } });
        console.log(JSON.stringify({ estimate: est.total, peak: process.resourceUsage().maxRSS * 1024 }));`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, LOOM_NUM_THREADS: '1' } });
      assert.equal(r.status, 0, r.stderr);
      const { estimate, peak } = JSON.parse(r.stdout) as { estimate: number; peak: number };
      assert.ok(estimate >= peak / 2 && estimate <= peak * 2, `estimate ${(estimate / 2 ** 20).toFixed(0)} MiB vs peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB`);
    });
  });
});
