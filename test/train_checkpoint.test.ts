// Checkpoint faults: a failing write (full disk) keeps the previous checkpoint valid; another model
// or a corrupt optimiser file is a clear error on resume; model save() paths; incomplete folders.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import {
  CheckpointManager, Trainer, arrayData, decodeTensorFile, encodeTensorFile, nodeFs, type CheckpointFs, type TrainerConfig,
} from '../src/train/index.js';
import * as L from '../src/index.js';
import { TinyLM, lmBatches, lmStep, readParams, type LmBatch } from './train_helpers.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'loom-ckpt-'));
const data = lmBatches(4, 2, 4, 1);

async function trainTo(dir: string, maxSteps: number, extra: Partial<TrainerConfig> & { fs?: CheckpointFs; model?: TinyLM } = {}) {
  const { fs, model: given, ...cfg } = extra;
  const model = given ?? new TinyLM();
  const t = new Trainer({ model, step: lmStep, trainData: arrayData(data), fs, config: { maxSteps, saveEvery: 5, lr: 1e-2, runDir: dir, progress: 'none', ...cfg } });
  try {
    return { result: await t.train(), model };
  } finally {
    t.optimizer.dispose();
    if (!given) model.dispose();
  }
}

describe('checkpoint saves', () => {
  it('a failing write (ENOSPC) keeps the previous checkpoint valid and says why', async () => {
    const dir = tmp();
    let steps = 0;
    const failing: CheckpointFs = {
      ...nodeFs,
      async writeFile(path, chunks) {
        if (steps >= 10 && basename(path) === 'optimizer.safetensors') {
          throw Object.assign(new Error(`ENOSPC: no space left on device, write '${path}'`), { code: 'ENOSPC' });
        }
        return nodeFs.writeFile(path, chunks);
      },
    };
    const model = new TinyLM();
    const t = new Trainer({
      model, step: lmStep, trainData: arrayData(data), fs: failing,
      config: { maxSteps: 20, saveEvery: 5, lr: 1e-2, runDir: dir, progress: 'none' },
      callbacks: { onStep: ({ step }) => void (steps = step) },
    });
    await assert.rejects(t.train(), /saving checkpoint-10 failed: ENOSPC: no space left on device, write .*optimizer\.safetensors' \(the disk is full.*then resume\); the previous checkpoint .*checkpoint-5 is intact/);
    // no temp folder left behind; checkpoint-5 validates and resumes
    assert.deepEqual(readdirSync(join(dir, 'checkpoints')), ['checkpoint-5']);
    const mgr = new CheckpointManager(join(dir, 'checkpoints'));
    await mgr.validate(join(dir, 'checkpoints', 'checkpoint-5'));
    const resumed = await trainTo(dir, 6, { resume: true });
    assert.equal(resumed.result.step, 6);
    model.dispose();
    t.optimizer.dispose();
  });

  it('uses the model\'s own save() and reads model.safetensors back by parameter name', async () => {
    const dir = tmp();
    const a = new TinyLM({ withSave: 'full', seed: 3 });
    await trainTo(dir, 5, { model: a });
    const ckpt = join(dir, 'checkpoints', 'checkpoint-5');
    assert.deepEqual(readdirSync(ckpt).sort(), ['config.json', 'loom_checkpoint.json', 'model.safetensors', 'optimizer.json', 'optimizer.safetensors', 'trainer_state.json']);
    const saved = await readParams(join(ckpt, 'model.safetensors'));
    const b = new TinyLM({ withSave: 'full', seed: 4 });
    await trainTo(dir, 5, { model: b, resume: true }); // nothing left to train: just restores
    for (const [name, v] of saved) assert.deepEqual(b.snapshot().get(name), v, name);
    a.dispose();
    b.dispose();
  });

  it('keeps its own copy of the trained parameters when the model\'s save() does not hold them', async () => {
    const dir = tmp();
    const a = new TinyLM({ withSave: 'config-only', seed: 3 });
    a.params.get('wte.weight')!.requireGrad(false); // frozen: comes from the model as built
    await trainTo(dir, 5, { model: a });
    const ckpt = join(dir, 'checkpoints', 'checkpoint-5');
    assert.ok(readdirSync(ckpt).includes('trainer_params.safetensors'));
    const saved = await readParams(join(ckpt, 'trainer_params.safetensors'));
    assert.deepEqual([...saved.keys()].sort(), ['head.bias', 'head.weight', 'ln.bias', 'ln.weight']);
    const b = new TinyLM({ withSave: 'config-only', seed: 3 });
    b.params.get('wte.weight')!.requireGrad(false);
    await trainTo(dir, 5, { model: b, resume: true });
    for (const [name, v] of a.snapshot()) assert.deepEqual(b.snapshot().get(name), v, name);
    a.dispose();
    b.dispose();
  });

  it('saves and restores extra generators (a data-order stream) with the run', async () => {
    const dir = tmp();
    const run = async (resume: boolean, stopAt: number | null) => {
      const order = new L.Generator(resume ? 0 : 77);
      const model = new TinyLM();
      const draws: number[] = [];
      const t: Trainer<TinyLM, LmBatch> = new Trainer({
        model, step: lmStep, trainData: arrayData(data), generators: { order },
        config: { maxSteps: 6, runDir: dir, resume, progress: 'none' },
        callbacks: { onStep: ({ step }) => void (draws.push(order.nextU32()), step === stopAt && t.stop()) },
      });
      await t.train();
      model.dispose();
      t.optimizer.dispose();
      return draws;
    };
    const first = await run(false, 3);
    const second = await run(true, null);
    const ref = new L.Generator(77);
    assert.deepEqual([...first, ...second], Array.from({ length: 6 }, () => ref.nextU32()));
  });

  it('ignores folders without a manifest (with a warning) and temp folders', async () => {
    const dir = tmp();
    await trainTo(dir, 5);
    mkdirSync(join(dir, 'checkpoints', 'checkpoint-9'));
    mkdirSync(join(dir, 'checkpoints', '.tmp-checkpoint-10-123'));
    const warnings: string[] = [];
    const mgr = new CheckpointManager(join(dir, 'checkpoints'), nodeFs, (m) => warnings.push(m));
    assert.deepEqual((await mgr.latest())?.step, 5);
    assert.match(warnings.join('\n'), /checkpoint-9 has no loom_checkpoint\.json; it is not a complete checkpoint and is ignored/);
  });
});

describe('run folders', () => {
  it('cleans temp folders of dead saves, puts back a checkpoint lost mid-swap, and a fresh run starts a fresh log', async () => {
    const dir = tmp();
    await trainTo(dir, 4, { logEvery: 1 });
    const ck = join(dir, 'checkpoints');
    // As a kill -9 leaves them: a dead process's temp folder, and a same-step swap cut between its renames.
    const dead = 2 ** 22 + 12345; // above Linux's default pid_max, so no process has it
    mkdirSync(join(ck, `.tmp-checkpoint-5-${dead}`));
    mkdirSync(join(ck, `..tmp-checkpoint-5-${dead}.tmp-${dead}-x`));
    const { renameSync } = await import('node:fs');
    renameSync(join(ck, 'checkpoint-4'), join(ck, `.old-checkpoint-4-${dead}`));
    const lines: string[] = [];
    const mgr = new CheckpointManager(ck);
    lines.push(...await mgr.cleanStale());
    assert.deepEqual(readdirSync(ck).sort(), ['checkpoint-4']);
    assert.equal(lines.length, 3);
    await mgr.validate(join(ck, 'checkpoint-4'));
    // A fresh (not resumed) run in the same folder rewrites metrics.jsonl from step 1.
    await trainTo(dir, 2, { logEvery: 1 });
    const steps = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    assert.deepEqual(steps, [1, 2]);
  });
});

describe('resume errors', () => {
  it('a checkpoint of another model (names or shapes differ) is refused before touching the model', async () => {
    const dir = tmp();
    await trainTo(dir, 5);
    const other = new TinyLM({ dim: 6, seed: 9 });
    const before = other.snapshot();
    await assert.rejects(trainTo(dir, 10, { model: other, resume: true }), (e: Error) => {
      // the optimiser state is checked first only by name; shapes are the model check's job
      assert.match(e.message, /checkpoint-5 is a checkpoint of another model: wte\.weight has shape \[16,8\] in the checkpoint, \[16,6\] in the model/);
      return true;
    });
    for (const [n, v] of before) assert.deepEqual(other.snapshot().get(n), v, `${n} untouched`);
    other.params.set('extra.weight', other.params.get('ln.weight')!);
    other.params.delete('ln.weight');
    await assert.rejects(trainTo(dir, 10, { model: other, resume: true }), /another model: .*missing extra\.weight.*unexpected ln\.weight/);
    other.dispose();
  });

  it('a corrupt optimiser file is a clear error naming the file and the older checkpoint', async () => {
    const dir = tmp();
    await trainTo(dir, 10);
    const file = join(dir, 'checkpoints', 'checkpoint-10', 'optimizer.safetensors');
    const bytes = readFileSync(file);
    bytes[bytes.length - 3] ^= 0xff;
    writeFileSync(file, bytes);
    await assert.rejects(trainTo(dir, 12, { resume: true }), /checkpoint-10\/optimizer\.safetensors does not match its sha256 in loom_checkpoint\.json: the file is corrupt; resume from .*checkpoint-5 instead, or delete .*checkpoint-10/);
    writeFileSync(file, bytes.subarray(0, 20));
    await assert.rejects(trainTo(dir, 12, { resume: true }), /optimizer\.safetensors has 20 bytes, the manifest says \d+: the file is corrupt or truncated/);
    // the older one still resumes when named explicitly
    const r = await trainTo(dir, 6, { resume: join(dir, 'checkpoints', 'checkpoint-5') });
    assert.equal(r.result.step, 6);
  });

  it('resume with nothing to resume from is an error', async () => {
    await assert.rejects(trainTo(tmp(), 5, { resume: true }), /resume: no checkpoint in .*checkpoints/);
  });
});

describe('tensor files', () => {
  it('round trip, and truncated or garbled files are reported as corrupt', () => {
    const entries = new Map([['a', { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }], ['b', { shape: [1], data: new Float32Array([5]) }]]);
    const bytes = new Uint8Array(Buffer.concat(encodeTensorFile(entries, { k: 'v' })));
    // header length is padded to a multiple of 8, as the safetensors format does
    assert.equal(Number(Buffer.from(bytes).readBigUInt64LE(0)) % 8, 0);
    const back = decodeTensorFile(bytes, 'x');
    assert.deepEqual([...back.tensors.get('a')!.data], [1, 2, 3, 4]);
    assert.deepEqual(back.metadata, { k: 'v' });
    assert.throws(() => decodeTensorFile(bytes.subarray(0, 5), 'opt.st'), /opt\.st: corrupt tensor file \(5 bytes/);
    assert.throws(() => decodeTensorFile(bytes.subarray(0, bytes.length - 4), 'opt.st'), /opt\.st: corrupt tensor file \(b: data_offsets/);
    const garbled = bytes.slice();
    garbled[9] = 0x7b;
    garbled[10] = 0x7b;
    assert.throws(() => decodeTensorFile(garbled, 'opt.st'), /header is not JSON/);
  });
});
