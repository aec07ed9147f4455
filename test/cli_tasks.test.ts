// End-to-end tests of the `loom` task recipes cli_e2e does not cover, spawned as a user runs them on
// tiny generated data: MLM pre-training of a BERT (WordPiece), NER fine-tuning + evaluate / predict,
// chat SFT + `loom chat` on piped stdin, and the report opened in headless Chromium (when installed).

import { describe, it, before, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { demoCorpus } from '../src/cli/demo_data.js';
import { jsonl, loom, loomWith, ok, okJson, readMetrics, rng, safetensorsKeys, suiteTempDir } from './cli_helpers.js';

const PER = ['Alice', 'Bob', 'Carol', 'Dave', 'Emma', 'Frank', 'Grace', 'Henry'];
const LOC = ['Paris', 'London', 'Berlin', 'Rome', 'Madrid', 'Oslo', 'Vienna', 'Dublin'];
const TEMPLATES = [
  ['P', 'visited', 'L', 'yesterday'],
  ['P', 'met', 'P', 'in', 'L'],
  ['P', 'lives', 'in', 'L'],
  ['yesterday', 'P', 'went', 'to', 'L', 'with', 'P'],
  ['the', 'train', 'from', 'L', 'to', 'L', 'was', 'late'],
];

/** A learnable NER toy: known first names are B-PER, known city names B-LOC, the rest O. */
function nerSentences(n: number, seed: number): [string, string][][] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) =>
    TEMPLATES[i % TEMPLATES.length]!.map((w): [string, string] => (w === 'P' ? [PER[r(PER.length)]!, 'B-PER'] : w === 'L' ? [LOC[r(LOC.length)]!, 'B-LOC'] : [w, 'O'])),
  );
}
const conll = (s: [string, string][][]): string => s.map((x) => x.map(([w, t]) => `${w} ${t}`).join('\n')).join('\n\n') + '\n';

const ANSWER = 'I am a happy toaster.';
const QUESTIONS = ['what colour is the sky', 'tell me a joke', 'how are you today', 'where is the printer', 'is the battery good', 'what time is it', 'do you like music', 'can you help me'];

const CHROMIUM = process.env.LOOM_CHROMIUM ?? '/usr/bin/chromium';

describe('loom task recipes end to end', () => {
  const p = suiteTempDir('loom-tasks-');
  let nerTrain: [string, string][][] = [];
  before(() => {
    writeFileSync(p('corpus.txt'), demoCorpus(300));
    nerTrain = nerSentences(80, 1);
    writeFileSync(p('ner_train.conll'), conll(nerTrain));
    writeFileSync(p('ner_dev.conll'), conll(nerSentences(30, 2)));
    writeFileSync(p('ner_words.txt'), nerTrain.map((s) => s.map(([w]) => w).join(' ')).join('\n\n') + '\n');
    const chats = Array.from({ length: 40 }, (_, i) => ({
      messages: [
        { role: 'user', content: `${QUESTIONS[i % QUESTIONS.length]!}${i % 3 ? '?' : ' please?'}` },
        { role: 'assistant', content: ANSWER },
      ],
    }));
    writeFileSync(p('chat.jsonl'), jsonl(chats));
    writeFileSync(p('chat_words.txt'), chats.map((c) => c.messages.map((m) => m.content).join('\n')).join('\n\n') + '\n');
    writeFileSync(p('bert.json'), JSON.stringify({ num_hidden_layers: 1, hidden_size: 32, num_attention_heads: 2, intermediate_size: 64, max_position_embeddings: 64 }));
    writeFileSync(p('gpt2.json'), JSON.stringify({ n_layer: 1, n_embd: 32, n_head: 2, n_inner: 64, n_positions: 64 }));
  });

  it('pretrain --objective mlm: a BERT with a WordPiece tokenizer, HF layout, eval loss and finite perplexity', () => {
    const tok = okJson<{ vocab_size: number }>('tokenizer', 'train', '--type', 'wordpiece', '--vocab-size', '300', '--out', p('wp'), p('corpus.txt'), p('ner_words.txt'), '--json');
    assert.equal(tok.vocab_size, 300);
    const tcfg = JSON.parse(readFileSync(p('wp', 'tokenizer.json'), 'utf8')) as { model: { type: string }; normalizer: { lowercase: boolean } };
    assert.equal(tcfg.model.type, 'WordPiece');
    assert.equal(tcfg.normalizer.lowercase, true);
    // --cased keeps case (NER), and is refused for byte-level BPE, which always keeps it.
    okJson('tokenizer', 'train', '--type', 'wordpiece', '--cased', '--vocab-size', '300', '--out', p('wp-cased'), p('ner_words.txt'), '--json');
    const cased = JSON.parse(readFileSync(p('wp-cased', 'tokenizer.json'), 'utf8')) as { normalizer: { lowercase: boolean; strip_accents: boolean } };
    assert.deepEqual([cased.normalizer.lowercase, cased.normalizer.strip_accents], [false, false]);
    const bad = loom('tokenizer', 'train', '--type', 'bpe', '--cased', '--vocab-size', '300', '--out', p('x'), p('ner_words.txt'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--cased is for --type wordpiece/);
    const init = okJson<{ architecture: string }>('init', '--arch', 'bert', '--preset', 'tiny', '--config', p('bert.json'), '--tokenizer', p('wp'), '--out', p('binit'), '--json');
    assert.equal(init.architecture, 'BertForMaskedLM');

    const pre = okJson<{ steps: number; eval: { loss: number; perplexity: number } }>('pretrain', '--model', p('binit'), '--objective', 'mlm', '--data', p('corpus.txt'), '--out', p('bert'), '--steps', '8', '--batch-size', '4', '--seq-len', '32', '--lr', '3e-3', '--log-every', '2', '--eval-every', '4', '--json');
    assert.equal(pre.steps, 8);
    assert.ok(Number.isFinite(pre.eval.perplexity) && pre.eval.perplexity > 1 && pre.eval.perplexity < 600, `perplexity ${pre.eval.perplexity}`);
    assert.ok(Math.abs(Math.log(pre.eval.perplexity) - pre.eval.loss) < 1e-6, 'perplexity = exp(eval loss)');

    // The run folder is a Hugging Face BERT folder.
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'metrics.jsonl', 'training_config.json']) assert.ok(existsSync(p('bert', f)), f);
    assert.ok(existsSync(p('bert', 'checkpoints', 'checkpoint-8')));
    const config = JSON.parse(readFileSync(p('bert', 'config.json'), 'utf8')) as { model_type: string; architectures: string[]; vocab_size: number; hidden_size: number };
    assert.equal(config.model_type, 'bert');
    assert.deepEqual(config.architectures, ['BertForMaskedLM']);
    assert.equal(config.vocab_size, 300);
    assert.equal(config.hidden_size, 32);
    const keys = safetensorsKeys(p('bert', 'model.safetensors'));
    assert.ok(keys.includes('bert.embeddings.word_embeddings.weight'), keys.join(' '));
    assert.ok(keys.includes('bert.encoder.layer.0.attention.self.query.weight'));
    assert.ok(keys.some((k) => k.startsWith('cls.predictions.')), 'MLM head in HF names');

    const evals = readMetrics(p('bert')).filter((l) => l.split === 'eval');
    assert.deepEqual(evals.map((l) => l.step), [4, 8]);
    for (const l of evals) assert.ok(Number.isFinite(l.loss) && Number.isFinite(l.perplexity as number) && l.loss > 0, JSON.stringify(l));

    // The saved model evaluates as an MLM (masked positions scored, finite).
    const m = okJson<{ loss: number; perplexity: number; examples: number }>('evaluate', '--model', p('bert'), '--task', 'mlm', '--data', p('corpus.txt'), '--seq-len', '32', '--json');
    assert.ok(m.examples > 0 && Number.isFinite(m.perplexity) && m.perplexity < 600, JSON.stringify(m));
  });

  it('finetune --task ner on CoNLL, then evaluate (entity F1 beats a baseline) and predict (entities)', () => {
    const r = okJson<{ steps: number; eval: { f1: number } }>('finetune', '--model', p('bert'), '--task', 'ner', '--train', p('ner_train.conll'), '--eval', p('ner_dev.conll'), '--out', p('ner'), '--epochs', '10', '--batch-size', '8', '--seq-len', '32', '--lr', '5e-3', '--eval-every', '20', '--json');
    assert.equal(r.steps, 100);
    const config = JSON.parse(readFileSync(p('ner', 'config.json'), 'utf8')) as { architectures: string[]; id2label: Record<string, string> };
    assert.deepEqual(config.architectures, ['BertForTokenClassification']);
    assert.deepEqual(Object.values(config.id2label).sort(), ['B-LOC', 'B-PER', 'O']);
    assert.ok(safetensorsKeys(p('ner', 'model.safetensors')).includes('classifier.weight'));

    const m = okJson<{ f1: number; precision: number; recall: number; PER_f1: number; LOC_f1: number; examples: number }>('evaluate', '--model', p('ner'), '--task', 'ner', '--data', p('ner_train.conll'), '--json');
    assert.equal(m.examples, 80);
    // Baselines on the training set: all-O scores entity F1 0; even given the gold spans, typing
    // every entity as the most frequent type scores (its share) F1.
    const types = nerTrain.flatMap((s) => s.map(([, t]) => t).filter((t) => t !== 'O'));
    const majority = Math.max(...['B-PER', 'B-LOC'].map((t) => types.filter((x) => x === t).length)) / types.length;
    assert.ok(m.f1 > Math.max(majority, 0.5) + 0.2, `entity F1 ${m.f1} vs majority-type baseline ${majority.toFixed(3)}`);
    assert.ok(m.PER_f1 > 0.5 && m.LOC_f1 > 0.5, JSON.stringify(m));

    const text = 'Grace met Henry in Oslo';
    const pred = okJson<{ predictions: { entities: { type: string; text: string }[]; tags: string[] }[] }>('predict', '--model', p('ner'), '--text', text, '--json');
    assert.equal(pred.predictions.length, 1);
    assert.deepEqual(pred.predictions[0]!.entities.map((e) => `${e.type}:${e.text}`), ['PER:Grace', 'PER:Henry', 'LOC:Oslo']);
    assert.deepEqual(pred.predictions[0]!.tags, ['B-PER', 'O', 'B-PER', 'O', 'B-LOC']);
    // The plain output lists the entities before the text.
    assert.equal(ok('predict', '--model', p('ner'), '--text', text).trim(), `[PER: Grace] [PER: Henry] [LOC: Oslo]\t${text}`);
  });

  it('finetune --task chat on messages JSONL, then loom chat (piped stdin, several turns) and generate answer with the learnt reply', () => {
    ok('tokenizer', 'train', '--type', 'bpe', '--vocab-size', '300', '--chat-template', '--out', p('ctok'), p('corpus.txt'), p('chat_words.txt'));
    const tc = JSON.parse(readFileSync(p('ctok', 'tokenizer_config.json'), 'utf8')) as { chat_template?: string };
    assert.match(tc.chat_template ?? '', /<\|im_start\|>/);
    ok('init', '--arch', 'gpt2', '--preset', 'tiny', '--config', p('gpt2.json'), '--tokenizer', p('ctok'), '--out', p('cinit'));
    const r = okJson<{ steps: number; eval: { perplexity: number } }>('finetune', '--model', p('cinit'), '--task', 'chat', '--train', p('chat.jsonl'), '--eval', p('chat.jsonl'), '--out', p('chat'), '--epochs', '20', '--batch-size', '8', '--seq-len', '64', '--lr', '1e-2', '--json');
    assert.equal(r.steps, 100);
    // Only the assistant turns are scored: a learnt fixed reply has perplexity close to 1.
    assert.ok(r.eval.perplexity < 2, `chat perplexity ${r.eval.perplexity}`);
    const config = JSON.parse(readFileSync(p('chat', 'config.json'), 'utf8')) as { architectures: string[] };
    assert.deepEqual(config.architectures, ['GPT2LMHeadModel']);
    assert.ok(existsSync(p('chat', 'tokenizer_config.json')));

    // Conversations whose reply does not fit in --seq-len are left out, and the run says so.
    const short = loomWith({}, 'finetune', '--model', p('cinit'), '--task', 'chat', '--train', p('chat.jsonl'), '--out', p('chat-short'), '--steps', '1', '--batch-size', '8', '--seq-len', '48');
    assert.equal(short.code, 0, short.stderr);
    assert.match(short.stderr, /chat\.jsonl: \d+ examples left out \(the first reply does not fit in --seq-len 48\)/);

    // Three turns through the chat template: the history grows past the model's 64 positions, so
    // the oldest exchanges must be dropped rather than failing the session.
    const c = loomWith({ input: 'what colour is the sky?\ntell me a joke?\nhow are you today?\n' }, 'chat', '--model', p('chat'), '--temperature', '0', '--max-new-tokens', '20');
    assert.equal(c.code, 0, c.stderr);
    const replies = c.stdout.trim().split('\n');
    assert.equal(replies.length, 3, c.stdout);
    for (const reply of replies) assert.match(reply, /happy toaster/, c.stdout);
    assert.doesNotMatch(c.stdout, /<\|im_(start|end)\|>/, 'special tokens are not printed');

    // generate on the template's own text continues with the assistant's reply.
    const g = okJson<{ text: string; tokens: number }>('generate', '--model', p('chat'), '--prompt', '<|im_start|>user\nwhere is the printer?<|im_end|>\n<|im_start|>assistant\n', '--temperature', '0', '--max-new-tokens', '12', '--json');
    assert.ok(g.tokens >= 1 && g.tokens <= 12);
    assert.match(g.text, /toaster/, g.text);
  });

  it('report of the NER run: loss, LR and eval-metric charts, per-entity F1', () => {
    ok('report', p('ner'));
    const html = readFileSync(p('ner', 'report.html'), 'utf8');
    for (const t of ['Loss', 'Learning rate', 'Evaluation metrics']) assert.match(html, new RegExp(`<figcaption>${t}</figcaption>`));
    assert.match(html, /Per-entity F1/);
    assert.doesNotMatch(html, /<script|<link|src="http/);
  });

  it('report renders in headless Chromium: every chart has drawn paths', (t: TestContext) => {
    if (!existsSync(CHROMIUM)) {
      if (process.env.LOOM_REQUIRE_CHROMIUM === '1') assert.fail(`${CHROMIUM} not found and LOOM_REQUIRE_CHROMIUM=1`);
      t.skip(`${CHROMIUM} not installed (apt-get install chromium; LOOM_REQUIRE_CHROMIUM=1 makes this a failure)`);
      return;
    }
    const report = p('ner', 'report.html');
    if (!existsSync(report)) ok('report', p('ner'));
    // A copy of the report with a probe script: the browser's own layout of each chart (the report
    // itself has no scripts) is written into the DOM that --dump-dom prints.
    const probe = `<script>
const figs = [...document.querySelectorAll('figure')].map((f) => {
  const svg = f.querySelector('svg');
  const box = svg.getBoundingClientRect();
  const paths = [...svg.querySelectorAll('path.series')].map((p) => ({ length: p.getTotalLength(), box: p.getBBox() }));
  return { title: f.querySelector('figcaption').textContent, ns: svg.namespaceURI, width: box.width, height: box.height, paths: paths.map((p) => ({ length: p.length, w: p.box.width, h: p.box.height, x: p.box.x, y: p.box.y })) };
});
const out = document.createElement('pre');
out.id = 'probe';
out.textContent = JSON.stringify(figs);
document.body.appendChild(out);
</script>`;
    const probePath = p('ner', 'report_probe.html');
    copyFileSync(report, probePath);
    writeFileSync(probePath, readFileSync(probePath, 'utf8').replace('</body>', `${probe}</body>`));
    mkdirSync(p('chromium-profile'), { recursive: true });
    const r = spawnSync(
      CHROMIUM,
      ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${p('chromium-profile')}`, '--dump-dom', pathToFileURL(probePath).href],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(r.status, 0, `chromium failed (${r.status} ${r.signal ?? ''}):\n${r.stderr.slice(-2000)}`);
    const m = /<pre id="probe">([\s\S]*?)<\/pre>/.exec(r.stdout);
    assert.ok(m, `no probe output in the DOM:\n${r.stdout.slice(0, 2000)}`);
    const unescape = (s: string): string => s.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    const figs = JSON.parse(unescape(m[1]!)) as { title: string; ns: string; width: number; height: number; paths: { length: number; w: number; h: number; x: number; y: number }[] }[];
    assert.deepEqual(figs.map((f) => f.title), ['Loss', 'Learning rate', 'Evaluation metrics']);
    for (const f of figs) {
      assert.equal(f.ns, 'http://www.w3.org/2000/svg', f.title);
      assert.ok(f.width === 560 && f.height === 240, `${f.title}: laid out ${f.width}x${f.height}`);
      assert.ok(f.paths.length > 0, `${f.title}: no series`);
      // At least one drawn line per chart, inside the plot area.
      const drawn = f.paths.filter((q) => q.length > 10 && q.w > 0);
      assert.ok(drawn.length > 0, `${f.title}: no path with data ${JSON.stringify(f.paths)}`);
      for (const q of drawn) assert.ok(q.x >= 39 && q.y >= 39 && q.x + q.w <= 521 && q.y + q.h <= 201, `${f.title}: path outside the plot ${JSON.stringify(q)}`);
    }
  });
});
