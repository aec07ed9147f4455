// Tiny tokenizer.json files of the three families (GPT-2 byte-level BPE, BERT WordPiece, Llama BPE
// with byte fallback and Metaspace), built here so tests need no download, and temp-folder helpers.

import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BYTE_CHARS } from '../src/io/tokenizer_json.js';

export function tempDir(prefix = 'loom-data-'): { dir: string; [Symbol.dispose](): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeFolder(dir: string, files: Record<string, unknown>): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return dir;
}

const added = (id: number, content: string): Record<string, unknown> => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
});

/**
 * GPT-2 style: 256 byte symbols in byte order (ids 0..255), merges Ġt(256) he(257) Ġthe(258) Ġc(259)
 * at(260) Ġcat(261), and <|endoftext|> = 262.
 */
export function gpt2Json(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  BYTE_CHARS.forEach((c, i) => (vocab[c] = i));
  const merges = ['Ġ t', 'h e', 'Ġt he', 'Ġ c', 'a t', 'Ġc at'];
  merges.forEach((m, i) => (vocab[m.replace(' ', '')] = 256 + i));
  vocab['<|endoftext|>'] = 262;
  const bl = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [added(262, '<|endoftext|>')],
    normalizer: null,
    pre_tokenizer: bl,
    post_processor: { ...bl, trim_offsets: false },
    decoder: bl,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}

export const GPT2_CONFIG = { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>', model_max_length: 1024, tokenizer_class: 'GPT2Tokenizer' };

export const BERT_VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'cat', 'sat', 'un', '##aff', '##able', ',', '.', 'hello', '##s', 'play', '##ing', 'new', 'york'];

/** BERT uncased style WordPiece over BERT_VOCAB, with [CLS] $A [SEP] ($B [SEP]). */
export function bertJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  BERT_VOCAB.forEach((t, i) => (vocab[t] = i));
  const st = (id: string, type_id: number): unknown => ({ SpecialToken: { id, type_id } });
  const sq = (id: string, type_id: number): unknown => ({ Sequence: { id, type_id } });
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [0, 1, 2, 3, 4].map((i) => added(i, BERT_VOCAB[i]!)),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [st('[CLS]', 0), sq('A', 0), st('[SEP]', 0)],
      pair: [st('[CLS]', 0), sq('A', 0), st('[SEP]', 0), sq('B', 1), st('[SEP]', 1)],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

export const BERT_CONFIG = {
  cls_token: '[CLS]', sep_token: '[SEP]', pad_token: '[PAD]', unk_token: '[UNK]', mask_token: '[MASK]',
  do_lower_case: true, model_max_length: 512, tokenizer_class: 'BertTokenizer',
};

/**
 * Llama style: BPE with byte fallback, <unk>=0 <s>=1 </s>=2, <0x00>..<0xFF> = 3..258, then
 * ▁(259) h(260) i(261) t(262) e(263) r(264) ▁h(265) ▁hi(266) er(267) ▁t(268) her(269); Metaspace
 * pre-tokenizer (prepend_scheme first, no split) and a post-processor that adds <s>.
 */
export function llamaJson(): Record<string, unknown> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  ['▁', 'h', 'i', 't', 'e', 'r', '▁h', '▁hi', 'er', '▁t', 'her'].forEach((t, i) => (vocab[t] = 259 + i));
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [added(0, '<unk>'), added(1, '<s>'), added(2, '</s>')],
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, vocab, merges: [['▁', 'h'], ['▁h', 'i'], ['e', 'r'], ['▁', 't'], ['h', 'er']],
    },
  };
}

export const LLAMA_CONFIG = {
  bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', model_max_length: 4096, tokenizer_class: 'LlamaTokenizer',
  chat_template: "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}{% else %}{{ m['content'] + eos_token }}{% endif %}{% endfor %}",
};

/** Llama 1/2 "legacy" spelling of the same model: ▁ added by normalizers, no pre-tokenizer. */
export function llamaLegacyJson(): Record<string, unknown> {
  return {
    ...llamaJson(),
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }],
    },
    pre_tokenizer: null,
  };
}
