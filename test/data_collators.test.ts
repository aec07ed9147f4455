// Collators checked token by token: CLM packing, MLM masking rules, classification padding and
// truncation, NER label alignment, chat SFT assistant-only labels and truncation; toTensors.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IGNORE_INDEX } from '../src/data/collators/batch.js';
import { assistantSpans, collateChat, encodeChat } from '../src/data/collators/chat.js';
import { collateClassification, encodeClassification } from '../src/data/collators/classification.js';
import { ClmPacker, collateClm, packDocuments } from '../src/data/collators/clm.js';
import { continuationTable, MlmCollator } from '../src/data/collators/mlm.js';
import { collateTokenClassification, encodeTokenClassification } from '../src/data/collators/token_classification.js';
import { LabelSet } from '../src/data/labels.js';
import { toTensors } from '../src/data/tensors.js';
import { LoomTokenizer } from '../src/io/tokenizer.js';
import { trainByteLevelBpe } from '../src/io/tokenizer_train.js';
import { BERT_CONFIG, bertJson, GPT2_CONFIG, gpt2Json, LLAMA_CONFIG, llamaJson } from './data_fixtures.js';

const bert = LoomTokenizer.fromFiles({ tokenizerJson: JSON.stringify(bertJson()), config: BERT_CONFIG });
const gpt2 = LoomTokenizer.fromFiles({ tokenizerJson: JSON.stringify(gpt2Json()), config: GPT2_CONFIG });
const llama = LoomTokenizer.fromFiles({ tokenizerJson: JSON.stringify(llamaJson()), config: LLAMA_CONFIG });
const src = (line: number): { file: string; line: number } => ({ file: 'train.jsonl', line });

test('CLM: documents packed into exact blocks with EOS after each; labels = inputs', () => {
  const blocks = [...packDocuments([[1, 2, 3], [4, 5], [6, 7, 8, 9, 10]], { blockSize: 4, eosId: 0 })];
  assert.deepEqual(blocks.map((b) => Array.from(b)), [[1, 2, 3, 0], [4, 5, 0, 6], [7, 8, 9, 10]]);
  const packer = new ClmPacker({ blockSize: 3, eosId: 0, bosId: 9 });
  assert.deepEqual(packer.push([1]).map((b) => Array.from(b)), [[9, 1, 0]]);
  assert.deepEqual(packer.push([2, 3, 4, 5]).map((b) => Array.from(b)), [[9, 2, 3], [4, 5, 0]]);
  assert.deepEqual(Array.from(packer.remainder()), []);
  const batch = collateClm(blocks);
  assert.deepEqual(batch.shape, [3, 4]);
  assert.deepEqual(Array.from(batch.labels), Array.from(batch.inputIds));
  assert.ok(batch.attentionMask.every((m) => m === 1));
  const ragged = collateClm([[1, 2, 3], [4]], 7);
  assert.deepEqual(Array.from(ragged.inputIds), [1, 2, 3, 4, 7, 7]);
  assert.deepEqual(Array.from(ragged.attentionMask), [1, 1, 1, 1, 0, 0]);
  assert.deepEqual(Array.from(ragged.labels), [1, 2, 3, 4, -100, -100]);
});

test('MLM: 15% picked, 80/10/10, specials and padding never masked, seeded per step', () => {
  const vocabSize = 1000;
  const [b, t] = [8, 512];
  const ids = new Int32Array(b * t);
  const mask = new Int32Array(b * t).fill(1);
  for (let r = 0; r < b; r++) {
    for (let j = 0; j < t; j++) ids[r * t + j] = 5 + ((r * 7919 + j * 104729) % (vocabSize - 5));
    ids[r * t] = 2; // [CLS]
    ids[r * t + 400] = 3; // [SEP]
    for (let j = 401; j < t; j++) [ids[r * t + j], mask[r * t + j]] = [0, 0]; // padding
  }
  const special = [0, 1, 2, 3, 4];
  const mlm = new MlmCollator({ maskId: 4, vocabSize, specialIds: special, seed: 1 });
  const out = mlm.collate({ inputIds: ids, attentionMask: mask, shape: [b, t] });
  let picked = 0;
  let masked = 0;
  let random = 0;
  let eligible = 0;
  for (let i = 0; i < b * t; i++) {
    const isSpecial = special.includes(ids[i]!) || mask[i] === 0;
    if (!isSpecial) eligible++;
    if (out.labels[i] === IGNORE_INDEX) {
      assert.equal(out.inputIds[i], ids[i], `unpicked token ${i} unchanged`);
      continue;
    }
    assert.ok(!isSpecial, `special or padding token ${i} was picked`);
    assert.equal(out.labels[i], ids[i]);
    picked++;
    if (out.inputIds[i] === 4) masked++;
    else if (out.inputIds[i] !== ids[i]) {
      random++;
      assert.ok(!special.includes(out.inputIds[i]!), 'random replacement is an ordinary token');
    }
  }
  assert.ok(Math.abs(picked / eligible - 0.15) < 0.02, `picked ${picked / eligible}`);
  assert.ok(Math.abs(masked / picked - 0.8) < 0.04, `masked ${masked / picked}`);
  assert.ok(Math.abs(random / picked - 0.1) < 0.03, `random ${random / picked}`);
  const again = new MlmCollator({ maskId: 4, vocabSize, specialIds: special, seed: 1 }).collate({ inputIds: ids, attentionMask: mask, shape: [b, t] }, 0);
  assert.deepEqual(again.inputIds, out.inputIds);
  const next = mlm.collate({ inputIds: ids, attentionMask: mask, shape: [b, t] });
  assert.notDeepEqual(next.labels, out.labels);
});

test('MLM whole-word masking: a word\'s ## pieces are picked together', async () => {
  const table = continuationTable(bert);
  assert.deepEqual([9, 10, 14, 16].map((id) => table[id]), [1, 1, 1, 1]);
  assert.deepEqual([2, 5, 8, 11].map((id) => table[id]), [0, 0, 0, 0]);
  const row = Array.from(await bert.encode('unaffable plays playing the cat unaffable '.repeat(20)));
  const ids = Int32Array.from(row);
  const mlm = new MlmCollator({ maskId: 4, vocabSize: bert.vocabSize, specialIds: bert.specialIds(), seed: 3, continuation: table, probability: 0.3 });
  const out = mlm.collate({ inputIds: ids, attentionMask: new Int32Array(ids.length).fill(1), shape: [1, ids.length] });
  let words = 0;
  for (let i = 1; i < ids.length - 1; i++) {
    if (table[ids[i]!] === 1) assert.equal(out.labels[i] !== -100, out.labels[i - 1] !== -100, `piece ${i} follows its word`);
    else if (out.labels[i] !== -100) words++;
  }
  assert.ok(words > 5);
});

test('sequence classification: truncation keeps [SEP], dynamic padding, labels, pairs, unknown label', async () => {
  const labels = LabelSet.discover(['pos', 'neg']);
  const enc = await encodeClassification(bert, [
    { text: 'the cat', label: 'pos' },
    { text: 'the cat sat unaffable', label: 'neg', source: src(2) },
  ], { labels, maxLength: 6 });
  assert.equal(enc.truncated, 1);
  assert.deepEqual(enc.examples.map((e) => Array.from(e.ids)), [[2, 5, 6, 3], [2, 5, 6, 7, 8, 3]]);
  const batch = collateClassification(enc.examples, { padId: 0 });
  assert.deepEqual(batch.shape, [2, 6]);
  assert.deepEqual(Array.from(batch.inputIds), [2, 5, 6, 3, 0, 0, 2, 5, 6, 7, 8, 3]);
  assert.deepEqual(Array.from(batch.attentionMask), [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(Array.from(batch.labels), [1, 0]);
  assert.deepEqual(batch.labelsShape, [2]);
  assert.equal(batch.tokenTypeIds, undefined);
  assert.deepEqual(collateClassification(enc.examples, { padId: 0, padToMultipleOf: 8 }).shape, [2, 8]);
  const pair = await encodeClassification(bert, [{ text: 'the cat', textPair: 'sat', label: 1 }], { labels: LabelSet.discover([0, 1]), maxLength: 16 });
  const pb = collateClassification(pair.examples, { padId: 0 });
  assert.deepEqual(Array.from(pb.tokenTypeIds!), [0, 0, 0, 0, 1, 1]);
  await assert.rejects(
    encodeClassification(bert, [{ text: 'x', label: 'meh', source: src(9) }], { labels, maxLength: 8 }),
    /train\.jsonl:9: unknown label "meh"/,
  );
  const skipped = await encodeClassification(bert, [{ text: 'x', label: 'meh' }], { labels, maxLength: 8, skipUnknownLabels: true });
  assert.equal(skipped.dropped, 1);
});

test('token classification: first subword labelled, the rest -100, specials -100; padding -100', async () => {
  const labels = new LabelSet(['O', 'B-LOC', 'I-LOC', 'B-ORG', 'I-ORG']);
  const sentence = { tokens: ['Unaffable', 'cat', 'New', 'York'], tags: ['B-ORG', 'O', 'B-LOC', 'I-LOC'] };
  const enc = await encodeTokenClassification(bert, [sentence], { labels, maxLength: 32 });
  const ex = enc.examples[0]!;
  assert.deepEqual(Array.from(ex.ids), [2, 8, 9, 10, 6, 17, 18, 3]);
  assert.deepEqual(Array.from(ex.labels), [-100, 3, -100, -100, 0, 1, 2, -100]);
  assert.deepEqual(Array.from(ex.wordIds), [-1, 0, 0, 0, 1, 2, 3, -1]);
  const all = await encodeTokenClassification(bert, [sentence], { labels, maxLength: 32, labelAllSubwords: true });
  assert.deepEqual(Array.from(all.examples[0]!.labels), [-100, 3, 4, 4, 0, 1, 2, -100]);
  const cut = await encodeTokenClassification(bert, [sentence], { labels, maxLength: 4 });
  assert.deepEqual(Array.from(cut.examples[0]!.labels), [-100, 3, -100, -100]);
  assert.equal(cut.truncated, 1);
  // Byte-level BPE: words after the first get their space back (Ġcat), so ids match the sentence.
  const g = await encodeTokenClassification(gpt2, [{ tokens: ['the', 'cat'], tags: ['O', 'B-ORG'] }], { labels, maxLength: 8 });
  assert.deepEqual(Array.from(g.examples[0]!.ids), [116, 257, 261]);
  assert.deepEqual(Array.from(g.examples[0]!.labels), [0, -100, 3]);
  const batch = collateTokenClassification([g.examples[0]!, ex], { padId: 0 });
  assert.deepEqual(Array.from(batch.labels.subarray(0, 8)), [0, -100, 3, -100, -100, -100, -100, -100]);
  assert.deepEqual(batch.labelsShape, [2, 8]);
  await assert.rejects(
    encodeTokenClassification(bert, [{ tokens: ['a'], tags: ['B-PER'], source: { file: 'ner.txt', line: 4 } }], { labels, maxLength: 8 }),
    /ner\.txt:4: unknown label "B-PER"/,
  );
});

test('chat SFT (ChatML): labels only on assistant content + <|im_end|>, token by token', async () => {
  const { tokenizer: tok } = await trainByteLevelBpe(['hello there, how are you? I am fine, thanks. The weather is nice today.'], { vocabSize: 300, chatTemplate: true });
  const messages = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'How are you?' },
    { role: 'assistant', content: 'Fine, thanks.' },
    { role: 'user', content: 'Weather?' },
    { role: 'assistant', content: 'Nice today.' },
  ];
  const { examples } = await encodeChat(tok, [{ messages }], { maxLength: 512 });
  const { ids, labels } = examples[0]!;
  const piece = async (s: string): Promise<number[]> => Array.from(await tok.encode(s, { addSpecialTokens: false }));
  const pre1 = await piece('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n');
  const ans1 = await piece('Fine, thanks.<|im_end|>');
  const mid = await piece('\n<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n');
  const ans2 = await piece('Nice today.<|im_end|>');
  const end = await piece('\n');
  assert.deepEqual(Array.from(ids), [...pre1, ...ans1, ...mid, ...ans2, ...end]);
  const no = (xs: number[]): number[] => xs.map(() => IGNORE_INDEX);
  assert.deepEqual(Array.from(labels), [...no(pre1), ...ans1, ...no(mid), ...ans2, ...no(end)]);

  const last = await encodeChat(tok, [{ messages }], { maxLength: 512, trainOn: 'last' });
  assert.deepEqual(Array.from(last.examples[0]!.labels), [...no(pre1), ...no(ans1), ...no(mid), ...ans2, ...no(end)]);
  const pr = await encodeChat(tok, [{ prompt: 'How are you?', response: 'Fine, thanks.', system: 'Be brief.' }], { maxLength: 512 });
  assert.deepEqual(Array.from(pr.examples[0]!.ids), [...pre1, ...ans1, ...end]);

  // Truncation: cutting the second answer is fine (counted); cutting the first is an error or a drop.
  const cut = await encodeChat(tok, [{ messages }], { maxLength: pre1.length + ans1.length + 2 });
  assert.equal(cut.truncated, 1);
  assert.deepEqual(Array.from(cut.examples[0]!.labels), [...no(pre1), ...ans1, IGNORE_INDEX, IGNORE_INDEX]);
  await assert.rejects(
    encodeChat(tok, [{ messages, source: src(12) }], { maxLength: pre1.length + 2 }),
    /train\.jsonl:12: the first assistant turn ends at token \d+, beyond maxLength/,
  );
  const dropped = await encodeChat(tok, [{ messages }, { messages: messages.slice(0, 3) }], { maxLength: pre1.length + 2, onOverflow: 'drop' });
  assert.deepEqual([dropped.examples.length, dropped.dropped], [0, 2]);
  await assert.rejects(encodeChat(tok, [{ messages: messages.slice(0, 2), source: src(3) }], { maxLength: 99 }), /train\.jsonl:3: the conversation has no assistant message/);

  const batch = collateChat([examples[0]!, pr.examples[0]!], { padId: tok.eosId! });
  assert.deepEqual(batch.shape, [2, ids.length]);
  assert.ok(batch.labels.subarray(ids.length + pre1.length + ans1.length + end.length).every((l) => l === IGNORE_INDEX));
});

test('chat SFT with a model template (bos, [INST], eos): the answer and </s> are the labels', async () => {
  const messages = [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'there' }];
  const { text, spans } = assistantSpans(llama, messages);
  assert.equal(text, '<s>[INST] hi [/INST]there</s>');
  assert.deepEqual(spans, [[text.indexOf('there'), text.length]]);
  const { examples } = await encodeChat(llama, [{ messages }], { maxLength: 64 });
  const { ids, labels } = examples[0]!;
  assert.equal(ids[0], 1);
  const kept = Array.from(ids).filter((_, i) => labels[i] !== IGNORE_INDEX);
  assert.equal(await llama.decode(kept), 'there</s>');
});

test('toTensors: i32 engine tensors with the batch shapes', () => {
  const batch = collateClassification([{ ids: Int32Array.from([2, 5, 3]), label: 1 }, { ids: Int32Array.from([2, 3]), label: 0 }], { padId: 0 });
  const t = toTensors(batch);
  assert.deepEqual([t.inputIds.shape, t.attentionMask.shape, t.labels.shape], [[2, 3], [2, 3], [2]]);
  assert.equal(t.inputIds.dtype, 'i32');
  assert.deepEqual(Array.from(t.inputIds.dataSync()), [2, 5, 3, 2, 3, 0]);
  assert.deepEqual(Array.from(t.labels.dataSync()), [1, 0]);
  for (const x of Object.values(t)) x.dispose();
});
