// Adapters from reader rows (JSONL objects, CSV rows) to task records, by field / column name, with
// errors that name file:line: the glue between readers/ and collators/.

import type { ChatMessage } from '../io/chat_template.js';
import type { ChatRecord } from './collators/chat.js';
import type { ClassificationRecord } from './collators/classification.js';
import { DataError, type Source } from './readers/common.js';

/** A JSONL record or a CSV row: named values and where they were read. */
export interface RowLike {
  value?: Record<string, unknown>;
  row?: Record<string, string>;
  source: Source;
}

function fields(r: RowLike): Record<string, unknown> {
  return r.value ?? r.row ?? {};
}

function str(r: RowLike, name: string, optional = false): string | undefined {
  const v = fields(r)[name];
  if (v === undefined || v === null) {
    if (optional) return undefined;
    throw new DataError(r.source.file, r.source.line, `no field "${name}"; the record has ${Object.keys(fields(r)).join(', ') || 'no fields'}`);
  }
  if (typeof v !== 'string') throw new DataError(r.source.file, r.source.line, `field "${name}" is not a string`);
  return v;
}

export interface ClassificationColumns {
  text: string;
  textPair?: string;
  label: string;
}

/** A classification record from named columns; integer labels (JSON numbers) are kept as numbers. */
export function toClassificationRecord(r: RowLike, columns: ClassificationColumns): ClassificationRecord {
  const label = fields(r)[columns.label];
  if (typeof label !== 'string' && typeof label !== 'number') {
    const why = label === undefined ? `no label field "${columns.label}"` : `label "${columns.label}" is neither a string nor a number`;
    throw new DataError(r.source.file, r.source.line, why);
  }
  return {
    text: str(r, columns.text)!,
    textPair: columns.textPair !== undefined ? str(r, columns.textPair) : undefined,
    label,
    source: r.source,
  };
}

export interface ChatColumns {
  /** Field holding a list of { role, content } (default "messages"), used when present. */
  messages?: string;
  /** Prompt / response / optional system columns, used when there is no messages field. */
  prompt?: string;
  response?: string;
  system?: string;
}

/** A chat record: a `messages` list, or prompt/response columns (default "prompt" / "response"). */
export function toChatRecord(r: RowLike, columns: ChatColumns = {}): ChatRecord {
  const f = fields(r);
  const key = columns.messages ?? 'messages';
  if (f[key] !== undefined) {
    const list = f[key];
    if (!Array.isArray(list)) throw new DataError(r.source.file, r.source.line, `field "${key}" is not a list of messages`);
    const messages = list.map((m: unknown, i: number): ChatMessage => {
      const o = m as { role?: unknown; content?: unknown } | null;
      if (o === null || typeof o !== 'object' || typeof o.role !== 'string' || typeof o.content !== 'string') {
        throw new DataError(r.source.file, r.source.line, `message ${i} is not { role: string, content: string }`);
      }
      return { ...(o as object), role: o.role, content: o.content };
    });
    return { messages, source: r.source };
  }
  return {
    prompt: str(r, columns.prompt ?? 'prompt')!,
    response: str(r, columns.response ?? 'response')!,
    system: columns.system !== undefined ? str(r, columns.system, true) : undefined,
    source: r.source,
  };
}
