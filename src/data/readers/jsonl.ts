// JSON Lines: one JSON object per line, streamed. Blank lines are allowed; a line that does not
// parse, or is not an object, is an error naming file:line (or is skipped with skipBadRows).

import { DataError, readLines, Reader, type ReadOptions, type Source } from './common.js';

export interface JsonRecord {
  value: Record<string, unknown>;
  source: Source;
}

export interface JsonlReadOptions extends ReadOptions {
  /** Fields every record must have; a record without one is a bad row. */
  require?: string[];
}

export function readJsonl(files: string | readonly string[], options: JsonlReadOptions = {}): Reader<JsonRecord> {
  const list = typeof files === 'string' ? [files] : [...files];
  return new Reader<JsonRecord>(async function* (reader) {
    for (const file of list) {
      for await (const l of readLines(file)) {
        if (l.text.trim().length === 0) continue;
        let value: unknown;
        try {
          value = JSON.parse(l.text);
        } catch (err) {
          reader.bad(new DataError(file, l.line, `invalid JSON: ${(err as Error).message}`), options);
          continue;
        }
        if (value === null || typeof value !== 'object' || Array.isArray(value)) {
          const got = Array.isArray(value) ? 'an array' : JSON.stringify(value);
          reader.bad(new DataError(file, l.line, `expected a JSON object, got ${got}`), options);
          continue;
        }
        const record = value as Record<string, unknown>;
        const missing = (options.require ?? []).filter((k) => !(k in record));
        if (missing.length > 0) {
          const has = Object.keys(record).join(', ') || 'no fields';
          reader.bad(new DataError(file, l.line, `missing field ${missing.map((m) => `"${m}"`).join(', ')}; the record has ${has}`), options);
          continue;
        }
        yield { value: record, source: { file, line: l.line } };
      }
    }
  });
}

/** A string field of a record, or a DataError naming where it is missing or not a string. */
export function stringField(record: JsonRecord, field: string): string {
  const v = record.value[field];
  if (typeof v !== 'string') {
    throw new DataError(record.source.file, record.source.line, `field "${field}" ${v === undefined ? 'is missing' : 'is not a string'}`);
  }
  return v;
}
