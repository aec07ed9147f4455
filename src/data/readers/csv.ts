// CSV / TSV through csv-parse (RFC 4180 quoting, embedded newlines, BOM, CRLF, header row), streamed;
// columns chosen by name, and every error names file:line of the record.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { Readable } from 'node:stream';
import { parse, type CsvError, type Info } from 'csv-parse';
import { DataError, Reader, type ReadOptions, type Source } from './common.js';

export interface CsvRow {
  /** Field values by column name (by index "0", "1", ... when the file has no header). */
  row: Record<string, string>;
  source: Source;
}

export interface CsvReadOptions extends ReadOptions {
  /** Field separator; default tab for .tsv/.tab files, else comma. */
  delimiter?: string;
  /** The first row names the columns. Default true. */
  header?: boolean;
  /** Columns that must exist; an error lists the file's columns when one is missing. */
  columns?: string[];
  /** Quote character, or false for none (plain TSV). Default '"'. */
  quote?: string | false;
}

/** Reads one or more CSV/TSV files. Empty lines are ignored. */
export function readCsv(files: string | readonly string[], options: CsvReadOptions = {}): Reader<CsvRow> {
  const list = typeof files === 'string' ? [files] : [...files];
  return new Reader<CsvRow>(async function* (reader) {
    for (const file of list) yield* readOne(file, options, reader);
  });
}

async function* readOne(file: string, options: CsvReadOptions, reader: Reader<CsvRow>): AsyncGenerator<CsvRow> {
  const info = await stat(file).catch(() => undefined);
  if (info === undefined || !info.isFile()) throw new DataError(file, undefined, 'no such file');
  const header = options.header ?? true;
  const ext = extname(file).toLowerCase();
  const required = options.columns ?? [];
  const parser = parse({
    bom: true,
    delimiter: options.delimiter ?? (ext === '.tsv' || ext === '.tab' ? '\t' : ','),
    quote: options.quote === false ? null : options.quote ?? '"',
    // Real files have stray quotes inside unquoted fields (`he said "hi"`); read them literally.
    relax_quotes: true,
    skip_empty_lines: true,
    info: true,
    raw: true,
    columns: header
      ? (names: string[]) => {
          const missing = required.filter((c) => !names.includes(c));
          if (missing.length > 0) {
            const quote = (xs: string[]): string => xs.map((x) => `"${x}"`).join(', ');
            throw new DataError(file, 1, `column ${quote(missing)} not found; the columns are ${quote(names)}`);
          }
          return names;
        }
      : false,
    skip_records_with_error: options.skipBadRows ?? false,
    on_skip: (err: CsvError | undefined) => {
      if (err) reader.bad(new DataError(file, lineOf(err), describe(err)), options);
    },
  });
  // csv-parse counts lines wrongly on CRLF files until it has seen a whole record, so line ends are
  // normalised to \n before it (inside quoted fields too, which is what the text should hold anyway).
  const source = Readable.from(lfChunks(file));
  source.on('error', (err) => parser.destroy(err));
  source.pipe(parser);
  try {
    for await (const item of parser as AsyncIterable<{ record: unknown; info: Info & { raw?: string } }>) {
      const { record } = item;
      const end = item.info.lines;
      // The raw text starts with any skipped empty lines and ends with the record's newline.
      const raw = (item.info.raw ?? '').replace(/^\n+/, '').replace(/\n$/, '');
      const line = end - countNewlines(raw);
      const row: Record<string, string> = Array.isArray(record)
        ? Object.fromEntries(record.map((v: string, i: number) => [String(i), v]))
        : (record as Record<string, string>);
      if (!header) {
        const missing = required.filter((c) => !(c in row));
        if (missing.length > 0) {
          reader.bad(new DataError(file, line, `no column ${missing.join(', ')} (the row has ${Object.keys(row).length} fields)`), options);
          continue;
        }
      }
      yield { row, source: { file, line } };
    }
  } catch (err) {
    if (err instanceof DataError) throw err;
    const csv = err as CsvError;
    if (typeof csv.code === 'string' && csv.code.startsWith('CSV_')) throw new DataError(file, lineOf(csv), describe(csv));
    throw new DataError(file, undefined, (err as Error).message);
  }
}

function describe(err: CsvError): string {
  switch (err.code) {
    case 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH':
    case 'CSV_RECORD_INCONSISTENT_COLUMNS':
      return `wrong number of fields: ${err.message.replace(/ on line \d+$/, '').replace(/^Invalid Record Length: /, '')}`;
    case 'CSV_QUOTE_NOT_CLOSED':
      return 'a quoted field is not closed before the end of the file';
    default:
      return err.message.replace(/ at line \d+$/, '').replace(/ on line \d+$/, '');
  }
}

function lineOf(err: CsvError): number | undefined {
  return typeof err.lines === 'number' ? err.lines : undefined;
}

function countNewlines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

async function* lfChunks(file: string): AsyncGenerator<string> {
  let carry = '';
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 }) as AsyncIterable<string>) {
    let text = carry + chunk;
    carry = '';
    if (text.endsWith('\r')) {
      carry = '\r';
      text = text.slice(0, -1);
    }
    yield text.replace(/\r\n/g, '\n');
  }
  if (carry) yield carry;
}
