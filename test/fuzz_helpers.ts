// Seeded mutation fuzzing: byte-level mutators (bit flips, truncation, insertions, invalid UTF-8),
// JSON-level mutators (type swaps, huge and negative numbers, deep nesting, removed fields), and the
// oracle every fuzz test applies: a loader either succeeds or throws a clear error naming the file.

import assert from 'node:assert/strict';
import { rng } from './cli_helpers.js';

export type Rand = (n: number) => number;

export function seeded(seed: number): Rand {
  return rng(seed);
}

const pick = <T>(r: Rand, xs: readonly T[]): T => xs[r(xs.length)]!;

/** Values that break assumptions: wrong types, huge, negative, fractional, non-finite-ish, long strings. */
const ODD_VALUES: readonly unknown[] = [
  null, true, false, 0, -1, 1.5, 2 ** 31, 2 ** 53, 1e12, 1e308, -1e308, '', 'x', '1', '\u0000', '\uD800',
  'A'.repeat(10_000), [], [1, 2], [[]], {}, { a: 1 }, [-1], [2 ** 40, 2 ** 40],
];

/** One random byte-level mutation of `bytes` (never the same array). */
export function mutateBytes(r: Rand, bytes: Uint8Array): Uint8Array {
  const b = Uint8Array.from(bytes);
  const at = (): number => r(Math.max(1, b.length));
  switch (r(8)) {
    case 0: { // flip 1-8 bits
      for (let i = 0, n = 1 + r(8); i < n && b.length > 0; i++) b[at()]! ^= 1 << r(8);
      return b;
    }
    case 1: // truncate
      return b.subarray(0, at());
    case 2: { // insert random bytes
      const i = at();
      const extra = Uint8Array.from({ length: 1 + r(16) }, () => r(256));
      return concat(b.subarray(0, i), extra, b.subarray(i));
    }
    case 3: { // delete a range
      const i = at();
      return concat(b.subarray(0, i), b.subarray(Math.min(b.length, i + 1 + r(32))));
    }
    case 4: { // invalid UTF-8: a lone continuation byte, an overlong form, a truncated sequence
      const i = at();
      return concat(b.subarray(0, i), Uint8Array.from(pick(r, [[0x80], [0xc0, 0xaf], [0xe2, 0x82], [0xff, 0xfe], [0xed, 0xa0, 0x80]])), b.subarray(i));
    }
    case 5: { // overwrite a byte with a structural character
      if (b.length > 0) b[at()] = pick(r, [...'{}[]",:\\0\n\r'].map((c) => c.charCodeAt(0)));
      return b;
    }
    case 6: { // duplicate a range (repeated keys, repeated rows)
      const i = at();
      const j = Math.min(b.length, i + 1 + r(64));
      return concat(b.subarray(0, j), b.subarray(i, j), b.subarray(j));
    }
    default: // empty file
      return new Uint8Array(0);
  }
}

/** One random structural mutation of a JSON value (a deep copy is changed and returned). */
export function mutateJson(r: Rand, value: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(value)) as unknown;
  const paths = collectPaths(copy);
  const kind = r(6);
  if (kind === 0) return deepNest(r(2) === 0 ? 'array' : 'object', 5000 + r(100_000)); // deep nesting as the whole document
  if (paths.length === 0) return pick(r, ODD_VALUES);
  const [parent, key] = pick(r, paths);
  if (kind === 1 && !Array.isArray(parent)) delete (parent as Record<string, unknown>)[key as string];
  else if (kind === 2) (parent as Record<string | number, unknown>)[key] = deepNest('array', 2000 + r(20_000));
  else if (kind === 3 && !Array.isArray(parent)) (parent as Record<string, unknown>)[pick(r, ['__proto__', 'constructor', 'toString', ''])] = pick(r, ODD_VALUES);
  else (parent as Record<string | number, unknown>)[key] = pick(r, ODD_VALUES);
  return copy;
}

/** Serialises a (mutated) JSON value; deep nesting is written by hand since JSON.stringify would overflow. */
export function jsonText(value: unknown): string {
  if (isDeep(value)) return (value as Deep).text;
  return JSON.stringify(value, (_k, v: unknown) => (isDeep(v) ? `__deep__${(v as Deep).text}__deep__` : v)).replace(/"__deep__(.*?)__deep__"/g, '$1');
}

interface Deep {
  deep: true;
  text: string;
}

function deepNest(kind: 'array' | 'object', depth: number): Deep {
  const text = kind === 'array' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
  return { deep: true, text };
}

function isDeep(v: unknown): v is Deep {
  return typeof v === 'object' && v !== null && (v as Deep).deep === true && typeof (v as Deep).text === 'string';
}

function collectPaths(v: unknown, out: [object, string | number][] = [], depth = 0): [object, string | number][] {
  if (depth > 6 || typeof v !== 'object' || v === null) return out;
  const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i).slice(0, 20) : Object.keys(v).slice(0, 200);
  for (const k of keys) {
    out.push([v, k]);
    collectPaths((v as Record<string | number, unknown>)[k], out, depth + 1);
  }
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The oracle: `e` is an error a user can act on: its message names one of `files` (by base name), and
 * is not one of the engine's own complaints ("Cannot read properties of undefined", a stack overflow),
 * which mean a loader tripped over input it never checked: a bug to fix.
 */
export function assertClearError(e: unknown, files: readonly string[], what: string): void {
  assert.ok(e instanceof Error, `${what}: threw a non-Error ${String(e)}`);
  const names = files.map((f) => f.split('/').pop()!);
  assert.ok(names.some((n) => e.message.includes(n)), `${what}: the error does not name the file (${names.join(', ')}): ${e.name}: ${e.message}`.concat(`\n${e.stack ?? ""}`));
  assert.doesNotMatch(e.message, /Cannot read properties|is not a function|is not iterable|undefined \(reading|Maximum call stack/, `${what}: ${e.message}`);
}

/** Runs `fn` and checks the outcome: success, or a clear error (see assertClearError). */
export async function expectSafe(what: string, files: readonly string[], fn: () => Promise<unknown> | unknown): Promise<'ok' | 'error'> {
  try {
    await fn();
    return 'ok';
  } catch (e) {
    assertClearError(e, files, what);
    return 'error';
  }
}

/** Peak RSS of this process so far, in MiB (the kernel's high-water mark: catches short spikes too). */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}
