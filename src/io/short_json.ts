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
