// Tokenizer training of Loom's own (the npm binding cannot set a vocabulary size or special tokens):
// byte-level BPE (GPT-2 or Llama 3 pre-tokenizer) and WordPiece (BERT), as files `tokenizers` loads.

import { bertNormalizer, bertPreTokenizer } from 'tokenizers';
import { learnBpe, type BpeLearnResult } from './bpe_core.js';
import { CHATML_TEMPLATE, CHATML_TOKENS } from './chat_template.js';
import { LoomTokenizer } from './tokenizer.js';
import { guessSpecialTokenRoles, type SpecialTokenNames } from './tokenizer_files.js';
import { BYTE_CHARS, byteLevelBpeJson, GPT2_PATTERN, LLAMA3_PATTERN, tokenizerConfig, wordPieceJson } from './tokenizer_json.js';

/** Training text: documents, lines or reader records ({ text }), sync or async. */
export type TextSource = Iterable<string | { text: string }> | AsyncIterable<string | { text: string }>;

interface CommonOptions {
  vocabSize: number;
  /** Special tokens, given ids 0, 1, ... in this order. */
  specialTokens?: string[];
  /** Which special token plays which role; guessed from the usual spellings when omitted. */
  roles?: SpecialTokenNames;
  /** Pairs seen fewer times are never merged (the vocabulary may then stay smaller). Default 2. */
  minFrequency?: number;
  modelMaxLength?: number;
  /** A Jinja chat template for tokenizer_config.json; `true` = ChatML, adding its two markers as special tokens. */
  chatTemplate?: string | true;
}

export interface ByteLevelBpeOptions extends CommonOptions {
  /** Default ['<|endoftext|>'] (GPT-2: bos = eos = unk). */
  specialTokens?: string[];
  /** Prepend a space to each text, so a first word is tokenized like any other (RoBERTa). Default false. */
  addPrefixSpace?: boolean;
  /**
   * Pre-tokenizer regex: `gpt2` (default; words with their leading space, digit runs) or `llama3`
   * (digits in groups of at most 3, punctuation with following newlines; Llama 3, SmolLM style).
   */
  pattern?: 'gpt2' | 'llama3';
  /** Special tokens the post-processor adds around every encoded text, e.g. { prefix: ['<|begin_of_text|>'] }. */
  template?: { prefix?: string[]; suffix?: string[] };
}

export interface WordPieceOptions extends CommonOptions {
  /** Default ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] (so padding is id 0). */
  specialTokens?: string[];
  /** Lowercase (BERT uncased). Default true. */
  lowercase?: boolean;
  /** Strip accents; default follows `lowercase`, as BertNormalizer does. */
  stripAccents?: boolean;
  /** Keep only this many most frequent characters; words with others are left out of training. */
  limitAlphabet?: number;
  /** Default 100, as BERT: longer words encode as [UNK]. */
  maxInputCharsPerWord?: number;
}

export interface TrainStats {
  /** Distinct pre-tokens (words) seen. */
  words: number;
  /** Pre-tokens seen in total. */
  pretokens: number;
  merges: number;
  vocabSize: number;
  seconds: number;
}

export interface TrainedTokenizer {
  tokenizer: LoomTokenizer;
  stats: TrainStats;
  /** Each distinct training word and the ids the trainer segmented it into (what encoding must give). */
  segmentations: () => Map<string, number[]>;
}

/** Counts pre-tokens. Texts are cut at special-token literals first, as the encoder extracts them first. */
class WordCounter {
  readonly counts = new Map<string, number>();
  pretokens = 0;
  private readonly splitter: RegExp | undefined;

  constructor(specialTokens: readonly string[], private readonly pretokenize: (text: string, add: (w: string) => void) => void) {
    const escaped = specialTokens.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.splitter = escaped.length > 0 ? new RegExp(escaped.join('|'), 'u') : undefined;
  }

  add(text: string): void {
    const pieces = this.splitter ? text.split(this.splitter) : [text];
    const add = (w: string): void => {
      this.counts.set(w, (this.counts.get(w) ?? 0) + 1);
      this.pretokens++;
    };
    for (const piece of pieces) if (piece.length > 0) this.pretokenize(piece, add);
  }

  async addAll(source: TextSource): Promise<void> {
    for await (const item of source as AsyncIterable<string | { text: string }>) this.add(typeof item === 'string' ? item : item.text);
  }
}

function withChatTokens(specialTokens: string[], chat: string | true | undefined): string[] {
  if (chat !== true) return specialTokens;
  return [...specialTokens, ...CHATML_TOKENS.filter((t) => !specialTokens.includes(t))];
}

function checkSpecial(specialTokens: readonly string[], roles: SpecialTokenNames): void {
  if (new Set(specialTokens).size !== specialTokens.length) throw new Error(`special tokens repeat: ${specialTokens.join(', ')}`);
  for (const [role, token] of Object.entries(roles)) {
    if (!specialTokens.includes(token)) throw new Error(`the ${role} token ${JSON.stringify(token)} is not among the special tokens`);
  }
}

function segmentationsOf(words: Iterable<string>, result: BpeLearnResult): () => Map<string, number[]> {
  return () => {
    const map = new Map<string, number[]>();
    let i = 0;
    for (const w of words) map.set(w, Array.from(result.words[i++]!));
    return map;
  };
}

/** Learns a byte-level BPE (GPT-2 alphabet of 256 byte symbols, GPT-2 pre-tokenizer regex). */
export async function trainByteLevelBpe(source: TextSource, options: ByteLevelBpeOptions): Promise<TrainedTokenizer> {
  const start = performance.now();
  const specialTokens = withChatTokens(options.specialTokens ?? ['<|endoftext|>'], options.chatTemplate);
  const roles = options.roles ?? guessSpecialTokenRoles(specialTokens);
  checkSpecial(specialTokens, roles);
  const prefix = options.addPrefixSpace ?? false;
  if (options.vocabSize < specialTokens.length + 256) {
    throw new Error(`vocabSize ${options.vocabSize} is below the ${specialTokens.length + 256} special and byte tokens`);
  }
  // Pre-tokenize in JS with the same pattern the Rust pre-tokenizer uses: 15x faster than calling
  // the binding's preTokenizeString (a test checks the two agree).
  const pattern = options.pattern ?? 'gpt2';
  const regex = pattern === 'gpt2' ? GPT2_PATTERN : LLAMA3_PATTERN;
  const counter = new WordCounter(specialTokens, (text, add) => {
    const t = prefix && !text.startsWith(' ') ? ` ${text}` : text;
    for (const m of t.matchAll(regex)) add(m[0]);
  });
  await counter.addAll(source);
  if (counter.pretokens === 0) throw new Error('trainByteLevelBpe: the corpus is empty');

  const base = specialTokens.length;
  const words: Int32Array[] = [];
  const counts: number[] = [];
  for (const [w, n] of counter.counts) {
    const bytes = Buffer.from(w, 'utf8');
    const symbols = new Int32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) symbols[i] = base + bytes[i]!;
    words.push(symbols);
    counts.push(n);
  }
  const result = learnBpe({ words, counts }, {
    symbols: [...specialTokens, ...BYTE_CHARS],
    vocabSize: options.vocabSize,
    minFrequency: options.minFrequency ?? 2,
    join: (a, b) => a + b,
  });
  const tokenizerJson = byteLevelBpeJson({
    vocab: result.vocab,
    merges: result.merges,
    specialTokens,
    addPrefixSpace: prefix,
    pattern,
    prefix: options.template?.prefix ?? [],
    suffix: options.template?.suffix ?? [],
  });
  const config = tokenizerConfig({
    specialTokens,
    roles,
    modelMaxLength: options.modelMaxLength ?? 1024,
    chatTemplate: options.chatTemplate === true ? CHATML_TEMPLATE : options.chatTemplate,
    extra: { add_prefix_space: prefix },
  });
  const tokenizer = LoomTokenizer.fromFiles({ tokenizerJson, config, specialTokensMap: undefined }, 'trained tokenizer.json');
  return {
    tokenizer,
    stats: stats(counter, result, start),
    segmentations: segmentationsOf(counter.counts.keys(), result),
  };
}

/**
 * Learns a WordPiece vocabulary the way the Rust WordPieceTrainer does: BPE merges over characters
 * where non-initial characters carry the `##` prefix; the vocabulary is then used by greedy
 * longest-match WordPiece at encoding time. Text is normalized and pre-tokenized by the binding's
 * own BertNormalizer / BertPreTokenizer, so training sees exactly the words encoding will see.
 */
export async function trainWordPiece(source: TextSource, options: WordPieceOptions): Promise<TrainedTokenizer> {
  const start = performance.now();
  const specialTokens = withChatTokens(options.specialTokens ?? ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'], options.chatTemplate);
  const roles = options.roles ?? guessSpecialTokenRoles(specialTokens);
  checkSpecial(specialTokens, roles);
  if (roles.unk === undefined) throw new Error('trainWordPiece: an unk token is required (e.g. [UNK])');
  const lowercase = options.lowercase ?? true;
  const stripAccents = options.stripAccents ?? lowercase;
  const maxChars = options.maxInputCharsPerWord ?? 100;
  const normalizer = bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents, lowercase });
  const pre = bertPreTokenizer();
  const counter = new WordCounter(specialTokens, (text, add) => {
    // Cut long texts at whitespace (a word boundary for BertPreTokenizer) to bound the binding's arrays.
    for (const chunk of chunksAtWhitespace(text, 1 << 16)) {
      for (const [w] of pre.preTokenizeString(normalizer.normalizeString(chunk))) add(w);
    }
  });
  await counter.addAll(source);
  if (counter.pretokens === 0) throw new Error('trainWordPiece: the corpus is empty');

  const charFreq = new Map<string, number>();
  for (const [w, n] of counter.counts) for (const ch of w) charFreq.set(ch, (charFreq.get(ch) ?? 0) + n);
  let alphabet = [...charFreq.keys()];
  if (options.limitAlphabet !== undefined && alphabet.length > options.limitAlphabet) {
    alphabet = alphabet.sort((x, y) => charFreq.get(y)! - charFreq.get(x)! || cmp(x, y)).slice(0, options.limitAlphabet);
  }
  alphabet.sort(cmp);
  // Both spellings of every character, so any word over the alphabet can be encoded without [UNK].
  const symbols = [...specialTokens, ...alphabet, ...alphabet.map((c) => `##${c}`)];
  if (options.vocabSize < symbols.length) {
    throw new Error(`vocabSize ${options.vocabSize} is below the ${symbols.length} special and alphabet tokens (try limitAlphabet)`);
  }
  const initial = new Map<string, number>(alphabet.map((c, i) => [c, specialTokens.length + i]));
  const cont = alphabet.length;
  const words: Int32Array[] = [];
  const counts: number[] = [];
  const kept: string[] = [];
  for (const [w, n] of counter.counts) {
    const chars = [...w];
    if (chars.length > maxChars || chars.some((c) => !initial.has(c))) continue;
    words.push(Int32Array.from(chars, (c, i) => initial.get(c)! + (i > 0 ? cont : 0)));
    counts.push(n);
    kept.push(w);
  }
  const result = learnBpe({ words, counts }, {
    symbols,
    vocabSize: options.vocabSize,
    minFrequency: options.minFrequency ?? 2,
    join: (a, b) => a + b.slice(2),
  });
  const tokenizerJson = wordPieceJson({
    vocab: result.vocab,
    specialTokens,
    unkToken: roles.unk,
    clsToken: roles.cls,
    sepToken: roles.sep,
    lowercase,
    stripAccents,
    prefix: '##',
    maxInputCharsPerWord: maxChars,
  });
  const config = tokenizerConfig({
    specialTokens,
    roles,
    modelMaxLength: options.modelMaxLength ?? 512,
    chatTemplate: options.chatTemplate === true ? CHATML_TEMPLATE : options.chatTemplate,
    extra: { do_lower_case: lowercase, strip_accents: stripAccents },
  });
  const tokenizer = LoomTokenizer.fromFiles({ tokenizerJson, config, specialTokensMap: undefined }, 'trained tokenizer.json');
  return { tokenizer, stats: stats(counter, result, start), segmentations: segmentationsOf(kept, result) };
}

function stats(counter: WordCounter, result: BpeLearnResult, start: number): TrainStats {
  return {
    words: counter.counts.size,
    pretokens: counter.pretokens,
    merges: result.merges.length,
    vocabSize: result.vocab.length,
    seconds: (performance.now() - start) / 1000,
  };
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Splits `text` into pieces of about `size` UTF-16 units, cutting only before whitespace. */
export function* chunksAtWhitespace(text: string, size: number): Generator<string> {
  let start = 0;
  while (text.length - start > size) {
    let cut = text.indexOf(' ', start + size);
    const nl = text.indexOf('\n', start + size);
    if (cut < 0 || (nl >= 0 && nl < cut)) cut = nl;
    if (cut < 0) break;
    yield text.slice(start, cut);
    start = cut;
  }
  yield text.slice(start);
}
