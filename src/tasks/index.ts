// Loom's task recipes: pre-training (clm, mlm), fine-tuning (classify, ner, chat; full or LoRA),
// evaluation and prediction, each a library function that the `loom` CLI calls.

export * from './common.js';
export * from './examples.js';
export * from './pretrain.js';
export * from './finetune.js';
export * from './inference.js';
