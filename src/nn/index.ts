// Loom's nn layer: Module (named parameters = checkpoint names), the basic layers, initialisers and
// LoRA adapters. Models (models/) build on it; it uses only the engine.

export * from './module.js';
export * from './layers.js';
export * from './init.js';
export * from './lora.js';
