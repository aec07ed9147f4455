// LoomTokenizer on GPT-2-, BERT- and Llama-style tokenizer.json files built by the tests: ids equal
// the `tokenizers` library's own and hand-derived ones; special tokens, truncation, save, chat.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Tokenizer } from 'tokenizers';
import { CHATML_TEMPLATE } from '../src/io/chat_template.js';
import { LoomTokenizer } from '../src/io/tokenizer.js';
import { BERT_CONFIG, bertJson, GPT2_CONFIG, gpt2Json, LLAMA_CONFIG, llamaJson, llamaLegacyJson, tempDir, writeFolder } from './data_fixtures.js';

const TEXTS = ['the cat sat', 'The Cat, unaffable.', 'hi there', 'hé', '', '  leading  and trailing  ', 'émoji 😀 and 中文 text\nnew line', 'Hello plays, new york.'];

/** Ids from the Rust library loaded straight from the file, as a reference. */
async function nativeIds(dir: string, texts: string[], addSpecialTokens = true): Promise<number[][]> {
  const native = Tokenizer.fromFile(join(dir, 'tokenizer.json'));
  return (await native.encodeBatch(texts, { addSpecialTokens })).map((e) => e.getIds());
}

for (const [name, json, config] of [
  ['gpt2', gpt2Json(), GPT2_CONFIG],
  ['bert', bertJson(), BERT_CONFIG],
  ['llama', llamaJson(), LLAMA_CONFIG],
  ['llama-legacy', llamaLegacyJson(), LLAMA_CONFIG],
] as const) {
  test(`${name}: ids equal the tokenizers library's, single and batch, with and without special tokens`, async () => {
    using tmp = tempDir();
    writeFolder(tmp.dir, { 'tokenizer.json': json, 'tokenizer_config.json': config });
    const tok = await LoomTokenizer.load(tmp.dir);
    for (const special of [true, false]) {
      const expected = await nativeIds(tmp.dir, TEXTS, special);
      const batch = await tok.encodeBatch(TEXTS, { addSpecialTokens: special });
      assert.deepEqual(batch.map((a) => Array.from(a)), expected);
      for (const [i, t] of TEXTS.entries()) assert.deepEqual(Array.from(await tok.encode(t, { addSpecialTokens: special })), expected[i]);
    }
  });
}

test('gpt2: hand-derived ids, specials from tokenizer_config.json, decode', async () => {
  using tmp = tempDir();
  writeFolder(tmp.dir, { 'tokenizer.json': gpt2Json(), 'tokenizer_config.json': GPT2_CONFIG });
  const tok = await LoomTokenizer.load(tmp.dir);
  // "the" -> t he; " cat" -> Ġc a t -> Ġc at -> Ġcat; " sat" -> Ġ s a t -> Ġ s at
  assert.deepEqual(Array.from(await tok.encode('the cat sat')), [116, 257, 261, 32, 115, 260]);
  assert.deepEqual(Array.from(await tok.encode('the<|endoftext|>')), [116, 257, 262]);
  assert.equal(tok.vocabSize, 263);
  assert.deepEqual([tok.bosId, tok.eosId, tok.unkId, tok.padId], [262, 262, 262, undefined]);
  assert.equal(tok.modelMaxLength, 1024);
  assert.equal(await tok.decode([116, 257, 261]), 'the cat');
});

test('bert: hand-derived ids, pair with type ids, truncation keeps [CLS]/[SEP], word ids', async () => {
  using tmp = tempDir();
  writeFolder(tmp.dir, { 'tokenizer.json': bertJson(), 'tokenizer_config.json': BERT_CONFIG });
  const tok = await LoomTokenizer.load(tmp.dir);
  assert.deepEqual(Array.from(await tok.encode('The cat, unaffable.')), [2, 5, 6, 11, 8, 9, 10, 12, 3]);
  assert.deepEqual(Array.from(await tok.encode('Plays xyz')), [2, 15, 14, 1, 3]);
  assert.deepEqual([tok.clsId, tok.sepId, tok.padId, tok.maskId, tok.unkId], [2, 3, 0, 4, 1]);
  const pair = await tok.encodeDetailed('the cat', 'the cat sat');
  assert.deepEqual(Array.from(pair.ids), [2, 5, 6, 3, 5, 6, 7, 3]);
  assert.deepEqual(Array.from(pair.typeIds), [0, 0, 0, 0, 1, 1, 1, 1]);
  assert.deepEqual(Array.from(pair.specialTokensMask), [1, 0, 0, 1, 0, 0, 0, 1]);
  // longest_first: the second text is longer, so it loses tokens first; specials stay.
  const cut = await tok.encodeDetailed('the cat', 'the cat sat', { maxLength: 6 });
  assert.deepEqual(Array.from(cut.ids), [2, 5, 3, 5, 6, 3]);
  assert.equal(cut.truncated, 2);
  const one = await tok.encodeDetailed('the cat sat unaffable', undefined, { maxLength: 5 });
  assert.deepEqual(Array.from(one.ids), [2, 5, 6, 7, 3]);
  const words = await tok.encodeDetailed('unaffable cat', undefined, { offsets: true });
  assert.deepEqual(Array.from(words.wordIds), [-1, 0, 0, 0, 1, -1]);
  assert.deepEqual(Array.from(words.offsets), [0, 0, 0, 2, 2, 5, 5, 9, 10, 13, 0, 0]);
});

test('llama: byte fallback, Metaspace ▁, <s> added, decode round trip', async () => {
  using tmp = tempDir();
  writeFolder(tmp.dir, { 'tokenizer.json': llamaJson(), 'tokenizer_config.json': LLAMA_CONFIG });
  const tok = await LoomTokenizer.load(tmp.dir);
  // ▁hi ▁t her e (merges e+r, ▁+t, h+er applied by rank); é is bytes C3 A9 -> <0xC3> <0xA9>
  assert.deepEqual(Array.from(await tok.encode('hi there')), [1, 266, 268, 269, 263]);
  assert.deepEqual(Array.from(await tok.encode('hé')), [1, 265, 3 + 0xc3, 3 + 0xa9]);
  assert.deepEqual([tok.bosId, tok.eosId, tok.unkId], [1, 2, 0]);
  assert.equal(await tok.decode(await tok.encode('hi there'), { skipSpecialTokens: true }), 'hi there');
  assert.equal(await tok.decode(await tok.encode('hé'), { skipSpecialTokens: true }), 'hé');
});

test('encodeWords gives the ids of the sentence and one word id per input word', async () => {
  using tmp = tempDir();
  for (const [json, config, sentence] of [
    [gpt2Json(), GPT2_CONFIG, 'the cat sat'],
    [bertJson(), BERT_CONFIG, 'unaffable cat plays'],
    [llamaJson(), LLAMA_CONFIG, 'hi there hi'],
    [llamaLegacyJson(), LLAMA_CONFIG, 'hi there hé'],
  ] as const) {
    writeFolder(tmp.dir, { 'tokenizer.json': json, 'tokenizer_config.json': config });
    const tok = await LoomTokenizer.load(tmp.dir);
    const words = sentence.split(' ');
    const enc = await tok.encodeWords(words);
    assert.deepEqual(Array.from(enc.ids), Array.from(await tok.encode(sentence)), sentence);
    const seen = [...new Set(Array.from(enc.wordIds).filter((w) => w >= 0))];
    assert.deepEqual(seen, words.map((_, i) => i));
  }
});

test('offsets are JS string indices even after astral characters', async () => {
  using tmp = tempDir();
  writeFolder(tmp.dir, { 'tokenizer.json': gpt2Json(), 'tokenizer_config.json': GPT2_CONFIG });
  const tok = await LoomTokenizer.load(tmp.dir);
  const text = '😀 the cat';
  const enc = await tok.encodeDetailed(text, undefined, { offsets: true });
  const last = enc.ids.length - 1;
  assert.equal(text.slice(enc.offsets[2 * last]!, enc.offsets[2 * last + 1]!), ' cat');
});

test('save copies tokenizer.json byte for byte and reloads with the same hash and specials', async () => {
  using a = tempDir();
  using b = tempDir();
  writeFolder(a.dir, { 'tokenizer.json': bertJson(), 'tokenizer_config.json': BERT_CONFIG });
  const tok = await LoomTokenizer.load(a.dir);
  await tok.save(b.dir);
  assert.equal(readFileSync(join(b.dir, 'tokenizer.json'), 'utf8'), readFileSync(join(a.dir, 'tokenizer.json'), 'utf8'));
  const again = await LoomTokenizer.load(b.dir);
  assert.equal(again.hash, tok.hash);
  assert.deepEqual(again.special, tok.special);
  assert.equal(readFileSync(join(b.dir, 'tokenizer_config.json'), 'utf8'), readFileSync(join(a.dir, 'tokenizer_config.json'), 'utf8'));
  assert.deepEqual(JSON.parse(readFileSync(join(b.dir, 'special_tokens_map.json'), 'utf8')).mask_token, '[MASK]');
});

test('a bare tokenizer.json: special tokens guessed from the added tokens', async () => {
  using tmp = tempDir();
  writeFolder(tmp.dir, { 'tokenizer.json': llamaJson() });
  const tok = await LoomTokenizer.load(join(tmp.dir, 'tokenizer.json'));
  assert.deepEqual([tok.bosId, tok.eosId, tok.unkId], [1, 2, 0]);
  assert.equal(tok.hasOwnChatTemplate, false);
});

test('bad files: clear errors naming the file', async () => {
  using tmp = tempDir();
  await assert.rejects(LoomTokenizer.load(tmp.dir), /tokenizer\.json: cannot read the tokenizer/);
  writeFileSync(join(tmp.dir, 'tokenizer.json'), '{\n  "version": "1.0",\n  "model": {');
  await assert.rejects(LoomTokenizer.load(tmp.dir), /tokenizer\.json(:\d+)?: invalid JSON/);
  writeFileSync(join(tmp.dir, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'Nope' } }));
  await assert.rejects(LoomTokenizer.load(tmp.dir), /tokenizer\.json: not a valid tokenizer\.json/);
  writeFolder(tmp.dir, { 'tokenizer.json': gpt2Json(), 'tokenizer_config.json': { eos_token: '</s>' } });
  await assert.rejects(LoomTokenizer.load(tmp.dir), /the eos token "<\/s>" \(named by tokenizer_config\.json or special_tokens_map\.json\) is not in the vocabulary/);
  writeFolder(tmp.dir, { 'tokenizer.json': gpt2Json(), 'tokenizer_config.json': '{ "eos_token": ' });
  await assert.rejects(LoomTokenizer.load(tmp.dir), /tokenizer_config\.json(:\d+)?: invalid JSON/);
});

test('chat templates: the model\'s own, ChatML by default, generation prompt', async () => {
  using tmp = tempDir();
  writeFolder(tmp.dir, { 'tokenizer.json': llamaJson(), 'tokenizer_config.json': LLAMA_CONFIG });
  const llama = await LoomTokenizer.load(tmp.dir);
  const chat = [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'there' }];
  assert.equal(llama.applyChatTemplate(chat), '<s>[INST] hi [/INST]there</s>');
  writeFolder(tmp.dir, { 'tokenizer.json': gpt2Json(), 'tokenizer_config.json': GPT2_CONFIG });
  const gpt2 = await LoomTokenizer.load(tmp.dir);
  assert.equal(gpt2.chatTemplate.source, CHATML_TEMPLATE);
  assert.equal(
    gpt2.applyChatTemplate(chat.slice(0, 1), { addGenerationPrompt: true }),
    '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n',
  );
  assert.throws(() => gpt2.applyChatTemplate([{ role: 'user' } as never]), /chat message 0/);
});
