/**
 * Option-argument parsers. Commander turns an InvalidArgumentError into
 * `error: option '--cpu <cores>' argument 'x' is invalid. <why>` and the CLI exits 2.
 * Ranges of job fields are left to the API, which owns those rules and names the field.
 */
import { InvalidArgumentError } from 'commander';

export function number(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number.');
  return n;
}

export function integer(value: string): number {
  const n = number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('expected a whole number.');
  return n;
}

export function nonNegative(value: string): number {
  const n = number(value);
  if (n < 0) throw new InvalidArgumentError('must be >= 0.');
  return n;
}

export function count(value: string): number {
  const n = integer(value);
  if (n < 0) throw new InvalidArgumentError('must be >= 0.');
  return n;
}

export function positiveInteger(value: string): number {
  const n = integer(value);
  if (n < 1) throw new InvalidArgumentError('must be >= 1.');
  return n;
}

function splitPair(value: string): [string, string] {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected KEY=VALUE.');
  return [value.slice(0, eq), value.slice(eq + 1)];
}

/** Repeatable `--env K=V`: collects into one map, later flags win. */
export function collectPair(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const [k, v] = splitPair(value);
  return { ...previous, [k]: v };
}

/** Repeatable `--param k=v`: the value is JSON when it parses (`n=3`, `tags=["a"]`), else the plain string. */
export function collectParam(value: string, previous: Record<string, unknown> | undefined): Record<string, unknown> {
  const [k, raw] = splitPair(value);
  let v: unknown = raw;
  try {
    v = JSON.parse(raw);
  } catch {
    // not JSON: keep the string as typed
  }
  return { ...previous, [k]: v };
}

/** `--labels k=v,k2=v2`. */
export function labelList(value: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of value.split(',')) {
    if (part.trim() === '') continue;
    const [k, v] = splitPair(part.trim());
    labels[k] = v;
  }
  return labels;
}
