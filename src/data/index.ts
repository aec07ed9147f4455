// Loom's data layer: readers (text, Markdown folders, JSONL, CSV/TSV, CoNLL), label sets, tokenized
// shards on disk, and the collators. toTensors lives in ./tensors.js (it loads the engine).

export * from './readers/common.js';
export * from './readers/text.js';
export * from './readers/markdown.js';
export * from './readers/jsonl.js';
export * from './readers/csv.js';
export * from './readers/conll.js';
export * from './labels.js';
export * from './records.js';
export * from './rng.js';
export * from './shards.js';
export * from './shard_reader.js';
export * from './collators/batch.js';
export * from './collators/clm.js';
export * from './collators/mlm.js';
export * from './collators/classification.js';
export * from './collators/token_classification.js';
export * from './collators/chat.js';
