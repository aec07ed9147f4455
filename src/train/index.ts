// Loom's training layer: optimisers, LR schedules, metrics, checkpoints and the Trainer loop.
// Everything here sits on the engine's public ops; models plug in through TrainableModel.

export * from './types.js';
export * from './optim.js';
export * from './schedule.js';
export * from './metrics.js';
export * from './config.js';
export * from './data.js';
export * from './progress.js';
export { nodeFs, encodeTensorFile, decodeTensorFile, type CheckpointFs, type F32Entry } from './tensor_file.js';
export * from './checkpoint.js';
export * from './trainer.js';
