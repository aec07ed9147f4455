// Tensor: a shaped, typed handle on refcounted backend storage, with its autograd links.
// Ops live in ops/; this file holds only what every tensor is: data access, lifetime, grad slots.

import type { Backend, DType, HostArray, Storage } from '../backends/backend.js';
import type { Node } from './autograd.js';
import { getBackend, installTensorCheck, registerTensor, unregisterTensor, type Scope } from './engine.js';
import { runBackward } from './autograd.js';
import { bf16ToF32 } from './dtype.js';

/** Backend storage shared by a tensor and its views (reshape) and saved-for-backward handles. */
export class Buffer {
  private refs = 1;
  constructor(
    readonly backend: Backend,
    readonly storage: Storage,
  ) {}
  retain(): this {
    this.refs += 1;
    return this;
  }
  /** True when another handle (a view or a saved tensor) shares this storage. */
  get shared(): boolean {
    return this.refs > 1;
  }
  release(): void {
    this.refs -= 1;
    if (this.refs === 0) this.backend.free(this.storage);
  }
}

export type Shape = readonly number[];

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeString(shape: Shape): string {
  return `[${shape.join(',')}]`;
}

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly shape: Shape;
  readonly dtype: DType;
  readonly size: number;
  /** Whether gradients flow to this tensor. Leaves set it; op outputs inherit it from inputs. */
  requiresGrad = false;
  /** Accumulated gradient of a leaf after backward(); owned by this tensor (freed with it). */
  grad: Tensor | null = null;
  /** @internal The op that produced this tensor, when its gradient is needed. */
  _node: Node | null = null;
  /** @internal */
  _buffer: Buffer | null;
  private scope: Scope | null;

  /** @internal Use the creation functions (tensor, zeros, ...) instead. */
  constructor(buffer: Buffer, shape: Shape, dtype: DType) {
    this._buffer = buffer;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = shapeSize(shape);
    this.scope = registerTensor(this);
  }

  get rank(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this._buffer === null;
  }

  /** @internal The backend storage; throws if the tensor was disposed. */
  get storage(): Storage {
    return this.buf().storage;
  }

  get backend(): Backend {
    return this.buf().backend;
  }

  /** @internal */
  buf(): Buffer {
    if (!this._buffer) {
      throw new Error(`Tensor#${this.id} ${shapeString(this.shape)} ${this.dtype} was used after dispose()`);
    }
    return this._buffer;
  }

  /** Frees the handle; storage is released once no view or saved-for-backward handle uses it. */
  dispose(): void {
    if (!this._buffer) return;
    this._buffer.release();
    this._buffer = null;
    unregisterTensor(this, this.scope);
    this.scope = null;
    if (this._node) {
      this._node.release();
      this._node = null;
    }
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal Used by scope() for tensors returned from it. */
  _moveToScope(target: Scope | null): void {
    this.scope?.tensors.delete(this);
    this.scope = target;
    target?.tensors.add(this);
  }

  /** Removes this tensor from every scope: it lives until dispose(). Returns this. */
  keep(): this {
    this._moveToScope(null);
    return this;
  }

  /** Flat copy of the values on the host (bf16 is widened to f32). Blocks until computed. */
  dataSync(): Float32Array | Int32Array {
    const host = this.backend.readSync(this.storage);
    return widen(this.dtype, host);
  }

  /** Async flat copy of the values (for backends whose kernels run asynchronously). */
  async data(): Promise<Float32Array | Int32Array> {
    const host = await this.backend.read(this.storage);
    return widen(this.dtype, host);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item(): tensor has ${this.size} elements ${shapeString(this.shape)}, expected 1`);
    return this.dataSync()[0]!;
  }

  /** Nested arrays of numbers (a number for a rank-0 tensor), like torch's tolist(). */
  toArray(): NestedArray {
    const flat = this.dataSync();
    if (this.rank === 0) return flat[0]!;
    const build = (axis: number, offset: number): NestedArray[] => {
      const n = this.shape[axis]!;
      const stride = shapeSize(this.shape.slice(axis + 1));
      const out: NestedArray[] = [];
      for (let i = 0; i < n; i++) {
        out.push(axis === this.rank - 1 ? flat[offset + i]! : build(axis + 1, offset + i * stride));
      }
      return out;
    };
    return build(0, 0);
  }

  /** A new handle on the same storage with no autograd history. */
  detach(): Tensor {
    return new Tensor(this.buf().retain(), this.shape, this.dtype);
  }

  /** @internal A handle that shares storage and shape, outside every scope (saved for backward). */
  _saved(): Tensor {
    const t = new Tensor(this.buf().retain(), this.shape, this.dtype);
    t.keep();
    return t;
  }

  /** Sets requiresGrad (on a leaf) and returns this, for chaining. */
  requireGrad(flag = true): this {
    if (this._node) throw new Error('requireGrad: only leaf tensors (not op outputs) can change requiresGrad');
    if (flag && this.dtype !== 'f32') throw new Error(`requireGrad: ${this.dtype} tensors cannot require gradients`);
    this.requiresGrad = flag;
    return this;
  }

  /** Frees and clears the accumulated gradient. */
  zeroGrad(): void {
    this.grad?.dispose();
    this.grad = null;
  }

  /**
   * Backpropagates from this tensor (a scalar unless `grad` is given), accumulating into the .grad
   * of every leaf that requires it. The graph's saved tensors are freed afterwards unless retainGraph.
   */
  backward(grad?: Tensor, options: { retainGraph?: boolean } = {}): void {
    runBackward(this, grad ?? null, options.retainGraph ?? false);
  }

  toString(): string {
    return `Tensor(${shapeString(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

export type NestedArray = number | NestedArray[];

installTensorCheck((v: unknown): v is Tensor => v instanceof Tensor);

function widen(dtype: DType, host: HostArray): Float32Array | Int32Array {
  if (dtype === 'bf16') return bf16ToF32(host as Uint16Array);
  return host as Float32Array | Int32Array;
}

/** @internal Allocates an uninitialised tensor on the current backend (or the given one). */
export function empty(shape: Shape, dtype: DType = 'f32', backend: Backend = getBackend()): Tensor {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid shape ${shapeString(shape)}: sizes must be integers >= 0`);
  }
  const storage = backend.alloc(dtype, shapeSize(shape));
  return new Tensor(new Buffer(backend, storage), shape, dtype);
}
