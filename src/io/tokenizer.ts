// LoomTokenizer: a Hugging Face tokenizer folder (tokenizer.json + tokenizer_config.json +
// special_tokens_map.json) loaded with the `tokenizers` package, so ids are exactly the Rust library's.

import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Tokenizer, type Encoding } from 'tokenizers';
import { shortJson } from '../short_json.js';
import { CHATML_TEMPLATE, ChatTemplate, selectChatTemplate, type ChatMessage, type RenderOptions } from './chat_template.js';
import {
  parseJsonFile,
  readOptionalJson,
  resolveSpecialTokenNames,
  SPECIAL_TOKEN_ROLES,
  validateTokenizerJson,
  type SpecialTokens,
  type TokenizerConfigJson,
  type TokenizerJson,
} from './tokenizer_files.js';

export interface EncodeOptions {
  /** Apply the tokenizer's post-processor ([CLS] ... [SEP], <s> ...). Default true, as in transformers. */
  addSpecialTokens?: boolean;
}

export interface DetailedEncodeOptions extends EncodeOptions {
  /** Fill `offsets` (an extra call into the binding per encoding; chat SFT needs them). */
  offsets?: boolean;
  /**
   * Truncate to this many tokens. Special tokens are kept; content is cut from the end of the longer
   * sequence first (transformers' `longest_first`).
   */
  maxLength?: number;
}

/** An encoding with everything the collators need, as typed arrays. */
export interface DetailedEncoding {
  ids: Int32Array;
  /** 1 where the post-processor added a special token. */
  specialTokensMask: Uint8Array;
  /** Which input sequence a token came from: 0, 1, or -1 for added special tokens. */
  sequenceIds: Int8Array;
  /** Token type ids (segment ids) as the post-processor set them. */
  typeIds: Int32Array;
  /** Index of the word (pre-token, or input word for encodeWords) a token belongs to; -1 for none. */
  wordIds: Int32Array;
  /**
   * [start, end) of each token in its input text, in UTF-16 code units (JS string indices), pairs
   * flattened; all zero unless asked for with `offsets: true`.
   */
  offsets: Int32Array;
  /** Number of tokens removed by `maxLength`. */
  truncated: number;
}

const FILES = { tokenizer: 'tokenizer.json', config: 'tokenizer_config.json', specialMap: 'special_tokens_map.json' };

/** The texts of a tokenizer folder; what `save` writes back. */
export interface TokenizerFiles {
  tokenizerJson: string;
  /** Parsed tokenizer_config.json; undefined when the folder has none. */
  config?: TokenizerConfigJson;
  specialTokensMap?: Record<string, unknown>;
  /** The two JSON files' texts as read, so `save` copies them byte for byte. */
  raw?: { config?: string; specialTokensMap?: string };
}

export class LoomTokenizer {
  /** sha256 of tokenizer.json's bytes: what tokenized shards record to detect a tokenizer change. */
  readonly hash: string;
  readonly special: SpecialTokens;
  /** Vocabulary size including added tokens (what an embedding matrix needs at least). */
  readonly vocabSize: number;
  /** tokenizer_config.json's model_max_length when it is a real limit (transformers writes 1e30 for "none"). */
  readonly modelMaxLength: number | undefined;
  readonly files: TokenizerFiles;
  /** The Rust tokenizer, for what this wrapper does not cover. */
  readonly native: Tokenizer;
  private readonly json: TokenizerJson;
  private chat: ChatTemplate | undefined;
  /** tokenizer_config.json's path, for errors in its chat template (which is parsed lazily). */
  private readonly configSource: string;

  private constructor(files: TokenizerFiles, json: TokenizerJson, native: Tokenizer, source: string) {
    this.files = files;
    this.configSource = join(dirname(source), FILES.config);
    this.native = native;
    this.json = json;
    this.hash = createHash('sha256').update(files.tokenizerJson).digest('hex');
    this.vocabSize = native.getVocabSize(true);
    const names = resolveSpecialTokenNames(files.config, files.specialTokensMap, this.json);
    const special: SpecialTokens = {};
    for (const role of SPECIAL_TOKEN_ROLES) {
      const token = names[role];
      if (token === undefined) continue;
      const id = native.tokenToId(token);
      if (id === null || id === undefined) {
        const from = files.config !== undefined || files.specialTokensMap !== undefined ? ` (named by ${FILES.config} or ${FILES.specialMap})` : '';
        throw new Error(`${source}: the ${role} token ${shortJson(token)}${from} is not in the vocabulary`);
      }
      special[role] = { token, id };
    }
    this.special = special;
    const max = files.config?.model_max_length;
    this.modelMaxLength = typeof max === 'number' && max < 1e12 ? max : undefined;
  }

  /** Loads a folder holding tokenizer.json (and optionally the two config files), or a tokenizer.json path. */
  static async load(path: string): Promise<LoomTokenizer> {
    const isFile = (await stat(path).catch(() => undefined))?.isFile() ?? false;
    const dir = isFile ? dirname(path) : path;
    const jsonPath = isFile ? path : join(dir, FILES.tokenizer);
    let tokenizerJson: string;
    try {
      tokenizerJson = await readFile(jsonPath, 'utf8');
    } catch (err) {
      throw new Error(`${jsonPath}: cannot read the tokenizer: ${(err as Error).message}`);
    }
    const config = await readOptionalJson<TokenizerConfigJson>(join(dir, FILES.config));
    const specialTokensMap = await readOptionalJson<Record<string, unknown>>(join(dir, FILES.specialMap));
    const raw = { config: config?.text, specialTokensMap: specialTokensMap?.text };
    return LoomTokenizer.fromFiles({ tokenizerJson, config: config?.value, specialTokensMap: specialTokensMap?.value, raw }, jsonPath);
  }

  /** Builds a tokenizer from file contents (what the trainers produce). `source` names it in errors. */
  static fromFiles(files: TokenizerFiles, source = FILES.tokenizer): LoomTokenizer {
    // Parse here first: a JSON error with a line number beats the Rust library's message.
    const json = parseJsonFile<unknown>(source, files.tokenizerJson);
    validateTokenizerJson(json, source);
    checkConfigShapes(files, source);
    let native: Tokenizer;
    try {
      native = Tokenizer.fromString(files.tokenizerJson);
    } catch (err) {
      throw new Error(`${source}: not a valid tokenizer.json: ${(err as Error).message}`);
    }
    return new LoomTokenizer(files, json, native, source);
  }

  get bosId(): number | undefined { return this.special.bos?.id; }
  get eosId(): number | undefined { return this.special.eos?.id; }
  get padId(): number | undefined { return this.special.pad?.id; }
  get unkId(): number | undefined { return this.special.unk?.id; }
  get maskId(): number | undefined { return this.special.mask?.id; }
  get clsId(): number | undefined { return this.special.cls?.id; }
  get sepId(): number | undefined { return this.special.sep?.id; }

  /** Ids of every token marked special in tokenizer.json (never masked, never labelled). */
  specialIds(): Set<number> {
    const ids = new Set<number>();
    for (const t of this.json.added_tokens ?? []) if (t.special) ids.add(t.id);
    for (const s of Object.values(this.special)) ids.add(s.id);
    return ids;
  }

  /** The model type in tokenizer.json: 'BPE', 'WordPiece', 'Unigram', 'WordLevel'. */
  get modelType(): string {
    return this.json.model?.type ?? 'unknown';
  }

  tokenToId(token: string): number | undefined {
    return this.native.tokenToId(token) ?? undefined;
  }

  idToToken(id: number): string | undefined {
    return this.native.idToToken(id) ?? undefined;
  }

  async encode(text: string, options: EncodeOptions = {}): Promise<Int32Array> {
    const enc = await this.native.encode(text, null, { addSpecialTokens: options.addSpecialTokens ?? true });
    return Int32Array.from(enc.getIds());
  }

  /** Encodes many texts in one call; the Rust library spreads the batch over its threads. */
  async encodeBatch(texts: readonly string[], options: EncodeOptions = {}): Promise<Int32Array[]> {
    const encs = await this.native.encodeBatch([...texts], { addSpecialTokens: options.addSpecialTokens ?? true });
    return encs.map((e) => Int32Array.from(e.getIds()));
  }

  /** Encodes a text (or a text pair) with masks, word ids and offsets, truncating if asked. */
  async encodeDetailed(text: string, pair?: string, options: DetailedEncodeOptions = {}): Promise<DetailedEncoding> {
    return (await this.encodeDetailedBatch([{ text, pair }], options))[0]!;
  }

  /**
   * encodeDetailed for many inputs in one call into the Rust library. The binding cannot batch text
   * pairs, so when there are pairs every text is encoded without special tokens in one batch and
   * the post-processor (a synchronous call) joins them, which is what `encode(a, b)` does inside.
   */
  async encodeDetailedBatch(inputs: readonly { text: string; pair?: string }[], options: DetailedEncodeOptions = {}): Promise<DetailedEncoding[]> {
    const special = options.addSpecialTokens ?? true;
    const finish = (enc: Encoding, text: string | undefined): DetailedEncoding => {
      const detailed = detailsOf(enc, text, options.offsets ?? false);
      return options.maxLength === undefined ? detailed : truncateEncoding(detailed, options.maxLength);
    };
    if (inputs.length === 0) return [];
    if (inputs.every((x) => x.pair === undefined)) {
      const encs = await this.native.encodeBatch(inputs.map((x) => x.text), { addSpecialTokens: special });
      return encs.map((e, i) => finish(e, inputs[i]!.text));
    }
    const flat = inputs.flatMap((x) => (x.pair === undefined ? [x.text] : [x.text, x.pair]));
    const encs = await this.native.encodeBatch(flat, { addSpecialTokens: false });
    let at = 0;
    return inputs.map((x) => {
      const a = encs[at++]!;
      const b = x.pair !== undefined ? encs[at++]! : null;
      return finish(this.native.postProcess(a, b, special), b === null ? x.text : undefined);
    });
  }

  /** encodeWordsBatch for one sentence. */
  async encodeWords(words: readonly string[], options: DetailedEncodeOptions = {}): Promise<DetailedEncoding> {
    return (await this.encodeWordsBatch([words], options))[0]!;
  }

  /**
   * Encodes sentences given as words (CoNLL tokens). The binding has no `isPretokenized`, so each
   * sentence is encoded as its words joined by spaces (the ids of the sentence as written) and a
   * token belongs to the word that holds its last character (a leading Ġ / ▁ is the space before
   * the word). Word ids index the input words; -1 for special tokens.
   */
  async encodeWordsBatch(sentences: readonly (readonly string[])[], options: DetailedEncodeOptions = {}): Promise<DetailedEncoding[]> {
    const texts = sentences.map((words) => words.join(' '));
    const encs = await this.encodeDetailedBatch(texts.map((text) => ({ text })), { ...options, maxLength: undefined, offsets: true });
    return encs.map((enc, s) => {
      const words = sentences[s]!;
      const ends: number[] = []; // end (exclusive) of each word in the joined text
      let at = 0;
      for (const w of words) {
        at += w.length;
        ends.push(at);
        at += 1;
      }
      let word = 0;
      for (let i = 0; i < enc.ids.length; i++) {
        if (enc.specialTokensMask[i] === 1) {
          enc.wordIds[i] = -1;
          continue;
        }
        const end = enc.offsets[2 * i + 1]!;
        if (end > enc.offsets[2 * i]!) while (word < words.length - 1 && ends[word]! < end) word++;
        enc.wordIds[i] = word; // a token without characters (a byte-fallback piece) stays with the previous word
      }
      return options.maxLength === undefined ? enc : truncateEncoding(enc, options.maxLength);
    });
  }

  async decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): Promise<string> {
    return this.native.decode(Array.from(ids), options.skipSpecialTokens ?? false);
  }

  /** The model's chat template, or ChatML when tokenizer_config.json has none. */
  get chatTemplate(): ChatTemplate {
    if (this.chat === undefined) {
      const source = selectChatTemplate(this.files.config?.chat_template) ?? CHATML_TEMPLATE;
      const vars: Record<string, string> = {};
      for (const [role, s] of Object.entries(this.special)) vars[`${role}_token`] = s.token;
      this.chat = new ChatTemplate(source, vars, this.hasOwnChatTemplate ? this.configSource : undefined);
    }
    return this.chat;
  }

  /** True when tokenizer_config.json carries a chat template (otherwise the ChatML default is used). */
  get hasOwnChatTemplate(): boolean {
    return selectChatTemplate(this.files.config?.chat_template) !== undefined;
  }

  applyChatTemplate(messages: readonly ChatMessage[], options: RenderOptions = {}): string {
    return this.chatTemplate.render(messages, options);
  }

  /**
   * Writes tokenizer.json (the original bytes, so the hash is kept), tokenizer_config.json and
   * special_tokens_map.json into `dir`, each atomically (temp file + rename).
   */
  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    await writeAtomic(join(dir, FILES.tokenizer), this.files.tokenizerJson);
    const raw = this.files.raw ?? {};
    if (this.files.config !== undefined) {
      await writeAtomic(join(dir, FILES.config), raw.config ?? `${JSON.stringify(this.files.config, null, 2)}\n`);
    }
    const map = this.files.specialTokensMap ?? specialTokensMapOf(this.special);
    await writeAtomic(join(dir, FILES.specialMap), raw.specialTokensMap ?? `${JSON.stringify(map, null, 2)}\n`);
  }
}

/** tokenizer_config.json and special_tokens_map.json must be objects (the roles are looked up in them). */
function checkConfigShapes(files: TokenizerFiles, source: string): void {
  const dir = dirname(source);
  for (const [name, value] of [[FILES.config, files.config], [FILES.specialMap, files.specialTokensMap]] as const) {
    if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
      throw new Error(`${join(dir, name)}: expected a JSON object, got ${shortJson(value)}`);
    }
  }
  const c = files.config as Record<string, unknown> | undefined;
  const max = c?.model_max_length;
  if (max !== undefined && max !== null && typeof max !== 'number') throw new Error(`${join(dir, FILES.config)}: "model_max_length" must be a number, got ${shortJson(max)}`);
}

/** Loads a tokenizer folder or tokenizer.json file. */
export function loadTokenizer(path: string): Promise<LoomTokenizer> {
  return LoomTokenizer.load(path);
}

/** special_tokens_map.json as transformers writes it: role_token -> content. */
export function specialTokensMapOf(special: SpecialTokens): Record<string, string> {
  const map: Record<string, string> = {};
  for (const [role, s] of Object.entries(special)) map[`${role}_token`] = s.token;
  return map;
}

/**
 * Runs a full garbage collection. An Encoding from the binding is a small JS object holding native
 * memory (ids, offsets, token strings) that V8 does not count, so V8 sees no reason to collect and
 * a process encoding 200 MB grows to ~1 GB; collecting after each large batch keeps it flat (and
 * was faster too). A scavenge is not enough: the native memory is freed by the wrappers' finalizers,
 * which run on full collections. `--expose-gc` is switched on at run time when not given.
 */
export function collectNativeGarbage(): void {
  gcFunction ??= findGc();
  gcFunction?.();
}

let gcFunction: (() => void) | null | undefined;

function findGc(): (() => void) | null {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return existing;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return null;
  }
}

/** Writes a file through a temp name and a rename, so a crash never leaves half a file. */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** Copies a file atomically (used to keep a source tokenizer.json byte for byte). */
export async function copyAtomic(from: string, to: string): Promise<void> {
  const tmp = join(dirname(to), `.${basename(to)}.${process.pid}.tmp`);
  await copyFile(from, tmp);
  await rename(tmp, to);
}

function detailsOf(enc: Encoding, singleText: string | undefined, withOffsets: boolean): DetailedEncoding {
  const n = enc.getLength();
  const seq = enc.getSequenceIds();
  const words = enc.getWordIds();
  const out: DetailedEncoding = {
    ids: Int32Array.from(enc.getIds()),
    specialTokensMask: Uint8Array.from(enc.getSpecialTokensMask()),
    sequenceIds: new Int8Array(n),
    typeIds: Int32Array.from(enc.getTypeIds()),
    wordIds: new Int32Array(n),
    offsets: new Int32Array(2 * n),
    truncated: 0,
  };
  for (let i = 0; i < n; i++) {
    // Encodings post-processed from parts carry no sequence id for the first text: 0 unless special.
    out.sequenceIds[i] = out.specialTokensMask[i] === 1 ? -1 : seq[i] ?? 0;
    out.wordIds[i] = words[i] ?? -1;
  }
  if (withOffsets) {
    // The binding reports offsets in Unicode scalar values; JS strings index UTF-16 code units.
    const toUtf16 = singleText !== undefined ? codePointToUtf16(singleText) : (cp: number): number => cp;
    const offsets = enc.getOffsets();
    for (let i = 0; i < n; i++) {
      const [s = 0, e = 0] = offsets[i] ?? [];
      out.offsets[2 * i] = toUtf16(s);
      out.offsets[2 * i + 1] = toUtf16(e);
    }
  }
  return out;
}

/** Maps a code-point index of `text` to its UTF-16 index (identity when there are no surrogates). */
export function codePointToUtf16(text: string): (cp: number) => number {
  if (!/[\uD800-\uDBFF]/.test(text)) return (cp) => cp;
  const table: number[] = [];
  let u = 0;
  for (const ch of text) {
    table.push(u);
    u += ch.length;
  }
  table.push(u);
  return (cp) => table[Math.min(cp, table.length - 1)]!;
}

/** Keeps every special token and cuts content from the end of the longer sequence (longest_first). */
export function truncateEncoding(enc: DetailedEncoding, maxLength: number): DetailedEncoding {
  const n = enc.ids.length;
  if (n <= maxLength) return enc;
  const count = [0, 0];
  let specials = 0;
  for (let i = 0; i < n; i++) {
    const s = enc.sequenceIds[i]!;
    if (s < 0 || enc.specialTokensMask[i] === 1) specials++;
    else count[s]! += 1;
  }
  if (specials > maxLength) throw new Error(`maxLength ${maxLength} is smaller than the ${specials} special tokens`);
  let excess = n - maxLength;
  const keep = [count[0]!, count[1]!];
  while (excess > 0) {
    const s = keep[1]! > keep[0]! ? 1 : 0;
    keep[s]! -= 1;
    excess--;
  }
  const seen = [0, 0];
  const idx: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = enc.sequenceIds[i]!;
    if (s < 0 || enc.specialTokensMask[i] === 1) idx.push(i);
    else if (seen[s]!++ < keep[s]!) idx.push(i);
  }
  const pick = <T extends Int32Array | Uint8Array | Int8Array>(a: T): T => {
    const out = new (a.constructor as new (n: number) => T)(idx.length);
    idx.forEach((j, k) => (out[k] = a[j]!));
    return out;
  };
  const offsets = new Int32Array(2 * idx.length);
  idx.forEach((j, k) => {
    offsets[2 * k] = enc.offsets[2 * j]!;
    offsets[2 * k + 1] = enc.offsets[2 * j + 1]!;
  });
  return {
    ids: pick(enc.ids),
    specialTokensMask: pick(enc.specialTokensMask),
    sequenceIds: pick(enc.sequenceIds),
    typeIds: pick(enc.typeIds),
    wordIds: pick(enc.wordIds),
    offsets,
    truncated: n - idx.length,
  };
}
