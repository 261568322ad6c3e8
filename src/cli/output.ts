import { humanDuration as duration } from '../core/time.ts';
/**
 * How the CLI prints: aligned tables and `key: value` blocks for people, the raw API JSON
 * with `--output json` for scripts. Everything goes through `out` so the last line is flushed
 * before the process exits (see main.ts).
 */
export const OUTPUT_FORMATS = ['table', 'json'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function out(text = ''): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/** Columns padded to their widest cell; the last column is not padded so lines carry no trailing blanks. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** `key:  value` lines with the values aligned; pairs whose value is null are left out. */
export function fields(pairs: readonly (readonly [string, string | null])[]): string {
  const shown = pairs.filter((p): p is readonly [string, string] => p[1] !== null);
  const width = Math.max(0, ...shown.map(([k]) => k.length)) + 1;
  return shown.map(([k, v]) => `${(k + ':').padEnd(width)}  ${v}`).join('\n');
}

/** Quotes argv so the printed command can be pasted back into a shell. */
export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Two decimals at most: resource amounts such as 0.25 or 1.5 cores. */
export function num(n: number): string {
  return String(Math.round(n * 100) / 100);
}

/** An API timestamp without milliseconds; '-' when unset. */
export function time(iso: string | null | undefined): string {
  return iso ? iso.replace(/\.\d+Z$/, 'Z') : '-';
}

export { duration };

/** An estimated start: the time and how far away it is, or 'unknown'. */
export function estimate(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'unknown';
  const wait = Date.parse(iso) - now;
  return wait <= 1000 ? `${time(iso)} (now)` : `${time(iso)} (in ${duration(wait)})`;
}

/** Cuts long cells (names, errors) so one row stays one line. */
export function clip(s: string, max = 40): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length > max ? one.slice(0, max - 1) + '…' : one;
}
