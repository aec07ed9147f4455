// Loom's library entry point.

export * from './engine/index.js';
export type { Backend, DType, Storage, MemoryInfo } from './backends/backend.js';
export { ReferenceBackend } from './backends/reference/index.js';
export { CpuBackend } from './backends/cpu/index.js';
export { VERSION } from './version.js';
export * from './nn/index.js';
export * from './models/index.js';
export * from './train/index.js';
export * from './io/index.js';
export * from './data/index.js';
