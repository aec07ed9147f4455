// The engine's public surface: tensors, creation, ops, autograd controls, memory scopes, backends.

export { Tensor, type NestedArray, type Shape } from './tensor.js';
export { getBackend, setBackend, createBackend, noGrad, enableGrad, isGradEnabled, scope, getMatmulPrecision, setMatmulPrecision, type MatmulPrecision, liveTensorCount, type BackendName } from './engine.js';
export { tensor, full, zeros, ones, arange, uniform, normal, randn, cast, type CreateOptions, type RandomOptions } from './create.js';
export { checkpoint } from './checkpoint.js';
export { Generator, defaultGenerator, manualSeed } from './random.js';
export { f32ToBf16, bf16ToF32 } from './dtype.js';
export * from './ops/index.js';
