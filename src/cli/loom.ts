#!/usr/bin/env node
// The `loom` command: finds the (one- or two-word) command, parses its flags, runs it, and maps
// failures to exit codes: 0 ok, 1 the run failed (one line naming the problem), 2 bad usage.

import { VERSION } from '../version.js';
import { UsageError, helpText, parseArgs } from './args.js';
import { TRAIN_COMMANDS, type Command } from './train_commands.js';
import { USE_COMMANDS } from './use_commands.js';
import { writeReport } from './report.js';
import { DEMO_COMMAND } from './demo.js';

const reportCmd: Command = {
  spec: {
    name: 'report',
    summary: 'write RUN_DIR/report.html: loss/LR curves, eval metrics, confusion matrix, configuration',
    usage: 'loom report RUN_DIR',
    flags: { json: { type: 'boolean', help: 'print {"report": PATH}' } },
    positionals: { name: 'RUN_DIR', min: 1, max: 1 },
  },
  async run(_f, [dir]) {
    const path = await writeReport(dir!);
    process.stderr.write(`wrote ${path}\n`);
    return { report: path };
  },
};

const COMMANDS: Record<string, Command> = { ...TRAIN_COMMANDS, ...USE_COMMANDS, report: reportCmd, demo: DEMO_COMMAND };

function overview(): string {
  const lines = [`loom ${VERSION}: pre-train and fine-tune transformer language models.`, '', 'Usage: loom <command> [flags]   (loom <command> --help for its flags)', '', 'Commands:'];
  for (const c of Object.values(COMMANDS)) lines.push(`  ${c.spec.name.padEnd(16)} ${c.spec.summary}`);
  lines.push('', '  --version        print the version');
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === '-v' || argv[0] === 'version') {
    console.log(`loom ${VERSION}`);
    return 0;
  }
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(overview());
    return argv.length === 0 ? 2 : 0;
  }
  const two = `${argv[0]} ${argv[1] ?? ''}`;
  const [name, rest] = COMMANDS[two] ? [two, argv.slice(2)] : [argv[0]!, argv.slice(1)];
  const cmd = COMMANDS[name];
  if (!cmd) {
    const sub = Object.keys(COMMANDS).filter((k) => k.startsWith(`${argv[0]} `));
    process.stderr.write(sub.length ? `loom: ${argv[0]} needs a subcommand: ${sub.join(', ')}\n` : `loom: unknown command '${argv[0]}' (loom --help lists the commands)\n`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseArgs(rest, cmd.spec);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`loom ${name}: ${e.message}\nUsage: ${cmd.spec.usage}\n(loom ${name} --help for all flags)\n`);
    return 2;
  }
  if (parsed.help) {
    console.log(helpText(cmd.spec));
    return 0;
  }
  try {
    const result = await cmd.run(parsed.flags, parsed.positionals);
    if (parsed.flags.json === true && result !== undefined) process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (e) {
    const err = e as Error;
    if (err.name === 'UsageError') {
      process.stderr.write(`loom ${name}: ${err.message}\nUsage: ${cmd.spec.usage}\n`);
      return 2;
    }
    process.stderr.write(`loom ${name}: error: ${err.message}\n`);
    if (process.env.LOOM_DEBUG) process.stderr.write(`${err.stack ?? ''}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`loom: internal error: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
