// What a run shows and records: a one-line progress bar on a TTY (plain log lines otherwise) and
// metrics.jsonl in the run folder, one JSON object per train log step and per evaluation.

import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { faultPoint } from '../faults.js';
import type { MetricRecord } from './types.js';

export type ProgressMode = 'auto' | 'bar' | 'lines' | 'none';

export interface StepReport {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  tokensPerSecond: number;
  /** Seconds left at the current pace. */
  eta: number;
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

function rate(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0);
}

export function formatStep(r: StepReport): string {
  return (
    `step ${r.step}/${r.totalSteps}  epoch ${r.epoch.toFixed(2)}  loss ${r.loss.toFixed(4)}  lr ${r.lr.toExponential(2)}  ` +
    `${rate(r.tokensPerSecond)} tok/s  eta ${duration(r.eta)}`
  );
}

/** Numbers of an evaluation record as `key value` pairs (lists and matrices stay in metrics.jsonl). */
export function formatEval(step: number, rec: MetricRecord): string {
  const parts = Object.entries(rec)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => `${k} ${(v as number).toFixed(4)}`);
  return `eval @ step ${step}  ${parts.join('  ')}`;
}

/**
 * On a TTY: one line redrawn in place at most 10 times a second, with messages printed above it.
 * Elsewhere (CI, log files): one line every log step, so the log is readable and greppable.
 */
export class Progress {
  private readonly bar: boolean;
  private readonly silent: boolean;
  private lastDraw = 0;
  private drawn = false;

  constructor(
    mode: ProgressMode,
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number } = process.stderr,
  ) {
    this.bar = mode === 'bar' || (mode === 'auto' && stream.isTTY === true);
    this.silent = mode === 'none';
  }

  /** Every step on a TTY; `logStep` says whether this step is a log step (lines mode prints then). */
  step(r: StepReport, logStep: boolean): void {
    if (this.silent) return;
    if (!this.bar) {
      if (logStep) this.stream.write(formatStep(r) + '\n');
      return;
    }
    const now = Date.now();
    if (now - this.lastDraw < 100 && r.step !== r.totalSteps) return;
    this.lastDraw = now;
    const width = 20;
    const filled = Math.round((width * r.step) / Math.max(1, r.totalSteps));
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${formatStep(r)}`;
    this.stream.write(`\r\x1b[K${line.slice(0, (this.stream.columns ?? 200) - 1)}`);
    this.drawn = true;
  }

  /** A message on its own line (evaluations, saves, warnings), above the bar. */
  message(text: string): void {
    if (this.silent) return;
    if (this.bar && this.drawn) this.stream.write('\r\x1b[K');
    this.stream.write(text + '\n');
    this.drawn = false;
  }

  done(): void {
    if (this.bar && this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}

/** Appends records to <runDir>/metrics.jsonl; small synchronous writes, so a crash loses nothing logged. */
export class MetricsLog {
  readonly path: string;
  constructor(runDir: string) {
    this.path = join(runDir, 'metrics.jsonl');
  }

  append(rec: MetricRecord): void {
    appendFileSync(this.path, JSON.stringify(rec) + '\n');
    faultPoint('metrics line');
  }

  /**
   * On resume: drops lines from after the checkpoint's step (the interrupted run logged them, the
   * resumed run will log them again), so the file reads as one uninterrupted run.
   */
  truncateAfter(step: number): void {
    if (!existsSync(this.path)) return;
    const kept = readFileSync(this.path, 'utf8')
      .split('\n')
      .filter((line) => {
        if (!line.trim()) return false;
        try {
          return (JSON.parse(line) as { step?: number }).step! <= step;
        } catch {
          return false; // a torn last line from a kill mid-write
        }
      });
    // Through a temp file: a crash here must not lose the lines before the checkpoint.
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, kept.map((l) => l + '\n').join(''));
    faultPoint('metrics rewrite');
    renameSync(tmp, this.path);
  }
}
