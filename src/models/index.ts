// Loom's models: GPT-2, BERT and Llama (Mistral, Qwen2, SmolLM) heads with transformers' parameter
// names, Hugging Face checkpoints both ways, generation, and LoRA adapters in PEFT's format.

export * from './config.js';
export { PretrainedModel, KVCache, TASKS, type KVLayer, type KVCacheOptions, type Task, type ModelInputs, type ModelOutput, type ModelOptions, type InitRule } from './model.js';
export * from './gpt2.js';
export * from './bert.js';
export * from './llama.js';
export * from './pretrained.js';
export { savePretrained, modelConfigJSON, type SaveOptions } from './checkpoint.js';
export * from './generate.js';
export * from './peft.js';
