// Parity with PyTorch: each random HF-format checkpoint in test/fixtures/models/ (written by
// scripts/gen_model_fixtures.py) gives the same logits, loss and parameter gradients in Loom.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as L from '../src/index.js';
import { ReferenceBackend } from '../src/backends/reference/index.js';

const ROOT = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'models');

interface Packed {
  shape: number[];
  data: number[];
}
interface Expected {
  inputs: Record<string, number[][] | number[]>;
  logits: Packed;
  loss: number;
  grads: Record<string, Packed>;
}

/** max |a - e| / max |e|: the error relative to the tensor's scale (what the tolerances bound). */
export function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]!));
    err = Math.max(err, Math.abs(actual[i]! - expected[i]!));
  }
  return err / Math.max(scale, 1e-30);
}

function i32(rows: number[][] | number[]): L.Tensor {
  const nested = Array.isArray(rows[0]);
  const flat = nested ? (rows as number[][]).flat() : (rows as number[]);
  const shape = nested ? [rows.length, (rows as number[][])[0]!.length] : [rows.length];
  return L.tensor(Int32Array.from(flat), shape, { dtype: 'i32' });
}

const cases = existsSync(ROOT) ? readdirSync(ROOT).filter((d) => existsSync(join(ROOT, d, 'expected.json'))).sort() : [];
const backends: [string, () => L.Backend][] = [
  ['default backend', () => L.getBackend()],
  ['reference backend', () => new ReferenceBackend()],
];

for (const [backendName, create] of backends) {
  describe(`model parity with PyTorch (${backendName})`, () => {
    if (cases.length === 0) it.skip('no fixtures in test/fixtures/models', () => {});
    for (const name of cases) {
      it(`${name}: logits 1e-4, gradients 1e-3 (relative)`, async () => {
        const previous = L.getBackend();
        L.setBackend(create());
        const dir = join(ROOT, name);
        const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected;
        const { model, report } = await L.loadPretrained(dir, { warn: false });
        try {
          assert.deepEqual(report.missing, [], 'missing weights');
          assert.deepEqual(report.unexpected, [], 'unexpected weights');
          model.eval(); // the references run without dropout
          const { inputs } = expected;
          const { logits, loss } = L.scope(() =>
            model.forward({
              inputIds: i32(inputs.input_ids!),
              attentionMask: inputs.attention_mask ? i32(inputs.attention_mask) : null,
              tokenTypeIds: inputs.token_type_ids ? i32(inputs.token_type_ids) : null,
              labels: i32(inputs.labels!),
            }),
          );
          assert.deepEqual([...logits.shape], expected.logits.shape);
          const logitErr = maxRelError(logits.dataSync(), expected.logits.data);
          assert.ok(logitErr < 1e-4, `logits relative error ${logitErr}`);
          const lossErr = Math.abs(loss!.item() - expected.loss) / Math.abs(expected.loss);
          assert.ok(lossErr < 1e-4, `loss ${loss!.item()} vs ${expected.loss}`);
          loss!.backward();
          const params = new Map(model.namedParameters());
          let gradErr = 0;
          for (const [pname, g] of Object.entries(expected.grads)) {
            const p = params.get(pname);
            assert.ok(p, `no parameter ${pname}`);
            assert.ok(p.grad, `no gradient for ${pname}`);
            assert.deepEqual([...p.grad.shape], g.shape, pname);
            const err = maxRelError(p.grad.dataSync(), g.data);
            assert.ok(err < 1e-3, `${pname}: gradient relative error ${err}`);
            gradErr = Math.max(gradErr, err);
          }
          if (process.env.LOOM_PARITY_REPORT) console.log(`${name} (${backendName}): logits ${logitErr.toExponential(2)}, grads ${gradErr.toExponential(2)}`);
          logits.dispose();
          loss!.dispose();
        } finally {
          model.dispose();
          L.setBackend(previous);
        }
      });
    }
  });
}
