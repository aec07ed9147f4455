// CoNLL column files (NER): one token per line, token and tag columns chosen by index, blank lines
// between sentences, -DOCSTART- lines between documents; tags checked or converted to IOB2.

import { DataError, readLines, Reader, type ReadOptions, type Source } from './common.js';

export interface ConllSentence {
  tokens: string[];
  tags: string[];
  /** Index of the document (counted by -DOCSTART- lines; 0 when the file has none). */
  doc: number;
  /** File and line of the sentence's first token. */
  source: Source;
}

export interface ConllReadOptions extends ReadOptions {
  /** Column of the token. Default 0. */
  tokenColumn?: number;
  /** Column of the tag; negative counts from the end. Default -1 (the last column). */
  tagColumn?: number;
  /** Column separator. Default: any run of spaces or tabs. */
  separator?: string | RegExp;
  /**
   * `iob2` (default): tags must be IOB2 (an entity starts with B-); a stray I- is a bad row.
   * `iob1`: convert IOB1 (B- only between two adjacent entities of a type) to IOB2.
   * `raw`: take the tags as they are (POS tags, chunk tags, BIOES).
   */
  tagScheme?: 'iob2' | 'iob1' | 'raw';
}

export function readConll(files: string | readonly string[], options: ConllReadOptions = {}): Reader<ConllSentence> {
  const list = typeof files === 'string' ? [files] : [...files];
  const tokenColumn = options.tokenColumn ?? 0;
  const tagColumn = options.tagColumn ?? -1;
  const separator = options.separator ?? /[ \t]+/;
  const scheme = options.tagScheme ?? 'iob2';
  return new Reader<ConllSentence>(async function* (reader) {
    for (const file of list) {
      let doc = 0;
      let sawDocStart = false;
      let tokens: string[] = [];
      let tags: string[] = [];
      let lines: number[] = [];
      let bad = false;
      // Ends the sentence being read: checks its tags, yields it unless one of its lines was bad.
      const finish = function* (): Generator<ConllSentence> {
        if (tokens.length > 0 && !bad) {
          let out = tags;
          if (scheme === 'iob1') out = iob1ToIob2(tags);
          else if (scheme === 'iob2') {
            const at = firstIob2Violation(tags);
            if (at >= 0) {
              const prev = at > 0 ? tags[at - 1]! : 'the sentence start';
              const why = `tag ${tags[at]} follows ${prev}: not IOB2 (an entity starts with B-; use tagScheme 'iob1' to convert IOB1 files)`;
              reader.bad(new DataError(file, lines[at], why), options);
              out = [];
            }
          }
          if (out.length > 0) yield { tokens, tags: out, doc, source: { file, line: lines[0]! } };
        }
        tokens = [];
        tags = [];
        lines = [];
        bad = false;
      };
      for await (const l of readLines(file)) {
        const text = l.text.trim();
        if (text.length === 0) {
          yield* finish();
          continue;
        }
        const cols = text.split(separator);
        if (cols[0] === '-DOCSTART-') {
          yield* finish();
          if (sawDocStart) doc++;
          sawDocStart = true;
          continue;
        }
        const tagIndex = tagColumn < 0 ? cols.length + tagColumn : tagColumn;
        if (tokenColumn >= cols.length || tagIndex < 0 || tagIndex >= cols.length || tagIndex === tokenColumn) {
          const got = `${cols.length} column${cols.length === 1 ? '' : 's'}: ${JSON.stringify(l.text)}`;
          reader.bad(new DataError(file, l.line, `expected a token (column ${tokenColumn}) and a tag (column ${tagColumn}), got ${got}`), options);
          bad = true; // the rest of the sentence is read, then the sentence is dropped
          continue;
        }
        tokens.push(cols[tokenColumn]!);
        tags.push(cols[tagIndex]!);
        lines.push(l.line);
      }
      yield* finish();
    }
  });
}

/** Index of the first tag that breaks IOB2 (I-X not after B-X or I-X), or -1. */
export function firstIob2Violation(tags: readonly string[]): number {
  for (let i = 0; i < tags.length; i++) {
    const t = tags[i]!;
    if (!t.startsWith('I-')) continue;
    const prev = i > 0 ? tags[i - 1]! : 'O';
    if (prev.slice(2) !== t.slice(2) || prev === 'O') return i;
  }
  return -1;
}

/** IOB1 -> IOB2: an I-X that starts an entity (after O or another type) becomes B-X. */
export function iob1ToIob2(tags: readonly string[]): string[] {
  return tags.map((t, i) => {
    if (!t.startsWith('I-')) return t;
    const prev = i > 0 ? tags[i - 1]! : 'O';
    return prev === 'O' || prev.slice(2) !== t.slice(2) ? `B-${t.slice(2)}` : t;
  });
}
