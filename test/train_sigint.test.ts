// Ctrl-C: a child training process gets SIGINT, saves a checkpoint and exits 0; a second child
// resumes from it, and the losses of both match an uninterrupted run bit for bit.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTrainer } from './train_sigint_child.js';

const CHILD = fileURLToPath(new URL('./train_sigint_child.js', import.meta.url));

interface ChildRun {
  code: number | null;
  losses: Map<number, number>;
  done: { step: number; stoppedBy: string; checkpoint: string | null } | null;
  stderr: string;
}

function runChild(env: Record<string, string>, interruptAtStep: number | null): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD], { env: { ...process.env, ...env, LOOM_SIGINT_CHILD: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const run: ChildRun = { code: null, losses: new Map(), done: null, stderr: '' };
    let buf = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (msg.done) run.done = msg.done;
        else run.losses.set(msg.step, msg.loss);
        if (!sent && interruptAtStep !== null && msg.step >= interruptAtStep) {
          sent = true;
          child.kill('SIGINT');
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (run.stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ ...run, code }));
  });
}

describe('SIGINT', () => {
  it('saves a checkpoint, exits cleanly, and the run resumes exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-sigint-'));
    const first = await runChild({ RUN_DIR: dir, MAX_STEPS: '100000' }, 3);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.done?.stoppedBy, 'interrupt');
    const n = first.done!.step;
    assert.ok(n >= 3 && n < 100000, `interrupted at ${n}`);
    assert.equal(first.done!.checkpoint, join(dir, 'checkpoints', `checkpoint-${n}`));
    assert.ok(existsSync(join(dir, 'checkpoints', `checkpoint-${n}`, 'loom_checkpoint.json')));
    assert.equal(first.losses.size, n);

    const second = await runChild({ RUN_DIR: dir, MAX_STEPS: String(n + 4), RESUME: '1' }, null);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.done?.stoppedBy, 'maxSteps');
    assert.deepEqual([...second.losses.keys()], [n + 1, n + 2, n + 3, n + 4]);

    // the same run without interruption, in this process
    const straight = new Map<number, number>();
    const { model, trainer } = makeTrainer(undefined, n + 4, false, (s, l) => void straight.set(s, l));
    await trainer.train();
    for (let s = 1; s <= n + 4; s++) assert.equal((s <= n ? first : second).losses.get(s), straight.get(s), `step ${s}`);
    model.dispose();
    trainer.optimizer.dispose();
  });
});
