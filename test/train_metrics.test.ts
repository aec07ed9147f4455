// Metrics on hand-worked examples: scikit-learn's precision/recall/F1 (zero_division=0), macro
// averages and confusion matrix; seqeval's entity extraction (default mode) and micro P/R/F1.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as L from '../src/index.js';
import {
  accuracy, classificationEvaluator, classificationReport, confusionMatrix, entityReport, getEntities, perplexity,
  tokenClassificationEvaluator,
} from '../src/train/index.js';

const near = (a: number, b: number, what = ''): void => assert.ok(Math.abs(a - b) < 1e-12, `${what} ${a} vs ${b}`);

describe('classification metrics (scikit-learn semantics)', () => {
  // y_true 0 0 1 1 1 2, y_pred 0 1 1 1 0 1. Class 2 is never predicted, class 3 never occurs.
  // confusion (rows true, cols pred):   0  1  2  3
  //                             true 0 [1, 1, 0, 0]
  //                             true 1 [1, 2, 0, 0]
  //                             true 2 [0, 1, 0, 0]
  //                             true 3 [0, 0, 0, 0]
  // accuracy: positions 0, 2, 3 right = 3/6 = 0.5
  // class 0: tp 1, predicted 2, actual 2 -> P 1/2, R 1/2, F1 1/2
  // class 1: tp 2, predicted 4, actual 3 -> P 1/2, R 2/3, F1 = 2(1/2)(2/3)/(1/2+2/3) = 4/7
  // class 2: tp 0, predicted 0 -> P 0 (zero_division=0), R 0/1 = 0, F1 0
  // class 3: nothing -> 0, 0, 0, support 0
  // macro over labels 0..3: P = 1/4, R = (1/2 + 2/3)/4 = 7/24, F1 = (1/2 + 4/7)/4 = 15/56
  // macro over the labels seen (0, 1, 2; sklearn's default): P = 1/3, R = 7/18, F1 = 5/14
  const yTrue = [0, 0, 1, 1, 1, 2];
  const yPred = [0, 1, 1, 1, 0, 1];

  it('accuracy, per-class P/R/F1, macro averages, confusion matrix', () => {
    near(accuracy(yTrue, yPred), 0.5);
    const r = classificationReport(yTrue, yPred, [0, 1, 2, 3]);
    assert.deepEqual(r.confusion, [[1, 1, 0, 0], [1, 2, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]);
    [0.5, 0.5, 0, 0].forEach((v, i) => near(r.precision[i]!, v, `P${i}`));
    [0.5, 2 / 3, 0, 0].forEach((v, i) => near(r.recall[i]!, v, `R${i}`));
    [0.5, 4 / 7, 0, 0].forEach((v, i) => near(r.f1[i]!, v, `F${i}`));
    assert.deepEqual(r.support, [2, 3, 1, 0]);
    near(r.macroPrecision, 1 / 4);
    near(r.macroRecall, 7 / 24);
    near(r.macroF1, 15 / 56);
    const seen = classificationReport(yTrue, yPred);
    assert.deepEqual(seen.labels, [0, 1, 2]);
    near(seen.macroPrecision, 1 / 3);
    near(seen.macroRecall, 7 / 18);
    near(seen.macroF1, 5 / 14);
    assert.deepEqual(confusionMatrix([2, 0], [0, 0]), [[1, 0], [1, 0]]); // labels sorted: 0, 2
    near(perplexity(Math.log(7)), 7);
  });

  it('classificationEvaluator takes the argmax of logits and skips -100 labels', () => {
    const ev = classificationEvaluator<null>();
    // rows' argmax: 0, 1, 1, 1, 0, 1, 2 (the last row's label is -100: skipped)
    const logits = L.tensor([[3, 1, 0], [0, 2, 1], [0, 5, 1], [1, 2, 0], [9, 1, 1], [0, 1, 0], [0, 0, 4]]);
    L.scope(() => ev.update({ loss: L.tensor(0), logits, labels: new Int32Array([0, 0, 1, 1, 1, 2, -100]) }, null));
    const m = ev.compute(0.3);
    // same example as above, over the 3 classes of the logits: macro F1 = (1/2 + 4/7 + 0)/3 = 5/14
    near(m.accuracy as number, 0.5);
    near(m.macro_f1 as number, 5 / 14);
    assert.deepEqual(m.confusion_matrix, [[1, 1, 0], [1, 2, 0], [0, 1, 0]]);
    logits.dispose();
  });
});

describe('entity metrics (seqeval default mode, IOB2)', () => {
  it('extracts entities like seqeval, including I- without B- and type switches', () => {
    // I- after O starts an entity; I- of another type ends the previous one and starts a new one
    assert.deepEqual(getEntities([['B-PER', 'I-LOC', 'I-LOC', 'O']]), [
      { type: 'PER', start: 0, end: 0 },
      { type: 'LOC', start: 1, end: 2 },
    ]);
    assert.deepEqual(getEntities([['I-PER', 'I-PER', 'B-PER', 'I-MISC']]), [
      { type: 'PER', start: 0, end: 1 },
      { type: 'PER', start: 2, end: 2 },
      { type: 'MISC', start: 3, end: 3 },
    ]);
    // sentences are joined with an O between them, so an entity cannot run across sentences
    assert.deepEqual(getEntities([['B-PER'], ['I-PER']]), [
      { type: 'PER', start: 0, end: 0 },
      { type: 'PER', start: 2, end: 2 },
    ]);
  });

  it('micro P/R/F1, per type and token accuracy on a worked example', () => {
    const yTrue = [['O', 'B-PER', 'I-PER', 'O', 'B-LOC'], ['B-ORG', 'I-ORG', 'O']];
    const yPred = [['O', 'B-PER', 'I-PER', 'O', 'I-LOC'], ['B-ORG', 'O', 'O']];
    // flattened with separators: true PER(1,2) LOC(4,4) ORG(6,7)
    //                            pred PER(1,2) LOC(4,4) (I-LOC after O starts one) ORG(6,6)
    // tp = PER, LOC = 2 of 3 predicted and 3 true: P = R = F1 = 2/3
    // per type: PER 1/1/1, LOC 1/1/1, ORG P 0/1 = 0, R 0/1 = 0, F1 0
    // tokens: 8, wrong at B-LOC/I-LOC and I-ORG/O -> accuracy 6/8
    const r = entityReport(yTrue, yPred);
    near(r.precision, 2 / 3);
    near(r.recall, 2 / 3);
    near(r.f1, 2 / 3);
    assert.deepEqual(r.perType, {
      LOC: { precision: 1, recall: 1, f1: 1, support: 1 },
      ORG: { precision: 0, recall: 0, f1: 0, support: 1 },
      PER: { precision: 1, recall: 1, f1: 1, support: 1 },
    });
    near(r.accuracy, 0.75);
    // nothing predicted: precision 0 by zero_division, F1 0
    const none = entityReport([['B-PER']], [['O']]);
    assert.deepEqual([none.precision, none.recall, none.f1], [0, 0, 0]);
  });

  it('tokenClassificationEvaluator maps ids to tags and drops -100 positions', () => {
    const names = ['O', 'B-PER', 'I-PER'];
    const ev = tokenClassificationEvaluator<null>({ labelNames: names });
    // one sentence of 4 positions; position 2 is a sub-word (-100). argmax: 1, 2, 0, 0
    const logits = L.tensor([[[0, 5, 0], [0, 0, 5], [5, 0, 0], [5, 0, 0]]]);
    L.scope(() => ev.update({ loss: L.tensor(0), logits, labels: new Int32Array([1, 2, -100, 1]) }, null));
    // true B-PER I-PER B-PER -> PER(0,1), PER(2,2); pred B-PER I-PER O -> PER(0,1): P 1, R 1/2, F1 2/3
    const m = ev.compute(0);
    near(m.precision as number, 1);
    near(m.recall as number, 0.5);
    near(m.f1 as number, 2 / 3);
    near(m.PER_f1 as number, 2 / 3);
    logits.dispose();
  });
});
