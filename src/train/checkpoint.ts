// Checkpoints of a training run: model, optimiser, trainer state (schedule step, RNGs, data cursor,
// metrics), written into a temp folder and renamed into place, listed in a hashed manifest.

import { join } from 'node:path';
import { faultPoint } from '../faults.js';
import { shortJson } from '../short_json.js';
import { shapeString, type Tensor } from '../engine/tensor.js';
import type { Optimizer, OptimizerStateDict } from './optim.js';
import { decodeTensorFile, encodeTensorFile, nodeFs, readTensorFileHeader, type CheckpointFs, type F32Entry } from './tensor_file.js';
import type { JsonValue, MetricRecord, TrainableModel } from './types.js';

/** Written last: a folder without it is not a checkpoint. */
export const MANIFEST_FILE = 'loom_checkpoint.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const OPTIMIZER_META_FILE = 'optimizer.json';
export const TRAINER_STATE_FILE = 'trainer_state.json';
/** All parameters when the model has no save(); else the HF weights its save() writes. */
export const PARAMS_FILE = 'model.safetensors';
/** The trained parameters, when the model's own files do not hold them by name (see writeCheckpointContents). */
export const TRAINED_PARAMS_FILE = 'trainer_params.safetensors';

/** Everything besides tensors that a resumed run needs to continue exactly. */
export interface TrainerState {
  /** Optimiser steps completed. */
  step: number;
  epoch: number;
  dataCursor: JsonValue;
  /** States of the engine's default generator and any extra generators, by name. */
  rng: Record<string, number>;
  /** The schedule is a pure function of the step; kept to refuse a resume with another schedule. */
  schedule: { name: string; warmupSteps: number; totalSteps: number; minLrRatio: number };
  /** Every metrics.jsonl line so far. */
  history: MetricRecord[];
  best: { metric: string; value: number; step: number } | null;
  /** Evaluations since the best one (early stopping). */
  badEvals: number;
  /** Train-loss sums since the last log line, so the next line averages the same steps. */
  logWindow: { lossSum: number; steps: number };
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export interface CheckpointInfo {
  step: number;
  path: string;
}

interface Manifest {
  format: 'loom-checkpoint';
  version: 1;
  step: number;
  files: Record<string, { bytes: number; sha256: string }>;
}

/** The checkpoints/ folder of a run: atomic saves, listing, validation, rotation. */
export class CheckpointManager {
  constructor(
    readonly dir: string,
    readonly fs: CheckpointFs = nodeFs,
    private readonly warn: (message: string) => void = (m) => process.emitWarning(m, 'LoomCheckpointWarning'),
  ) {}

  /** Complete checkpoints (with a manifest), oldest first. Temp folders of interrupted saves are skipped. */
  async list(): Promise<CheckpointInfo[]> {
    if (!(await this.fs.stat(this.dir))) return [];
    const out: CheckpointInfo[] = [];
    for (const name of await this.fs.readdir(this.dir)) {
      const m = /^checkpoint-(\d+)$/.exec(name);
      if (!m) continue;
      const path = join(this.dir, name);
      if (!(await this.fs.stat(join(path, MANIFEST_FILE)))) {
        this.warn(`${path} has no ${MANIFEST_FILE}; it is not a complete checkpoint and is ignored`);
        continue;
      }
      out.push({ step: Number(m[1]), path });
    }
    return out.sort((a, b) => a.step - b.step);
  }

  /**
   * Writes a checkpoint: `write` fills a temp folder, the manifest (sizes and hashes) goes in last,
   * then one rename makes it visible. A failure removes the temp folder and leaves every earlier
   * checkpoint as it was; the error says what failed and which checkpoint is still there.
   */
  async save(step: number, write: (dir: string) => Promise<void>): Promise<string> {
    const final = join(this.dir, `checkpoint-${step}`);
    const tmp = join(this.dir, `.tmp-checkpoint-${step}-${process.pid}`);
    try {
      await this.fs.mkdir(this.dir);
      await this.fs.rm(tmp);
      await this.fs.mkdir(tmp);
      faultPoint('checkpoint temp folder');
      await write(tmp);
      faultPoint('checkpoint contents');
      const files: Manifest['files'] = {};
      for (const rel of await this.walk(tmp, '')) {
        const p = join(tmp, rel);
        files[rel] = { bytes: (await this.fs.stat(p))!.size, sha256: await this.fs.sha256(p) };
      }
      const manifest: Manifest = { format: 'loom-checkpoint', version: 1, step, files };
      await this.fs.writeFile(join(tmp, MANIFEST_FILE), [Buffer.from(JSON.stringify(manifest, null, 1))]);
      faultPoint('checkpoint manifest');
      if (await this.fs.stat(final)) {
        // Saving the same step twice (the final save after a resume): swap, then drop the old one.
        // A crash between the two renames leaves only .old-checkpoint-N, which cleanStale() puts back.
        const old = join(this.dir, `.old-checkpoint-${step}-${process.pid}`);
        await this.fs.rm(old);
        await this.fs.rename(final, old);
        faultPoint('checkpoint swap');
        await this.fs.rename(tmp, final);
        await this.fs.rm(old);
      } else {
        await this.fs.rename(tmp, final);
      }
      faultPoint('checkpoint published');
      return final;
    } catch (e) {
      await this.fs.rm(tmp).catch(() => undefined);
      const prev = (await this.list().catch(() => [])).filter((c) => c.step !== step).pop();
      const kept = prev ? `the previous checkpoint ${prev.path} is intact` : 'there is no earlier checkpoint';
      const code = (e as NodeJS.ErrnoException).code;
      const full = code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG' ? ' (the disk is full, or a quota or file-size limit was reached: free some space, then resume)' : '';
      throw new CheckpointError(`saving checkpoint-${step} failed: ${(e as Error).message}${full}; ${kept}`, { cause: e });
    }
  }

  /**
   * Removes what saves killed mid-way left behind (temp folders of processes that no longer run) and
   * puts back a checkpoint a crash took out between the two renames of a same-step save. Returns
   * what was done, one line per folder, for the caller to report.
   */
  async cleanStale(): Promise<string[]> {
    if (!(await this.fs.stat(this.dir))) return [];
    const done: string[] = [];
    const names = await this.fs.readdir(this.dir);
    for (const name of names) {
      // .tmp- / .old- / .del-checkpoint-N-PID, and the model's own ..tmp-checkpoint-N-PID.tmp-* beside them
      const m = /^\.+(tmp|old|del)-checkpoint-(\d+)-(\d+)/.exec(name);
      if (!m || alive(Number(m[3]))) continue;
      const path = join(this.dir, name);
      const final = join(this.dir, `checkpoint-${m[2]}`);
      if (m[1] === 'old' && name === `.old-checkpoint-${m[2]}-${m[3]}` && !names.includes(`checkpoint-${m[2]}`) && (await this.fs.stat(join(path, MANIFEST_FILE)))) {
        await this.fs.rename(path, final);
        done.push(`restored ${final} (a save of the same step was interrupted)`);
        continue;
      }
      await this.fs.rm(path);
      done.push(`removed ${path} (left by an interrupted save)`);
    }
    return done;
  }

  private async walk(root: string, rel: string): Promise<string[]> {
    const out: string[] = [];
    for (const name of (await this.fs.readdir(join(root, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if ((await this.fs.stat(join(root, r)))!.dir) out.push(...(await this.walk(root, r)));
      else out.push(r);
    }
    return out;
  }

  /** Checks the manifest: every file present with its size and hash. Throws a CheckpointError naming the problem. */
  async validate(path: string): Promise<void> {
    let manifest: Manifest;
    try {
      manifest = JSON.parse(Buffer.from(await this.fs.readFile(join(path, MANIFEST_FILE))).toString('utf8'));
    } catch (e) {
      throw new CheckpointError(`${path}: cannot read ${MANIFEST_FILE}: ${(e as Error).message}`);
    }
    if (manifest.format !== 'loom-checkpoint' || typeof manifest.files !== 'object') {
      throw new CheckpointError(`${path}/${MANIFEST_FILE}: not a Loom checkpoint manifest`);
    }
    for (const [rel, want] of Object.entries(manifest.files)) {
      const p = join(path, rel);
      const st = await this.fs.stat(p);
      if (!st) throw new CheckpointError(`${p} is missing (listed in ${MANIFEST_FILE})`);
      if (st.size !== want.bytes) throw new CheckpointError(`${p} has ${st.size} bytes, the manifest says ${want.bytes}: the file is corrupt or truncated`);
      if ((await this.fs.sha256(p)) !== want.sha256) throw new CheckpointError(`${p} does not match its sha256 in ${MANIFEST_FILE}: the file is corrupt`);
    }
  }

  /**
   * The newest checkpoint, validated. A corrupt newest checkpoint is an error rather than a silent
   * fallback (which would quietly lose training): the message names the older one to use instead.
   */
  async latest(): Promise<CheckpointInfo | null> {
    const all = await this.list();
    const last = all.pop();
    if (!last) return null;
    try {
      await this.validate(last.path);
    } catch (e) {
      const prev = all.pop();
      const hint = prev ? `; resume from ${prev.path} instead, or delete ${last.path}` : '';
      throw new CheckpointError(`${(e as Error).message}${hint}`);
    }
    return last;
  }

  /** Deletes all but the newest `keepLast` checkpoints, never the one at step `protect` (the best). */
  async rotate(keepLast: number, protect: number | null): Promise<void> {
    if (!(keepLast > 0)) return;
    const all = await this.list();
    for (const c of all.slice(0, Math.max(0, all.length - keepLast))) {
      if (c.step !== protect) {
        // Renamed away first, so a crash mid-delete leaves a stale folder for cleanStale, not half a checkpoint.
        const doomed = join(this.dir, `.del-checkpoint-${c.step}-${process.pid}`);
        await this.fs.rename(c.path, doomed);
        faultPoint('checkpoint rotate');
        await this.fs.rm(doomed);
      }
    }
  }
}

/** Whether a process with this id runs (kill(pid, 0) checks without sending anything). */
function alive(pid: number): boolean {
  if (pid === process.pid) return false; // ours: nothing of this process can be in progress before it starts saving
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---- contents ----

function entries(named: Iterable<[string, Tensor]>): Map<string, F32Entry> {
  const m = new Map<string, F32Entry>();
  for (const [name, t] of named) m.set(name, { shape: [...t.shape], data: t.dataSync() as Float32Array });
  return m;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Writes model, optimiser and trainer state into `dir` (a temp folder from CheckpointManager.save).
 * The model's own save() writes its HF folder; when that folder's model.safetensors does not hold
 * every trained parameter under its name as F32 (sharded, bf16, a LoRA adapter file, renamed
 * keys), the trained parameters also go to trainer_params.safetensors, so resume never depends on
 * how a model chooses to save itself. Without save(), every parameter goes to model.safetensors.
 */
export async function writeCheckpointContents(fs: CheckpointFs, dir: string, model: TrainableModel, optimizer: Optimizer, state: TrainerState): Promise<void> {
  if (model.save) {
    await model.save(dir);
    const header = await readTensorFileHeader(fs, join(dir, PARAMS_FILE));
    const complete = header !== null && optimizer.params().every(([name, t]) => {
      const h = header.get(name);
      return h !== undefined && h.dtype === 'F32' && sameShape(h.shape, t.shape);
    });
    if (!complete) await fs.writeFile(join(dir, TRAINED_PARAMS_FILE), encodeTensorFile(entries(optimizer.params())));
  } else {
    await fs.writeFile(join(dir, PARAMS_FILE), encodeTensorFile(entries(model.namedParameters()), { format: 'pt' }));
  }
  const { tensors, ...meta } = optimizer.stateDict();
  await fs.writeFile(join(dir, OPTIMIZER_FILE), encodeTensorFile(tensors));
  await fs.writeFile(join(dir, OPTIMIZER_META_FILE), [Buffer.from(JSON.stringify(meta))]);
  await fs.writeFile(join(dir, TRAINER_STATE_FILE), [Buffer.from(JSON.stringify(state))]);
}

async function readJson<T>(fs: CheckpointFs, path: string): Promise<T> {
  let text: string;
  try {
    text = Buffer.from(await fs.readFile(path)).toString('utf8');
  } catch (e) {
    throw new CheckpointError(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new CheckpointError(`${path} is corrupt (not JSON: ${(e as Error).message})`);
  }
}

async function readTensors(fs: CheckpointFs, path: string): Promise<Map<string, F32Entry>> {
  try {
    return decodeTensorFile(await fs.readFile(path), path).tensors;
  } catch (e) {
    throw new CheckpointError((e as Error).message);
  }
}

/**
 * The trainer state as the loop will use it (counters, RNG states, the log window, history, best),
 * checked field by field: a hand-edited or hostile trainer_state.json is an error naming the field,
 * not a crash a hundred steps later.
 */
function checkTrainerState(path: string, s: unknown): TrainerState {
  const fail = (what: string): never => {
    throw new CheckpointError(`${path}: ${what}`);
  };
  const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const count = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
  const num = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
  if (!obj(s)) return fail('not a JSON object');
  if (!count(s.step)) fail(`"step" must be an integer >= 0, got ${shortJson(s.step)}`);
  if (!num(s.epoch)) fail(`"epoch" must be a number, got ${shortJson(s.epoch)}`);
  if (!obj(s.rng) || !Object.values(s.rng).every(num)) fail('"rng" must map generator names to numbers');
  const sch = s.schedule;
  if (!obj(sch) || typeof sch.name !== 'string' || !count(sch.warmupSteps) || !count(sch.totalSteps) || !num(sch.minLrRatio)) fail('"schedule" must be {name, warmupSteps, totalSteps, minLrRatio}');
  if (!Array.isArray(s.history) || !s.history.every((h) => obj(h) && count(h.step) && typeof h.split === 'string')) fail('"history" must be a list of metric records');
  const best = s.best;
  if (best !== null && !(obj(best) && typeof best.metric === 'string' && num(best.value) && count(best.step))) fail('"best" must be null or {metric, value, step}');
  if (!count(s.badEvals)) fail(`"badEvals" must be an integer >= 0, got ${shortJson(s.badEvals)}`);
  const w = s.logWindow;
  if (!obj(w) || !num(w.lossSum) || !count(w.steps)) fail('"logWindow" must be {lossSum, steps}');
  if (!('dataCursor' in s)) fail('"dataCursor" is missing');
  return s as unknown as TrainerState;
}

/**
 * Restores parameters and optimiser state from a checkpoint folder and returns the trainer state.
 * Every trained parameter must be in the checkpoint with its shape; frozen ones are restored when
 * present (they come from the model as built otherwise). Everything is read and checked before any
 * tensor is overwritten, so a checkpoint of another model or a corrupt file leaves the model as it was.
 */
export async function readCheckpointContents(fs: CheckpointFs, dir: string, model: TrainableModel, optimizer: Optimizer): Promise<TrainerState> {
  const optPath = join(dir, OPTIMIZER_FILE);
  const meta = await readJson<Omit<OptimizerStateDict, 'tensors'>>(fs, join(dir, OPTIMIZER_META_FILE));
  const optTensors = await readTensors(fs, optPath);
  const state = checkTrainerState(join(dir, TRAINER_STATE_FILE), await readJson<unknown>(fs, join(dir, TRAINER_STATE_FILE)));

  let values: Map<string, F32Entry> | null = null;
  if (!model.load) {
    const own = join(dir, TRAINED_PARAMS_FILE);
    const ours = !model.save || (await fs.stat(own)) !== null;
    values = await readTensors(fs, model.save && ours ? own : join(dir, PARAMS_FILE));
    const trained = new Set(optimizer.params().map(([n]) => n));
    const problems: string[] = [];
    const names = new Set<string>();
    for (const [name, t] of model.namedParameters()) {
      names.add(name);
      const v = values.get(name);
      if (!v) {
        if (trained.has(name) || !model.save) problems.push(`missing ${name}`);
      } else if (!sameShape(v.shape, t.shape)) {
        problems.push(`${name} has shape ${shapeString(v.shape)} in the checkpoint, ${shapeString(t.shape)} in the model`);
      }
    }
    // A model's own save() may add buffers; a file the Trainer wrote must match exactly.
    if (ours) for (const name of values.keys()) if (!names.has(name)) problems.push(`unexpected ${name}`);
    if (problems.length) {
      const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : '';
      throw new CheckpointError(`${dir} is a checkpoint of another model: ${problems.slice(0, 5).join('; ')}${more}`);
    }
  }
  try {
    optimizer.loadStateDict({ ...meta, tensors: optTensors }, `${optPath} (with ${OPTIMIZER_META_FILE})`);
  } catch (e) {
    throw new CheckpointError((e as Error).message);
  }
  if (values) {
    for (const [name, t] of model.namedParameters()) {
      const v = values.get(name);
      if (v) t.backend.write(t.storage, v.data);
    }
  } else {
    await model.load!(dir);
  }
  return state;
}
