// Loom's io layer: Hugging Face tokenizer folders, tokenizer training, chat templates, safetensors
// checkpoints (model configs arrive with the models issue).

export * from './tokenizer.js';
export * from './tokenizer_files.js';
export * from './tokenizer_train.js';
export * from './chat_template.js';
export { BYTE_CHARS, GPT2_PATTERN, LLAMA3_PATTERN } from './tokenizer_json.js';
export * from './safetensors.js';
