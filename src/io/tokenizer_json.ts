// Writes trained tokenizers as standard Hugging Face files: tokenizer.json for byte-level BPE and
// WordPiece (the shapes the Rust library itself saves) and a matching tokenizer_config.json.

import type { AddedTokenJson, SpecialTokenNames, TokenizerConfigJson } from './tokenizer_files.js';

/**
 * GPT-2's byte-to-character table: printable Latin-1 bytes stand for themselves, the other 68
 * bytes (controls, space, ...) are shifted to U+0100 and up, so every byte is one visible character
 * and ' ' becomes 'Ġ', '\n' becomes 'Ċ'.
 */
export const BYTE_CHARS: readonly string[] = (() => {
  const chars: string[] = new Array<string>(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    chars[b] = String.fromCharCode(printable ? b : 256 + shifted++);
  }
  return chars;
})();

/** The GPT-2 pre-tokenizer pattern, which the Rust ByteLevel pre-tokenizer (use_regex) applies. */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Llama 3's pattern as tokenizer.json writes it (Oniguruma syntax, for the Rust Split pre-tokenizer). */
export const LLAMA3_PATTERN_SOURCE =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** The same in JS: Node 20 has no inline (?i:...), so the contractions spell out both cases. */
export const LLAMA3_PATTERN =
  /'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

export function addedTokens(specialTokens: readonly string[]): AddedTokenJson[] {
  return specialTokens.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
}

/** [CLS] $A [SEP] / <s> $A </s> style post-processor; ids resolved from the vocabulary. */
export function templateProcessing(
  prefix: readonly string[],
  suffix: readonly string[],
  pairSuffix: readonly string[],
  idOf: (token: string) => number,
): Record<string, unknown> {
  const special = (id: string, typeId: number): Record<string, unknown> => ({ SpecialToken: { id, type_id: typeId } });
  const seq = (id: 'A' | 'B', typeId: number): Record<string, unknown> => ({ Sequence: { id, type_id: typeId } });
  const single = [...prefix.map((t) => special(t, 0)), seq('A', 0), ...suffix.map((t) => special(t, 0))];
  const pair = [...single, seq('B', 1), ...pairSuffix.map((t) => special(t, 1))];
  const tokens: Record<string, unknown> = {};
  for (const t of new Set([...prefix, ...suffix, ...pairSuffix])) tokens[t] = { id: t, ids: [idOf(t)], tokens: [t] };
  return { type: 'TemplateProcessing', single, pair, special_tokens: tokens };
}

const byteLevel = (addPrefixSpace: boolean, trimOffsets: boolean): Record<string, unknown> => ({
  type: 'ByteLevel',
  add_prefix_space: addPrefixSpace,
  trim_offsets: trimOffsets,
  use_regex: true,
});

export interface ByteLevelJsonOptions {
  vocab: readonly string[];
  merges: readonly [number, number][];
  specialTokens: readonly string[];
  addPrefixSpace: boolean;
  /** `gpt2`: the ByteLevel pre-tokenizer's own regex; `llama3`: a Split on Llama 3's regex first. */
  pattern: 'gpt2' | 'llama3';
  /** Tokens the post-processor puts before / after a sequence (e.g. ['<|begin_of_text|>']). */
  prefix: readonly string[];
  suffix: readonly string[];
}

/** tokenizer.json of a GPT-2 or Llama-3 style byte-level BPE. */
export function byteLevelBpeJson(o: ByteLevelJsonOptions): string {
  const idOf = (t: string): number => o.vocab.indexOf(t);
  const postProcessor =
    o.prefix.length + o.suffix.length > 0
      ? templateProcessing(o.prefix, o.suffix, o.suffix, idOf)
      : byteLevel(true, false); // GPT-2's own: offsets only, adds nothing
  return tokenizerJsonText(o.specialTokens, {
    normalizer: null,
    pre_tokenizer:
      o.pattern === 'gpt2'
        ? byteLevel(o.addPrefixSpace, true)
        : {
            type: 'Sequence',
            pretokenizers: [
              { type: 'Split', pattern: { Regex: LLAMA3_PATTERN_SOURCE }, behavior: 'Isolated', invert: false },
              { ...byteLevel(o.addPrefixSpace, true), use_regex: false },
            ],
          },
    post_processor: postProcessor,
    decoder: byteLevel(true, true),
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: VOCAB_SLOT,
      // "left right" strings rather than pairs: every tokenizers / transformers version reads them,
      // and byte-level tokens never contain a space.
      merges: o.merges.map(([a, b]) => `${o.vocab[a]} ${o.vocab[b]}`),
    },
  }, o.vocab);
}

export interface WordPieceJsonOptions {
  vocab: readonly string[];
  specialTokens: readonly string[];
  unkToken: string;
  clsToken?: string;
  sepToken?: string;
  lowercase: boolean;
  stripAccents: boolean;
  prefix: string;
  maxInputCharsPerWord: number;
}

/** tokenizer.json of a BERT-style WordPiece. */
export function wordPieceJson(o: WordPieceJsonOptions): string {
  const idOf = (t: string): number => o.vocab.indexOf(t);
  const cls = o.clsToken;
  const sep = o.sepToken;
  return tokenizerJsonText(o.specialTokens, {
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: o.stripAccents,
      lowercase: o.lowercase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: cls !== undefined && sep !== undefined ? templateProcessing([cls], [sep], [sep], idOf) : null,
    decoder: { type: 'WordPiece', prefix: o.prefix, cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: o.unkToken,
      continuing_subword_prefix: o.prefix,
      max_input_chars_per_word: o.maxInputCharsPerWord,
      vocab: VOCAB_SLOT,
    },
  }, o.vocab);
}

const VOCAB_SLOT = '__LOOM_VOCAB__';

/**
 * Serialises with the vocabulary written by hand in id order: JSON.stringify would put integer-like
 * keys ("0", "12") first, which is legal but makes the file unreadable next to the Rust library's.
 */
function tokenizerJsonText(specialTokens: readonly string[], parts: Record<string, unknown>, vocab: readonly string[]): string {
  const doc = { version: '1.0', truncation: null, padding: null, added_tokens: addedTokens(specialTokens), ...parts };
  const text = JSON.stringify(doc, null, 2);
  const entries = vocab.map((t, i) => `      ${JSON.stringify(t)}: ${i}`).join(',\n');
  // A replacer function, not a string: tokens may contain `$'` or `$&`, which a string would expand.
  return `${text.replace(`"${VOCAB_SLOT}"`, () => `{\n${entries}\n    }`)}\n`;
}

export interface ConfigJsonOptions {
  specialTokens: readonly string[];
  roles: SpecialTokenNames;
  modelMaxLength: number;
  chatTemplate?: string;
  extra?: Record<string, unknown>;
}

/** tokenizer_config.json as transformers writes it for a PreTrainedTokenizerFast. */
export function tokenizerConfig(o: ConfigJsonOptions): TokenizerConfigJson {
  const decoder: Record<string, Omit<AddedTokenJson, 'id'>> = {};
  for (const { id, ...rest } of addedTokens(o.specialTokens)) decoder[String(id)] = rest;
  const config: TokenizerConfigJson = { added_tokens_decoder: decoder };
  for (const [role, token] of Object.entries(o.roles)) config[`${role}_token`] = token;
  Object.assign(config, {
    clean_up_tokenization_spaces: false,
    model_max_length: o.modelMaxLength,
    // The generic class: transformers and transformers.js then take everything from tokenizer.json.
    tokenizer_class: 'PreTrainedTokenizerFast',
    ...o.extra,
  });
  if (o.chatTemplate !== undefined) config.chat_template = o.chatTemplate;
  return config;
}
