// Optimisers with PyTorch's semantics: AdamW (the engine's fused multi-tensor kernel) and SGD with
// momentum, parameter groups, gradient clipping by global norm, and state dicts for exact resume.

import { Tensor, shapeString } from '../engine/tensor.js';
import { shortText } from '../short_json.js';
import { noGrad, scope } from '../engine/engine.js';
import { tensor, zeros } from '../engine/create.js';
import { add, scale } from '../engine/ops/elementwise.js';
import { adamwStep, globalNorm } from '../engine/ops/optim.js';

export type NamedTensor = [string, Tensor];

/** A set of parameters sharing a learning rate and weight decay (torch's param_groups). */
export interface ParamGroup {
  params: NamedTensor[];
  /** Base learning rate of the group (the schedule multiplies it); defaults to the optimiser's. */
  lr?: number;
  weightDecay?: number;
}

/** What a checkpoint stores: JSON metadata plus named f32 tensors (moments, momentum buffers). */
export interface OptimizerStateDict {
  kind: 'adamw' | 'sgd';
  hyper: Record<string, number | boolean>;
  groups: { names: string[]; lr: number; weightDecay: number }[];
  /** Per-parameter step counts (AdamW's bias correction is per parameter, as in torch). */
  steps: Record<string, number>;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

export interface StepOptions {
  /** Gradients are used multiplied by this (the clipping coefficient); they are not modified. Default 1. */
  gradScale?: number;
}

export interface Optimizer {
  readonly kind: 'adamw' | 'sgd';
  /** Multiplies every group's base LR by `factor` (what torch's LambdaLR does each step). */
  setLrFactor(factor: number): void;
  /** Current LR of each group. */
  lrs(): number[];
  /**
   * Updates every parameter that has a gradient; parameters without one are skipped (as torch does).
   * `gradScale` multiplies every gradient first, as clipping in place would (see gradientClipScale).
   */
  step(options?: StepOptions): void;
  /** Frees every trained parameter's gradient. */
  zeroGrad(): void;
  /** The trained parameters, in group order. */
  params(): NamedTensor[];
  stateDict(): OptimizerStateDict;
  /** Restores a state dict; throws naming the first parameter whose name or shape differs. */
  loadStateDict(state: OptimizerStateDict, source?: string): void;
  /** Frees the optimiser's state tensors. */
  dispose(): void;
}

export interface DefaultGroupsOptions {
  weightDecay: number;
  /**
   * Which parameters get no weight decay. Default: rank <= 1 (biases and norm weights), the rule
   * nanoGPT and most recipes use; names do not need to follow any convention for it to work.
   */
  noDecay?: (name: string, t: Tensor) => boolean;
}

/** Splits the trainable (requiresGrad) parameters into a decayed and a non-decayed group. */
export function defaultParamGroups(named: Iterable<NamedTensor>, options: DefaultGroupsOptions): ParamGroup[] {
  const noDecay = options.noDecay ?? ((_n: string, t: Tensor) => t.rank <= 1);
  const decay: NamedTensor[] = [];
  const plain: NamedTensor[] = [];
  const seen = new Set<Tensor>();
  for (const [name, t] of named) {
    if (!t.requiresGrad) continue; // frozen (e.g. the base model under LoRA): never optimised
    if (seen.has(t)) continue; // a tied weight listed twice must be updated once (torch dedupes too)
    seen.add(t);
    (noDecay(name, t) ? plain : decay).push([name, t]);
  }
  return [
    { params: decay, weightDecay: options.weightDecay },
    { params: plain, weightDecay: 0 },
  ].filter((g) => g.params.length > 0);
}

interface Group {
  params: NamedTensor[];
  baseLr: number;
  lr: number;
  weightDecay: number;
}

function makeGroups(groups: readonly ParamGroup[], lr: number, weightDecay: number): Group[] {
  const seen = new Set<string>();
  return groups.map((g) => {
    for (const [name, t] of g.params) {
      if (seen.has(name)) throw new Error(`optimizer: parameter ${name} is in two groups`);
      if (t.dtype !== 'f32') throw new Error(`optimizer: parameter ${name} is ${t.dtype}; only f32 parameters are trained`);
      seen.add(name);
    }
    const base = g.lr ?? lr;
    return { params: [...g.params], baseLr: base, lr: base, weightDecay: g.weightDecay ?? weightDecay };
  });
}

function checkState(kind: string, state: OptimizerStateDict, groups: Group[], source: string): void {
  // The state comes from a file: check its shape before reading it as typed.
  const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!obj(state)) throw new Error(`${source}: optimizer state is not an object`);
  if (state.kind !== kind) throw new Error(`${source}: optimizer state is ${shortText(state.kind, 40)}, this run uses ${kind}`);
  if (!Array.isArray(state.groups) || !state.groups.every((g) => obj(g) && Array.isArray(g.names) && g.names.every((n) => typeof n === 'string'))) {
    throw new Error(`${source}: "groups" must be a list of {names: [...]}`);
  }
  if (!obj(state.steps) || !Object.values(state.steps).every((n) => Number.isSafeInteger(n) && (n as number) >= 1)) {
    throw new Error(`${source}: "steps" must map parameter names to step counts (integers >= 1)`);
  }
  const mine = groups.flatMap((g) => g.params.map(([n]) => n));
  const theirs = state.groups.flatMap((g) => g.names);
  const missing = mine.filter((n) => !theirs.includes(n));
  const extra = theirs.filter((n) => !mine.includes(n));
  if (missing.length || extra.length) {
    const parts = [];
    if (missing.length) parts.push(`missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`);
    if (extra.length) parts.push(`unexpected ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', ...' : ''}`);
    throw new Error(`${source}: optimizer state is for other parameters (${parts.join('; ')}); is the checkpoint from another model?`);
  }
}

function loadInto(source: string, key: string, target: Tensor, state: OptimizerStateDict): Tensor | null {
  const entry = state.tensors.get(key);
  if (!entry) return null;
  if (entry.shape.length !== target.rank || entry.shape.some((d, i) => d !== target.shape[i])) {
    throw new Error(`${source}: ${key} has shape ${shapeString(entry.shape)}, the parameter is ${shapeString(target.shape)}`);
  }
  return tensor(entry.data, entry.shape).keep();
}

/** Copies src's values into dst's storage (same size), so a parameter keeps its identity. */
function copyInto(dst: Tensor, src: Tensor): void {
  dst.backend.stridedCopy(src.storage, 0, [1], [src.size], dst.storage, 0, [1]);
}

function host(t: Tensor): { shape: number[]; data: Float32Array } {
  return { shape: [...t.shape], data: t.dataSync() as Float32Array };
}

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  /** Default weight decay of groups that do not set one (torch's default 0.01). */
  weightDecay?: number;
}

/** What every optimiser here shares: parameter groups whose learning rates a schedule scales. */
abstract class GroupedOptimizer {
  protected constructor(protected readonly groups: Group[]) {}

  setLrFactor(factor: number): void {
    for (const g of this.groups) g.lr = g.baseLr * factor;
  }

  lrs(): number[] {
    return this.groups.map((g) => g.lr);
  }

  params(): NamedTensor[] {
    return this.groups.flatMap((g) => g.params);
  }
}

/** torch.optim.AdamW (amsgrad off): decoupled weight decay p *= 1 - lr*wd, then the Adam update. */
export class AdamW extends GroupedOptimizer implements Optimizer {
  readonly kind = 'adamw';
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly state = new Map<string, { m: Tensor; v: Tensor; step: number }>();

  constructor(groups: readonly ParamGroup[], options: AdamWOptions = {}) {
    super(makeGroups(groups, options.lr ?? 1e-3, options.weightDecay ?? 0.01));
    [this.beta1, this.beta2] = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
  }

  step(options: StepOptions = {}): void {
    const gradScale = options.gradScale ?? 1;
    for (const g of this.groups) {
      // One fused kernel call per (group, step count): parameters normally all share one count, but
      // a parameter that once had no gradient lags behind, and its bias correction must too.
      const byStep = new Map<number, Parameters<typeof adamwStep>[0][number][]>();
      for (const [name, p] of g.params) {
        if (!p.grad) continue;
        let s = this.state.get(name);
        if (!s) {
          s = { m: zeros(p.shape).keep(), v: zeros(p.shape).keep(), step: 0 };
          this.state.set(name, s);
        }
        s.step += 1;
        const list = byStep.get(s.step) ?? [];
        list.push({ param: p, grad: p.grad, m: s.m, v: s.v, weightDecay: g.weightDecay });
        byStep.set(s.step, list);
      }
      for (const [step, list] of byStep) {
        adamwStep(list, { lr: g.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, step, gradScale });
      }
    }
  }

  zeroGrad(): void {
    for (const [, p] of this.params()) p.zeroGrad();
  }

  stateDict(): OptimizerStateDict {
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    const steps: Record<string, number> = {};
    for (const [name, s] of this.state) {
      tensors.set(`${name}.exp_avg`, host(s.m));
      tensors.set(`${name}.exp_avg_sq`, host(s.v));
      steps[name] = s.step;
    }
    return {
      kind: 'adamw',
      hyper: { beta1: this.beta1, beta2: this.beta2, eps: this.eps },
      groups: this.groups.map((g) => ({ names: g.params.map(([n]) => n), lr: g.baseLr, weightDecay: g.weightDecay })),
      steps,
      tensors,
    };
  }

  loadStateDict(state: OptimizerStateDict, source = 'optimizer state'): void {
    checkState('adamw', state, this.groups, source);
    const next = new Map<string, { m: Tensor; v: Tensor; step: number }>();
    try {
      for (const [name, p] of this.params()) {
        const step = state.steps[name];
        if (step === undefined) continue; // never updated yet
        if (!Number.isInteger(step) || step < 1) throw new Error(`${source}: ${name} has step ${shortText(step)}`);
        const m = loadInto(source, `${name}.exp_avg`, p, state);
        const v = m && loadInto(source, `${name}.exp_avg_sq`, p, state);
        if (!m || !v) {
          m?.dispose();
          throw new Error(`${source}: ${name} has a step count but no exp_avg/exp_avg_sq tensors`);
        }
        next.set(name, { m, v, step });
      }
    } catch (e) {
      for (const s of next.values()) (s.m.dispose(), s.v.dispose());
      throw e;
    }
    this.dispose();
    for (const [k, s] of next) this.state.set(k, s);
  }

  dispose(): void {
    for (const s of this.state.values()) (s.m.dispose(), s.v.dispose());
    this.state.clear();
  }
}

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/**
 * torch.optim.SGD: d = g + wd*p; with momentum, buf = d on the first step, else
 * buf = momentum*buf + (1-dampening)*d; d = nesterov ? d + momentum*buf : buf; p -= lr*d.
 */
export class SGD extends GroupedOptimizer implements Optimizer {
  readonly kind = 'sgd';
  private readonly momentum: number;
  private readonly dampening: number;
  private readonly nesterov: boolean;
  private readonly buffers = new Map<string, Tensor>();
  private readonly steps = new Map<string, number>();

  constructor(groups: readonly ParamGroup[], options: SGDOptions = {}) {
    super(makeGroups(groups, options.lr ?? 1e-3, options.weightDecay ?? 0));
    this.momentum = options.momentum ?? 0;
    this.dampening = options.dampening ?? 0;
    this.nesterov = options.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new Error('SGD: nesterov needs momentum > 0 and dampening 0 (as in torch)');
    }
  }

  step(options: StepOptions = {}): void {
    const gradScale = options.gradScale ?? 1;
    // No fused kernel: engine ops make the new values in a scope, then they are copied into the
    // parameter and buffer storages so the model's tensors keep their identity.
    noGrad(() =>
      scope(() => {
        for (const g of this.groups) {
          for (const [name, p] of g.params) {
            if (!p.grad) continue;
            this.steps.set(name, (this.steps.get(name) ?? 0) + 1);
            const grad = gradScale === 1 ? p.grad : scale(p.grad, gradScale);
            let d = g.weightDecay !== 0 ? add(grad, scale(p, g.weightDecay)) : grad;
            if (this.momentum !== 0) {
              const prev = this.buffers.get(name);
              if (!prev) {
                const buf = zeros(p.shape).keep();
                copyInto(buf, d);
                this.buffers.set(name, buf);
                d = this.nesterov ? add(d, scale(buf, this.momentum)) : buf;
              } else {
                copyInto(prev, add(scale(prev, this.momentum), scale(d, 1 - this.dampening)));
                d = this.nesterov ? add(d, scale(prev, this.momentum)) : prev;
              }
            }
            copyInto(p, add(p, scale(d, -g.lr)));
          }
        }
      }),
    );
  }

  zeroGrad(): void {
    for (const [, p] of this.params()) p.zeroGrad();
  }

  stateDict(): OptimizerStateDict {
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, b] of this.buffers) tensors.set(`${name}.momentum_buffer`, host(b));
    return {
      kind: 'sgd',
      hyper: { momentum: this.momentum, dampening: this.dampening, nesterov: this.nesterov },
      groups: this.groups.map((g) => ({ names: g.params.map(([n]) => n), lr: g.baseLr, weightDecay: g.weightDecay })),
      steps: Object.fromEntries(this.steps),
      tensors,
    };
  }

  loadStateDict(state: OptimizerStateDict, source = 'optimizer state'): void {
    checkState('sgd', state, this.groups, source);
    const next = new Map<string, Tensor>();
    try {
      for (const [name, p] of this.params()) {
        const b = loadInto(source, `${name}.momentum_buffer`, p, state);
        if (b) next.set(name, b);
      }
    } catch (e) {
      for (const b of next.values()) b.dispose();
      throw e;
    }
    this.dispose();
    for (const [k, b] of next) this.buffers.set(k, b);
    for (const [k, s] of Object.entries(state.steps)) this.steps.set(k, s);
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
    this.steps.clear();
  }
}

/**
 * torch.nn.utils.clip_grad_norm_: total = ||all grads||_2; coef = maxNorm / (total + 1e-6),
 * clamped to 1; every gradient is multiplied by coef. Returns the norm before clipping. Float32
 * rounding of the norm and coef follows torch (they are f32 tensors there).
 */
export function clipGradientNorm(params: Iterable<NamedTensor | Tensor>, maxNorm: number): number {
  const grads = gradients(params);
  const { norm, scale: coef } = clipScaleOf(grads, maxNorm);
  // coef == 1 is torch's multiply by 1.0: a no-op we skip.
  if (coef !== 1) for (const g of grads) g.backend.unary('scale', g.storage, g.storage, coef);
  return norm;
}

/**
 * What clipGradientNorm would multiply the gradients by, without touching them: hand `scale` to
 * Optimizer.step({ gradScale }) and the update equals clip-then-step's, bit for bit, one pass cheaper.
 */
export function gradientClipScale(params: Iterable<NamedTensor | Tensor>, maxNorm: number): { norm: number; scale: number } {
  return clipScaleOf(gradients(params), maxNorm);
}

function gradients(params: Iterable<NamedTensor | Tensor>): Tensor[] {
  const grads: Tensor[] = [];
  for (const item of params) {
    const t = Array.isArray(item) ? item[1] : item;
    if (t.grad) grads.push(t.grad);
  }
  return grads;
}

function clipScaleOf(grads: readonly Tensor[], maxNorm: number): { norm: number; scale: number } {
  const norm = Math.fround(globalNorm(grads));
  const coef = Math.min(Math.fround(maxNorm / Math.fround(norm + 1e-6)), 1);
  return { norm, scale: coef < 1 || Number.isNaN(coef) ? coef : 1 };
}
