// LoRA (PEFT's LoraLayer for nn.Linear and GPT-2's Conv1D): y = base(x) + scaling * B(A(dropout(x))),
// injected by module name, mergeable into the base weight. PEFT's file format is in models/peft.ts.

import { Generator } from '../engine/random.js';
import type { Tensor } from '../engine/tensor.js';
import { noGrad, scope } from '../engine/engine.js';
import { tensor } from '../engine/create.js';
import { add, matmul, scale, sub, transpose } from '../engine/ops/index.js';
import { Module, writeInto } from './module.js';
import { Dropout, Linear, LinearBase } from './layers.js';
import { initKaimingUniform, initZeros } from './init.js';

/**
 * Module selection as PEFT's target_modules: a list matches a module whose name equals an entry or
 * ends with "." + entry ('c_attn', 'q_proj'); a string or RegExp must match the whole name.
 */
export type TargetModules = readonly string[] | string | RegExp;

export interface LoraOptions {
  r: number;
  alpha: number;
  dropout?: number;
  targetModules: TargetModules;
  /** Modules trained in full and saved with the adapter (a new classification head). */
  modulesToSave?: readonly string[];
  /** PEFT's use_rslora: scaling alpha / sqrt(r) instead of alpha / r. */
  useRslora?: boolean;
  /** Seed of lora_A's initialisation. */
  seed?: number;
}

export function matchesTarget(name: string, targets: TargetModules): boolean {
  if (typeof targets === 'string') return new RegExp(`^(?:${targets})$`).test(name);
  if (targets instanceof RegExp) return new RegExp(`^(?:${targets.source})$`, targets.flags.replace('g', '')).test(name);
  return targets.some((t) => name === t || name.endsWith(`.${t}`));
}

/**
 * A Linear (or Conv1D) with a low-rank update. The base weight and bias stay registered under their
 * own names (`c_attn.weight`), so the state dict of the base model is unchanged; the adapter adds
 * `lora_A.weight` [r, in] (kaiming-uniform, as PEFT) and `lora_B.weight` [out, r] (zeros), so a fresh
 * adapter leaves the output as it was.
 */
export class LoraLinear extends LinearBase {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly lora_A: Linear;
  readonly lora_B: Linear;
  readonly lora_dropout: Dropout;
  readonly scaling: number;
  private isMerged = false;
  /** Off: forward is the base layer's alone (PEFT's disable_adapter). */
  enabled = true;

  constructor(
    readonly base: LinearBase,
    readonly r: number,
    readonly alpha: number,
    dropout = 0,
    options: { useRslora?: boolean; generator?: Generator } = {},
  ) {
    super();
    if (!Number.isInteger(r) || r < 1) throw new Error(`LoRA: r must be an integer >= 1, got ${r}`);
    if (base instanceof LoraLinear) throw new Error('LoRA: this layer already has an adapter');
    this.weight = this.registerParameter('weight', base.weight, true);
    this.bias = base.bias ? this.registerParameter('bias', base.bias, true) : null;
    this.lora_dropout = this.registerModule('lora_dropout', new Dropout(dropout));
    this.lora_A = this.registerModule('lora_A', new Linear(base.inFeatures, r, { bias: false }));
    this.lora_B = this.registerModule('lora_B', new Linear(r, base.outFeatures, { bias: false }));
    initKaimingUniform(this.lora_A.weight, base.inFeatures, options.generator);
    initZeros(this.lora_B.weight);
    this.scaling = options.useRslora ? alpha / Math.sqrt(r) : alpha / r;
  }

  get inFeatures(): number {
    return this.base.inFeatures;
  }
  get outFeatures(): number {
    return this.base.outFeatures;
  }
  get fanInFanOut(): boolean {
    return this.base.fanInFanOut;
  }
  get merged(): boolean {
    return this.isMerged;
  }

  forward(x: Tensor): Tensor {
    const y = this.base.forward(x);
    if (this.isMerged || !this.enabled) return y;
    return add(y, scale(this.lora_B.forward(this.lora_A.forward(this.lora_dropout.forward(x))), this.scaling));
  }

  /** scaling * B A in the base weight's layout ([out, in], or [in, out] for Conv1D), as host data. */
  deltaWeight(): Float32Array {
    return noGrad(() =>
      scope(() => {
        const ba = scale(matmul(this.lora_B.weight, this.lora_A.weight), this.scaling);
        return (this.fanInFanOut ? transpose(ba) : ba).dataSync() as Float32Array;
      }),
    );
  }

  /** Adds the update into the base weight (forward then skips the adapter). */
  merge(): void {
    if (this.isMerged) return;
    this.applyDelta(add);
    this.isMerged = true;
  }

  /** Takes the update back out of the base weight (equal to the original up to rounding). */
  unmerge(): void {
    if (!this.isMerged) return;
    this.applyDelta(sub);
    this.isMerged = false;
  }

  private applyDelta(op: (a: Tensor, b: Tensor) => Tensor): void {
    const delta = this.deltaWeight();
    const updated = noGrad(() => scope(() => op(this.weight.detach(), tensor(delta, this.weight.shape)).dataSync()));
    writeInto(this.weight, updated);
  }
}

/** What applyLora did: the resolved options and the wrapped layers by path. */
export interface LoraState {
  options: Required<Omit<LoraOptions, 'seed'>> & { seed: number };
  layers: Map<string, LoraLinear>;
}

const attached = new WeakMap<Module, LoraState>();

/** The adapter applyLora attached to `model`, if any. */
export function loraState(model: Module): LoraState | undefined {
  return attached.get(model);
}

/**
 * Wraps every Linear/Conv1D of `model` whose name matches `targetModules` in a LoraLinear, then
 * freezes everything except the adapters and `modulesToSave` (PEFT's get_peft_model).
 */
export function applyLora(model: Module, options: LoraOptions): LoraState {
  if (attached.has(model)) throw new Error('applyLora: this model already has a LoRA adapter');
  if (!(options.alpha > 0)) throw new Error(`applyLora: alpha must be > 0, got ${options.alpha}`);
  const generator = new Generator(options.seed ?? 0);
  const layers = new Map<string, LoraLinear>();
  const candidates = model.namedModules().filter(([name, m]) => name !== '' && m instanceof LinearBase);
  for (const [name, m] of candidates) {
    if (!matchesTarget(name, options.targetModules)) continue;
    const dot = name.lastIndexOf('.');
    const parent = model.getSubmodule(dot < 0 ? '' : name.slice(0, dot));
    const lora = new LoraLinear(m as LinearBase, options.r, options.alpha, options.dropout ?? 0, { useRslora: options.useRslora, generator });
    parent.replaceChild(name.slice(dot + 1), lora);
    layers.set(name, lora);
  }
  if (layers.size === 0) {
    const names = candidates.map(([n]) => n.replace(/\.\d+\./g, '.*.'));
    throw new Error(`applyLora: target modules ${describeTargets(options.targetModules)} match no Linear layer; the model has: ${[...new Set(names)].join(', ')}`);
  }
  const modulesToSave = options.modulesToSave ?? [];
  for (const m of modulesToSave) model.getSubmodule(m); // throws naming a missing module
  model.freeze();
  model.unfreeze((name) => /(^|\.)lora_(A|B)\.weight$/.test(name) || modulesToSave.some((m) => name.startsWith(`${m}.`)));
  const state: LoraState = {
    options: {
      r: options.r, alpha: options.alpha, dropout: options.dropout ?? 0, targetModules: options.targetModules,
      modulesToSave, useRslora: options.useRslora ?? false, seed: options.seed ?? 0,
    },
    layers,
  };
  attached.set(model, state);
  return state;
}

function describeTargets(t: TargetModules): string {
  return typeof t === 'string' || t instanceof RegExp ? String(t) : `[${t.join(', ')}]`;
}

/** Merges every adapter into its base weight (forward then costs what the base model costs). */
export function mergeLora(model: Module): void {
  for (const l of requireState(model).layers.values()) l.merge();
}

export function unmergeLora(model: Module): void {
  for (const l of requireState(model).layers.values()) l.unmerge();
}

/**
 * PEFT's merge_and_unload: merges the adapters, puts the base layers back in place and frees the
 * adapter weights, leaving a plain model (which save() writes as an ordinary checkpoint).
 */
export function mergeAndUnload(model: Module): void {
  const state = requireState(model);
  for (const [name, l] of state.layers) {
    l.merge();
    const dot = name.lastIndexOf('.');
    model.getSubmodule(dot < 0 ? '' : name.slice(0, dot)).replaceChild(name.slice(dot + 1), l.base);
    l.lora_A.dispose();
    l.lora_B.dispose();
  }
  attached.delete(model);
}

function requireState(model: Module): LoraState {
  const s = attached.get(model);
  if (!s) throw new Error('this model has no LoRA adapter (call applyLora first)');
  return s;
}
