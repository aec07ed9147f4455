// Crash injection for the fault tests: named points in the write paths (steps, checkpoint files,
// publishing) where a test can make the process die with SIGKILL. A no-op unless the env asks.
//
// LOOM_FAULT_KILL=N      the N-th fault point this process reaches kills it with SIGKILL (a real
//                        kill -9: no handler, no flush, no finally), so a test can land a crash
//                        inside a checkpoint write deterministically instead of by timing.
// LOOM_FAULT_KILL=N:TEXT the N-th point whose name contains TEXT ("2:write optimizer").
// LOOM_FAULT_TRACE=FILE  appends the name of every point reached to FILE (one per line), so the
//                        test can tell where each kill landed.

import { appendFileSync } from 'node:fs';

const spec = /^(\d+)(?::(.*))?$/.exec(process.env.LOOM_FAULT_KILL ?? '');
const killAt = spec ? Number(spec[1]) : 0;
const match = spec?.[2] ?? '';
const trace = process.env.LOOM_FAULT_TRACE;
let reached = 0;
let matched = 0;

/** True when a fault test is running: writers then split files into two writes, so a kill can land mid-file. */
export const faultsActive = killAt > 0 || trace !== undefined;

/** Marks a place where a crash must leave the run recoverable (see the file header). */
export function faultPoint(name: string): void {
  if (!faultsActive) return;
  reached++;
  if (trace !== undefined) appendFileSync(trace, `${reached} ${name}\n`);
  if (name.includes(match) && ++matched === killAt) {
    process.kill(process.pid, 'SIGKILL');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10_000); // never returns: the signal is on its way
  }
}
