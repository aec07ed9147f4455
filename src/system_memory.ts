// How much memory this process may use: the machine's RAM, or the cgroup limit (a container, a
// systemd slice) when that is smaller, or LOOM_MEMORY_LIMIT. Used to refuse what cannot fit before
// allocating it, instead of being killed by the OS halfway through.

import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';

export interface MemoryBudget {
  /** Bytes; Infinity when the check is switched off (LOOM_MEMORY_LIMIT=none). */
  bytes: number;
  /** Where the figure comes from, for messages. */
  source: string;
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, kib: 2 ** 10, m: 1e6, mb: 1e6, mib: 2 ** 20, g: 1e9, gb: 1e9, gib: 2 ** 30, t: 1e12, tb: 1e12, tib: 2 ** 40 };

/** Parses "200MiB", "1.5 GB", "4g", "1048576" into bytes; undefined when it is not a size. */
export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  return m && unit !== undefined ? Math.round(Number(m[1]) * unit) : undefined;
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return 'unlimited';
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(0)} MiB`;
  return `${Math.ceil(n / 2 ** 10)} KiB`;
}

/** The cgroup (v2, else v1) memory limit of this process, when there is one. */
function cgroupLimit(): number | undefined {
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const text = readFileSync(file, 'utf8').trim();
      const n = Number(text);
      // v1 reports "no limit" as a huge number (2^63 rounded to pages).
      if (Number.isSafeInteger(n) && n > 0 && n < 2 ** 60) return n;
    } catch {
      // no such cgroup file: not in a limited cgroup
    }
  }
  return undefined;
}

/**
 * The memory budget: LOOM_MEMORY_LIMIT when set ("none" switches the checks off), else the smaller of
 * RAM and the cgroup limit. An unreadable LOOM_MEMORY_LIMIT is an error, not a silent default.
 */
export function memoryBudget(env: NodeJS.ProcessEnv = process.env): MemoryBudget {
  const given = env.LOOM_MEMORY_LIMIT;
  if (given !== undefined && given !== '') {
    if (/^(none|off|0)$/i.test(given.trim())) return { bytes: Infinity, source: 'LOOM_MEMORY_LIMIT=none' };
    const bytes = parseBytes(given);
    if (bytes === undefined) throw new Error(`LOOM_MEMORY_LIMIT=${given} is not a size (examples: 512MiB, 8GiB, none)`);
    return { bytes, source: `LOOM_MEMORY_LIMIT=${given}` };
  }
  const ram = totalmem();
  const cg = cgroupLimit();
  return cg !== undefined && cg < ram ? { bytes: cg, source: 'the cgroup memory limit' } : { bytes: ram, source: "the machine's RAM" };
}
