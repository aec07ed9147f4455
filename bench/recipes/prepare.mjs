// Derived files for the recipes (bench/recipes/*.sh): deterministic, seeded splits and format
// conversions of the raw files in ../shared/data, written to the recipe's work dir (never the repo).
// Usage: node prepare.mjs <command> ...   (each command says its arguments below). Needs the build (dist/).

import { copyFileSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { DataRng } from '../../dist/src/data/rng.js';

/** Fisher-Yates with the project's seeded data generator, so every split is the same on every machine. */
function shuffle(items, seed) {
  const r = new DataRng(seed);
  for (let i = items.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

const jsonl = (rows) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const write = (file, text) => (mkdirSync(dirname(file), { recursive: true }), writeFileSync(file, text));

function filesUnder(dir, ext) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p, ext));
    else if (e.name.endsWith(ext)) out.push(p);
  }
  return out.sort();
}

const commands = {
  /** split-text IN FRACTION TRAIN VAL: the first FRACTION of the characters, then the rest (nanoGPT's split). */
  'split-text'(input, fraction, train, val) {
    const text = readFileSync(input, 'utf8');
    const n = Math.floor(text.length * Number(fraction));
    write(train, text.slice(0, n));
    write(val, text.slice(n));
    return { train_chars: n, val_chars: text.length - n };
  },

  /** split-files SRC FRACTION SEED TRAIN_DIR HELD_DIR: a seeded FRACTION of the .md files held out (copied, same relative paths). */
  'split-files'(src, fraction, seed, trainDir, heldDir) {
    const files = filesUnder(src, '.md');
    const held = new Set(shuffle([...files], Number(seed)).slice(0, Math.round(files.length * Number(fraction))));
    let heldBytes = 0;
    for (const f of files) {
      const to = join(held.has(f) ? heldDir : trainDir, relative(src, f));
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(f, to);
      if (held.has(f)) heldBytes += statSync(f).size;
    }
    return { files: files.length, held_out: held.size, held_out_bytes: heldBytes };
  },

  /** rt-polarity POS NEG SEED TRAIN TEST UNLABELLED: {text,label} JSONL, a seeded 90/10 split; the training texts without labels. */
  'rt-polarity'(pos, neg, seed, train, test, unlabelled) {
    const lines = (f) => readFileSync(f, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
    const rows = [...lines(pos).map((text) => ({ text, label: 'positive' })), ...lines(neg).map((text) => ({ text, label: 'negative' }))];
    shuffle(rows, Number(seed));
    const cut = Math.round(rows.length * 0.9);
    write(train, jsonl(rows.slice(0, cut)));
    write(test, jsonl(rows.slice(cut)));
    write(unlabelled, rows.slice(0, cut).map((r) => r.text).join('\n') + '\n');
    return { train: cut, test: rows.length - cut };
  },

  /** conll-text IN OUT: the sentences of a CoNLL file as plain text (words joined by spaces, one sentence a line). */
  'conll-text'(input, out) {
    const sentences = [];
    let words = [];
    for (const line of readFileSync(input, 'utf8').split('\n')) {
      const cols = line.trim().split(/\s+/);
      if (line.trim() === '' || cols[0] === '-DOCSTART-') {
        if (words.length) sentences.push(words.join(' '));
        words = [];
      } else words.push(cols[0]);
    }
    if (words.length) sentences.push(words.join(' '));
    write(out, sentences.join('\n') + '\n');
    return { sentences: sentences.length };
  },

  /**
   * sgd-chat DIR SEED WINDOW TRAIN HELD: SGD dialogues as {messages} JSONL (USER -> user, SYSTEM ->
   * assistant), a seeded 10% of the dialogues held out; each dialogue is cut into windows of WINDOW
   * messages (starting at a user turn) so that late turns fit a short context too.
   */
  'sgd-chat'(dir, seed, window, train, held) {
    const dialogues = [];
    for (const f of readdirSync(dir).filter((n) => /^dialogues_\d+\.json$/.test(n)).sort()) {
      for (const d of JSON.parse(readFileSync(join(dir, f), 'utf8'))) {
        const messages = d.turns.map((t) => ({ role: t.speaker === 'USER' ? 'user' : 'assistant', content: t.utterance }));
        dialogues.push({ id: d.dialogue_id, messages });
      }
    }
    shuffle(dialogues, Number(seed));
    const cut = Math.round(dialogues.length * 0.9);
    const w = Number(window);
    const windows = (ds) =>
      ds.flatMap((d) => {
        const out = [];
        for (let i = 0; i < d.messages.length; i += w) {
          const messages = d.messages.slice(i, i + w);
          if (messages[0].role === 'user' && messages.some((m) => m.role === 'assistant')) out.push({ id: `${d.id}#${i / w}`, messages });
        }
        return out;
      });
    const [a, b] = [windows(dialogues.slice(0, cut)), windows(dialogues.slice(cut))];
    write(train, jsonl(a));
    write(held, jsonl(b));
    return { train_dialogues: cut, held_out_dialogues: dialogues.length - cut, train_windows: a.length, held_out_windows: b.length };
  },

  /** get FILE KEY[.KEY...]: prints one field of a JSON file (or of the last line of a JSON-lines file) */
  get(file, path) {
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    let v = JSON.parse(lines[lines.length - 1]);
    for (const k of path.split('.')) v = v?.[k];
    if (v === undefined) throw new Error(`${file}: no field ${path}`);
    return v;
  },
};

const [name, ...args] = process.argv.slice(2);
const fn = commands[name];
if (!fn) {
  process.stderr.write(`usage: node prepare.mjs ${Object.keys(commands).join('|')} ...\n`);
  process.exit(2);
}
if (args.length < fn.length) {
  process.stderr.write(`prepare.mjs ${name}: expected ${fn.length} arguments, got ${args.length}\n`);
  process.exit(2);
}
const result = fn(...args);
process.stdout.write(`${typeof result === 'string' ? result : JSON.stringify(result)}\n`);
