// What every reader shares: record sources (file:line), DataError, the skip-bad-rows report, and a
// streaming line splitter that strips a BOM and CRLF without loading the file.

import { createReadStream } from 'node:fs';

/** Where a record starts: the file and its 1-based line. */
export interface Source {
  file: string;
  line: number;
}

/** An error about the data, always naming file and line. */
export class DataError extends Error {
  readonly file: string;
  readonly line: number | undefined;

  constructor(file: string, line: number | undefined, message: string) {
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${message}`);
    this.name = 'DataError';
    this.file = file;
    this.line = line;
  }
}

export interface ReadOptions {
  /** Skip malformed rows instead of failing; the reader's `report` counts them. Default false. */
  skipBadRows?: boolean;
}

/** What a reader skipped. `examples` keeps the first few errors for the user to look at. */
export interface ReadReport {
  records: number;
  skipped: number;
  examples: string[];
}

/**
 * An async iterable of records with a report that fills in as it is read. Readers are lazy: nothing
 * is opened until iteration starts, and each iteration reads the files again.
 */
export class Reader<T> implements AsyncIterable<T> {
  readonly report: ReadReport = { records: 0, skipped: 0, examples: [] };

  constructor(private readonly produce: (reader: Reader<T>) => AsyncGenerator<T>) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    this.report.records = 0;
    this.report.skipped = 0;
    this.report.examples = [];
    for await (const record of this.produce(this)) {
      this.report.records++;
      yield record;
    }
  }

  /** Records a bad row: throws unless skipping was asked for. */
  bad(error: DataError, options: ReadOptions): void {
    if (!options.skipBadRows) throw error;
    this.report.skipped++;
    if (this.report.examples.length < 10) this.report.examples.push(error.message);
  }

  /** Reads everything into an array (fine-tuning sets are small). */
  async toArray(): Promise<T[]> {
    const out: T[] = [];
    for await (const r of this) out.push(r);
    return out;
  }
}

/** A line of a file, without its terminator, and its 1-based number. */
export interface Line {
  text: string;
  line: number;
}

const CHUNK = 1 << 20;

/**
 * Streams the lines of a UTF-8 file: strips a leading BOM, accepts \n and \r\n, keeps empty lines
 * (callers decide what they mean). Memory is one chunk plus the longest line.
 */
export async function* readLines(file: string): AsyncGenerator<Line> {
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: CHUNK });
  let rest = '';
  let line = 0;
  let first = true;
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      let text = rest + chunk;
      if (first) {
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        first = false;
      }
      let start = 0;
      for (;;) {
        const nl = text.indexOf('\n', start);
        if (nl < 0) break;
        const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        yield { text: text.slice(start, end), line: ++line };
        start = nl + 1;
      }
      rest = text.slice(start);
    }
  } catch (err) {
    throw new DataError(file, undefined, `cannot read: ${(err as Error).message}`);
  }
  if (rest.length > 0) yield { text: rest.endsWith('\r') ? rest.slice(0, -1) : rest, line: ++line };
}

/**
 * Streams a UTF-8 file as pieces of at least `size` characters (line ends normalised to \n). A piece
 * ends only before a line that starts with a visible character: there the GPT-2 / BERT pre-tokenizers
 * split anyway, so encoding the pieces one by one gives the same ids as encoding the whole file.
 */
export async function* readPieces(file: string, size: number): AsyncGenerator<{ text: string; line: number; last: boolean }> {
  let parts: string[] = [];
  let length = 0;
  let startLine = 1;
  let pending: { text: string; line: number } | undefined;
  for await (const l of readLines(file)) {
    if (length >= size && l.text.length > 0 && !/^\s/.test(l.text)) {
      if (pending !== undefined) yield { ...pending, last: false };
      pending = { text: parts.join(''), line: startLine };
      parts = [];
      length = 0;
      startLine = l.line;
    }
    parts.push(l.text, '\n');
    length += l.text.length + 1;
  }
  if (pending !== undefined) yield { ...pending, last: parts.length === 0 };
  if (parts.length > 0) yield { text: parts.join(''), line: startLine, last: true };
}
