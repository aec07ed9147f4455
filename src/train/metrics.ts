// Evaluation metrics with the reference libraries' semantics: perplexity; accuracy, P/R/F1, confusion
// matrix (scikit-learn, zero_division=0); IOB2 entity P/R/F1 (seqeval default mode); Evaluators.

import type { Tensor } from '../engine/tensor.js';
import type { Evaluator, MetricRecord, StepOutput } from './types.js';

// transformers' ignore label (positions that are not scored).
const IGNORE_INDEX = -100;

/** exp(mean token loss); Infinity instead of overflow. */
export function perplexity(loss: number): number {
  return Math.exp(loss);
}

export function accuracy(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): number {
  checkLengths(yTrue, yPred);
  if (yTrue.length === 0) return 0;
  let ok = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) ok++;
  return ok / yTrue.length;
}

function checkLengths(a: ArrayLike<unknown>, b: ArrayLike<unknown>): void {
  if (a.length !== b.length) throw new Error(`metrics: ${a.length} true labels but ${b.length} predictions`);
}

/** sklearn's unique_labels: the sorted union of the labels seen in either array. */
function seenLabels(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): number[] {
  const s = new Set<number>();
  for (let i = 0; i < yTrue.length; i++) s.add(yTrue[i]!).add(yPred[i]!);
  return [...s].sort((a, b) => a - b);
}

/** sklearn.metrics.confusion_matrix: rows are true labels, columns predictions, in `labels` order. */
export function confusionMatrix(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, labels?: readonly number[]): number[][] {
  checkLengths(yTrue, yPred);
  const ls = labels ?? seenLabels(yTrue, yPred);
  const at = new Map(ls.map((l, i) => [l, i]));
  const m = ls.map(() => ls.map(() => 0));
  for (let i = 0; i < yTrue.length; i++) {
    const r = at.get(yTrue[i]!);
    const c = at.get(yPred[i]!);
    if (r !== undefined && c !== undefined) m[r]![c]! += 1;
  }
  return m;
}

/** Safe ratio with sklearn's zero_division=0. */
function ratio(num: number, den: number): number {
  return den === 0 ? 0 : num / den;
}

function f1(p: number, r: number): number {
  return p + r === 0 ? 0 : (2 * p * r) / (p + r);
}

export interface ClassificationReport {
  labels: number[];
  accuracy: number;
  precision: number[];
  recall: number[];
  f1: number[];
  support: number[];
  /** Unweighted means over `labels` of the per-class values (sklearn average='macro'). */
  macroPrecision: number;
  macroRecall: number;
  macroF1: number;
  confusion: number[][];
}

/**
 * precision_recall_fscore_support + accuracy + confusion matrix. `labels` defaults to the labels
 * present in either array (as sklearn does); pass 0..n-1 to count classes that never occur (their
 * P/R/F1 are 0, which lowers the macro average exactly as sklearn's labels= argument does).
 */
export function classificationReport(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, labels?: readonly number[]): ClassificationReport {
  const ls = [...(labels ?? seenLabels(yTrue, yPred))];
  const confusion = confusionMatrix(yTrue, yPred, ls);
  const precision: number[] = [];
  const recall: number[] = [];
  const f1s: number[] = [];
  const support: number[] = [];
  ls.forEach((_, k) => {
    const tp = confusion[k]![k]!;
    const predicted = confusion.reduce((s, row) => s + row[k]!, 0);
    const actual = confusion[k]!.reduce((s, v) => s + v, 0);
    precision.push(ratio(tp, predicted));
    recall.push(ratio(tp, actual));
    f1s.push(f1(precision[k]!, recall[k]!));
    support.push(actual);
  });
  const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  return {
    labels: ls,
    accuracy: accuracy(yTrue, yPred),
    precision,
    recall,
    f1: f1s,
    support,
    macroPrecision: mean(precision),
    macroRecall: mean(recall),
    macroF1: mean(f1s),
    confusion,
  };
}

// ---- entities (seqeval) ----

export interface Entity {
  type: string;
  /** Inclusive token offsets in the flattened sequence (sentences joined with an 'O' between). */
  start: number;
  end: number;
}

function split(tag: string): [string, string] {
  // seqeval: tag = chunk[0], type = chunk[1:].split('-', 1)[-1] or '_'  ('O' -> type '_')
  const rest = tag.slice(1);
  const dash = rest.indexOf('-');
  return [tag.charAt(0), (dash >= 0 ? rest.slice(dash + 1) : rest) || '_'];
}

function endOfChunk(prevTag: string, tag: string, prevType: string, type: string): boolean {
  if (prevTag === 'E' || prevTag === 'S') return true;
  if ((prevTag === 'B' || prevTag === 'I') && (tag === 'B' || tag === 'S' || tag === 'O')) return true;
  return prevTag !== 'O' && prevTag !== '.' && prevType !== type;
}

function startOfChunk(prevTag: string, tag: string, prevType: string, type: string): boolean {
  if (tag === 'B' || tag === 'S') return true;
  if ((prevTag === 'E' || prevTag === 'S' || prevTag === 'O') && (tag === 'E' || tag === 'I')) return true;
  return tag !== 'O' && tag !== '.' && prevType !== type;
}

/**
 * seqeval.metrics.sequence_labeling.get_entities (default mode). Lenient like seqeval: an I- with
 * no B- before it (after O, or after another type) starts an entity; a type change ends one.
 */
export function getEntities(sentences: readonly (readonly string[])[]): Entity[] {
  const seq: string[] = [];
  for (const s of sentences) seq.push(...s, 'O');
  const out: Entity[] = [];
  let prevTag = 'O';
  let prevType = '';
  let begin = 0;
  [...seq, 'O'].forEach((chunk, i) => {
    const [tag, type] = split(chunk);
    if (endOfChunk(prevTag, tag, prevType, type)) out.push({ type: prevType, start: begin, end: i - 1 });
    if (startOfChunk(prevTag, tag, prevType, type)) begin = i;
    prevTag = tag;
    prevType = type;
  });
  return out;
}

export interface EntityReport {
  precision: number;
  recall: number;
  f1: number;
  /** Per entity type (sorted by name): precision, recall, f1, support (true entities). */
  perType: Record<string, { precision: number; recall: number; f1: number; support: number }>;
  /** Token-level accuracy over all tags (what HF's seqeval metric reports as overall_accuracy). */
  accuracy: number;
}

/** seqeval's classification_report numbers: micro-averaged entity P/R/F1 and per type (exact matches). */
export function entityReport(yTrue: readonly (readonly string[])[], yPred: readonly (readonly string[])[]): EntityReport {
  if (yTrue.length !== yPred.length) throw new Error(`entityReport: ${yTrue.length} true sentences, ${yPred.length} predicted`);
  let tokens = 0;
  let same = 0;
  yTrue.forEach((s, i) => {
    if (s.length !== yPred[i]!.length) throw new Error(`entityReport: sentence ${i} has ${s.length} true tags, ${yPred[i]!.length} predicted`);
    s.forEach((t, j) => ((tokens += 1), (same += t === yPred[i]![j] ? 1 : 0)));
  });
  const key = (e: Entity): string => `${e.type}\u0000${e.start}\u0000${e.end}`;
  const trueE = getEntities(yTrue);
  const predE = getEntities(yPred);
  const predKeys = new Set(predE.map(key));
  const types = [...new Set([...trueE, ...predE].map((e) => e.type))].sort();
  const perType: EntityReport['perType'] = {};
  let tpAll = 0;
  for (const type of types) {
    const t = trueE.filter((e) => e.type === type);
    const p = predE.filter((e) => e.type === type);
    const tp = t.filter((e) => predKeys.has(key(e))).length;
    tpAll += tp;
    const precision = ratio(tp, p.length);
    const recall = ratio(tp, t.length);
    perType[type] = { precision, recall, f1: f1(precision, recall), support: t.length };
  }
  const precision = ratio(tpAll, predE.length);
  const recall = ratio(tpAll, trueE.length);
  return { precision, recall, f1: f1(precision, recall), perType, accuracy: ratio(same, tokens) };
}

// ---- evaluators ----

function hostInts(x: Tensor | Int32Array): Int32Array {
  return x instanceof Int32Array ? x : Int32Array.from(x.dataSync());
}

/** Row-wise argmax of a [..., C] tensor on the host. */
function argmaxRows(logits: Tensor): Int32Array {
  const c = logits.shape[logits.rank - 1]!;
  const v = logits.dataSync();
  const out = new Int32Array(v.length / c);
  for (let r = 0; r < out.length; r++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (v[r * c + j]! > v[r * c + best]!) best = j;
    out[r] = best;
  }
  return out;
}

function needs(out: StepOutput, what: string): { logits: Tensor; labels: Tensor | Int32Array } {
  if (!out.logits || !out.labels) throw new Error(`${what}: the step function must return logits and labels`);
  return { logits: out.logits, labels: out.labels };
}

/**
 * Sequence classification: argmax of logits [B, C] against labels [B]. Reports accuracy, macro
 * P/R/F1, per-class lists (in class order) and the confusion matrix over classes 0..C-1.
 */
export function classificationEvaluator<B>(options: { labelNames?: readonly string[] } = {}): Evaluator<B> {
  const yTrue: number[] = [];
  const yPred: number[] = [];
  let classes = 0;
  return {
    update(out) {
      const { logits, labels } = needs(out, 'classificationEvaluator');
      classes = logits.shape[logits.rank - 1]!;
      const pred = argmaxRows(logits);
      hostInts(labels).forEach((y, i) => {
        if (y !== IGNORE_INDEX) (yTrue.push(y), yPred.push(pred[i]!));
      });
    },
    compute(): MetricRecord {
      const r = classificationReport(yTrue, yPred, [...Array(classes).keys()]);
      const rec: MetricRecord = {
        accuracy: r.accuracy,
        macro_precision: r.macroPrecision,
        macro_recall: r.macroRecall,
        macro_f1: r.macroF1,
        precision: r.precision,
        recall: r.recall,
        f1: r.f1,
        confusion_matrix: r.confusion,
      };
      if (options.labelNames) rec.labels = [...options.labelNames];
      return rec;
    },
  };
}

/**
 * Token classification: argmax of logits [B, T, C] against labels [B, T] (-100 = not a word start,
 * skipped), ids mapped to IOB2 tag names; entity-level P/R/F1 with seqeval semantics.
 */
export function tokenClassificationEvaluator<B>(options: { labelNames: readonly string[] }): Evaluator<B> {
  const yTrue: string[][] = [];
  const yPred: string[][] = [];
  const name = (id: number): string => {
    const n = options.labelNames[id];
    if (n === undefined) throw new Error(`tokenClassificationEvaluator: label id ${id} has no name`);
    return n;
  };
  return {
    update(out) {
      const { logits, labels } = needs(out, 'tokenClassificationEvaluator');
      const t = logits.shape[logits.rank - 2]!;
      const pred = argmaxRows(logits);
      const ys = hostInts(labels);
      for (let b = 0; b < ys.length / t; b++) {
        const st: string[] = [];
        const sp: string[] = [];
        for (let j = b * t; j < (b + 1) * t; j++) if (ys[j] !== IGNORE_INDEX) (st.push(name(ys[j]!)), sp.push(name(pred[j]!)));
        yTrue.push(st);
        yPred.push(sp);
      }
    },
    compute(): MetricRecord {
      const r = entityReport(yTrue, yPred);
      const rec: MetricRecord = { precision: r.precision, recall: r.recall, f1: r.f1, accuracy: r.accuracy };
      for (const [type, v] of Object.entries(r.perType)) rec[`${type}_f1`] = v.f1;
      return rec;
    },
  };
}

/** Language modelling: perplexity of the evaluation's mean token loss (weight batches by token count). */
export function perplexityEvaluator<B>(): Evaluator<B> {
  return { update() {}, compute: (loss) => ({ perplexity: perplexity(loss) }) };
}
