#!/usr/bin/env node
// The `loom` command. Only --version / --help for now; the commands come with the CLI issue.

import { VERSION } from '../version.js';

const args = process.argv.slice(2);
if (args.length === 0 || args[0] === '--version' || args[0] === '-v' || args[0] === 'version') {
  console.log(`loom ${VERSION}`);
} else if (args[0] === '--help' || args[0] === '-h') {
  console.log(`loom ${VERSION}: pre-train and fine-tune transformer language models.\n\nUsage: loom --version`);
} else {
  console.error(`loom: unknown command '${args[0]}' (this version has only --version and --help)`);
  process.exit(2);
}
