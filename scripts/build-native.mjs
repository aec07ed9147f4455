#!/usr/bin/env node
// Builds the native CPU backend (build/Release/loom_cpu.node) with node-gyp; run by `npm install`.
// A missing toolchain is not fatal (Loom falls back to the pure-TypeScript backend) unless LOOM_REQUIRE_NATIVE=1.
//
// Usage: node scripts/build-native.mjs [--force]   (--force rebuilds even if the addon is up to date)
//        node scripts/build-native.mjs --asan      (an AddressSanitizer build in build-asan/, for CI:
//        build-asan/build/Release/loom_cpu.node, loaded through LOOM_NATIVE_ADDON; build/ is untouched)

import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, cpSync, existsSync, mkdirSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const asan = process.argv.includes('--asan');
const force = process.argv.includes('--force') || asan;
const required = process.env.LOOM_REQUIRE_NATIVE === '1' || asan;
// The ASan build runs node-gyp in a copy of the sources, so its build/ never replaces the real one.
const buildRoot = asan ? join(root, 'build-asan') : root;
const output = join(buildRoot, 'build', 'Release', 'loom_cpu.node');

/** The full path of an executable on PATH, or null. */
function which(cmd) {
  if (cmd.includes('/')) return isExecutable(cmd) ? cmd : null;
  const exts = process.platform === 'win32' ? (process.env.PATHEXT || '.EXE;.CMD;.BAT').split(';') : [''];
  for (const dir of (process.env.PATH || '').split(delimiter)) {
    for (const ext of exts) {
      const p = join(dir, cmd + ext);
      if (dir && isExecutable(p)) return p;
    }
  }
  return null;
}

function isExecutable(p) {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function fail(message) {
  console.error(`loom: ${message}`);
  process.exit(1);
}

// ---- up to date? ----
function newestSource() {
  let newest = 0;
  const files = [join(root, 'binding.gyp'), join(root, 'scripts', 'detect-blas.mjs')];
  for (const f of readdirSync(join(root, 'native'))) files.push(join(root, 'native', f));
  for (const f of files) newest = Math.max(newest, statSync(f).mtimeMs);
  return newest;
}
if (!force && existsSync(output) && statSync(output).mtimeMs >= newestSource()) {
  console.log('loom: native CPU backend is up to date (build/Release/loom_cpu.node); --force rebuilds');
  process.exit(0);
}

// ---- toolchain check ----
if (process.platform === 'win32') {
  // the kernels use GCC/Clang extensions (vector types, __builtin_cpu_supports) that MSVC lacks
  console.error('loom: the native CPU backend does not build on Windows yet (use WSL); falling back to the TypeScript backend');
  process.exit(required ? 1 : 0);
}
const missing = [];
const compiler = process.env.CXX || ['c++', 'g++', 'clang++'].find((c) => which(c));
if (!compiler || !which(compiler.split(' ')[0])) missing.push('a C++17 compiler (c++, g++ or clang++)');
if (!which('make')) missing.push('make');
if (!which('python3') && !which('python')) missing.push('python3');
if (missing.length > 0) {
  const how =
    process.platform === 'darwin'
      ? 'xcode-select --install'
      : 'apt-get install -y g++ make python3 libopenblas-openmp-dev   (Debian/Ubuntu)';
  console.error(
    `loom: cannot build the native CPU backend: missing ${missing.join(', ')}.\n` +
      `      Install with: ${how}\n` +
      `      then run: npm run build:native\n` +
      `      Until then Loom falls back to the slow pure-TypeScript backend.`,
  );
  process.exit(required ? 1 : 0);
}

// ---- find node-gyp ----
function nodeGypCommand() {
  const local = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(local)) return [process.execPath, [local]];
  if (which('node-gyp')) return ['node-gyp', []];
  // npm bundles node-gyp: next to npm-cli.js (npm_execpath) or under the npm found on PATH.
  const cands = [];
  if (process.env.npm_execpath) cands.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const npm = which('npm');
  if (npm) {
    let real = npm;
    try {
      real = realpathSync(npm);
    } catch {}
    cands.push(join(dirname(real), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
    cands.push(join(dirname(npm), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  for (const c of cands) if (existsSync(c)) return [process.execPath, [c]];
  if (which('npx')) return ['npx', ['--yes', 'node-gyp']];
  return null;
}

const gyp = nodeGypCommand();
if (!gyp) {
  console.error('loom: cannot find node-gyp (install it with: npm install -g node-gyp); falling back to the TypeScript backend');
  process.exit(required ? 1 : 0);
}

let blas = '';
try {
  blas = execFileSync(process.execPath, [join(root, 'scripts', 'detect-blas.mjs'), 'summary'], { encoding: 'utf8' }).trim();
} catch {}
console.log(`loom: building the native CPU backend (${blas || 'BLAS detection failed'})`);

const env = { ...process.env };
if (asan) {
  rmSync(buildRoot, { recursive: true, force: true });
  mkdirSync(join(buildRoot, 'scripts'), { recursive: true });
  cpSync(join(root, 'binding.gyp'), join(buildRoot, 'binding.gyp'));
  cpSync(join(root, 'native'), join(buildRoot, 'native'), { recursive: true });
  cpSync(join(root, 'scripts', 'detect-blas.mjs'), join(buildRoot, 'scripts', 'detect-blas.mjs'));
  // gyp's Makefiles append these to every compile and link; -O1 keeps the build quick and the reports exact.
  env.CXXFLAGS = `${env.CXXFLAGS ?? ''} -fsanitize=address -fno-omit-frame-pointer -g -O1`;
  env.LDFLAGS = `${env.LDFLAGS ?? ''} -fsanitize=address`;
}
const args = [...gyp[1], 'rebuild', '--release', '--loglevel=warn'];
// Node's headers ship with some system packages (e.g. Debian's nodejs): use them instead of downloading.
const sysHeaders = resolve(dirname(process.execPath), '..', 'include', 'node', 'common.gypi');
if (!process.env.npm_config_nodedir && existsSync(sysHeaders)) args.push(`--nodedir=${resolve(sysHeaders, '..', '..', '..')}`);
const jobs = process.env.JOBS || 'max';
args.push(`--jobs=${jobs}`);
const r = spawnSync(gyp[0], args, { cwd: buildRoot, stdio: 'inherit', env });
if (r.error) fail(`could not run node-gyp: ${r.error.message}`);
if (r.status !== 0) fail('building the native CPU backend failed (see the compiler output above)');
console.log(`loom: built ${output}`);
