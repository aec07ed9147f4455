// Engine state: which backend runs the kernels, the stack of memory scopes, and grad mode.
// Tensors register here when created so that a scope can free everything made inside it.

import type { Backend } from '../backends/backend.js';
import type { Tensor } from './tensor.js';
import { ReferenceBackend } from '../backends/reference/index.js';
import { tryCreateCpuBackend } from '../backends/cpu/index.js';

/** A memory scope: the tensors created while it is the innermost one. */
export class Scope {
  readonly tensors = new Set<Tensor>();
  constructor(readonly parent: Scope | null) {}
}

/**
 * Precision of matrix products (torch.set_float32_matmul_precision): 'fp32', or 'bf16' for mixed
 * precision, where linear/matmul round their operands to bf16 and sum in fp32 (weights, gradients,
 * optimiser state and every other op stay fp32).
 */
export type MatmulPrecision = 'fp32' | 'bf16';

interface EngineState {
  backend: Backend | null;
  matmulPrecision: MatmulPrecision;
  scope: Scope | null;
  gradEnabled: boolean;
  liveTensors: number;
  fallbackWarned: boolean;
}

const state: EngineState = { backend: null, matmulPrecision: 'fp32', scope: null, gradEnabled: true, liveTensors: 0, fallbackWarned: false };

export type BackendName = 'cpu' | 'reference';

/** Creates a backend by name. `cpu` throws the loader's explanation when the addon is unavailable. */
export function createBackend(name: BackendName): Backend {
  if (name === 'reference') return new ReferenceBackend();
  const cpu = tryCreateCpuBackend();
  if (cpu instanceof Error) throw cpu;
  return cpu;
}

function defaultBackend(): Backend {
  const requested = process.env.LOOM_BACKEND;
  if (requested === 'cpu' || requested === 'reference') return createBackend(requested);
  if (requested) throw new Error(`LOOM_BACKEND=${requested}: expected 'cpu' or 'reference'`);
  const cpu = tryCreateCpuBackend();
  if (!(cpu instanceof Error)) return cpu;
  if (!state.fallbackWarned) {
    state.fallbackWarned = true;
    process.emitWarning(`${cpu.message}\nFalling back to the slow TypeScript reference backend.`, 'LoomBackendWarning');
  }
  return new ReferenceBackend();
}

/** The backend that runs kernels now (created on first use: native CPU, else the reference). */
export function getBackend(): Backend {
  if (!state.backend) state.backend = defaultBackend();
  return state.backend;
}

/**
 * Switches the backend. Tensors keep the backend they were created on; mixing tensors of two
 * backends in one op is an error, so switch between whole computations (tests do it per suite).
 */
export function setBackend(backend: Backend | BackendName): Backend {
  state.backend = typeof backend === 'string' ? createBackend(backend) : backend;
  return state.backend;
}

export function isGradEnabled(): boolean {
  return state.gradEnabled;
}

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const prev = state.gradEnabled;
  state.gradEnabled = enabled;
  try {
    return fn();
  } finally {
    state.gradEnabled = prev;
  }
}

/** Runs fn with gradient recording off (inference, optimiser updates). */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

/** Runs fn with gradient recording on (recomputation inside a backward pass, which runs under noGrad). */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}

export function getMatmulPrecision(): MatmulPrecision {
  return state.matmulPrecision;
}

export function setMatmulPrecision(precision: MatmulPrecision): void {
  if (precision !== 'fp32' && precision !== 'bf16') throw new Error(`setMatmulPrecision: expected 'fp32' or 'bf16', got ${String(precision)}`);
  state.matmulPrecision = precision;
}

// ---- scopes ----

/** @internal Called by every Tensor constructor. */
export function registerTensor(t: Tensor): Scope | null {
  state.liveTensors += 1;
  if (state.scope) state.scope.tensors.add(t);
  return state.scope;
}

/** @internal Called when a tensor is disposed. */
export function unregisterTensor(t: Tensor, scope: Scope | null): void {
  state.liveTensors -= 1;
  scope?.tensors.delete(t);
}

/** Number of tensor handles not yet disposed (saved-for-backward handles included). */
export function liveTensorCount(): number {
  return state.liveTensors;
}

/** Any value a scope may return: tensors found inside it (arrays, plain objects, Maps) survive. */
export type ScopeResult = unknown;

function collectTensors(value: unknown, out: Set<Tensor>, isTensor: (v: unknown) => v is Tensor, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== 'object') return;
  if (isTensor(value)) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collectTensors(v, out, isTensor, depth + 1);
  else if (value instanceof Map) for (const v of value.values()) collectTensors(v, out, isTensor, depth + 1);
  else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, out, isTensor, depth + 1);
  }
}

let tensorCheck: ((v: unknown) => v is Tensor) | null = null;
/** @internal tensor.ts installs its instanceof check here (avoids an import cycle at load time). */
export function installTensorCheck(check: (v: unknown) => v is Tensor): void {
  tensorCheck = check;
}

/**
 * Runs fn in a memory scope: every tensor created inside is disposed when fn returns, except the
 * tensors in its result (moved to the enclosing scope) and those passed to keep(). Like tfjs tidy.
 */
export function scope<T>(fn: () => T): T {
  const s = new Scope(state.scope);
  state.scope = s;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    state.scope = s.parent;
    for (const t of [...s.tensors]) t.dispose();
    throw e;
  }
  state.scope = s.parent;
  if (result instanceof Promise) throw new Error('scope: fn returned a Promise; scopes are synchronous');
  const survivors = new Set<Tensor>();
  if (tensorCheck) collectTensors(result, survivors, tensorCheck);
  for (const t of [...s.tensors]) {
    if (survivors.has(t)) t._moveToScope(s.parent);
    else t.dispose();
  }
  return result;
}

/** @internal The innermost scope, where new tensors go. */
export function currentScope(): Scope | null {
  return state.scope;
}
