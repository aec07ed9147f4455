// `npm run bench -- <suite> [flags]`: the benchmark entry point. Suites print JSON lines on stdout.

import { benchOps } from './ops.js';
import { benchDataPrepare } from './data_prepare.js';
import { benchModels } from './models.js';
import { benchTrain } from './train.js';
import { benchCompare } from './compare.js';
import { benchLoad } from './load.js';

const [suite, ...rest] = process.argv.slice(2);
const suites: Record<string, (argv: string[]) => void | Promise<void>> = { ops: benchOps, data: benchDataPrepare, models: benchModels, train: benchTrain, compare: benchCompare, load: benchLoad };
const run = suite ? suites[suite] : undefined;
if (!run) {
  console.error(`usage: npm run bench -- <${Object.keys(suites).join('|')}> [flags]
  ops   [--threads N] [--only NAME] [--no-torch]   GEMM and fused-op timings beside PyTorch
  data  [--big]                                   corpus preparation MB/s and peak RSS beside tokenizers
  models [--only load|generate] [--runs N] [--threads N] [--prompt N] [--new N] [--no-torch] [--rebuild]
        GPT-2 124M checkpoint load time / peak RSS, greedy KV-cache generation tokens/s beside PyTorch
  train --model gpt|bert|llama --size tiny|small|gpt2-124m|bert-base|smollm2-135m [--batch B] [--seq T]
        [--steps N] [--warmup N] [--threads K] [--infer] [--tie-head] [--profile]
        one training (or forward-only) run of a reference shape: one JSON line, the reference's fields
  compare [--quick] [--pairs N] [--steps N] [--only TEXT] [--threads K]
        Loom vs ../shared/bench/reference/torch_train_bench.py, alternating fresh processes, ratios per case
  load  [--texts N] [--prompts N] [--new-tokens N]
        predict over 100k short texts and generate for 1,000 prompts in one process: throughput, RSS start/middle/end`);
  process.exit(2);
}
await run(rest);
