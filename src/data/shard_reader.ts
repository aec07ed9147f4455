// Reading tokenized shards at training time: random-access windows through positioned fs reads (so
// memory stays flat for corpora larger than RAM), seeded per-epoch shuffling and a resumable cursor.

import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoomTokenizer } from '../io/tokenizer.js';
import { parseJsonFile } from '../io/tokenizer_files.js';
import { shortJson, shortText } from '../short_json.js';
import { permutation } from './rng.js';
import { MANIFEST, type ShardManifest, type SplitName } from './shards.js';

/** Where a block iterator stands; JSON-serialisable, saved with checkpoints. */
export interface DataCursor {
  split: SplitName;
  blockSize: number;
  seed: number;
  shuffle: boolean;
  epoch: number;
  /** Next position in the epoch's block order. */
  index: number;
}

export class TokenShards {
  readonly dir: string;
  readonly manifest: ShardManifest;

  private constructor(dir: string, manifest: ShardManifest) {
    this.dir = dir;
    this.manifest = manifest;
  }

  /** Opens a prepared folder; with a tokenizer, refuses shards made by a different tokenizer.json. */
  static async open(dir: string, options: { tokenizer?: LoomTokenizer } = {}): Promise<TokenShards> {
    const path = join(dir, MANIFEST);
    const text = await readFile(path, 'utf8').catch((err: Error) => {
      throw new Error(`${path}: cannot read (was the corpus prepared, and did it finish?): ${err.message}`);
    });
    const manifest = checkManifest(path, dir, parseJsonFile<unknown>(path, text));
    const tok = options.tokenizer;
    if (tok !== undefined && tok.hash !== manifest.tokenizer.sha256) {
      const [made, now] = [manifest.tokenizer.sha256.slice(0, 12), tok.hash.slice(0, 12)];
      throw new Error(`${path}: the shards were made with another tokenizer (sha256 ${made}..., this one is ${now}...); prepare the corpus again`);
    }
    return new TokenShards(dir, manifest);
  }

  split(name: SplitName): SplitReader {
    return new SplitReader(this.dir, this.manifest, name);
  }
}

/**
 * A manifest is read from a folder the user points at, so it is checked like any input: its shard
 * names must be plain file names in the folder (a "../" name would read outside it), and each
 * shard file must hold exactly the tokens the manifest claims (reads are sized from those counts).
 */
function checkManifest(path: string, dir: string, m: unknown): ShardManifest {
  const fail = (what: string): never => {
    throw new Error(`${path}: ${what}`);
  };
  const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!obj(m) || m.format !== 'loom-token-shards' || m.version !== 1) {
    const o = obj(m) ? m : {};
    fail(`not a Loom token-shard manifest (format ${shortJson(o.format)}, version ${shortJson(o.version)})`);
  }
  const man = m as Record<string, unknown>;
  if (man.dtype !== 'uint16' && man.dtype !== 'uint32') fail(`"dtype" must be "uint16" or "uint32", got ${shortJson(man.dtype)}`);
  if (!obj(man.tokenizer) || typeof man.tokenizer.sha256 !== 'string') fail('"tokenizer.sha256" is missing');
  const bytes = man.dtype === 'uint16' ? 2 : 4;
  for (const name of ['train', 'validation']) {
    const split = obj(man.splits) ? man.splits[name] : undefined;
    if (!obj(split) || !Array.isArray(split.shards)) fail(`"splits.${name}.shards" must be a list`);
    let total = 0;
    for (const [i, s] of ((split as Record<string, unknown>).shards as unknown[]).entries()) {
      const at = `splits.${name}.shards[${i}]`;
      if (!obj(s) || typeof s.file !== 'string' || !/^[\w.-]+$/.test(s.file) || s.file.startsWith('.')) fail(`"${at}.file" must be a plain file name in the folder`);
      const sh = s as { file: string; tokens: unknown };
      if (!Number.isSafeInteger(sh.tokens) || (sh.tokens as number) < 0) fail(`"${at}.tokens" must be an integer >= 0`);
      const size = (() => {
        try {
          return statSync(join(dir, sh.file)).size;
        } catch {
          return fail(`shard ${sh.file} is missing`);
        }
      })();
      if (size !== (sh.tokens as number) * bytes) fail(`shard ${sh.file} has ${size} bytes, the manifest says ${sh.tokens as number} ${man.dtype as string} tokens`);
      total += sh.tokens as number;
    }
    (split as Record<string, unknown>).tokens = total;
  }
  return m as ShardManifest;
}

/** One split as a flat array of tokens on disk. Call close() (or use `using`) to release the files. */
export class SplitReader {
  readonly name: SplitName;
  readonly tokens: number;
  private readonly files: string[];
  private readonly starts: number[];
  private readonly fds: (number | undefined)[];
  private readonly bytes: 2 | 4;

  constructor(dir: string, manifest: ShardManifest, name: SplitName) {
    this.name = name;
    const info = manifest.splits[name];
    this.files = info.shards.map((s) => join(dir, s.file));
    this.starts = [];
    let at = 0;
    for (const s of info.shards) {
      this.starts.push(at);
      at += s.tokens;
    }
    this.tokens = at;
    this.fds = this.files.map(() => undefined);
    this.bytes = manifest.dtype === 'uint16' ? 2 : 4;
  }

  /** Reads tokens [start, start + count) into `out` (allocated when omitted), across shard edges. */
  read(start: number, count: number, out: Int32Array = new Int32Array(count)): Int32Array {
    if (start < 0 || count < 0 || start + count > this.tokens) {
      throw new RangeError(`${this.name}: tokens [${start}, ${start + count}) are outside 0..${this.tokens}`);
    }
    let shard = this.shardOf(start);
    let pos = start;
    let done = 0;
    while (done < count) {
      const shardStart = this.starts[shard]!;
      const shardEnd = shard + 1 < this.starts.length ? this.starts[shard + 1]! : this.tokens;
      const n = Math.min(count - done, shardEnd - pos);
      const raw = Buffer.allocUnsafe(n * this.bytes);
      let got = 0;
      while (got < raw.length) {
        const r = readSync(this.fd(shard), raw, got, raw.length - got, (pos - shardStart) * this.bytes + got);
        if (r === 0) throw new Error(`${this.files[shard]}: file is shorter than the manifest says`);
        got += r;
      }
      for (let i = 0; i < n; i++) out[done + i] = this.bytes === 2 ? raw.readUInt16LE(2 * i) : raw.readUInt32LE(4 * i);
      done += n;
      pos += n;
      shard++;
    }
    return out;
  }

  /** Number of whole blocks of `blockSize` tokens (the remainder is dropped, as transformers does). */
  numBlocks(blockSize: number): number {
    return Math.floor(this.tokens / blockSize);
  }

  /**
   * Iterates fixed-size blocks of tokens forever (epoch after epoch), `batchSize` at a time. Each
   * epoch visits every block once, in an order shuffled by (seed, epoch). Pass a cursor saved from
   * `iterator.cursor` to continue exactly where a run stopped.
   */
  blocks(options: { blockSize: number; batchSize: number; seed?: number; shuffle?: boolean; cursor?: DataCursor }): BlockIterator {
    return new BlockIterator(this, options);
  }

  close(): void {
    this.fds.forEach((fd, i) => {
      if (fd !== undefined) closeSync(fd);
      this.fds[i] = undefined;
    });
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private shardOf(pos: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private fd(i: number): number {
    let fd = this.fds[i];
    if (fd === undefined) {
      fd = openSync(this.files[i]!, 'r');
      this.fds[i] = fd;
    }
    return fd;
  }
}

/** A batch of token blocks, row-major [batchSize, blockSize]. */
export interface TokenBlocks {
  tokens: Int32Array;
  shape: [number, number];
}

export class BlockIterator implements Iterator<TokenBlocks> {
  private readonly reader: SplitReader;
  private readonly blockSize: number;
  private readonly batchSize: number;
  private readonly seed: number;
  private readonly shuffle: boolean;
  private readonly count: number;
  private epoch: number;
  private index: number;
  private order: Uint32Array | undefined;

  constructor(reader: SplitReader, o: { blockSize: number; batchSize: number; seed?: number; shuffle?: boolean; cursor?: DataCursor }) {
    this.reader = reader;
    this.blockSize = o.blockSize;
    this.batchSize = o.batchSize;
    this.seed = o.cursor?.seed ?? o.seed ?? 0;
    this.shuffle = o.cursor?.shuffle ?? o.shuffle ?? true;
    this.count = reader.numBlocks(o.blockSize);
    if (this.count === 0) throw new Error(`${reader.name}: ${reader.tokens} tokens make no block of ${o.blockSize}`);
    const c = o.cursor;
    if (c !== undefined && (c === null || typeof c !== 'object' || c.split !== reader.name || c.blockSize !== o.blockSize)) {
      throw new Error(`cursor is for split ${shortText(c?.split)} with blockSize ${shortText(c?.blockSize)}, not ${reader.name} with ${o.blockSize}`);
    }
    const count = (v: unknown, max: number): boolean => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max;
    if (c !== undefined && (!count(c.epoch, Number.MAX_SAFE_INTEGER) || !count(c.index, this.count) || !Number.isSafeInteger(c.seed) || typeof c.shuffle !== 'boolean')) {
      throw new Error(`bad cursor ${shortJson(c)} (expected integers epoch >= 0 and 0 <= index <= ${this.count}, a seed and shuffle)`);
    }
    this.epoch = c?.epoch ?? 0;
    this.index = c?.index ?? 0;
  }

  /** The position after the last batch returned. */
  get cursor(): DataCursor {
    const wrapped = this.index >= this.count; // a finished epoch reads as the start of the next
    const epoch = wrapped ? this.epoch + 1 : this.epoch;
    const index = wrapped ? 0 : this.index;
    return { split: this.reader.name, blockSize: this.blockSize, seed: this.seed, shuffle: this.shuffle, epoch, index };
  }

  /** Blocks per epoch. */
  get blocksPerEpoch(): number {
    return this.count;
  }

  next(): IteratorResult<TokenBlocks> {
    const tokens = new Int32Array(this.batchSize * this.blockSize);
    for (let b = 0; b < this.batchSize; b++) {
      if (this.index >= this.count) {
        this.epoch++;
        this.index = 0;
        this.order = undefined;
      }
      const block = this.blockAt(this.index++);
      this.reader.read(block * this.blockSize, this.blockSize, tokens.subarray(b * this.blockSize, (b + 1) * this.blockSize));
    }
    return { done: false, value: { tokens, shape: [this.batchSize, this.blockSize] } };
  }

  [Symbol.iterator](): Iterator<TokenBlocks> {
    return this;
  }

  private blockAt(i: number): number {
    if (!this.shuffle) return i;
    this.order ??= permutation(this.count, (this.seed * 1000003 + this.epoch) >>> 0);
    return this.order[i]!;
  }
}
