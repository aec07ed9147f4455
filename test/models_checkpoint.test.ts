// Checkpoints: save/reload bit-identical, the config.json transformers reads, tied weights saved once,
// loading bare bodies and new heads, atomic folder writes, PEFT adapters, and errors for bad input.

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as L from '../src/index.js';
import { openCheckpoint, writeSafetensors } from '../src/io/safetensors.js';
import { ids, logitsOf, tinyConfig } from './models_fixtures.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'models');
const tmp = mkdtempSync(join(tmpdir(), 'loom-models-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function sameState(a: L.Module, b: L.Module): void {
  const sa = a.stateDict();
  const sb = b.stateDict();
  assert.deepEqual([...sa.keys()], [...sb.keys()]);
  for (const [k, t] of sa) assert.deepEqual(new Uint8Array(sb.get(k)!.dataSync().buffer), new Uint8Array(t.dataSync().buffer), k);
}

const heads: [L.Family, L.Task][] = [
  ['gpt2', 'causal-lm'], ['gpt2', 'sequence-classification'], ['gpt2', 'token-classification'],
  ['bert', 'masked-lm'], ['bert', 'sequence-classification'], ['bert', 'token-classification'],
  ['llama', 'causal-lm'], ['llama', 'sequence-classification'], ['llama', 'token-classification'],
];

describe('save and reload', () => {
  for (const [family, task] of heads) {
    it(`${family} ${task}: reloads bit-identically`, async () => {
      const config = tinyConfig(family, task.includes('classification') ? L.makeLabels(3, ['a', 'b', 'c']) : {});
      const model = L.createModel(config, task, { seed: 11 }).eval();
      const dir = join(tmp, `${family}-${task}`);
      await model.save(dir);
      const { model: again, report } = await L.loadPretrained(dir, { warn: false });
      assert.equal(again.architecture, model.architecture);
      assert.deepEqual([report.missing, report.unexpected], [[], []]);
      sameState(model, again);
      const input = { inputIds: ids([[1, 5, 9, 13], [2, 6, 10, 0]]), attentionMask: ids([[1, 1, 1, 1], [1, 1, 1, 0]]) };
      assert.deepEqual(logitsOf(again.eval(), input), logitsOf(model, input));
      const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      assert.deepEqual(json.architectures, [model.architecture]);
      assert.equal(json.model_type, config.model_type);
      assert.equal(json.torch_dtype, 'float32');
      if (task.includes('classification')) {
        assert.deepEqual(json.id2label, { 0: 'a', 1: 'b', 2: 'c' });
        assert.deepEqual(json.label2id, { a: 0, b: 1, c: 2 });
      }
      model.dispose();
      again.dispose();
    });
  }

  it('fixture checkpoints: same tensor names (tied weights once), format pt, bit-identical reload', async () => {
    for (const name of existsSync(FIXTURES) ? readdirSync(FIXTURES).filter((d) => existsSync(join(FIXTURES, d, 'config.json'))) : []) {
      const { model } = await L.loadPretrained(join(FIXTURES, name), { warn: false });
      const dir = join(tmp, `fixture-${name}`);
      await model.save(dir);
      const original = await openCheckpoint(join(FIXTURES, name));
      const saved = await openCheckpoint(dir);
      assert.deepEqual([...saved.tensors.keys()].sort(), [...original.tensors.keys()].sort(), name);
      assert.deepEqual(saved.metadata, { format: 'pt' });
      for (const key of original.tensors.keys()) assert.deepEqual(await saved.readF32(key), await original.readF32(key), `${name}: ${key}`);
      await original.close();
      await saved.close();
      const { model: again } = await L.loadPretrained(dir, { warn: false });
      sameState(model, again);
      // Every field of the original config.json survives (transformers_version aside).
      const a = JSON.parse(readFileSync(join(FIXTURES, name, 'config.json'), 'utf8')) as Record<string, unknown>;
      const b = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      for (const [k, v] of Object.entries(a)) if (k !== 'transformers_version') assert.deepEqual(b[k], v, `${name}: config field ${k}`);
      model.dispose();
      again.dispose();
    }
  });

  it('large models are sharded with an index, and load back', async () => {
    const dir = join(tmp, 'sharded');
    const model = L.createModel(tinyConfig('llama'), 'causal-lm', { seed: 2 });
    await model.save(dir, { maxShardBytes: 16_000 });
    const files = readdirSync(dir).sort();
    assert.ok(files.includes('model.safetensors.index.json') && files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length > 2, files.join(', '));
    const { model: again } = await L.loadPretrained(dir, { warn: false });
    sameState(model, again);
    again.dispose();
    const bad = L.createModel(tinyConfig('llama', { intermediate_size: 40 }), 'causal-lm');
    await bad.save(join(tmp, 'sharded-bad'), { maxShardBytes: 16_000 });
    cpSync(join(tmp, 'sharded-bad', 'config.json'), join(dir, 'config.json'));
    bad.dispose();
    await assert.rejects(L.loadPretrained(dir), /sharded\/model-\d{5}-of-\d{5}.safetensors: model.layers.0.mlp.down_proj.weight has shape \[32,48\], expected \[32,40\]/);
    model.dispose();
  });

  it('writes the folder atomically, keeping other files and dropping stale weights', async () => {
    const dir = join(tmp, 'atomic');
    const model = L.createModel(tinyConfig('llama'), 'causal-lm');
    await model.save(dir);
    writeFileSync(join(dir, 'tokenizer.json'), '{}');
    writeFileSync(join(dir, 'model-00001-of-00002.safetensors'), 'stale');
    await model.save(dir);
    assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors', 'tokenizer.json']);
    assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('.atomic')), [], 'no temporary folder left');
    model.dispose();
  });

  it('refuses to save unmerged LoRA adapters', async () => {
    const model = L.createModel(tinyConfig('gpt2'), 'causal-lm');
    L.applyLora(model, { r: 2, alpha: 2, targetModules: ['c_attn'] });
    await assert.rejects(model.save(join(tmp, 'lora-unmerged')), /not merged; call mergeAndUnload/);
    model.dispose();
  });
});

describe('loading into other heads', () => {
  it('an LM checkpoint gives a classifier whose new head is reported and initialised', async () => {
    const lm = L.createModel(tinyConfig('gpt2'), 'causal-lm', { seed: 4 });
    const dir = join(tmp, 'gpt2-lm');
    await lm.save(dir);
    const { model, report } = await L.loadPretrained(dir, { task: 'sequence-classification', numLabels: 4, warn: false });
    assert.equal(model.architecture, 'GPT2ForSequenceClassification');
    assert.deepEqual(report.missing, ['score.weight']);
    assert.deepEqual(report.unexpected, []);
    assert.match(report.warnings[0]!, /newly initialized: \[score.weight\]/);
    const score = model.stateDict().get('score.weight')!;
    assert.deepEqual([...score.shape], [4, 32]);
    assert.ok((score.dataSync() as Float32Array).some((v) => v !== 0));
    lm.dispose();
    model.dispose();
  });

  it('a bare body checkpoint (no prefix, old buffers) loads into a head model', async () => {
    const lm = L.createModel(tinyConfig('gpt2'), 'causal-lm', { seed: 6 });
    const dir = join(tmp, 'gpt2-bare');
    await lm.save(dir);
    const checkpoint = await openCheckpoint(dir);
    const tensors = [];
    for (const [name, info] of checkpoint.tensors) tensors.push({ name: name.replace(/^transformer\./, ''), shape: info.shape, data: await checkpoint.readF32(name) });
    await checkpoint.close();
    tensors.push({ name: 'h.0.attn.bias', shape: [1, 1, 4, 4], data: new Float32Array(16) });
    await writeSafetensors(join(dir, 'model.safetensors'), tensors);
    const { model, report } = await L.loadPretrained(dir, { warn: false });
    assert.deepEqual([report.missing, report.unexpected, report.ignored], [[], [], ['h.0.attn.bias']]);
    sameState(lm, model);
    lm.dispose();
    model.dispose();
  });
});

describe('PEFT adapters', () => {
  it('save in PEFT format and load back onto a fresh base model', async () => {
    const base = join(tmp, 'peft-base');
    const model = L.createModel(tinyConfig('llama', L.makeLabels(2)), 'sequence-classification', { seed: 8 });
    await model.save(base);
    L.addLoraAdapter(model, { r: 4, alpha: 16, dropout: 0.05, targetModules: ['q_proj', 'v_proj'] });
    const g = new L.Generator(1);
    for (const l of L.loraState(model)!.layers.values()) L.initNormal(l.lora_B.weight, 0.3, g);
    L.initNormal(model.stateDict().get('score.weight')!, 0.3, g);
    const dir = join(tmp, 'peft-adapter');
    await L.saveAdapter(model, dir, { baseModelNameOrPath: base });
    const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config.peft_type, 'LORA');
    assert.equal(config.task_type, 'SEQ_CLS');
    assert.deepEqual([config.r, config.lora_alpha, config.lora_dropout], [4, 16, 0.05]);
    assert.deepEqual(config.target_modules, ['q_proj', 'v_proj']);
    assert.deepEqual(config.modules_to_save, ['score']);
    const file = await openCheckpoint(join(dir, 'adapter_model.safetensors'));
    const keys = [...file.tensors.keys()].sort();
    await file.close();
    assert.equal(keys.length, 2 * 2 * 2 + 1);
    assert.ok(keys.includes('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'));
    assert.ok(keys.includes('base_model.model.score.weight'));

    const { model: fresh } = await L.loadPretrained(base, { warn: false });
    await L.loadAdapter(fresh, dir);
    const input = { inputIds: ids([[1, 7, 3, 9]]) };
    assert.deepEqual(logitsOf(fresh.eval(), input), logitsOf(model.eval(), input));
    // Merged into a plain checkpoint that loads without any adapter.
    L.mergeAndUnload(fresh);
    const merged = join(tmp, 'peft-merged');
    await fresh.save(merged);
    const { model: plain } = await L.loadPretrained(merged, { warn: false });
    const diff = Math.max(...logitsOf(plain.eval(), input).map((v, i) => Math.abs(v - logitsOf(model, input)[i]!)));
    assert.ok(diff < 1e-4, `merged checkpoint differs by ${diff}`);
    for (const m of [model, fresh, plain]) m.dispose();
  });
});

describe('bad input', () => {
  function folder(name: string, config: unknown): string {
    const dir = join(tmp, name);
    rmSync(dir, { recursive: true, force: true });
    cpSync(join(tmp, 'gpt2-lm'), dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    return dir;
  }
  const good = () => JSON.parse(readFileSync(join(tmp, 'gpt2-lm', 'config.json'), 'utf8')) as Record<string, unknown>;

  it('unknown model_type, inconsistent sizes and bad fields name the file and field', async () => {
    await assert.rejects(L.loadPretrained(folder('bad-type', { ...good(), model_type: 'mamba' })), /bad-type\/config.json: model_type "mamba" is not supported \(supported: gpt2, bert, llama, mistral, qwen2\)/);
    await assert.rejects(L.loadPretrained(folder('bad-heads', { ...good(), n_head: 5 })), /bad-heads\/config.json: n_embd \(32\) is not divisible by n_head \(5\)/);
    await assert.rejects(L.loadPretrained(folder('bad-field', { ...good(), n_layer: '2' })), /config.json: field "n_layer" must be an integer in \[1, 1000\], got "2"/);
    await assert.rejects(L.loadPretrained(folder('bad-labels', { ...good(), id2label: { 0: 'a', 2: 'b' } })), /field "id2label" must map "0".."1"/);
    await assert.rejects(L.loadPretrained(folder('no-type', { n_layer: 2 })), /field "model_type" is missing/);
    assert.throws(() => L.parseConfig({ model_type: 'llama', num_attention_heads: 4, num_key_value_heads: 3 }, 'c.json'), /c.json: num_attention_heads \(4\) is not divisible by num_key_value_heads \(3\)/);
    assert.throws(() => L.parseConfig({ model_type: 'llama', rope_scaling: { rope_type: 'yarn', factor: 2 } }, 'c.json'), /rope_type "yarn" is not supported/);
    await assert.rejects(L.loadPretrained(join(tmp, 'nowhere')), /nowhere\/config.json: not found/);
  });

  it('a weight of the wrong shape names the file and the tensor', async () => {
    const dir = folder('bad-shape', good());
    const checkpoint = await openCheckpoint(dir);
    const tensors = [];
    for (const [name, info] of checkpoint.tensors) tensors.push({ name, shape: info.shape, data: await checkpoint.readF32(name) });
    await checkpoint.close();
    const i = tensors.findIndex((t) => t.name === 'transformer.h.1.attn.c_attn.weight');
    tensors[i] = { name: tensors[i]!.name, shape: [32, 48], data: new Float32Array(32 * 48) };
    await writeSafetensors(join(dir, 'model.safetensors'), tensors);
    await assert.rejects(L.loadPretrained(dir), /bad-shape\/model.safetensors: transformer.h.1.attn.c_attn.weight has shape \[32,48\], expected \[32,96\]/);
  });

  it('a classification head of another size says how to fix it', async () => {
    const model = L.createModel(tinyConfig('bert', L.makeLabels(3)), 'sequence-classification');
    const dir = join(tmp, 'bert-3');
    await model.save(dir);
    model.dispose();
    await assert.rejects(L.loadPretrained(dir, { numLabels: 5 }), /model.safetensors: classifier.bias has shape \[3\], expected \[5\] \(a head of another size: pass ignoreMismatchedSizes/);
    const { model: five, report } = await L.loadPretrained(dir, { numLabels: 5, ignoreMismatchedSizes: true, warn: false });
    assert.deepEqual(report.mismatched, ['classifier.bias [3] -> [5]', 'classifier.weight [3,32] -> [5,32]']);
    assert.deepEqual(report.missing, ['classifier.weight', 'classifier.bias']);
    five.dispose();
  });
});
