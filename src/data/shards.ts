// Tokenized corpora on disk (`loom data prepare`): a corpus is tokenized once into headerless binary
// shards of little-endian uint16/uint32 ids plus manifest.json; shard_reader.ts reads them back.

import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoomTokenizer } from '../io/tokenizer.js';
import { collectNativeGarbage, writeAtomic } from '../io/tokenizer.js';
import type { TextDoc } from './readers/text.js';
import { hashInts } from './rng.js';
import { faultPoint } from '../faults.js';

export const MANIFEST = 'manifest.json';
export type SplitName = 'train' | 'validation';
export type TokenDtype = 'uint16' | 'uint32';

export interface ShardInfo {
  file: string;
  tokens: number;
}

export interface SplitInfo {
  tokens: number;
  shards: ShardInfo[];
}

export interface ShardManifest {
  format: 'loom-token-shards';
  version: 1;
  dtype: TokenDtype;
  vocabSize: number;
  tokenizer: { sha256: string; eosId: number | null; bosId: number | null };
  /** What separates documents: the EOS id, the tokenizer's template ([CLS] ... [SEP]), or nothing. */
  boundary: Boundary;
  seed: number;
  validationFraction: number;
  splitChunkTokens: number;
  documents: number;
  /** UTF-16 characters of text read (about the byte count for mostly-ASCII text). */
  characters: number;
  splits: Record<SplitName, SplitInfo>;
}

export type Boundary = 'eos' | 'template' | 'none';

export interface PrepareOptions {
  tokenizer: LoomTokenizer;
  /** Documents from a reader (TextDoc) or plain strings (each a whole document). */
  documents: AsyncIterable<TextDoc | string> | Iterable<TextDoc | string>;
  outDir: string;
  /** Fraction of the tokens held out for validation. Default 0.01. */
  validationFraction?: number;
  /** Chooses which chunks go to validation. Default 0. */
  seed?: number;
  /**
   * The split unit: the token stream is cut into chunks of this many tokens, and an evenly spread,
   * seeded subset of chunks goes to validation. Chunks (not documents) because a corpus may be one
   * file (tinyshakespeare); 8192 keeps leakage at chunk edges negligible. Default 8192.
   */
  splitChunkTokens?: number;
  /** Tokens per shard file. Default 2^27 (256 MiB of uint16). */
  shardTokens?: number;
  /** Characters per encodeBatch call. Default 2^20. */
  batchChars?: number;
  /** Default: 'eos' when the tokenizer has an EOS token, else 'template'. */
  boundary?: Boundary;
  onProgress?: (progress: { documents: number; characters: number; tokens: number }) => void;
}

/** Appends ids to numbered shard files, each written under a temp name and renamed when complete. */
class ShardWriter {
  readonly shards: ShardInfo[] = [];
  tokens = 0;
  private fd: number | undefined;
  private inShard = 0;
  private readonly buffer: Uint16Array | Uint32Array;
  private used = 0;
  private readonly maxId: number;

  constructor(private readonly dir: string, private readonly prefix: string, dtype: TokenDtype, private readonly shardTokens: number) {
    this.buffer = dtype === 'uint16' ? new Uint16Array(1 << 18) : new Uint32Array(1 << 18);
    this.maxId = dtype === 'uint16' ? 0xffff : 0xffffffff;
  }

  push(ids: ArrayLike<number>): void {
    for (let i = 0; i < ids.length; i++) {
      if (ids[i]! > this.maxId) throw new Error(`token id ${ids[i]} does not fit in ${this.maxId === 0xffff ? 'uint16' : 'uint32'} shards`);
      if (this.used === this.buffer.length || this.inShard + this.used === this.shardTokens) this.flush();
      this.buffer[this.used++] = ids[i]!;
    }
  }

  close(): void {
    this.flush();
    this.finishShard();
  }

  /** Drops the shard being written (after an error), leaving no temp file. */
  abort(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    rmSync(this.tempPath(), { force: true });
  }

  private flush(): void {
    if (this.used > 0) {
      if (this.fd === undefined) this.fd = openSync(this.tempPath(), 'w');
      const bytes = new Uint8Array(this.buffer.buffer, 0, this.used * this.buffer.BYTES_PER_ELEMENT);
      let off = 0;
      while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off);
      this.inShard += this.used;
      this.tokens += this.used;
      this.used = 0;
    }
    if (this.inShard === this.shardTokens) this.finishShard();
  }

  private finishShard(): void {
    if (this.fd === undefined) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
    const file = this.name(this.shards.length);
    faultPoint('shard written');
    renameSync(this.tempPath(), join(this.dir, file));
    this.shards.push({ file, tokens: this.inShard });
    this.inShard = 0;
  }

  private name(i: number): string {
    return `${this.prefix}_${String(i).padStart(6, '0')}.bin`;
  }

  private tempPath(): string {
    return join(this.dir, `.${this.name(this.shards.length)}.${process.pid}.tmp`);
  }
}

/**
 * Tokenizes a corpus into shards. Encoding of one batch (in the Rust library's threads) overlaps
 * reading the next one; memory is a few batches, whatever the corpus size. The manifest is written
 * last (atomically), so a directory with a manifest always holds complete shards.
 */
export async function prepareCorpus(options: PrepareOptions): Promise<ShardManifest> {
  const { tokenizer, outDir } = options;
  const fraction = options.validationFraction ?? 0.01;
  if (!(fraction >= 0 && fraction < 1)) throw new Error(`validationFraction must be in [0, 1), got ${fraction}`);
  const seed = options.seed ?? 0;
  const chunkTokens = options.splitChunkTokens ?? 8192;
  const boundary: Boundary = options.boundary ?? (tokenizer.eosId !== undefined ? 'eos' : 'template');
  const eos = tokenizer.eosId;
  if (boundary === 'eos' && eos === undefined) throw new Error('prepareCorpus: boundary "eos" needs a tokenizer with an eos token');
  const dtype: TokenDtype = tokenizer.vocabSize <= 65536 ? 'uint16' : 'uint32';
  const shardTokens = options.shardTokens ?? 2 ** 27;
  const batchChars = options.batchChars ?? 1 << 20;

  await mkdir(outDir, { recursive: true });
  // Invalidate the old output first: without a manifest nothing reads the shards being replaced.
  await rm(join(outDir, MANIFEST), { force: true });
  for (const f of await readdir(outDir)) {
    if (/^(train|validation)_\d{6}\.bin$/.test(f) || /^\.(train|validation)_\d{6}\.bin\.\d+\.tmp$/.test(f)) {
      await rm(join(outDir, f), { force: true });
    }
  }
  const writers: Record<SplitName, ShardWriter> = {
    train: new ShardWriter(outDir, 'train', dtype, shardTokens),
    validation: new ShardWriter(outDir, 'validation', dtype, shardTokens),
  };
  // Systematic sampling: chunk i goes to validation when floor(i*f + u) steps up, so exactly a
  // fraction f of chunks (to within one) does, evenly spread, at a seed-dependent phase u.
  const u = hashInts(seed, 0x5eed) / 4294967296;
  const isValidation = (i: number): boolean => fraction > 0 && Math.floor((i + 1) * fraction + u) > Math.floor(i * fraction + u);
  let chunk = 0;
  let inChunk = 0;
  const chunkBuf = new Int32Array(chunkTokens);
  let hadValidation = false;
  const emitChunk = (last: boolean): void => {
    // The final chunk goes to validation if none did (a corpus smaller than 1/f chunks).
    const toVal = isValidation(chunk) || (last && fraction > 0 && !hadValidation);
    hadValidation ||= toVal;
    writers[toVal ? 'validation' : 'train'].push(chunkBuf.subarray(0, inChunk));
    chunk++;
    inChunk = 0;
  };
  const pushIds = (ids: ArrayLike<number>): void => {
    for (let i = 0; i < ids.length; i++) {
      if (inChunk === chunkTokens) emitChunk(false);
      chunkBuf[inChunk++] = ids[i]!;
    }
  };

  let documents = 0;
  let characters = 0;
  let inDocument = false;
  let pending: Promise<void> = Promise.resolve();
  let texts: string[] = [];
  let endsList: boolean[] = [];
  let size = 0;
  const addSpecial = boundary === 'template';
  const eosIds = boundary === 'eos' ? [eos!] : [];
  const encode = (batch: string[], batchEnds: boolean[]): Promise<void> =>
    tokenizer.native.encodeBatch(batch, { addSpecialTokens: addSpecial }).then((encs) => {
      for (let i = 0; i < encs.length; i++) {
        pushIds(encs[i]!.getIds());
        if (batchEnds[i]) pushIds(eosIds);
      }
      collectNativeGarbage(); // the Encodings' native memory; see collectNativeGarbage
      options.onProgress?.({ documents, characters, tokens: writers.train.tokens + writers.validation.tokens + inChunk });
    });
  try {
    for await (const doc of options.documents as AsyncIterable<TextDoc | string>) {
      const text = typeof doc === 'string' ? doc : doc.text;
      const isEnd = typeof doc === 'string' || !doc.continues;
      const blank = text.trim().length === 0;
      const standalone = !inDocument;
      inDocument = !isEnd;
      // A blank document would be a lone separator; a blank last piece still has to end its document.
      if (blank && (standalone || !isEnd)) continue;
      if (isEnd) documents++;
      characters += text.length;
      texts.push(text);
      endsList.push(isEnd);
      size += text.length;
      if (size >= batchChars) {
        const [batch, batchEnds] = [texts, endsList];
        texts = [];
        endsList = [];
        size = 0;
        await pending; // at most one batch in the Rust threads while the next one is read
        pending = encode(batch, batchEnds);
      }
    }
    await pending;
    if (texts.length > 0) await encode(texts, endsList);
    if (inChunk > 0 || chunk === 0) emitChunk(true);
  } catch (err) {
    await pending.catch(() => undefined); // settle the batch in flight before reporting
    writers.train.abort();
    writers.validation.abort();
    throw err;
  }
  writers.train.close();
  writers.validation.close();
  if (writers.train.tokens + writers.validation.tokens === 0) throw new Error('prepareCorpus: the corpus is empty');

  const manifest: ShardManifest = {
    format: 'loom-token-shards',
    version: 1,
    dtype,
    vocabSize: tokenizer.vocabSize,
    tokenizer: { sha256: tokenizer.hash, eosId: eos ?? null, bosId: tokenizer.bosId ?? null },
    boundary,
    seed,
    validationFraction: fraction,
    splitChunkTokens: chunkTokens,
    documents,
    characters,
    splits: {
      train: { tokens: writers.train.tokens, shards: writers.train.shards },
      validation: { tokens: writers.validation.tokens, shards: writers.validation.shards },
    },
  };
  faultPoint('shard manifest');
  await writeAtomic(join(outDir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
