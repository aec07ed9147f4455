// The BPE merge loop shared by the byte-level BPE and WordPiece trainers: a word-frequency table,
// incremental pair counts and a lazy max-heap, so each merge costs only the words that contain it.

/** Distinct words as symbol-id sequences with their corpus frequencies. */
export interface WordTable {
  words: Int32Array[];
  counts: Float64Array | number[];
}

export interface BpeLearnOptions {
  /** Names of the initial symbols (index = symbol id); tokens already in the vocabulary. */
  symbols: string[];
  /** Stop when the vocabulary (symbols + learned tokens) reaches this size. */
  vocabSize: number;
  /** Stop when the most frequent pair occurs fewer times than this. */
  minFrequency: number;
  /** The token a merge of (left, right) makes: concatenation, or stripping `##` for WordPiece. */
  join: (left: string, right: string) => string;
}

export interface BpeLearnResult {
  /** Token strings; index = id (the initial symbols first, then learned tokens). */
  vocab: string[];
  /** Merges in rank order, as ids into `vocab`. */
  merges: [number, number][];
  /** The table's words after all merges (what encoding a training word must give). */
  words: Int32Array[];
}

// Pair keys: left * 2^21 + right stays an exact double for any vocabulary below two million.
const SHIFT = 2 ** 21;
const keyOf = (a: number, b: number): number => a * SHIFT + b;

/**
 * A max-heap of (count, pair), ties broken by the smaller pair key so training is deterministic.
 * Entries go stale when counts drop; the caller re-checks on pop (lazy deletion), which is cheaper
 * than a decrease-key for the many pairs a merge touches.
 */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  push(count: number, key: number): void {
    const c = this.counts;
    const k = this.keys;
    let i = k.length;
    c.push(count);
    k.push(key);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(count, key, c[p]!, k[p]!)) break;
      c[i] = c[p]!;
      k[i] = k[p]!;
      i = p;
    }
    c[i] = count;
    k[i] = key;
  }

  /** Removes the top; returns [count, key]. */
  pop(): [number, number] {
    const c = this.counts;
    const k = this.keys;
    const top: [number, number] = [c[0]!, k[0]!];
    const lastC = c.pop()!;
    const lastK = k.pop()!;
    const n = k.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const m = r < n && this.above(c[r]!, k[r]!, c[l]!, k[l]!) ? r : l;
        if (!this.above(c[m]!, k[m]!, lastC, lastK)) break;
        c[i] = c[m]!;
        k[i] = k[m]!;
        i = m;
      }
      c[i] = lastC;
      k[i] = lastK;
    }
    return top;
  }

  private above(c1: number, k1: number, c2: number, k2: number): boolean {
    return c1 > c2 || (c1 === c2 && k1 < k2);
  }
}

/** Learns merges until the vocabulary is full or no pair is frequent enough. Mutates nothing given. */
export function learnBpe(table: WordTable, options: BpeLearnOptions): BpeLearnResult {
  const vocab = [...options.symbols];
  const ids = new Map<string, number>();
  vocab.forEach((t, i) => ids.set(t, i));
  const words = table.words.map((w) => w.slice());
  const freq = table.counts;
  const pairCount = new Map<number, number>();
  const where = new Map<number, number[]>(); // pair -> words that had it when it was counted (may be stale)

  const addPair = (key: number, w: number, f: number): void => {
    pairCount.set(key, (pairCount.get(key) ?? 0) + f);
    const list = where.get(key);
    if (list === undefined) where.set(key, [w]);
    else if (list[list.length - 1] !== w) list.push(w);
  };
  for (let w = 0; w < words.length; w++) {
    const s = words[w]!;
    for (let i = 0; i + 1 < s.length; i++) addPair(keyOf(s[i]!, s[i + 1]!), w, freq[w]!);
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push(count, key);

  const merges: [number, number][] = [];
  const merged = new Set<number>();
  let steps = 0;
  const stamp = new Int32Array(words.length).fill(-1);
  const touched = new Map<number, number>(); // pairs whose count grew in this merge
  while (vocab.length < options.vocabSize && heap.size > 0) {
    const [count, key] = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (current !== count) {
      if (current > 0) heap.push(current, key); // stale entry: requeue with the true count
      continue;
    }
    if (count < options.minFrequency || count <= 0) break;
    const a = Math.floor(key / SHIFT);
    const b = key - a * SHIFT;
    const token = options.join(vocab[a]!, vocab[b]!);
    // Two different merges can spell the same token ("Ġt"+"he", "Ġth"+"e"); reuse its id, as HF does.
    let c = ids.get(token);
    if (c === undefined) {
      c = vocab.length;
      vocab.push(token);
      ids.set(token, c);
    }
    // A pair can re-form after its merge when a later merge reuses one of its ids; apply it again so
    // the words stay as the encoder (lowest rank first) would spell them, but list it once.
    if (!merged.has(key)) merges.push([a, b]);
    merged.add(key);
    touched.clear();
    const step = ++steps;
    for (const w of where.get(key) ?? []) {
      if (stamp[w] === step) continue;
      stamp[w] = step;
      const s = words[w]!;
      let found = false;
      for (let i = 0; i + 1 < s.length; i++) if (s[i] === a && s[i + 1] === b) { found = true; break; }
      if (!found) continue;
      const f = freq[w]!;
      // Replace the word, then move its pair counts from the old spelling to the new one. Words are
      // short (pre-tokens), so redoing the whole word is cheap and avoids the overlap cases (a a a).
      const next: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          next.push(c);
          i++;
        } else next.push(s[i]!);
      }
      for (let i = 0; i + 1 < s.length; i++) {
        const k = keyOf(s[i]!, s[i + 1]!);
        pairCount.set(k, pairCount.get(k)! - f);
      }
      const ns = Int32Array.from(next);
      words[w] = ns;
      for (let i = 0; i + 1 < ns.length; i++) {
        const k = keyOf(ns[i]!, ns[i + 1]!);
        pairCount.set(k, (pairCount.get(k) ?? 0) + f);
        const list = where.get(k);
        if (list === undefined) where.set(k, [w]);
        else if (list[list.length - 1] !== w) list.push(w);
        if (ns[i] === c || ns[i + 1] === c) touched.set(k, 1);
      }
    }
    where.delete(key);
    pairCount.delete(key);
    for (const k of touched.keys()) {
      const n = pairCount.get(k) ?? 0;
      if (n > 0) heap.push(n, k);
    }
  }
  return { vocab, merges, words };
}
