// `npm run bench -- <suite> [flags]`: the benchmark entry point. Suites print JSON lines on stdout.

import { benchOps } from './ops.js';

const [suite, ...rest] = process.argv.slice(2);
const suites: Record<string, (argv: string[]) => void> = { ops: benchOps };
const run = suite ? suites[suite] : undefined;
if (!run) {
  console.error(`usage: npm run bench -- <${Object.keys(suites).join('|')}> [--threads N] [--only NAME] [--no-torch]`);
  process.exit(2);
}
run(rest);
