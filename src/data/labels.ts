// Label sets: discovered from the data (strings or integers), in a deterministic order, stored in a
// model's config.json as transformers' id2label / label2id.

import { DataError, type Source } from './readers/common.js';

export type Label = string | number;

export interface LabelConfig {
  id2label: Record<string, string>;
  label2id: Record<string, number>;
}

export class LabelSet {
  readonly names: readonly string[];
  private readonly ids: Map<string, number>;

  constructor(names: readonly string[]) {
    if (names.length === 0) throw new Error('a label set needs at least one label');
    const ids = new Map<string, number>();
    names.forEach((n, i) => {
      if (ids.has(n)) throw new Error(`label ${JSON.stringify(n)} appears twice in the label list`);
      ids.set(n, i);
    });
    this.names = [...names];
    this.ids = ids;
  }

  /**
   * Collects the distinct labels. Integers (or integer strings, as CSV gives them) are ordered by
   * value, so 0/1 labels keep ids 0/1; strings are sorted, so the ids never depend on row order.
   * `ner` orders IOB tags as O, then B-X, I-X per entity type X in sorted order.
   */
  static discover(labels: Iterable<Label>, order: 'sorted' | 'ner' = 'sorted'): LabelSet {
    const seen = new Set<string>();
    for (const l of labels) seen.add(normalize(l));
    const all = [...seen];
    if (order === 'ner') {
      const types = [...new Set(all.filter((t) => t !== 'O').map((t) => t.replace(/^[BIES]-/, '')))].sort();
      const named = types.flatMap((t) => ['B-', 'I-', 'E-', 'S-'].map((p) => p + t)).filter((t) => seen.has(t));
      const plain = all.filter((t) => t !== 'O' && !named.includes(t)).sort();
      return new LabelSet([...(seen.has('O') ? ['O'] : []), ...named, ...plain]);
    }
    if (all.every((l) => /^-?\d+$/.test(l))) return new LabelSet(all.sort((a, b) => Number(a) - Number(b)));
    return new LabelSet(all.sort());
  }

  /** From transformers' config.json id2label. */
  static fromConfig(config: { id2label: Record<string, string> }): LabelSet {
    const entries = Object.entries(config.id2label).map(([k, v]) => [Number(k), v] as const);
    entries.sort((a, b) => a[0] - b[0]);
    entries.forEach(([k], i) => {
      if (k !== i) throw new Error(`id2label: ids must be 0..${entries.length - 1}, found ${k}`);
    });
    return new LabelSet(entries.map(([, v]) => v));
  }

  get size(): number {
    return this.names.length;
  }

  has(label: Label): boolean {
    return this.ids.has(normalize(label));
  }

  /** The id of a label; an unknown label is a DataError naming where it was read. */
  id(label: Label, source?: Source): number {
    const id = this.ids.get(normalize(label));
    if (id === undefined) {
      const known = this.names.length <= 20 ? this.names.join(', ') : `${this.names.slice(0, 20).join(', ')}, ...`;
      const msg = `unknown label ${JSON.stringify(label)}; the labels are ${known}`;
      throw source ? new DataError(source.file, source.line, msg) : new Error(msg);
    }
    return id;
  }

  name(id: number): string {
    const n = this.names[id];
    if (n === undefined) throw new Error(`label id ${id} is out of range 0..${this.names.length - 1}`);
    return n;
  }

  toConfig(): LabelConfig {
    const id2label: Record<string, string> = {};
    const label2id: Record<string, number> = {};
    this.names.forEach((n, i) => {
      id2label[String(i)] = n;
      label2id[n] = i;
    });
    return { id2label, label2id };
  }
}

// Labels are compared as strings: 1 (JSONL number) and "1" (CSV field) are the same label.
function normalize(label: Label): string {
  if (typeof label === 'number') {
    if (!Number.isInteger(label)) throw new Error(`label ${label}: numeric labels must be integers`);
    return String(label);
  }
  return label.trim();
}
