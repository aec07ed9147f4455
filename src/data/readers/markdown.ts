// A folder of Markdown / text files (a documentation site's sources) as documents: front matter
// removed (its title kept as a heading), HTML comments removed, code fences kept or dropped.

import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { DataError, Reader } from './common.js';
import type { TextDoc } from './text.js';

export interface MarkdownReadOptions {
  /** File extensions to read. Default .md, .mdx, .markdown, .txt. */
  extensions?: string[];
  /**
   * `title` (default): drop the YAML/TOML front matter but keep its `title:` as a `# ` heading when
   * the body has none, since the title is often the only statement of what the page is about;
   * `strip`: drop it; `keep`: leave the file as is.
   */
  frontMatter?: 'title' | 'strip' | 'keep';
  /**
   * `keep` (default): code blocks verbatim with their fences, so a model learns Markdown as written;
   * `unfence`: the code without the fence lines; `drop`: prose only.
   */
  codeBlocks?: 'keep' | 'unfence' | 'drop';
  /** Remove `<!-- ... -->` outside code. Default true (they are notes for editors, not content). */
  stripHtmlComments?: boolean;
}

/** Lists the files under `dir` (recursively, sorted, hidden entries and node_modules skipped). */
export async function listFiles(dir: string, extensions: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && extensions.includes(extname(e.name).toLowerCase())) out.push(p);
    }
  };
  await walk(dir);
  return out;
}

/** Reads every Markdown / text file under `dir` as one document each, in sorted path order. */
export function readMarkdownFolder(dir: string, options: MarkdownReadOptions = {}): Reader<TextDoc> {
  const extensions = options.extensions ?? ['.md', '.mdx', '.markdown', '.txt'];
  return new Reader<TextDoc>(async function* () {
    const info = await stat(dir).catch(() => undefined);
    if (info === undefined || !info.isDirectory()) throw new DataError(dir, undefined, 'not a folder');
    const files = await listFiles(dir, extensions);
    if (files.length === 0) throw new DataError(dir, undefined, `no ${extensions.join('/')} files in this folder`);
    for (const file of files) {
      const raw = await readFile(file, 'utf8');
      const cleaned = cleanMarkdown(raw, options);
      if (cleaned.text.trim().length === 0) continue;
      yield { text: cleaned.text, source: { file, line: cleaned.line } };
    }
  });
}

/** The document text and the 1-based line of the file where its body starts. */
export function cleanMarkdown(raw: string, options: MarkdownReadOptions = {}): { text: string; line: number } {
  let text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  text = text.replace(/\r\n?/g, '\n');
  const lines = text.split('\n');
  let bodyStart = 0;
  let title: string | undefined;
  const mode = options.frontMatter ?? 'title';
  const fence = lines[0]?.trimEnd();
  if (mode !== 'keep' && (fence === '---' || fence === '+++')) {
    const close = lines.findIndex((l, i) => i > 0 && (l.trimEnd() === fence || (fence === '---' && l.trimEnd() === '...')));
    if (close > 0) {
      for (const l of lines.slice(1, close)) {
        const m = /^title\s*[:=]\s*(.+?)\s*$/.exec(l);
        if (m) title = m[1]!.replace(/^(["'])(.*)\1$/, '$2');
      }
      bodyStart = close + 1;
    }
  }
  const blocks = splitCode(lines.slice(bodyStart));
  const codeMode = options.codeBlocks ?? 'keep';
  const stripComments = options.stripHtmlComments ?? true;
  const parts: string[] = [];
  for (const b of blocks) {
    if (b.code) {
      if (codeMode === 'keep') parts.push(b.lines.join('\n'));
      else if (codeMode === 'unfence') parts.push(b.lines.slice(1, b.closed ? -1 : undefined).join('\n'));
    } else {
      const prose = b.lines.join('\n');
      parts.push(stripComments ? prose.replace(/<!--[\s\S]*?-->/g, '') : prose);
    }
  }
  let body = parts.join('\n').replace(/\n{3,}/g, '\n\n').replace(/^\n+/, '');
  if (mode === 'title' && title !== undefined && !/^#\s/.test(body)) body = `# ${title}\n\n${body}`;
  return { text: body, line: bodyStart + 1 };
}

interface Block {
  code: boolean;
  closed: boolean;
  lines: string[];
}

/** Splits lines into prose and fenced code blocks (CommonMark fences: ``` or ~~~, 3+ long). */
function splitCode(lines: readonly string[]): Block[] {
  const blocks: Block[] = [];
  let prose: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^ {0,3}(`{3,}|~{3,})/.exec(lines[i]!);
    if (!open || (open[1]![0] === '`' && lines[i]!.slice(open[0].length).includes('`'))) {
      prose.push(lines[i]!);
      continue;
    }
    if (prose.length > 0) blocks.push({ code: false, closed: true, lines: prose });
    prose = [];
    const marker = open[1]!;
    const close = new RegExp(`^ {0,3}${marker[0] === '`' ? '`' : '~'}{${marker.length},}\\s*$`);
    const code = [lines[i]!];
    let closed = false;
    for (i++; i < lines.length; i++) {
      code.push(lines[i]!);
      if (close.test(lines[i]!)) {
        closed = true;
        break;
      }
    }
    blocks.push({ code: true, closed, lines: code }); // an unclosed fence runs to the end, as in CommonMark
  }
  if (prose.length > 0) blocks.push({ code: false, closed: true, lines: prose });
  return blocks;
}
