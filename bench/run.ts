// `npm run bench -- <suite> [flags]`: the benchmark entry point. Suites print JSON lines on stdout.

import { benchOps } from './ops.js';
import { benchDataPrepare } from './data_prepare.js';

const [suite, ...rest] = process.argv.slice(2);
const suites: Record<string, (argv: string[]) => void | Promise<void>> = { ops: benchOps, data: benchDataPrepare };
const run = suite ? suites[suite] : undefined;
if (!run) {
  console.error(`usage: npm run bench -- <${Object.keys(suites).join('|')}> [flags]
  ops   [--threads N] [--only NAME] [--no-torch]   GEMM and fused-op timings beside PyTorch
  data  [--big]                                   corpus preparation MB/s and peak RSS beside tokenizers`);
  process.exit(2);
}
await run(rest);
