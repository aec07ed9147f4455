// Faults during a CLI training run: kill -9 at seeded points (inside steps, checkpoint writes,
// rotation, publishing) then --resume ends with the same loss curve and weights as a run never
// killed; a full disk (a file-size limit) during a checkpoint stops the run with a clear message
// and leaves the previous checkpoint intact and resumable.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointManager } from '../src/train/checkpoint.js';
import { LOOM, rng, tinyModelFolder, suiteTempDir } from './cli_helpers.js';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** `loom ...args` as a child with extra env (a hang fails after 2 minutes instead of blocking CI). */
function loomEnv(env: Record<string, string>, args: string[], shell?: string): Run {
  const argv = [process.execPath, LOOM, ...args];
  const r = shell === undefined
    ? spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, LOOM_NUM_THREADS: '1', ...env }, timeout: 120_000 })
    : spawnSync('bash', ['-c', `${shell}; exec "$@"`, 'bash', ...argv], { encoding: 'utf8', env: { ...process.env, LOOM_NUM_THREADS: '1', ...env }, timeout: 120_000 });
  return { code: r.status, signal: r.signal, stderr: r.stderr };
}

/** Whether checkpoints/ holds a complete checkpoint (what decides between --resume and a fresh start). */
function hasCheckpoint(out: string): boolean {
  const dir = join(out, 'checkpoints');
  return existsSync(dir) && readdirSync(dir).some((n) => /^checkpoint-\d+$/.test(n) && existsSync(join(dir, n, 'loom_checkpoint.json')));
}

/** Entries of a folder that an interrupted save leaves behind (dot-prefixed temp folders). */
const leftovers = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('.')) : []);

describe('faults during training (CLI)', () => {
  const p = suiteTempDir('loom-fault-');
  const train = (out: string, steps: number, extra: string[] = []): string[] => [
    'pretrain', '--model', p('init'), '--objective', 'clm', '--data', p('corpus.txt'), '--out', out, '--steps', String(steps),
    '--batch-size', '4', '--seq-len', '32', '--lr', '3e-3', '--log-every', '1', ...extra,
  ];
  before(() => {
    tinyModelFolder(p());
  });

  it('kill -9 at 16 seeded points (data preparation, steps, checkpoint writes, rotation, publishing), then --resume: same curve and weights', async () => {
    const STEPS = 20;
    const args = (out: string): string[] => train(out, STEPS, ['--save-every', '1']);
    const ref = loomEnv({}, args(p('ref')));
    assert.equal(ref.code, 0, ref.stderr);

    // Where to die: the n-th fault point of a kind (n seeded in 1..3), in the order a run meets them
    // (data preparation first, in the process that starts the run),
    // so each process gets a little further. Two kills in the middle come from outside instead.
    const next = rng(20261128);
    const targets = [
      'shard written', 'shard manifest', 'step', 'metrics line', 'checkpoint temp folder', 'safetensors model.safetensors', 'swap folder', 'write optimizer.safetensors',
      'external', 'write trainer_state.json', 'checkpoint contents', 'checkpoint manifest', 'external', 'checkpoint published',
      'checkpoint rotate', 'metrics rewrite', 'publish file',
    ];
    const out = p('killed');
    const landed: string[] = [];
    let leftBehind = 0;
    let cleaned = 0;
    for (const target of targets) {
      const resume = hasCheckpoint(out) ? ['--resume'] : [];
      if (target === 'external') {
        // After the second step line this process prints, at a moment the child does not choose.
        const child = spawn(process.execPath, [LOOM, ...args(out), ...resume], { env: { ...process.env, LOOM_NUM_THREADS: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          if ((err.match(/^step \d+\//gm) ?? []).length >= 2) child.kill('SIGKILL');
        });
        const [code, signal] = await new Promise<[number | null, string | null]>((res) => child.on('exit', (c, s) => res([c, s])));
        assert.equal(signal, 'SIGKILL', `external kill: exit ${code}\n${err}`);
        if (/removed .*left by an interrupted save|restored /.test(err)) cleaned++;
        landed.push('external');
      } else {
        const kill = `${target.startsWith('shard') ? 1 : 1 + next(3)}:${target}`; // a tiny corpus has one shard per split
        const r = loomEnv({ LOOM_FAULT_KILL: kill }, [...args(out), ...resume]);
        assert.equal(r.signal, 'SIGKILL', `kill at ${kill} did not happen: exit ${r.code}\n${r.stderr}`);
        if (/removed .*left by an interrupted save|restored /.test(r.stderr)) cleaned++;
        landed.push(kill);
      }
      if ([out, join(out, 'checkpoints'), join(out, 'data')].some((d) => leftovers(d).length > 0)) leftBehind++;
      if (process.env.LOOM_FUZZ_VERBOSE) console.log(target, existsSync(join(out, 'checkpoints')) ? readdirSync(join(out, 'checkpoints')).join(' ') : '-');
    }
    const final = loomEnv({}, [...args(out), '--resume']);
    assert.equal(final.code, 0, final.stderr);
    assert.ok(leftBehind >= 3 && cleaned >= 3, `kills that left temp folders: ${leftBehind}, runs that cleaned them up: ${cleaned}`);

    // Same loss curve (every train and eval line) and the same final weights, byte for byte.
    assert.equal(readFileSync(join(out, 'metrics.jsonl'), 'utf8'), readFileSync(p('ref', 'metrics.jsonl'), 'utf8'));
    assert.ok(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(p('ref', 'model.safetensors'))), 'final weights differ');
    assert.deepEqual(leftovers(join(out, 'checkpoints')), [], 'temp folders of interrupted saves are cleaned');
    assert.deepEqual(leftovers(out), []);
    assert.deepEqual(leftovers(join(out, 'data')), [], 'temp shards of an interrupted preparation are cleaned');
    await new CheckpointManager(join(out, 'checkpoints')).validate(join(out, 'checkpoints', `checkpoint-${STEPS}`));
  });

  it('a full disk during a checkpoint: exit 1 with a clear message, the previous checkpoint intact and resumable', async () => {
    const args = (out: string, steps: number, extra: string[] = []): string[] => train(out, steps, ['--save-every', '2', ...extra]);
    const ref = loomEnv({}, args(p('disk-ref'), 8));
    assert.equal(ref.code, 0, ref.stderr);
    const out = p('disk');
    // The same 8-step run, killed right after checkpoint-4 is on disk (schedule and all as the reference).
    assert.equal(loomEnv({ LOOM_FAULT_KILL: '2:checkpoint published' }, args(out, 8)).signal, 'SIGKILL');
    // A file-size limit below the model file's size makes its write fail with EFBIG, as a full disk
    // fails with ENOSPC (Node ignores SIGXFSZ, so the write returns the error). No root needed.
    const limitKiB = Math.floor(readFileSync(join(out, 'checkpoints', 'checkpoint-4', 'model.safetensors')).length / 1024 / 2);
    const full = loomEnv({}, args(out, 8, ['--resume']), `ulimit -f ${limitKiB}`);
    assert.equal(full.code, 1, full.stderr);
    assert.match(full.stderr, /loom pretrain: error: saving checkpoint-6 failed: EFBIG: file too large.*\(the disk is full, or a quota or file-size limit was reached.*\); the previous checkpoint .*checkpoint-4 is intact/);
    const ckpts = join(out, 'checkpoints');
    assert.deepEqual(readdirSync(ckpts).sort(), ['checkpoint-2', 'checkpoint-4'], 'no half-written checkpoint');
    await new CheckpointManager(ckpts).validate(join(ckpts, 'checkpoint-4'));
    // Space again: the run resumes from checkpoint-4 and ends as if nothing had happened.
    const resumed = loomEnv({}, args(out, 8, ['--resume']));
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resumed from .*checkpoint-4 at step 4/);
    assert.equal(readFileSync(join(out, 'metrics.jsonl'), 'utf8'), readFileSync(p('disk-ref', 'metrics.jsonl'), 'utf8'));
    assert.ok(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(p('disk-ref', 'model.safetensors'))));
  });
});
