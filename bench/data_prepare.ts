// Benchmark of `loom data prepare` (prepareCorpus): MB/s and peak RSS on tinyshakespeare and, with
// --big, a generated 200 MB corpus, beside the `tokenizers` library's own encodeBatch speed.

import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTextFiles } from '../src/data/readers/text.js';
import { listFiles } from '../src/data/readers/markdown.js';
import { prepareCorpus } from '../src/data/shards.js';
import { permutation } from '../src/data/rng.js';
import { LoomTokenizer } from '../src/io/tokenizer.js';
import { trainByteLevelBpe } from '../src/io/tokenizer_train.js';

const HERE = fileURLToPath(import.meta.url);
// dist/bench/ -> the repository's sibling shared/data/ (LOOM_BENCH_DATA overrides).
const DATA = process.env.LOOM_BENCH_DATA ?? fileURLToPath(new URL('../../../shared/data/', import.meta.url));
const SHAKESPEARE = join(DATA, 'tinyshakespeare', 'input.txt');
const WORK = '/tmp/loom-bench-data';

/**
 * `npm run bench -- data [--big] [--vocab N] [--big-mb N]`. Each measurement runs in a fresh child
 * process so its peak RSS is its own. Prints one JSON line per case.
 */
export async function benchDataPrepare(argv: string[]): Promise<void> {
  const flag = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const vocab = Number(flag('--vocab') ?? 8000);
  mkdirSync(WORK, { recursive: true });

  // The tokenizer: byte-level BPE trained on tinyshakespeare (this is also the training benchmark).
  const text = readFileSync(SHAKESPEARE, 'utf8');
  const trained = await trainByteLevelBpe([text], { vocabSize: vocab });
  const tokDir = join(WORK, `tokenizer-${vocab}`);
  await trained.tokenizer.save(tokDir);
  console.log(JSON.stringify({ bench: 'data', case: 'train_bpe', corpus: 'tinyshakespeare', mb: mb(text.length), vocab: trained.stats.vocabSize, seconds: round(trained.stats.seconds) }));

  const corpora = [{ name: 'tinyshakespeare', file: SHAKESPEARE }];
  if (argv.includes('--big')) corpora.push({ name: 'generated', file: await generateCorpus(Number(flag('--big-mb') ?? 200)) });
  for (const c of corpora) {
    const ref = child(['reference', tokDir, c.file]);
    const loom = child(['prepare', tokDir, c.file]);
    console.log(JSON.stringify({
      bench: 'data',
      case: 'prepare',
      corpus: c.name,
      mb: round(statSync(c.file).size / 1e6),
      tokens: loom.tokens,
      loom_mb_s: loom.mbps,
      loom_peak_rss_mb: loom.rssMb,
      tokenizers_encode_batch_mb_s: ref.mbps,
      tokenizers_peak_rss_mb: ref.rssMb,
      slowdown_vs_tokenizers: round(ref.mbps / loom.mbps), // the target: <= 1.2
    }));
  }
}

interface ChildResult {
  mbps: number;
  rssMb: number;
  tokens: number;
}

function child(args: string[]): ChildResult {
  const r = spawnSync(process.execPath, [HERE, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`bench child ${args[0]} failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult;
}

/**
 * The reference: the same pieces the reader yields, encoded by `tokenizers` in batches of the same
 * size, ids taken out of each Encoding; only the encodeBatch + getIds time counts.
 */
async function runReference(tokDir: string, file: string): Promise<ChildResult> {
  const tok = await LoomTokenizer.load(tokDir);
  const bytes = statSync(file).size;
  let batch: string[] = [];
  let size = 0;
  let seconds = 0;
  let tokens = 0;
  const flush = async (): Promise<void> => {
    const t0 = performance.now();
    const encs = await tok.native.encodeBatch(batch, { addSpecialTokens: false });
    for (const e of encs) tokens += e.getIds().length;
    seconds += (performance.now() - t0) / 1000;
    batch = [];
    size = 0;
  };
  for await (const piece of readTextFiles(file)) {
    batch.push(piece.text);
    size += piece.text.length;
    if (size >= 1 << 20) await flush();
  }
  if (batch.length > 0) await flush();
  return { mbps: round(bytes / 1e6 / seconds), rssMb: rssMb(), tokens };
}

async function runPrepare(tokDir: string, file: string): Promise<ChildResult> {
  const tokenizer = await LoomTokenizer.load(tokDir);
  const outDir = join(WORK, 'shards');
  const t0 = performance.now();
  const m = await prepareCorpus({ tokenizer, documents: readTextFiles(file), outDir, validationFraction: 0.01 });
  const seconds = (performance.now() - t0) / 1000;
  rmSync(outDir, { recursive: true, force: true });
  return { mbps: round(statSync(file).size / 1e6 / seconds), rssMb: rssMb(), tokens: m.splits.train.tokens + m.splits.validation.tokens };
}

/** About `targetMb` of text: the shared corpora's paragraphs, shuffled and repeated. */
async function generateCorpus(targetMb: number): Promise<string> {
  const file = join(WORK, `generated-${targetMb}mb.txt`);
  if (existsSync(file) && statSync(file).size >= targetMb * 1e6) return file;
  const sources = [SHAKESPEARE, ...(await listFiles(join(DATA, 'typescript-docs'), ['.md'])), ...(await listFiles(join(DATA, 'eslint-docs'), ['.md']))];
  const paragraphs = sources.flatMap((f) => readFileSync(f, 'utf8').split(/\n\s*\n/));
  const out = createWriteStream(file);
  let written = 0;
  for (let pass = 0; written < targetMb * 1e6; pass++) {
    for (const i of permutation(paragraphs.length, pass)) {
      const p = `${paragraphs[i]!}\n\n`;
      if (!out.write(p)) await new Promise<void>((r) => out.once('drain', () => r()));
      written += Buffer.byteLength(p);
      if (written >= targetMb * 1e6) break;
    }
  }
  await new Promise<void>((r) => out.end(() => r()));
  return file;
}

const round = (x: number): number => Math.round(x * 100) / 100;
const mb = (chars: number): number => round(chars / 1e6);
const rssMb = (): number => round((process.resourceUsage().maxRSS * 1024) / 1e6);

if (process.argv[1] === HERE) {
  const [mode, tokDir, file] = process.argv.slice(2);
  if (mode === 'reference' || mode === 'prepare') {
    const result = await (mode === 'reference' ? runReference : runPrepare)(tokDir!, file!);
    console.log(JSON.stringify(result));
  } else {
    await benchDataPrepare(process.argv.slice(2));
  }
}
