// Readers' edge cases: quoted CSV fields with newlines, BOM, CRLF, empty lines, a missing column,
// malformed JSONL / CSV rows (file:line, skipBadRows), CoNLL separators, Markdown, labels.

import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { LabelSet } from '../src/data/labels.js';
import { toChatRecord, toClassificationRecord } from '../src/data/records.js';
import { readConll, iob1ToIob2 } from '../src/data/readers/conll.js';
import { readCsv } from '../src/data/readers/csv.js';
import { readJsonl } from '../src/data/readers/jsonl.js';
import { cleanMarkdown, readMarkdownFolder } from '../src/data/readers/markdown.js';
import { readTextFiles } from '../src/data/readers/text.js';
import { tempDir } from './data_fixtures.js';

test('CSV: BOM, CRLF, quoted commas, quotes and newlines in fields, empty lines, line numbers', async () => {
  using tmp = tempDir();
  const file = join(tmp.dir, 'reviews.csv');
  writeFileSync(file, '\uFEFFtext,label\r\n"good, really ""good""",pos\r\n\r\n"two\r\nlines",neg\r\nplain,1\r\nhe said "hi",pos');
  const rows = await readCsv(file, { columns: ['text', 'label'] }).toArray();
  assert.deepEqual(rows.map((r) => r.row), [
    { text: 'good, really "good"', label: 'pos' },
    { text: 'two\nlines', label: 'neg' },
    { text: 'plain', label: '1' },
    { text: 'he said "hi"', label: 'pos' },
  ]);
  assert.deepEqual(rows.map((r) => r.source.line), [2, 4, 6, 7]);
});

test('CSV: missing column names the file and lists the columns', async () => {
  using tmp = tempDir();
  const file = join(tmp.dir, 'a.csv');
  writeFileSync(file, 'sentence,target\nx,1\n');
  await assert.rejects(readCsv(file, { columns: ['text', 'label'] }).toArray(), (err: Error) => {
    assert.match(err.message, /a\.csv:1: column "text", "label" not found; the columns are "sentence", "target"/);
    return true;
  });
});

test('CSV: a malformed row fails with file:line, or is skipped and counted', async () => {
  using tmp = tempDir();
  const file = join(tmp.dir, 'b.csv');
  writeFileSync(file, 'text,label\nok,1\nno label\n"multi\nline",0\nthree,fields,here\nlast,1\n');
  await assert.rejects(readCsv(file).toArray(), /b\.csv:3: wrong number of fields/);
  const reader = readCsv(file, { skipBadRows: true });
  const rows = await reader.toArray();
  assert.deepEqual(rows.map((r) => [r.row.text, r.source.line]), [['ok', 2], ['multi\nline', 4], ['last', 7]]);
  assert.equal(reader.report.skipped, 2);
  assert.match(reader.report.examples[1]!, /b\.csv:6:/);
});

test('TSV by extension, no header (columns by index), unclosed quote at the end', async () => {
  using tmp = tempDir();
  const tsv = join(tmp.dir, 'c.tsv');
  writeFileSync(tsv, 'a b\t0\nc, d\t1\n');
  const rows = await readCsv(tsv, { header: false, columns: ['0', '1'] }).toArray();
  assert.deepEqual(rows.map((r) => r.row), [{ 0: 'a b', 1: '0' }, { 0: 'c, d', 1: '1' }]);
  const bad = join(tmp.dir, 'd.csv');
  writeFileSync(bad, 'text,label\n"never closed,1\n');
  await assert.rejects(readCsv(bad).toArray(), /d\.csv:\d+: a quoted field is not closed/);
  await assert.rejects(readCsv(join(tmp.dir, 'missing.csv')).toArray(), /missing\.csv: no such file/);
});

test('JSONL: blank lines, CRLF, BOM; malformed line -> file:line; skipBadRows counts', async () => {
  using tmp = tempDir();
  const file = join(tmp.dir, 'data.jsonl');
  writeFileSync(file, '\uFEFF{"text":"a","label":1}\r\n\r\n{"text":"b","label":"x"}\n{"text": oops}\n[1,2]\n{"label":0}\n{"text":"c","label":0}');
  await assert.rejects(readJsonl(file).toArray(), /data\.jsonl:4: invalid JSON/);
  const reader = readJsonl(file, { skipBadRows: true, require: ['text'] });
  const rows = await reader.toArray();
  assert.deepEqual(rows.map((r) => [r.value.text, r.source.line]), [['a', 1], ['b', 3], ['c', 7]]);
  assert.equal(reader.report.skipped, 3);
  assert.match(reader.report.examples[1]!, /data\.jsonl:5: expected a JSON object, got an array/);
  assert.match(reader.report.examples[2]!, /data\.jsonl:6: missing field "text"/);
});

test('CoNLL: -DOCSTART-, blank lines, columns by index, IOB2 check and IOB1 conversion', async () => {
  using tmp = tempDir();
  const file = join(tmp.dir, 'ner.txt');
  writeFileSync(file, [
    '-DOCSTART- -X- -X- O', '',
    'EU NNP B-NP B-ORG', 'rejects VBZ B-VP O', 'German JJ B-NP B-MISC', '',
    '', 'Peter NNP B-NP B-PER', 'Blackburn NNP I-NP I-PER', '',
    '-DOCSTART- -X- -X- O', '', 'Paris NNP B-NP B-LOC',
  ].join('\r\n'));
  const sents = await readConll(file).toArray();
  assert.deepEqual(sents.map((s) => [s.tokens, s.tags, s.doc, s.source.line]), [
    [['EU', 'rejects', 'German'], ['B-ORG', 'O', 'B-MISC'], 0, 3],
    [['Peter', 'Blackburn'], ['B-PER', 'I-PER'], 0, 8],
    [['Paris'], ['B-LOC'], 1, 13],
  ]);
  const pos = await readConll(file, { tagColumn: 1, tagScheme: 'raw' }).toArray();
  assert.deepEqual(pos[0]!.tags, ['NNP', 'VBZ', 'JJ']);

  const iob1 = join(tmp.dir, 'iob1.txt');
  writeFileSync(iob1, 'Peter I-PER\nBlackburn I-PER\nvisits O\nNew I-LOC\nYork I-LOC\nParis B-LOC\n');
  await assert.rejects(readConll(iob1).toArray(), /iob1\.txt:1: tag I-PER follows the sentence start: not IOB2/);
  const converted = await readConll(iob1, { tagScheme: 'iob1' }).toArray();
  assert.deepEqual(converted[0]!.tags, ['B-PER', 'I-PER', 'O', 'B-LOC', 'I-LOC', 'B-LOC']);
  assert.deepEqual(iob1ToIob2(['I-A', 'I-B', 'B-B', 'I-B', 'O']), ['B-A', 'B-B', 'B-B', 'I-B', 'O']);

  const bad = join(tmp.dir, 'bad.txt');
  writeFileSync(bad, 'a O\nb\nc O\n\nd B-X\n');
  await assert.rejects(readConll(bad).toArray(), /bad\.txt:2: expected a token \(column 0\) and a tag \(column -1\), got 1 column/);
  const reader = readConll(bad, { skipBadRows: true });
  assert.deepEqual((await reader.toArray()).map((s) => s.tokens), [['d']]);
  assert.equal(reader.report.skipped, 1);
});

test('plain text: whole files in pieces (cut before a visible line start), paragraphs, lines', async () => {
  using tmp = tempDir();
  const file = join(tmp.dir, 'a.txt');
  writeFileSync(file, '\uFEFFFirst line\r\n  indented\r\n\r\nSecond para\r\nmore\nlast');
  const whole = await readTextFiles(file).toArray();
  assert.deepEqual(whole.map((d) => [d.text, d.continues]), [['First line\n  indented\n\nSecond para\nmore\nlast\n', false]]);
  const pieces = await readTextFiles(file, { pieceChars: 5 }).toArray();
  assert.equal(pieces.map((p) => p.text).join(''), whole[0]!.text);
  assert.deepEqual(pieces.map((p) => [p.source.line, p.continues]), [[1, true], [4, true], [5, true], [6, false]]);
  assert.ok(pieces.slice(1).every((p) => /^\S/.test(p.text)));
  const paras = await readTextFiles(file, { unit: 'paragraph' }).toArray();
  assert.deepEqual(paras.map((p) => [p.text, p.source.line]), [['First line\n  indented', 1], ['Second para\nmore\nlast', 4]]);
  const lines = await readTextFiles(file, { unit: 'line' }).toArray();
  assert.equal(lines.length, 5);
});

test('Markdown: front matter to title, HTML comments dropped, code fences kept / unfenced / dropped', async () => {
  const md = '---\r\ntitle: "Type Guards"\r\nlayout: docs\r\n---\r\nIntro <!-- editor note -->text.\r\n\r\n\r\n\r\n```ts\r\n// <!-- not a comment -->\r\nlet x = 1;\r\n```\r\nAfter.\r\n~~~\r\nunclosed';
  assert.deepEqual(cleanMarkdown(md), {
    text: '# Type Guards\n\nIntro text.\n\n```ts\n// <!-- not a comment -->\nlet x = 1;\n```\nAfter.\n~~~\nunclosed',
    line: 5,
  });
  assert.equal(cleanMarkdown(md, { codeBlocks: 'unfence', frontMatter: 'strip' }).text, 'Intro text.\n\n// <!-- not a comment -->\nlet x = 1;\nAfter.\nunclosed');
  assert.equal(cleanMarkdown(md, { codeBlocks: 'drop' }).text, '# Type Guards\n\nIntro text.\n\nAfter.');
  assert.equal(cleanMarkdown('# Own heading\n---\nnot front matter').text, '# Own heading\n---\nnot front matter');

  using tmp = tempDir();
  mkdirSync(join(tmp.dir, 'b', 'node_modules'), { recursive: true });
  writeFileSync(join(tmp.dir, 'b', 'z.md'), md);
  writeFileSync(join(tmp.dir, 'a.mdx'), 'A');
  writeFileSync(join(tmp.dir, 'b', 'node_modules', 'x.md'), 'skip');
  writeFileSync(join(tmp.dir, 'c.png'), 'skip');
  writeFileSync(join(tmp.dir, 'empty.md'), '---\ntitle:\n---\n');
  const docs = await readMarkdownFolder(tmp.dir).toArray();
  assert.deepEqual(docs.map((d) => [d.source.file.slice(tmp.dir.length + 1), d.source.line]), [['a.mdx', 1], [join('b', 'z.md'), 5]]);
  await assert.rejects(readMarkdownFolder(join(tmp.dir, 'nope')).toArray(), /nope: not a folder/);
});

test('labels: discovered in a stable order (ints by value, strings sorted, NER O first); unknown label names file:line', () => {
  assert.deepEqual(LabelSet.discover(['pos', 'neg', 'pos', 'neutral']).names, ['neg', 'neutral', 'pos']);
  const ints = LabelSet.discover([1, '0', 2, 10]);
  assert.deepEqual(ints.names, ['0', '1', '2', '10']);
  assert.equal(ints.id(1), 1);
  assert.equal(ints.id('10'), 3);
  const ner = LabelSet.discover(['O', 'I-PER', 'B-ORG', 'B-PER', 'B-LOC', 'I-ORG'], 'ner');
  assert.deepEqual(ner.names, ['O', 'B-LOC', 'B-ORG', 'I-ORG', 'B-PER', 'I-PER']);
  const set = LabelSet.discover(['neg', 'pos']);
  assert.throws(() => set.id('meh', { file: 'dev.csv', line: 7 }), /dev\.csv:7: unknown label "meh"; the labels are neg, pos/);
  assert.deepEqual(set.toConfig(), { id2label: { 0: 'neg', 1: 'pos' }, label2id: { neg: 0, pos: 1 } });
  assert.deepEqual(LabelSet.fromConfig(set.toConfig()).names, set.names);
  assert.throws(() => LabelSet.discover([1.5]), /must be integers/);
});

test('records: JSONL / CSV rows to classification and chat records, errors with file:line', async () => {
  using tmp = tempDir();
  const file = join(tmp.dir, 'chat.jsonl');
  writeFileSync(file, [
    JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] }),
    JSON.stringify({ instruction: 'Add', output: '2' }),
    JSON.stringify({ messages: [{ role: 'user' }] }),
    JSON.stringify({ sentence: 'good', label: 1 }),
  ].join('\n'));
  const rows = await readJsonl(file).toArray();
  assert.deepEqual(toChatRecord(rows[0]!), { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }], source: { file, line: 1 } });
  assert.deepEqual(toChatRecord(rows[1]!, { prompt: 'instruction', response: 'output', system: 'sys' }), { prompt: 'Add', response: '2', system: undefined, source: { file, line: 2 } });
  assert.throws(() => toChatRecord(rows[2]!), /chat\.jsonl:3: message 0 is not \{ role: string, content: string \}/);
  assert.throws(() => toChatRecord(rows[3]!), /chat\.jsonl:4: no field "prompt"; the record has sentence, label/);
  assert.deepEqual(toClassificationRecord(rows[3]!, { text: 'sentence', label: 'label' }), { text: 'good', textPair: undefined, label: 1, source: { file, line: 4 } });
  assert.throws(() => toClassificationRecord(rows[3]!, { text: 'sentence', label: 'y' }), /chat\.jsonl:4: no label field "y"/);
  const csv = join(tmp.dir, 'a.csv');
  writeFileSync(csv, 'text,label\n"a, b",neg\n');
  const [row] = await readCsv(csv).toArray();
  assert.deepEqual(toClassificationRecord(row!, { text: 'text', label: 'label' }).label, 'neg');
});
