// Argument parsing for `loom`: typed flags per command, `--config run.yaml` with the same keys
// (flags override the file), and UsageError (exit 2) naming the offending flag, key or file.

import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

export type FlagType = 'string' | 'number' | 'int' | 'boolean' | 'list';

export interface FlagSpec {
  type: FlagType;
  help: string;
  required?: boolean;
  /** Allowed values of a string flag. */
  choices?: readonly string[];
  /** Shown in help. */
  default?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  flags: Record<string, FlagSpec>;
  /** Name of positional arguments (collected as a list), if the command takes any. */
  positionals?: { name: string; min: number; max?: number };
  /** Accepts --config FILE with the flag names as keys. */
  config?: boolean;
}

export type FlagValue = string | number | boolean | string[];
export interface Parsed {
  flags: Record<string, FlagValue>;
  positionals: string[];
  help: boolean;
}

/** Bad usage: exit code 2 and the command's usage line. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const camel = (s: string): string => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/_/g, '-');

function convert(spec: FlagSpec, name: string, raw: unknown, where: string): FlagValue {
  const bad = (what: string): never => {
    throw new UsageError(`${where}${name} ${what}, got ${JSON.stringify(raw)}`);
  };
  switch (spec.type) {
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === 'false') return raw === 'true';
      return bad('must be true or false');
    case 'number':
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      if (!Number.isFinite(n)) return bad('must be a number');
      if (spec.type === 'int' && !Number.isInteger(n)) return bad('must be an integer');
      return n;
    }
    case 'list':
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string' || typeof x === 'number')) return raw.map(String);
      if (typeof raw === 'string') return raw.split(',').filter((x) => x.length > 0);
      return bad('must be a list');
    default: {
      if (typeof raw !== 'string' && typeof raw !== 'number') return bad('must be a string');
      const v = String(raw);
      if (spec.choices && !spec.choices.includes(v)) return bad(`must be one of ${spec.choices.join(', ')}`);
      return v;
    }
  }
}

/** Reads a YAML (or JSON) run file into flag values; keys may be kebab-case, camelCase or snake_case. */
export function readConfigFile(path: string, spec: CommandSpec): Record<string, FlagValue> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new UsageError(`--config ${path}: file not found`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new UsageError(`--config ${path}: not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`--config ${path}: expected a mapping of flag names to values`);
  const out: Record<string, FlagValue> = {};
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const name = kebab(key);
    const f = spec.flags[name];
    if (!f || name === 'config') throw new UsageError(`--config ${path}: unknown key "${key}" for loom ${spec.name}`);
    out[camel(name)] = convert(f, `--${name}`, f.type === 'list' && !Array.isArray(value) ? String(value) : value, `--config ${path}: `);
  }
  return out;
}

/** Parses argv for one command. Flags are `--name value`, `--name=value`; booleans take no value. */
export function parseArgs(argv: readonly string[], spec: CommandSpec): Parsed {
  const fromFlags: Record<string, FlagValue> = {};
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      help = true;
      continue;
    }
    if (!a.startsWith('--') || a === '--') {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    const f = spec.flags[name] ?? (name === 'config' && spec.config ? { type: 'string' as const, help: '' } : undefined);
    if (!f) throw new UsageError(`unknown flag --${name} for loom ${spec.name}`);
    const key = camel(name);
    if (f.type === 'boolean' && eq < 0) {
      fromFlags[key] = true;
      continue;
    }
    if (f.type === 'list' && eq < 0) {
      // `--data a b c`: a list takes the arguments up to the next flag.
      const items: string[] = [];
      while (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) items.push(argv[++i]!);
      if (items.length === 0) throw new UsageError(`--${name} needs at least one value`);
      fromFlags[key] = [...((fromFlags[key] as string[] | undefined) ?? []), ...items.flatMap((x) => x.split(',').filter((y) => y))];
      continue;
    }
    const raw = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (raw === undefined || (eq < 0 && raw.startsWith('--') && f.type !== 'number')) throw new UsageError(`--${name} needs a value`);
    fromFlags[key] = convert(f, `--${name}`, raw, '');
  }
  if (help) return { flags: {}, positionals, help };
  const fromFile = spec.config && typeof fromFlags.config === 'string' ? readConfigFile(fromFlags.config, spec) : {};
  const flags = { ...fromFile, ...fromFlags };
  for (const [name, f] of Object.entries(spec.flags)) {
    if (f.required && flags[camel(name)] === undefined) throw new UsageError(`missing required flag --${name}`);
  }
  const p = spec.positionals;
  if (!p && positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" for loom ${spec.name}`);
  if (p && positionals.length < p.min) throw new UsageError(`missing ${p.name}`);
  if (p?.max !== undefined && positionals.length > p.max) throw new UsageError(`too many arguments: ${positionals.slice(p.max).join(' ')}`);
  return { flags, positionals, help };
}

/** The help text of a command. */
export function helpText(spec: CommandSpec): string {
  const lines = [`loom ${spec.name}: ${spec.summary}`, '', `Usage: ${spec.usage}`, '', 'Flags:'];
  const entries = Object.entries(spec.flags);
  if (spec.config) entries.push(['config', { type: 'string', help: 'YAML file with the same keys as the flags (flags override it)' }]);
  entries.push(['help', { type: 'boolean', help: 'show this help' }]);
  const width = Math.max(...entries.map(([n, f]) => n.length + (f.type === 'boolean' ? 0 : f.type.length + 3)));
  for (const [n, f] of entries) {
    const left = f.type === 'boolean' ? `--${n}` : `--${n} <${f.type}>`;
    const extra = [f.required ? 'required' : '', f.choices ? f.choices.join('|') : '', f.default !== undefined ? `default ${f.default}` : ''].filter((x) => x).join('; ');
    lines.push(`  ${left.padEnd(width + 3)}  ${f.help}${extra ? ` (${extra})` : ''}`);
  }
  return lines.join('\n');
}
