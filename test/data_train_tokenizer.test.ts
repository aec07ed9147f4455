// Tokenizer training: byte-level BPE and WordPiece files load in `tokenizers` and encode to the ids
// the trainer predicts; training is deterministic; vocabulary size and special tokens are honoured.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { byteLevelPreTokenizer, Tokenizer } from 'tokenizers';
import { learnBpe } from '../src/io/bpe_core.js';
import { LoomTokenizer } from '../src/io/tokenizer.js';
import { BYTE_CHARS, GPT2_PATTERN, LLAMA3_PATTERN } from '../src/io/tokenizer_json.js';
import { trainByteLevelBpe, trainWordPiece } from '../src/io/tokenizer_train.js';
import { tempDir } from './data_fixtures.js';

// A small corpus with repeats (so merges happen), punctuation, digits, newlines and non-ASCII.
const WORDS = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'thermal', 'theory', 'other', 'quickly', 'überall', 'naïve', 'café', '2024', "it's", 'don\'t', 'hello,', 'world!'];
const CORPUS: string[] = [];
for (let d = 0; d < 60; d++) {
  const line: string[] = [];
  for (let i = 0; i < 25; i++) line.push(WORDS[(d * 7 + i * i * 3 + i) % WORDS.length]!);
  CORPUS.push(`${line.join(' ')}\n\n  indented ${d} line\t tab`);
}

test('learnBpe: hand-checked merges on a tiny table, ties broken by the smaller pair', () => {
  // words: "abab" x3, "ab" x2, "ba" x1 over symbols a=0, b=1
  const r = learnBpe(
    { words: [Int32Array.from([0, 1, 0, 1]), Int32Array.from([0, 1]), Int32Array.from([1, 0])], counts: [3, 2, 1] },
    { symbols: ['a', 'b'], vocabSize: 10, minFrequency: 1, join: (x, y) => x + y },
  );
  // (a,b) occurs 3*2+2 = 8 times -> "ab"(2); then (ab,ab) 3 -> "abab"(3); then (b,a) 1 -> "ba"(4)
  assert.deepEqual(r.merges, [[0, 1], [2, 2], [1, 0]]);
  assert.deepEqual(r.vocab, ['a', 'b', 'ab', 'abab', 'ba']);
  assert.deepEqual(r.words.map((w) => Array.from(w)), [[3], [2], [4]]);
});

test('the JS pre-tokenizer patterns agree with the Rust pre-tokenizers (GPT-2 and Llama 3)', async () => {
  const text = `${CORPUS.slice(0, 3).join('\n')} a  b\n\n\n c's 'LL DON'T x1y 12345 ça 中文 😀\u00a0\u2003\u3000x\ufeff\u0085 ١٢٣ x²\r\n  end  `;
  const bytes = (w: string): string => Array.from(Buffer.from(w, 'utf8'), (b) => BYTE_CHARS[b]).join('');
  const rust = byteLevelPreTokenizer(false, true).preTokenizeString(text).map(([w]) => w);
  assert.deepEqual([...text.matchAll(GPT2_PATTERN)].map((m) => bytes(m[0])), rust);
  // The binding's splitPreTokenizer takes a literal, so Llama 3's Split comes from a trained file.
  const { tokenizer } = await trainByteLevelBpe(CORPUS.slice(0, 2), { vocabSize: 260, pattern: 'llama3' });
  const llama3 = Tokenizer.fromString(tokenizer.files.tokenizerJson).getPreTokenizer()!;
  const expected = llama3.preTokenizeString(text).map(([w]) => w);
  assert.deepEqual([...text.matchAll(LLAMA3_PATTERN)].map((m) => bytes(m[0])), expected);
  assert.notDeepEqual(expected, rust);
});

test('byte-level BPE (Llama 3 pattern): tokenizers encodes every training word to the trainer\'s segmentation', async () => {
  const { tokenizer, segmentations } = await trainByteLevelBpe(CORPUS, { vocabSize: 400, pattern: 'llama3', minFrequency: 1 });
  const seg = segmentations();
  const words = [...seg.keys()];
  const encs = await Tokenizer.fromString(tokenizer.files.tokenizerJson).encodeBatch(words, { addSpecialTokens: false });
  encs.forEach((e, i) => assert.deepEqual(e.getIds(), seg.get(words[i]!), JSON.stringify(words[i])));
  assert.equal(await tokenizer.decode(await tokenizer.encode(CORPUS[3]!)), CORPUS[3]);
});

test('byte-level BPE: tokenizers encodes every training word to the trainer\'s segmentation', async () => {
  const { tokenizer, stats, segmentations } = await trainByteLevelBpe(CORPUS, { vocabSize: 400, specialTokens: ['<|endoftext|>', '<pad>'], minFrequency: 1 });
  assert.equal(stats.vocabSize, 400);
  assert.equal(tokenizer.vocabSize, 400);
  assert.deepEqual([tokenizer.eosId, tokenizer.bosId, tokenizer.padId], [0, 0, 1]);
  const seg = segmentations();
  const words = [...seg.keys()];
  const native = Tokenizer.fromString(tokenizer.files.tokenizerJson);
  const encs = await native.encodeBatch(words, { addSpecialTokens: false });
  encs.forEach((e, i) => assert.deepEqual(e.getIds(), seg.get(words[i]!), JSON.stringify(words[i])));
  // A whole text is the concatenation of its pre-tokens' segmentations, and decodes back.
  const text = CORPUS[5]!;
  const expected = [...text.matchAll(GPT2_PATTERN)].flatMap((m) => seg.get(m[0])!);
  const ids = await tokenizer.encode(text);
  assert.deepEqual(Array.from(ids), expected);
  assert.equal(await tokenizer.decode(ids), text);
  // Unseen bytes still encode (the 256-byte alphabet), and special tokens are single ids.
  assert.equal(await tokenizer.decode(await tokenizer.encode('ß€ 🙂')), 'ß€ 🙂');
  assert.deepEqual(Array.from(await tokenizer.encode('<|endoftext|><pad>')), [0, 1]);
});

test('byte-level BPE: deterministic, and special-token literals in the corpus are not learned', async () => {
  const corpus = CORPUS.map((t) => `${t}<|endoftext|>`);
  const a = await trainByteLevelBpe(corpus, { vocabSize: 350 });
  const b = await trainByteLevelBpe(corpus, { vocabSize: 350 });
  assert.equal(a.tokenizer.files.tokenizerJson, b.tokenizer.files.tokenizerJson);
  assert.equal(a.tokenizer.hash, b.tokenizer.hash);
  const vocab = JSON.parse(a.tokenizer.files.tokenizerJson).model.vocab as Record<string, number>;
  assert.ok(!Object.keys(vocab).some((t) => t.includes('endoftext') && t !== '<|endoftext|>'));
});

test('byte-level BPE: template adds BOS, chat tokens, files written and reloaded', async () => {
  using tmp = tempDir();
  const { tokenizer } = await trainByteLevelBpe(CORPUS, {
    vocabSize: 300,
    specialTokens: ['<|begin_of_text|>', '<|end_of_text|>'],
    template: { prefix: ['<|begin_of_text|>'] },
    chatTemplate: true,
    modelMaxLength: 2048,
  });
  await tokenizer.save(tmp.dir);
  const loaded = await LoomTokenizer.load(tmp.dir);
  assert.deepEqual([loaded.bosId, loaded.eosId], [0, 1]);
  assert.equal(loaded.modelMaxLength, 2048);
  const native = Tokenizer.fromFile(join(tmp.dir, 'tokenizer.json'));
  const ids = (await native.encode('the fox', null)).getIds();
  assert.equal(ids[0], 0);
  assert.deepEqual(Array.from(await loaded.encode('the fox')), ids);
  const chat = loaded.applyChatTemplate([{ role: 'user', content: 'the fox' }]);
  const chatIds = Array.from(await loaded.encode(chat, { addSpecialTokens: false }));
  assert.equal(chatIds[0], loaded.tokenToId('<|im_start|>'));
  const config = JSON.parse(readFileSync(join(tmp.dir, 'tokenizer_config.json'), 'utf8'));
  assert.equal(config.bos_token, '<|begin_of_text|>');
  assert.equal(config.added_tokens_decoder['2'].content, '<|im_start|>');
  assert.ok(typeof config.chat_template === 'string');
});

/** Greedy longest-match-first WordPiece over a vocabulary, as BERT encodes a word. */
function wordPiece(word: string, vocab: Map<string, number>, unk: number): number[] {
  const chars = [...word];
  const out: number[] = [];
  let start = 0;
  while (start < chars.length) {
    let end = chars.length;
    let id: number | undefined;
    while (end > start) {
      const piece = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
      id = vocab.get(piece);
      if (id !== undefined) break;
      end--;
    }
    if (id === undefined) return [unk];
    out.push(id);
    start = end;
  }
  return out;
}

test('WordPiece: BERT specials, lowercase, ## pieces; tokenizers gives greedy longest-match ids', async () => {
  const { tokenizer, stats } = await trainWordPiece(CORPUS, { vocabSize: 180, minFrequency: 1 });
  assert.equal(stats.vocabSize, 180);
  assert.deepEqual([tokenizer.padId, tokenizer.unkId, tokenizer.clsId, tokenizer.sepId, tokenizer.maskId], [0, 1, 2, 3, 4]);
  const json = JSON.parse(tokenizer.files.tokenizerJson);
  const vocab = new Map(Object.entries(json.model.vocab as Record<string, number>));
  assert.ok([...vocab.keys()].some((t) => t.startsWith('##') && t.length > 3), 'learned ## pieces');
  const text = 'The QUICK brown fox, Über café naïve 2024 zzz!';
  // BertNormalizer (lowercase + strip accents) and BertPreTokenizer, by hand:
  const words = ['the', 'quick', 'brown', 'fox', ',', 'uber', 'cafe', 'naive', '2024', 'zzz', '!'];
  const expected = [2, ...words.flatMap((w) => wordPiece(w, vocab, 1)), 3];
  assert.deepEqual(Array.from(await tokenizer.encode(text)), expected);
  assert.equal(await tokenizer.decode(await tokenizer.encode('the quick fox'), { skipSpecialTokens: true }), 'the quick fox');
  const again = await trainWordPiece(CORPUS, { vocabSize: 180, minFrequency: 1 });
  assert.equal(again.tokenizer.hash, tokenizer.hash);
});

test('WordPiece: cased option keeps case and accents; limitAlphabet bounds the alphabet', async () => {
  const { tokenizer } = await trainWordPiece(CORPUS, { vocabSize: 200, lowercase: false, limitAlphabet: 30 });
  const json = JSON.parse(tokenizer.files.tokenizerJson);
  assert.equal(json.normalizer.lowercase, false);
  const singles = Object.keys(json.model.vocab).filter((t) => !t.startsWith('[') && !t.startsWith('##') && [...t].length === 1);
  assert.equal(singles.length, 30);
  assert.ok(!Object.keys(json.model.vocab).includes('ü') || singles.includes('ü'));
});

test('tokens spelled like replacement patterns ($\', $&) survive serialisation', async () => {
  const { tokenizer } = await trainByteLevelBpe(["a$'b $&c $`d $$e \"q\" \\x ".repeat(40)], { vocabSize: 275 });
  const vocab = JSON.parse(tokenizer.files.tokenizerJson).model.vocab as Record<string, number>;
  assert.ok(Object.keys(vocab).some((t) => t.includes("$'")));
  assert.equal(await tokenizer.decode(await tokenizer.encode("a$'b $&c")), "a$'b $&c");
});

test('training errors: empty corpus, vocabulary too small, role not a special token', async () => {
  await assert.rejects(trainByteLevelBpe([], { vocabSize: 300 }), /corpus is empty/);
  await assert.rejects(trainByteLevelBpe(CORPUS, { vocabSize: 100 }), /below the 257 special and byte tokens/);
  await assert.rejects(trainWordPiece(CORPUS, { vocabSize: 10 }), /below the \d+ special and alphabet tokens/);
  await assert.rejects(trainByteLevelBpe(CORPUS, { vocabSize: 300, roles: { eos: '</s>' } }), /eos token "<\/s>" is not among the special tokens/);
});
