#!/usr/bin/env node
// Finds a CBLAS for the native CPU backend and prints flags for binding.gyp (one gyp list per query).
// Linux: OpenBLAS, preferring its OpenMP build (it shares libgomp's pool with our kernels); macOS: Accelerate.
//
// Usage: node scripts/detect-blas.mjs <query>
//   include_dirs | defines | libraries | ldflags | openmp_cflags | openmp_ldflags   (space-separated, for gyp)
//   summary   (one human line)        json   (everything)
// Environment: LOOM_BLAS=none|openblas|accelerate (default: auto),
//   LOOM_BLAS_INCLUDE=<dir with cblas.h> and LOOM_BLAS_LIBDIR=<dir with the library>, LOOM_BLAS_LIB=<name, default openblas>.

import { existsSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function hasLib(dir, name) {
  if (!existsSync(dir)) return false;
  const files = readdirSync(dir);
  return files.some((f) => f === `lib${name}.so` || f === `lib${name}.dylib` || f === `lib${name}.a`);
}

function openblas(includeDir, libDir, lib = 'openblas', openmp = false, why = '') {
  return {
    kind: 'openblas',
    openmp,
    includeDirs: [includeDir],
    defines: ['LOOM_HAVE_BLAS=1', 'LOOM_BLAS_OPENBLAS=1'],
    libraries: [`-L${libDir}`, `-l${lib}`],
    // The run-time loader must pick the same build the linker saw (Debian switches libopenblas.so.0
    // between the pthread and OpenMP builds with update-alternatives).
    ldflags: [`-Wl,-rpath,${libDir}`],
    why,
  };
}

function detectLinux() {
  const env = process.env;
  const lib = env.LOOM_BLAS_LIB || 'openblas';
  if (env.LOOM_BLAS_INCLUDE || env.LOOM_BLAS_LIBDIR) {
    const inc = env.LOOM_BLAS_INCLUDE ?? '/usr/include';
    const libDir = env.LOOM_BLAS_LIBDIR ?? '/usr/lib';
    if (!existsSync(join(inc, 'cblas.h'))) return { none: `LOOM_BLAS_INCLUDE: no cblas.h in ${inc}` };
    if (!hasLib(libDir, lib)) return { none: `LOOM_BLAS_LIBDIR: no lib${lib} in ${libDir}` };
    return openblas(inc, libDir, lib, /openmp|openblaso/.test(libDir + lib), 'from LOOM_BLAS_INCLUDE/LOOM_BLAS_LIBDIR');
  }
  const triplet =
    run('gcc', ['-print-multiarch']) ||
    ({ x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', ppc64: 'powerpc64le-linux-gnu' }[process.arch] ?? '');
  const cands = [];
  if (triplet) {
    // Debian/Ubuntu: libopenblas-openmp-dev, then whatever libopenblas-dev alternative is selected.
    cands.push([`/usr/include/${triplet}/openblas-openmp`, `/usr/lib/${triplet}/openblas-openmp`, 'openblas', true]);
    cands.push([`/usr/include/${triplet}/openblas-pthread`, `/usr/lib/${triplet}/openblas-pthread`, 'openblas', false]);
    cands.push([`/usr/include/${triplet}`, `/usr/lib/${triplet}`, 'openblas', false]);
  }
  // Fedora/RHEL: openblas-devel ships the OpenMP build as libopenblaso.
  cands.push(['/usr/include/openblas', '/usr/lib64', 'openblaso', true]);
  cands.push(['/usr/include/openblas', '/usr/lib64', 'openblas', false]);
  cands.push(['/usr/include/openblas', '/usr/lib', 'openblas', false]);
  cands.push(['/usr/include', '/usr/lib64', 'openblas', false]);
  cands.push(['/usr/include', '/usr/lib', 'openblas', false]);
  cands.push(['/usr/local/include', '/usr/local/lib', 'openblas', false]);
  cands.push(['/opt/OpenBLAS/include', '/opt/OpenBLAS/lib', 'openblas', false]);
  for (const [inc, libDir, name, omp] of cands) {
    if (existsSync(join(inc, 'cblas.h')) && hasLib(libDir, name)) return openblas(inc, libDir, name, omp, 'found');
  }
  const pc = run('pkg-config', ['--cflags-only-I', '--libs-only-L', 'openblas']);
  if (pc !== null) {
    const inc = pc.split(/\s+/).find((f) => f.startsWith('-I'))?.slice(2).replace(/\/$/, '');
    const libDir = pc.split(/\s+/).find((f) => f.startsWith('-L'))?.slice(2).replace(/\/$/, '');
    if (inc && libDir && existsSync(join(inc, 'cblas.h'))) {
      return openblas(inc, libDir, 'openblas', /openmp/.test(libDir), 'pkg-config openblas');
    }
  }
  return { none: 'no cblas.h + libopenblas found (Debian/Ubuntu: apt-get install -y libopenblas-openmp-dev)' };
}

function detectMacOpenMP() {
  // Apple clang accepts OpenMP through -Xpreprocessor with Homebrew's libomp; without it we build single-threaded.
  for (const prefix of ['/opt/homebrew/opt/libomp', '/usr/local/opt/libomp']) {
    if (existsSync(join(prefix, 'include', 'omp.h'))) {
      return {
        cflags: ['-Xpreprocessor', '-fopenmp', `-I${prefix}/include`],
        ldflags: [`-L${prefix}/lib`, '-lomp', `-Wl,-rpath,${prefix}/lib`],
      };
    }
  }
  return { cflags: [], ldflags: [] };
}

function detect() {
  const want = (process.env.LOOM_BLAS || 'auto').toLowerCase();
  const none = (why) => ({ kind: 'none', openmp: false, includeDirs: [], defines: ['LOOM_HAVE_BLAS=0'], libraries: [], ldflags: [], why });
  if (want === 'none' || want === '0' || want === 'off') return none('LOOM_BLAS=none');
  if (process.platform === 'darwin') {
    if (want !== 'openblas') {
      return {
        kind: 'accelerate',
        openmp: false,
        includeDirs: [],
        defines: ['LOOM_HAVE_BLAS=1', 'LOOM_BLAS_ACCELERATE=1', 'ACCELERATE_NEW_LAPACK=1'],
        libraries: [],
        ldflags: ['-framework', 'Accelerate'],
        why: 'macOS Accelerate framework',
      };
    }
  }
  if (process.platform === 'win32') return none('no BLAS detection on Windows');
  const r = detectLinux();
  return r.none ? none(r.none) : r;
}

const info = detect();
const omp = process.platform === 'darwin' ? detectMacOpenMP() : { cflags: ['-fopenmp'], ldflags: ['-fopenmp'] };
const query = process.argv[2] ?? 'summary';
switch (query) {
  case 'include_dirs':
    console.log(info.includeDirs.join(' '));
    break;
  case 'defines':
    console.log([...info.defines, `LOOM_BLAS_OPENMP=${info.openmp ? 1 : 0}`].join(' '));
    break;
  case 'libraries':
    console.log(info.libraries.join(' '));
    break;
  case 'ldflags':
    console.log(info.ldflags.join(' '));
    break;
  case 'openmp_cflags':
    console.log(omp.cflags.join(' '));
    break;
  case 'openmp_ldflags':
    console.log(omp.ldflags.join(' '));
    break;
  case 'json':
    console.log(JSON.stringify({ ...info, openmpFlags: omp }, null, 2));
    break;
  case 'summary':
    console.log(
      info.kind === 'none'
        ? `BLAS: none (${info.why}); using Loom's own GEMM`
        : `BLAS: ${info.kind}${info.openmp ? ' (OpenMP build)' : ''} ${info.includeDirs.join(' ')} ${info.libraries.join(' ')} ${info.ldflags.join(' ')}`.trim(),
    );
    break;
  default:
    console.error(`detect-blas: unknown query '${query}'`);
    process.exit(2);
}
