// `npm run bench -- models`: a 124M-parameter GPT-2-shaped checkpoint: load time and peak RSS
// (loading must stream: peak RSS under 1.5x the file size), and greedy generation with a KV cache,
// tokens/s beside PyTorch (bench/generate_torch.py, same safetensors file) measured in the same run.
// Every measurement runs in a fresh child process, Loom and PyTorch alternately; medians are printed.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, runTorch } from './util.js';

const HERE = fileURLToPath(import.meta.url);
const TORCH_SCRIPT = fileURLToPath(new URL('../../bench/generate_torch.py', import.meta.url));
const WORK = '/tmp/loom-bench-models';
const CHECKPOINT = join(WORK, 'gpt2-124m');
const MIB = 1024 * 1024;

const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;
const rssMib = (): number => round((process.resourceUsage().maxRSS * 1024) / MIB, 1);

/**
 * `npm run bench -- models [--only load|generate] [--runs N] [--threads N] [--prompt N] [--new N]
 * [--no-torch] [--rebuild]`. One JSON line per case.
 */
export function benchModels(argv: string[]): void {
  const flag = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const only = flag('--only');
  const runs = Number(flag('--runs') ?? 3);
  const threads = Number(flag('--threads') ?? 2);
  const promptLen = Number(flag('--prompt') ?? 32);
  const newTokens = Number(flag('--new') ?? 64);
  const withTorch = !argv.includes('--no-torch');

  const file = ensureCheckpoint(argv.includes('--rebuild'));
  const fileMib = statSync(file).size / MIB;

  if (!only || only === 'load') {
    const bare = child(['bare', String(threads)]);
    const loads: Record<string, number>[] = [];
    for (let i = 0; i < runs; i++) loads.push(child(['load', CHECKPOINT, String(threads)]));
    const peak = median(loads.map((r) => r.peak_rss_mib!));
    console.log(JSON.stringify({
      bench: 'models',
      case: 'load',
      model: 'gpt2-124m',
      params: loads[0]!.params,
      file_mib: round(fileMib, 1),
      runs,
      load_s: round(median(loads.map((r) => r.load_s!)), 3),
      peak_rss_mib: round(peak, 1),
      peak_rss_over_file: round(peak / fileMib, 3), // the target: < 1.5
      bare_import_rss_mib: bare.import_rss_mib,
      bare_backend_rss_mib: bare.backend_rss_mib,
      // Peak RSS above a bare process with the backend loaded, over the file size.
      load_increment_over_file: round((peak - bare.backend_rss_mib!) / fileMib, 3),
      all_load_s: loads.map((r) => round(r.load_s!, 3)),
      all_peak_rss_mib: loads.map((r) => r.peak_rss_mib),
    }));
  }

  if (!only || only === 'generate') {
    const prompt = promptIds(promptLen, 50257);
    const loom: Record<string, unknown>[] = [];
    const torch: Record<string, unknown>[] = [];
    let torchError: string | undefined;
    // Alternate Loom / PyTorch so that outside load on a shared machine hits both sides alike.
    for (let i = 0; i < runs; i++) {
      loom.push(withLoadShare(() => child(['generate', CHECKPOINT, String(threads), String(newTokens), prompt.join(',')])));
      if (withTorch && !torchError) {
        const r = withLoadShare(() => {
          const lines = runTorch(TORCH_SCRIPT, ['--threads', String(threads)], {
            checkpoint: CHECKPOINT, prompt, max_new_tokens: newTokens, loom_tokens: loom[0]!.tokens, loom_top5: loom[0]!.top5,
          });
          return lines instanceof Error ? lines : lines[lines.length - 1]!;
        });
        if (r instanceof Error) torchError = r.message;
        else torch.push(r);
      }
    }
    if (torchError) console.error(torchError);
    const med = (xs: Record<string, unknown>[], k: string): number => round(median(xs.map((r) => r[k] as number)), 2);
    const line: Record<string, unknown> = {
      bench: 'models',
      case: 'generate',
      model: 'gpt2-124m',
      batch: 1,
      prompt_tokens: promptLen,
      new_tokens: newTokens,
      threads,
      runs,
      loom: {
        tokens_per_s: med(loom, 'tokens_per_s'),
        decode_tokens_per_s: med(loom, 'decode_tokens_per_s'),
        prefill_ms: med(loom, 'prefill_ms'),
        decode_ms_per_token: med(loom, 'decode_ms_per_token'),
        peak_rss_mib: med(loom, 'peak_rss_mib'),
        all_tokens_per_s: loom.map((r) => round(r.tokens_per_s as number)),
        others_cpu: loom.map((r) => r.others_cpu),
      },
    };
    if (torch.length) {
      line.torch = {
        tokens_per_s: med(torch, 'tokens_per_s'),
        decode_tokens_per_s: med(torch, 'decode_tokens_per_s'),
        prefill_ms: med(torch, 'prefill_ms'),
        decode_ms_per_token: med(torch, 'decode_ms_per_token'),
        peak_rss_mib: med(torch, 'peak_rss_mib'),
        all_tokens_per_s: torch.map((r) => round(r.tokens_per_s as number)),
        others_cpu: torch.map((r) => r.others_cpu),
        version: torch[0]!.torch_version,
      };
      // The first 16 greedy tokens of every PyTorch run equal Loom's. A random model's greedy output can
      // repeat one token (see distinct_tokens), so the prompt's top-5 logits are compared as well.
      line.tokens_match = torch.every((r) => r.tokens_match === true);
      line.tokens_match_all = torch.every((r) => r.tokens_match_all === true);
      // The prompt's top-5 next tokens agree and their logits differ by at most this (relative to the largest).
      line.top5_logits_match = torch.every((r) => r.top5_ids_match === true);
      line.top5_logits_max_rel_diff = Math.max(...torch.map((r) => r.top5_max_rel_diff as number));
      // > 1 means Loom is faster (the target: >= 1).
      line.speedup_vs_torch = round((line.loom as { tokens_per_s: number }).tokens_per_s / (line.torch as { tokens_per_s: number }).tokens_per_s, 3);
      line.decode_speedup_vs_torch = round(
        (line.loom as { decode_tokens_per_s: number }).decode_tokens_per_s / (line.torch as { decode_tokens_per_s: number }).decode_tokens_per_s,
        3,
      );
    }
    line.loom_tokens_16 = (loom[0]!.tokens as number[]).slice(0, 16);
    line.distinct_tokens = new Set(loom[0]!.tokens as number[]).size;
    console.log(JSON.stringify(line));
  }
}

/** A deterministic pseudo-random prompt (LCG), the same on both sides. */
function promptIds(n: number, vocab: number): number[] {
  let s = 12345;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % vocab;
  });
}

/** The checkpoint folder, built once (in a child, so this process stays small) and reused. */
function ensureCheckpoint(rebuild: boolean): string {
  const file = join(CHECKPOINT, 'model.safetensors');
  if (rebuild) rmSync(CHECKPOINT, { recursive: true, force: true });
  if (!existsSync(file) || !existsSync(join(CHECKPOINT, 'config.json'))) {
    mkdirSync(WORK, { recursive: true });
    const r = child(['build', CHECKPOINT]);
    console.error(`built ${CHECKPOINT} (${r.params} parameters) in ${round(r.seconds!, 1)} s`);
  }
  return file;
}

function child(args: string[]): Record<string, any> {
  const r = spawnSync(process.execPath, [HERE, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`bench child ${args[0]} failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, any>;
}

/** Jiffies since boot, all CPUs: busy (user, nice, system, irq, softirq, steal) and total; null off Linux. */
function cpuTimes(): { busy: number; total: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f as [number, number, number, number, number, number, number, number];
    return { busy: user + nice + system + irq + softirq + steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
  } catch {
    return null;
  }
}

/**
 * Runs a measurement child (which reports its own CPU seconds as cpu_s) and adds others_cpu: the
 * share of the machine's CPU time that other processes (or the hypervisor) took meanwhile. The
 * machine is shared, so a run with others_cpu well above 0 is disturbed.
 */
function withLoadShare<T extends Record<string, unknown> | Error>(run: () => T): T {
  const a = cpuTimes();
  const t0 = performance.now();
  const r = run();
  const wall = (performance.now() - t0) / 1000;
  const b = cpuTimes();
  if (r instanceof Error || !a || !b || typeof r.cpu_s !== 'number') return r;
  const n = cpus().length;
  const hz = (b.total - a.total) / (n * wall); // USER_HZ, measured
  const others = (b.busy - a.busy) / hz - r.cpu_s;
  return { ...r, others_cpu: round(Math.max(0, others / (n * wall))) };
}

// ---- child processes: each prints one JSON line ----

const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function useThreads(threads: number): Promise<typeof import('../src/index.js')> {
  const L = await import('../src/index.js');
  const backend = new L.CpuBackend();
  backend.setNumThreads(threads);
  L.setBackend(backend);
  return L;
}

async function childBuild(dir: string): Promise<object> {
  const L = await useThreads(2);
  const t0 = performance.now();
  const model = L.fromPreset('gpt2', 'base', 'causal-lm');
  await model.save(dir);
  return { params: model.numParameters(), seconds: (performance.now() - t0) / 1000 };
}

async function childBare(threads: number): Promise<object> {
  await import('../src/index.js');
  const importRss = rssMib();
  const L = await useThreads(threads);
  L.scope(() => void L.add(L.ones([4]), L.ones([4])).dataSync());
  return { import_rss_mib: importRss, backend_rss_mib: rssMib() };
}

async function childLoad(dir: string, threads: number): Promise<object> {
  const L = await useThreads(threads);
  const t0 = performance.now();
  const { model } = await L.loadPretrained(dir);
  const seconds = (performance.now() - t0) / 1000;
  return { load_s: seconds, peak_rss_mib: rssMib(), params: model.numParameters() };
}

async function childGenerate(dir: string, threads: number, newTokens: number, prompt: number[]): Promise<object> {
  const L = await useThreads(threads);
  const { model } = await L.loadPretrained(dir);
  model.eval();
  // The prompt's next-token logits (top 5), for PyTorch to compare beside the tokens: greedy tokens of
  // a random model can repeat one token, which would make equal tokens a weak check alone.
  const logits = L.noGrad(() =>
    L.scope(() => model.forward({ inputIds: L.tensor(Int32Array.from(prompt), [1, prompt.length], { dtype: 'i32' }), lastTokenOnly: true }).logits.dataSync() as Float32Array),
  );
  const top5 = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, 5);
  // Warm-up (allocator caches, first-call costs), as the PyTorch side does.
  L.generate(model, [prompt], { maxNewTokens: 4, stopTokens: [] });
  const steps = L.generateSteps(model, [prompt], { maxNewTokens: newTokens, stopTokens: [] });
  const times: number[] = [];
  const tokens: number[] = [];
  const t0 = performance.now();
  let last = t0;
  for (;;) {
    const r = steps.next();
    if (r.done) break;
    const now = performance.now();
    times.push(now - last);
    last = now;
    tokens.push(r.value[0]!);
  }
  const totalMs = performance.now() - t0;
  const decodeMs = times.slice(1).reduce((a, b) => a + b, 0);
  return {
    tokens,
    top5: { ids: top5, values: top5.map((i) => logits[i]!) },
    tokens_per_s: (tokens.length / totalMs) * 1000,
    decode_tokens_per_s: ((tokens.length - 1) / decodeMs) * 1000,
    prefill_ms: times[0],
    decode_ms_per_token: decodeMs / (tokens.length - 1),
    peak_rss_mib: rssMib(),
    cpu_s: cpuSeconds(),
  };
}

if (process.argv[1] === HERE) {
  const [mode, ...a] = process.argv.slice(2);
  let result: object;
  if (mode === 'build') result = await childBuild(a[0]!);
  else if (mode === 'bare') result = await childBare(Number(a[0]));
  else if (mode === 'load') result = await childLoad(a[0]!, Number(a[1]));
  else if (mode === 'generate') result = await childGenerate(a[0]!, Number(a[1]), Number(a[2]), a[3]!.split(',').map(Number));
  else throw new Error(`bench/models child: unknown mode ${mode}`);
  console.log(JSON.stringify(result));
}
