// A value of a hostile file, printable in an error message: JSON cut short, and never a stack
// overflow (JSON.stringify recurses, so 100k nested arrays that JSON.parse accepted would throw).

export function shortJson(v: unknown, max = 80): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = Array.isArray(v) ? '[...]' : typeof v === 'object' && v !== null ? '{...}' : String(v);
  }
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** Like shortJson, but strings and numbers bare (for messages that name a value inline). */
export function shortText(v: unknown, max = 80): string {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v).slice(0, max) : shortJson(v, max);
}
