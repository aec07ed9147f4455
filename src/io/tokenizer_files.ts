// The Hugging Face tokenizer files (tokenizer.json, tokenizer_config.json, special_tokens_map.json):
// their JSON shapes as far as Loom reads them, and how the special tokens are resolved from them.

import { readFile } from 'node:fs/promises';
import { shortJson } from '../short_json.js';

/** One entry of tokenizer.json's `added_tokens` (also the values of `added_tokens_decoder`). */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The parts of tokenizer.json that Loom looks at; the rest is the `tokenizers` library's business. */
export interface TokenizerJson {
  version?: string;
  added_tokens?: AddedTokenJson[];
  normalizer?: unknown;
  pre_tokenizer?: { type?: string; [key: string]: unknown } | null;
  post_processor?: unknown;
  decoder?: unknown;
  model?: { type?: string; unk_token?: string | null; vocab?: unknown; [key: string]: unknown };
}

/** A special token as tokenizer_config.json writes it: a string or a serialised AddedToken. */
export type SpecialTokenValue = string | { content: string; [key: string]: unknown } | null;

/** tokenizer_config.json: only the keys Loom uses are typed; everything else is kept as is. */
export interface TokenizerConfigJson {
  bos_token?: SpecialTokenValue;
  eos_token?: SpecialTokenValue;
  pad_token?: SpecialTokenValue;
  unk_token?: SpecialTokenValue;
  mask_token?: SpecialTokenValue;
  cls_token?: SpecialTokenValue;
  sep_token?: SpecialTokenValue;
  model_max_length?: number;
  chat_template?: string | { name: string; template: string }[];
  [key: string]: unknown;
}

export const SPECIAL_TOKEN_ROLES = ['bos', 'eos', 'pad', 'unk', 'mask', 'cls', 'sep'] as const;
export type SpecialTokenRole = (typeof SPECIAL_TOKEN_ROLES)[number];
export type SpecialTokenNames = Partial<Record<SpecialTokenRole, string>>;

/** A special token resolved against the vocabulary. */
export interface SpecialToken {
  token: string;
  id: number;
}
export type SpecialTokens = Partial<Record<SpecialTokenRole, SpecialToken>>;

/** The content of a special-token value (string or AddedToken dict); undefined when absent or null. */
export function specialTokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

// Used only when neither tokenizer_config.json nor special_tokens_map.json names a role, e.g. a bare
// tokenizer.json. The candidates are the spellings used by the GPT-2, BERT, RoBERTa, Llama (1-3),
// Mistral, Qwen and Gemma families, in that order of preference.
const ROLE_GUESSES: Record<SpecialTokenRole, string[]> = {
  bos: ['<s>', '<|begin_of_text|>', '<bos>', '<|endoftext|>'],
  eos: ['</s>', '<|end_of_text|>', '<eos>', '<|endoftext|>'],
  pad: ['<pad>', '[PAD]', '<|pad|>', '<|finetune_right_pad_id|>'],
  unk: ['<unk>', '[UNK]', '<|endoftext|>'],
  mask: ['[MASK]', '<mask>'],
  cls: ['[CLS]'],
  sep: ['[SEP]'],
};

/**
 * Names each special-token role. Precedence: tokenizer_config.json, then special_tokens_map.json,
 * then (only for files that carry neither) a guess among the tokenizer's special added tokens.
 */
export function resolveSpecialTokenNames(
  config: TokenizerConfigJson | undefined,
  specialMap: Record<string, unknown> | undefined,
  tokenizerJson: TokenizerJson,
): SpecialTokenNames {
  const names: SpecialTokenNames = {};
  for (const role of SPECIAL_TOKEN_ROLES) {
    const key = `${role}_token`;
    const fromConfig = config && key in config ? config[key] : undefined;
    const fromMap = specialMap?.[key];
    const name = specialTokenContent(fromConfig) ?? specialTokenContent(fromMap);
    if (name !== undefined) names[role] = name;
  }
  if (config === undefined && specialMap === undefined) {
    const special = (tokenizerJson.added_tokens ?? []).filter((t) => t.special).map((t) => t.content);
    const unk = tokenizerJson.model?.unk_token;
    if (typeof unk === 'string') special.push(unk);
    Object.assign(names, guessSpecialTokenRoles(special));
  }
  return names;
}

/** Assigns roles to special tokens by their usual spellings ([CLS], </s>, <|endoftext|>, ...). */
export function guessSpecialTokenRoles(tokens: readonly string[]): SpecialTokenNames {
  const names: SpecialTokenNames = {};
  const have = new Set(tokens);
  for (const role of SPECIAL_TOKEN_ROLES) {
    const guess = ROLE_GUESSES[role].find((t) => have.has(t));
    if (guess !== undefined) names[role] = guess;
  }
  return names;
}

/** Reads and parses an optional JSON file (value and text); undefined when it does not exist. */
export async function readOptionalJson<T>(path: string): Promise<{ value: T; text: string } | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${path}: cannot read: ${(err as Error).message}`);
  }
  return { value: parseJsonFile<T>(path, text), text };
}

/** JSON.parse with the file name (and line, when V8 reports a position) in the error. */
export function parseJsonFile<T>(path: string, text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    const message = (err as Error).message;
    const pos = /position (\d+)/.exec(message);
    const line = pos ? text.slice(0, Number(pos[1])).split('\n').length : undefined;
    throw new Error(`${path}${line !== undefined ? `:${line}` : ''}: invalid JSON: ${message}`);
  }
}

/**
 * Checks what the `tokenizers` library trusts without checking: it loads a TemplateProcessing
 * post-processor whose template names a special token missing from its `special_tokens` map, then
 * panics at the first encode, which aborts the whole process (a Rust panic is not an exception in
 * the binding). Also checks the shapes this wrapper reads itself (model, added_tokens), so a
 * malformed file is an error naming the file and the field, never a crash.
 */
export function validateTokenizerJson(json: unknown, source: string): asserts json is TokenizerJson {
  const fail = (what: string): never => {
    throw new Error(`${source}: not a valid tokenizer.json: ${what}`);
  };
  if (!isObject(json)) fail('expected a JSON object');
  const j = json as Record<string, unknown>;
  if (!isObject(j.model) || typeof (j.model as Record<string, unknown>).type !== 'string') fail('"model" must be an object with a "type"');
  if (j.added_tokens !== undefined && j.added_tokens !== null) {
    if (!Array.isArray(j.added_tokens)) fail('"added_tokens" must be a list');
    (j.added_tokens as unknown[]).forEach((t, i) => {
      if (!isObject(t) || !Number.isSafeInteger(t.id) || (t.id as number) < 0 || typeof t.content !== 'string') {
        fail(`added_tokens[${i}] must be {"id": integer >= 0, "content": string, ...}`);
      }
    });
  }
  checkPostProcessor(j.post_processor, 'post_processor', fail);
}

function checkPostProcessor(p: unknown, at: string, fail: (what: string) => never): void {
  if (p === undefined || p === null) return;
  if (!isObject(p)) fail(`"${at}" must be an object or null`);
  const o = p as Record<string, unknown>;
  if (o.type === 'Sequence') {
    if (!Array.isArray(o.processors)) fail(`"${at}.processors" must be a list`);
    (o.processors as unknown[]).forEach((q, i) => checkPostProcessor(q, `${at}.processors[${i}]`, fail));
    return;
  }
  if (o.type !== 'TemplateProcessing') return;
  const special = o.special_tokens;
  if (!isObject(special)) fail(`"${at}.special_tokens" must be an object`);
  for (const [name, entry] of Object.entries(special as Record<string, unknown>)) {
    const e = entry as Record<string, unknown>;
    const ok = isObject(entry) && Array.isArray(e.ids) && Array.isArray(e.tokens) && e.ids.length === e.tokens.length &&
      e.ids.every((id) => Number.isSafeInteger(id) && (id as number) >= 0) && e.tokens.every((t) => typeof t === 'string');
    if (!ok) fail(`"${at}.special_tokens" entry ${shortJson(name)} must hold "ids" and "tokens" lists of the same length`);
  }
  for (const key of ['single', 'pair']) {
    const pieces = o[key];
    if (pieces === undefined) continue;
    if (!Array.isArray(pieces)) fail(`"${at}.${key}" must be a list`);
    for (const piece of pieces as unknown[]) {
      const id = isObject(piece) && isObject(piece.SpecialToken) ? (piece.SpecialToken as Record<string, unknown>).id : undefined;
      if (id !== undefined && !(typeof id === 'string' && Object.hasOwn(special as object, id))) {
        fail(`"${at}.${key}" uses the special token ${shortJson(id)}, which "${at}.special_tokens" does not define`);
      }
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
