// Module: a tree of named parameters, buffers and child modules whose dotted paths are the
// checkpoint's tensor names (like torch.nn.Module). Not here: layers (layers.ts), LoRA (lora.ts).

import { Tensor, shapeString } from '../engine/tensor.js';

/**
 * Selects parameters or modules by name:
 * - a string matches a run of whole dotted components anywhere in the name, `*` matching any
 *   characters (`'wte'`, `'h.0'`, `'bias'`, `'h.*.attn'`, `'transformer'` for everything under it);
 * - a RegExp is tested against the full dotted name;
 * - an array matches when any element does; a function decides by itself.
 */
export type NamePattern = string | RegExp | readonly (string | RegExp)[] | ((name: string) => boolean);

function globToRegExp(glob: string): RegExp {
  const body = glob.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`(^|\\.)${body}($|\\.)`);
}

/** Whether `name` is selected by `pattern` (see NamePattern). */
export function matchesName(name: string, pattern: NamePattern): boolean {
  if (typeof pattern === 'function') return pattern(name);
  if (typeof pattern === 'string') return globToRegExp(pattern).test(name);
  if (pattern instanceof RegExp) return pattern.test(name);
  return pattern.some((p) => matchesName(name, p));
}

export interface LoadStateDictOptions {
  /** Throw when keys are missing or unexpected (default true). Shape mismatches always throw. */
  strict?: boolean;
  /** Names the source in error messages (a file path). */
  source?: string;
}

export interface LoadStateDictResult {
  missing: string[];
  unexpected: string[];
}

/** Values loadStateDict accepts: tensors, or flat f32 host data in row-major order. */
export type StateValue = Tensor | Float32Array;

interface BufferEntry {
  tensor: Tensor;
  /** Persistent buffers are part of the state dict; others are derived (recomputed on load). */
  persistent: boolean;
}

export class Module {
  /** Dropout and similar layers act only in training mode. New modules start in training mode, like PyTorch. */
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, BufferEntry>();
  private readonly children = new Map<string, Module>();

  /**
   * Registers a parameter: kept out of scopes (the module owns it) and, for f32, requiring grad
   * unless `adopt` is set (a wrapper taking over another module's parameter keeps its setting).
   */
  protected registerParameter(name: string, t: Tensor, adopt = false): Tensor {
    this.checkFree(name);
    t.keep();
    if (!adopt && t.dtype === 'f32' && !t.requiresGrad) t.requireGrad();
    this.params.set(name, t);
    return t;
  }

  /** Registers a buffer (state that is not trained: position ids, masks). */
  protected registerBuffer(name: string, t: Tensor, persistent = true): Tensor {
    this.checkFree(name);
    t.keep();
    this.buffers.set(name, { tensor: t, persistent });
    return t;
  }

  /** Registers a child module under `name`; its parameters appear as `name.<their path>`. */
  protected registerModule<M extends Module>(name: string, m: M): M {
    this.checkFree(name);
    this.children.set(name, m);
    return m;
  }

  private checkFree(name: string): void {
    if (name === '' || name.includes('.')) throw new Error(`Module: invalid name '${name}' (non-empty, no dots)`);
    if (this.params.has(name) || this.buffers.has(name) || this.children.has(name)) {
      throw new Error(`Module: '${name}' is already registered on ${this.constructor.name}`);
    }
  }

  /** Direct children in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  /** This module and every descendant with its dotted path ('' for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.children) out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  /** The descendant at a dotted path; throws naming the first missing component. */
  getSubmodule(path: string): Module {
    if (path === '') return this;
    let m: Module = this;
    for (const part of path.split('.')) {
      const next = m.children.get(part);
      if (!next) throw new Error(`${this.constructor.name} has no submodule '${path}' (no '${part}' in ${m.constructor.name})`);
      m = next;
    }
    return m;
  }

  /**
   * Replaces the child `name` (used by LoRA to wrap a layer). Fields of this module that held the
   * old child are pointed at the new one, so forward code that reads `this.c_attn` sees the wrapper.
   */
  replaceChild(name: string, m: Module): Module {
    const old = this.children.get(name);
    if (!old) throw new Error(`${this.constructor.name} has no child '${name}'`);
    this.children.set(name, m);
    const self = this as unknown as Record<string, unknown>;
    for (const key of Object.keys(self)) if (self[key] === old) self[key] = m;
    return old;
  }

  /**
   * Every parameter with its dotted path, each tensor once (a tied weight appears under the path
   * where it was registered, as in PyTorch).
   */
  namedParameters(prefix = ''): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    const walk = (m: Module, pre: string): void => {
      for (const [name, t] of m.params) {
        if (seen.has(t)) continue;
        seen.add(t);
        out.push([pre + name, t]);
      }
      for (const [name, child] of m.children) walk(child, `${pre}${name}.`);
    };
    walk(this, prefix ? `${prefix}.` : '');
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Parameters that currently require gradients (what an optimiser should update). */
  trainableParameters(): [string, Tensor][] {
    return this.namedParameters().filter(([, t]) => t.requiresGrad);
  }

  namedBuffers(options: { persistentOnly?: boolean } = {}): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules()) {
      for (const [name, b] of m.buffers) {
        if (options.persistentOnly && !b.persistent) continue;
        out.push([path ? `${path}.${name}` : name, b.tensor]);
      }
    }
    return out;
  }

  /** Number of parameter elements (tied weights counted once). */
  numParameters(options: { trainableOnly?: boolean } = {}): number {
    return this.namedParameters().reduce((n, [, t]) => n + (options.trainableOnly && !t.requiresGrad ? 0 : t.size), 0);
  }

  /** Parameters and persistent buffers by dotted path: the tensors a checkpoint holds. */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers({ persistentOnly: true })]);
  }

  /**
   * Copies values into this module's parameters and persistent buffers, in place (tensors that
   * share a parameter, such as a tied head, see the new values). Returns the keys this module has
   * that `state` lacks (missing) and the keys of `state` it has no use for (unexpected).
   */
  loadStateDict(state: ReadonlyMap<string, StateValue>, options: LoadStateDictOptions = {}): LoadStateDictResult {
    const own = this.stateDict();
    const source = options.source ? `${options.source}: ` : '';
    const missing = [...own.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !own.has(k));
    if ((options.strict ?? true) && (missing.length || unexpected.length)) {
      const parts = [];
      if (missing.length) parts.push(`missing keys: ${missing.join(', ')}`);
      if (unexpected.length) parts.push(`unexpected keys: ${unexpected.join(', ')}`);
      throw new Error(`${source}loadStateDict into ${this.constructor.name}: ${parts.join('; ')}`);
    }
    // Validate every shape before writing anything, so a bad state leaves the module unchanged.
    for (const [key, target] of own) {
      const v = state.get(key);
      if (v === undefined) continue;
      const size = v instanceof Tensor ? v.size : v.length;
      if (v instanceof Tensor ? !sameShape(v.shape, target.shape) : size !== target.size) {
        const got = v instanceof Tensor ? shapeString(v.shape) : `${size} values`;
        throw new Error(`${source}${key} has shape ${got}, expected ${shapeString(target.shape)}`);
      }
    }
    for (const [key, target] of own) {
      const v = state.get(key);
      if (v !== undefined) writeInto(target, v instanceof Tensor ? v.dataSync() : v);
    }
    return { missing, unexpected };
  }

  /** Sets training mode on this module and every descendant. Returns this. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  /** Inference mode: dropout off. Returns this. */
  eval(): this {
    return this.train(false);
  }

  /** Stops gradients for the parameters matched by `pattern` (all when absent). Returns how many. */
  freeze(pattern?: NamePattern): number {
    return this.setTrainable(pattern, false);
  }

  /** Lets gradients flow again to the parameters matched by `pattern` (all when absent). */
  unfreeze(pattern?: NamePattern): number {
    return this.setTrainable(pattern, true);
  }

  private setTrainable(pattern: NamePattern | undefined, flag: boolean): number {
    let n = 0;
    for (const [name, t] of this.namedParameters()) {
      if (pattern !== undefined && !matchesName(name, pattern)) continue;
      if (t.dtype !== 'f32') continue;
      if (!flag) t.zeroGrad();
      t.requireGrad(flag);
      n++;
    }
    return n;
  }

  /** Frees the gradients of every parameter (call after each optimiser step). */
  zeroGrad(): void {
    for (const t of this.parameters()) t.zeroGrad();
  }

  /** Frees every parameter and buffer this module (and its descendants) owns. */
  dispose(): void {
    for (const [, t] of this.namedParameters()) t.dispose();
    for (const [, t] of this.namedBuffers()) t.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** An ordered list of modules named '0', '1', ... (PyTorch's ModuleList, as in `h.3.attn`). */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: readonly M[]) {
    super();
    this.items = items.map((m, i) => this.registerModule(String(i), m));
  }
  get length(): number {
    return this.items.length;
  }
  /** Keeps `items` in step with replaceChild (LoRA never wraps a list element itself, but be safe). */
  override replaceChild(name: string, m: Module): Module {
    const old = super.replaceChild(name, m);
    const i = Number(name);
    if (Number.isInteger(i) && this.items[i] === old) this.items[i] = m as M;
    return old;
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Overwrites a tensor's values in place from host data of the same size. */
export function writeInto(target: Tensor, data: Float32Array | Int32Array): void {
  if (data.length !== target.size) throw new Error(`writeInto: ${data.length} values for ${shapeString(target.shape)}`);
  if (target.dtype === 'f32' && !(data instanceof Float32Array)) data = Float32Array.from(data);
  if (target.dtype === 'i32' && !(data instanceof Int32Array)) data = Int32Array.from(data);
  if (target.dtype === 'bf16') throw new Error('writeInto: bf16 parameters are not supported yet');
  target.backend.write(target.storage, data);
}
