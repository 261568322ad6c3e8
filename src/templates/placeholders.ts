/**
 * `{{ name }}` placeholders in template commands, env, image and working dir. Plain lookup, no
 * expressions and no eval: `{{ a.b }}` reads key b of parameter a. Strings go in as they are,
 * numbers and booleans as text, objects and arrays as JSON; a missing value is the empty string.
 */
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}\}/g;

/** The names used in `text`. */
export function placeholders(text: string): string[] {
  return [...text.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

function lookup(vars: Readonly<Record<string, unknown>>, path: string): unknown {
  let v: unknown = vars;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, k)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

function asText(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

export function fill(text: string, vars: Readonly<Record<string, unknown>>): string {
  return text.replace(PLACEHOLDER, (_m, name: string) => asText(lookup(vars, name)));
}
