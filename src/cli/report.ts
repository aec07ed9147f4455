// `loom report RUN_DIR`: one self-contained HTML page (inline SVG, no external assets) of a run's
// metrics.jsonl: loss and LR curves, evaluation metrics over steps, confusion matrix, configuration.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TaskError, exists } from '../tasks/common.js';

type Rec = Record<string, unknown>;

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** A line chart of one or more series as an SVG string. */
export function lineChart(title: string, series: { name: string; points: [number, number][] }[]): string {
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (pts.length === 0) return '';
  const [w, h, m] = [560, 240, 40];
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs) || 1];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const sx = (x: number): number => m + ((x - x0) / (x1 - x0 || 1)) * (w - 2 * m);
  const sy = (y: number): number => h - m - ((y - y0) / (y1 - y0)) * (h - 2 * m);
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
  const lines = series.map((s, i) => {
    const d = s.points.map(([x, y], j) => `${j ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    const dots = s.points.length < 30 ? s.points.map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${colors[i % 6]}"/>`).join('') : '';
    return `<path class="series" d="${d}" fill="none" stroke="${colors[i % 6]}" stroke-width="1.8"/>${dots}<text x="${w - m}" y="${m + 14 * i}" text-anchor="end" fill="${colors[i % 6]}" font-size="11">${esc(s.name)}</text>`;
  });
  const fmt = (v: number): string => (Math.abs(v) >= 100 || v === 0 ? v.toFixed(0) : Math.abs(v) < 0.01 ? v.toExponential(1) : v.toPrecision(3));
  return `<figure><figcaption>${esc(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">
<rect x="${m}" y="${m}" width="${w - 2 * m}" height="${h - 2 * m}" fill="none" stroke="#ccc"/>
<text x="${m - 4}" y="${m + 4}" text-anchor="end" font-size="10">${fmt(y1)}</text><text x="${m - 4}" y="${h - m}" text-anchor="end" font-size="10">${fmt(y0)}</text>
<text x="${m}" y="${h - m + 14}" font-size="10">${fmt(x0)}</text><text x="${w - m}" y="${h - m + 14}" text-anchor="end" font-size="10">step ${fmt(x1)}</text>
${lines.join('\n')}</svg></figure>`;
}

function table(rows: (string | number)[][], head?: (string | number)[]): string {
  const cell = (v: string | number, tag: string): string => `<${tag}>${esc(typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v)}</${tag}>`;
  return `<table>${head ? `<tr>${head.map((h) => cell(h, 'th')).join('')}</tr>` : ''}${rows.map((r) => `<tr>${r.map((v) => cell(v, 'td')).join('')}</tr>`).join('')}</table>`;
}

/** Builds the report HTML from a run folder's files. */
export async function buildReport(dir: string): Promise<string> {
  const path = join(dir, 'metrics.jsonl');
  if (!(await exists(path))) throw new TaskError(`${dir}: not a run folder (no metrics.jsonl)`);
  const recs = (await readFile(path, 'utf8')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Rec);
  const train = recs.filter((r) => r.split === 'train');
  const evals = recs.filter((r) => r.split === 'eval');
  const num = (r: Rec, k: string): number => (typeof r[k] === 'number' ? (r[k] as number) : NaN);
  const series = (rs: Rec[], k: string): [number, number][] => rs.map((r) => [num(r, 'step'), num(r, k)] as [number, number]).filter(([, y]) => Number.isFinite(y));
  const parts: string[] = [];
  parts.push(lineChart('Loss', [{ name: 'train loss', points: series(train, 'loss') }, { name: 'eval loss', points: series(evals, 'loss') }]));
  parts.push(lineChart('Learning rate', [{ name: 'lr', points: series(train, 'lr') }]));
  const metricKeys = [...new Set(evals.flatMap((r) => Object.keys(r)))].filter((k) => !['step', 'loss', 'lr', 'epoch', 'split'].includes(k) && evals.some((r) => typeof r[k] === 'number'));
  if (metricKeys.length) parts.push(lineChart('Evaluation metrics', metricKeys.slice(0, 6).map((k) => ({ name: k, points: series(evals, k) }))));
  const last = evals[evals.length - 1];
  if (last) {
    parts.push('<h2>Last evaluation</h2>' + table(Object.entries(last).filter(([, v]) => typeof v === 'number').map(([k, v]) => [k, v as number])));
    const cm = last.confusion_matrix as number[][] | undefined;
    if (Array.isArray(cm)) {
      const names = (last.labels as string[] | undefined) ?? cm.map((_, i) => String(i));
      parts.push('<h2>Confusion matrix (rows: true, columns: predicted)</h2>' + table(cm.map((row, i) => [names[i] ?? String(i), ...row]), ['', ...names]));
    }
    const perEntity = Object.entries(last).filter(([k, v]) => k.endsWith('_f1') && k !== 'macro_f1' && typeof v === 'number');
    if (perEntity.length) parts.push('<h2>Per-entity F1</h2>' + table(perEntity.map(([k, v]) => [k.replace(/_f1$/, ''), v as number]), ['entity', 'F1']));
  }
  for (const [file, title] of [['run_summary.json', 'Throughput'], ['training_config.json', 'Training configuration'], ['config.json', 'Model configuration']] as const) {
    const p = join(dir, file);
    if (await exists(p)) parts.push(`<h2>${title}</h2><pre>${esc(await readFile(p, 'utf8'))}</pre>`);
  }
  const style = 'body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}figure{display:inline-block;margin:0 1em 1em 0}figcaption{font-weight:600}table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}pre{background:#f6f6f6;padding:1em;overflow:auto;max-height:20em}';
  return `<!doctype html><html><head><meta charset="utf-8"><title>Loom report: ${esc(dir)}</title><style>${style}</style></head><body><h1>Loom run report</h1><p>${esc(dir)}: ${train.length} train and ${evals.length} eval records</p>${parts.join('\n')}</body></html>\n`;
}

export async function writeReport(dir: string): Promise<string> {
  const html = await buildReport(dir);
  const out = join(dir, 'report.html');
  await writeFile(out, html);
  return out;
}
