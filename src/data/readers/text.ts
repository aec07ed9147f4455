// Plain text corpora: files read as whole documents (streamed in pieces), paragraphs or lines.
// The records are TextDoc, the common currency of pre-training (readers -> prepareCorpus).

import { stat } from 'node:fs/promises';
import { DataError, readLines, readPieces, Reader, type Source } from './common.js';

/** A document (or a piece of one) of raw text. */
export interface TextDoc {
  text: string;
  source: Source;
  /**
   * True when the next record continues this document (a large file streamed in pieces): no
   * document separator goes between the two.
   */
  continues?: boolean;
}

export interface TextReadOptions {
  /**
   * `file` (default): each file is one document, streamed in pieces of about `pieceChars`;
   * `paragraph`: blocks separated by blank lines; `line`: each non-empty line.
   */
  unit?: 'file' | 'paragraph' | 'line';
  /**
   * Piece size for `unit: 'file'`. Default 64 Ki characters: small enough that a batch of pieces
   * spreads over the tokenizer's threads, large enough that per-call overhead does not show.
   */
  pieceChars?: number;
}

/** Reads plain text files in the order given. Line ends become \n; a BOM is dropped. */
export function readTextFiles(files: string | readonly string[], options: TextReadOptions = {}): Reader<TextDoc> {
  const list = typeof files === 'string' ? [files] : [...files];
  const unit = options.unit ?? 'file';
  return new Reader<TextDoc>(async function* () {
    for (const file of list) {
      const info = await stat(file).catch(() => undefined);
      if (info === undefined) throw new DataError(file, undefined, 'no such file');
      if (!info.isFile()) throw new DataError(file, undefined, 'not a file');
      if (unit === 'file') {
        for await (const piece of readPieces(file, options.pieceChars ?? 1 << 16)) {
          yield { text: piece.text, source: { file, line: piece.line }, continues: !piece.last };
        }
      } else if (unit === 'line') {
        for await (const l of readLines(file)) {
          if (l.text.trim().length > 0) yield { text: l.text, source: { file, line: l.line } };
        }
      } else {
        let lines: string[] = [];
        let start = 0;
        for await (const l of readLines(file)) {
          if (l.text.trim().length === 0) {
            if (lines.length > 0) yield { text: lines.join('\n'), source: { file, line: start } };
            lines = [];
          } else {
            if (lines.length === 0) start = l.line;
            lines.push(l.text);
          }
        }
        if (lines.length > 0) yield { text: lines.join('\n'), source: { file, line: start } };
      }
    }
  });
}
