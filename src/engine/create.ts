// Tensor creation: from host data, constants, ranges and seeded random draws.
// Random values are drawn on the host from a Generator so every backend gets the same numbers.

import type { DType } from '../backends/backend.js';
import { hostArrayFrom } from './dtype.js';
import { Generator, defaultGenerator } from './random.js';
import { Tensor, empty, shapeSize, shapeString, type NestedArray, type Shape } from './tensor.js';

function flatten(data: NestedArray, shape: number[], out: number[], depth: number): void {
  if (typeof data === 'number') {
    if (depth !== shape.length) throw new Error('tensor: ragged nested array');
    out.push(data);
    return;
  }
  if (depth === shape.length) shape.push(data.length);
  else if (shape[depth] !== data.length) throw new Error(`tensor: ragged nested array at depth ${depth}`);
  for (const d of data) flatten(d, shape, out, depth + 1);
}

export interface CreateOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

/**
 * A tensor from nested arrays, or from flat values (an array or typed array) with an explicit shape.
 * dtype defaults to i32 for Int32Array data, else f32.
 */
export function tensor(data: NestedArray | ArrayLike<number>, shape?: Shape, options: CreateOptions = {}): Tensor {
  let flat: ArrayLike<number>;
  let inferred: number[];
  if (typeof data === 'number') {
    flat = [data];
    inferred = [];
  } else if (Array.isArray(data) && data.some((d) => Array.isArray(d))) {
    const values: number[] = [];
    inferred = [];
    flatten(data as NestedArray, inferred, values, 0);
    flat = values;
  } else {
    flat = data as ArrayLike<number>;
    inferred = [flat.length];
  }
  const finalShape = shape ?? inferred;
  if (shapeSize(finalShape) !== flat.length) {
    throw new Error(`tensor: ${flat.length} values do not fill shape ${shapeString(finalShape)}`);
  }
  const dtype = options.dtype ?? (data instanceof Int32Array ? 'i32' : 'f32');
  const t = empty(finalShape, dtype);
  t.backend.write(t.storage, hostArrayFrom(dtype, flat));
  if (options.requiresGrad) t.requireGrad();
  return t;
}

export function full(shape: Shape, value: number, options: CreateOptions = {}): Tensor {
  const dtype = options.dtype ?? 'f32';
  const t = empty(shape, dtype);
  if (dtype === 'bf16') t.backend.write(t.storage, hostArrayFrom('bf16', new Array<number>(t.size).fill(value)));
  else t.backend.fill(t.storage, value);
  if (options.requiresGrad) t.requireGrad();
  return t;
}

export function zeros(shape: Shape, options: CreateOptions = {}): Tensor {
  return full(shape, 0, options);
}

export function ones(shape: Shape, options: CreateOptions = {}): Tensor {
  return full(shape, 1, options);
}

/** start, start+step, ... below end (like torch.arange); i32 unless asked otherwise or non-integer. */
export function arange(start: number, end?: number, step = 1, options: CreateOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0) throw new Error('arange: step must not be 0');
  const n = Math.max(0, Math.ceil((end - start) / step));
  const values = new Array<number>(n);
  for (let i = 0; i < n; i++) values[i] = start + i * step;
  const integral = Number.isInteger(start) && Number.isInteger(step);
  return tensor(values, [n], { dtype: options.dtype ?? (integral ? 'i32' : 'f32'), requiresGrad: options.requiresGrad });
}

export interface RandomOptions extends CreateOptions {
  generator?: Generator;
}

/** Uniform values in [low, high). */
export function uniform(shape: Shape, low = 0, high = 1, options: RandomOptions = {}): Tensor {
  const g = options.generator ?? defaultGenerator;
  const values = new Float32Array(shapeSize(shape));
  for (let i = 0; i < values.length; i++) values[i] = low + (high - low) * g.uniform();
  return tensor(values, shape, { dtype: options.dtype ?? 'f32', requiresGrad: options.requiresGrad });
}

/** Normal values with the given mean and standard deviation. */
export function normal(shape: Shape, mean = 0, std = 1, options: RandomOptions = {}): Tensor {
  const g = options.generator ?? defaultGenerator;
  const values = new Float32Array(shapeSize(shape));
  for (let i = 0; i < values.length; i++) values[i] = mean + std * g.normal();
  return tensor(values, shape, { dtype: options.dtype ?? 'f32', requiresGrad: options.requiresGrad });
}

export function randn(shape: Shape, options: RandomOptions = {}): Tensor {
  return normal(shape, 0, 1, options);
}

/** Converts to another dtype (f32 <-> bf16 rounds to nearest even, f32 -> i32 truncates). Not differentiable. */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x.detach();
  const out = empty(x.shape, dtype, x.backend);
  x.backend.cast(x.storage, out.storage);
  return out;
}
