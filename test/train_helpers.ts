// A tiny language model built from engine ops (embedding, layer norm, dropout, linear head) and
// synthetic next-token data, for the Trainer tests; independent of src/nn and src/models.

import * as L from '../src/index.js';
import type { StepFn, StepOutput, TrainableModel } from '../src/train/index.js';
import { encodeTensorFile, decodeTensorFile } from '../src/train/index.js';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface LmBatch {
  ids: Int32Array;
  labels: Int32Array;
  batch: number;
  seq: number;
}

export interface TinyLMOptions {
  vocab?: number;
  dim?: number;
  seed?: number;
  dropout?: number;
  /**
   * Give the model a save(dir): 'full' writes model.safetensors with every parameter (as src/nn's
   * Modules do), 'config-only' writes just config.json (like a model saving an adapter elsewhere).
   */
  withSave?: 'full' | 'config-only';
}

export class TinyLM implements TrainableModel {
  training = true;
  readonly vocab: number;
  readonly dropout: number;
  readonly params = new Map<string, L.Tensor>();
  save?: (dir: string) => Promise<void>;

  constructor(o: TinyLMOptions = {}) {
    this.vocab = o.vocab ?? 16;
    const dim = o.dim ?? 8;
    this.dropout = o.dropout ?? 0;
    const g = new L.Generator(o.seed ?? 1);
    const add = (name: string, t: L.Tensor) => this.params.set(name, t.keep().requireGrad());
    add('wte.weight', L.normal([this.vocab, dim], 0, 0.5, { generator: g }));
    add('ln.weight', L.ones([dim]));
    add('ln.bias', L.zeros([dim]));
    add('head.weight', L.normal([this.vocab, dim], 0, 0.3, { generator: g }));
    add('head.bias', L.zeros([this.vocab]));
    if (o.withSave) {
      this.save = async (dir: string) => {
        const entries = new Map([...this.params].map(([n, t]) => [n, { shape: [...t.shape], data: t.dataSync() as Float32Array }]));
        if (o.withSave === 'full') await writeFile(join(dir, 'model.safetensors'), Buffer.concat(encodeTensorFile(entries, { format: 'pt' })));
        await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'tiny', vocab_size: this.vocab }));
      };
    }
  }

  namedParameters(): Iterable<[string, L.Tensor]> {
    return this.params.entries();
  }
  train(): void {
    this.training = true;
  }
  eval(): void {
    this.training = false;
  }

  /** ids [B, T] -> logits [B*T, V] */
  forward(ids: L.Tensor): L.Tensor {
    const p = (n: string) => this.params.get(n)!;
    let x = L.embedding(ids, p('wte.weight'));
    x = L.gelu(L.layerNorm(x, p('ln.weight'), p('ln.bias')));
    x = L.dropout(x, this.dropout, { training: this.training });
    const logits = L.linear(x, p('head.weight'), p('head.bias'));
    return L.reshape(logits, [ids.size, this.vocab]);
  }

  snapshot(): Map<string, Float32Array> {
    return new Map([...this.params].map(([n, t]) => [n, t.dataSync() as Float32Array]));
  }

  dispose(): void {
    for (const t of this.params.values()) t.dispose();
  }
}

export const lmStep: StepFn<TinyLM, LmBatch> = (model, b): StepOutput => {
  const ids = L.tensor(b.ids, [b.batch, b.seq], { dtype: 'i32' });
  const labels = L.tensor(b.labels, [b.batch * b.seq], { dtype: 'i32' });
  const logits = model.forward(ids);
  return { loss: L.crossEntropy(logits, labels), logits, labels: b.labels, tokens: b.batch * b.seq, count: b.batch * b.seq };
};

/** Sequences where the next token is mostly (3t + 1) mod V: learnable, with some noise. */
export function lmBatches(count: number, batch: number, seq: number, seed: number, vocab = 16): LmBatch[] {
  const g = new L.Generator(seed);
  const out: LmBatch[] = [];
  for (let k = 0; k < count; k++) {
    const ids = new Int32Array(batch * seq);
    const labels = new Int32Array(batch * seq);
    for (let b = 0; b < batch; b++) {
      let t = g.nextU32() % vocab;
      for (let i = 0; i <= seq; i++) {
        if (i < seq) ids[b * seq + i] = t;
        const next = g.uniform() < 0.9 ? (3 * t + 1) % vocab : g.nextU32() % vocab;
        if (i < seq) labels[b * seq + i] = next;
        t = next;
      }
    }
    out.push({ ids, labels, batch, seq });
  }
  return out;
}

/** Concatenates batches along the batch axis (for the accumulation test). */
export function concatBatches(bs: readonly LmBatch[]): LmBatch {
  const seq = bs[0]!.seq;
  const n = bs.reduce((s, b) => s + b.batch, 0);
  const ids = new Int32Array(n * seq);
  const labels = new Int32Array(n * seq);
  let at = 0;
  for (const b of bs) {
    ids.set(b.ids, at);
    labels.set(b.labels, at);
    at += b.ids.length;
  }
  return { ids, labels, batch: n, seq };
}

export async function readParams(path: string): Promise<Map<string, Float32Array>> {
  const { tensors } = decodeTensorFile(await readFile(path), path);
  return new Map([...tensors].map(([n, t]) => [n, t.data]));
}
