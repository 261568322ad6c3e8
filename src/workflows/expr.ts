/**
 * The workflow expression language: `when` conditions, `map` sources and `{{ … }}` references in
 * step parameters. Its own tokenizer and recursive-descent parser, evaluated by walking the tree —
 * no eval, no Function, no access to prototypes.
 *
 *   expr    := or
 *   or      := and (('or' | '||') and)*
 *   and     := not (('and' | '&&') not)*
 *   not     := ('not' | '!') not | cmp
 *   cmp     := primary (('==' | '!=' | '<' | '<=' | '>' | '>=' | 'in') primary)?
 *   primary := number | 'string' | "string" | true | false | null | '[' (expr (',' expr)*)? ']'
 *            | '(' expr ')' | path
 *   path    := ident ('.' ident | '[' (number | string) ']')*
 *
 * Roots: `params` (run parameters), `steps.<id>.outputs` / `steps.<id>.state`, `item` and
 * `index` (inside a `map`ped step), `run` (id, fire_time). A path that does not exist is null.
 */
import { GantryError } from '../core/errors.ts';

export type Expr =
  | { t: 'lit'; v: unknown }
  | { t: 'path'; parts: (string | number)[] }
  | { t: 'list'; items: Expr[] }
  | { t: 'not'; e: Expr }
  | { t: 'bin'; op: string; l: Expr; r: Expr };

type Tok = { k: 'num' | 'str' | 'id' | 'op'; v: string; at: number };

const OPS = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '(', ')', '[', ']', '.', ','];
const MAX_LEN = 2000;

/** Thrown for a malformed expression; `field` is filled in by the caller's context. */
export class ExprError extends Error {}

function tokenize(src: string): Tok[] {
  if (src.length > MAX_LEN) throw new ExprError(`expression is longer than ${MAX_LEN} characters`);
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(src.slice(i))!;
      out.push({ k: 'num', v: m[0], at: i });
      i += m[0].length;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) j++;
        s += src[j];
        j++;
      }
      if (j >= src.length) throw new ExprError(`unterminated string at ${i}`);
      out.push({ k: 'str', v: s, at: i });
      i = j + 1;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(src.slice(i))!;
      out.push({ k: 'id', v: m[0], at: i });
      i += m[0].length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new ExprError(`unexpected '${c}' at ${i}`);
    out.push({ k: 'op', v: op, at: i });
    i += op.length;
  }
  return out;
}

/** Parses an expression; throws ExprError naming the position of the first problem. */
export function parseExpr(src: string): Expr {
  const toks = tokenize(src);
  let p = 0;
  const peek = () => toks[p];
  const isOp = (v: string) => toks[p]?.k === 'op' && toks[p]!.v === v;
  const isWord = (v: string) => toks[p]?.k === 'id' && toks[p]!.v === v;
  const expect = (v: string) => {
    if (!isOp(v)) throw new ExprError(`expected '${v}' at ${peek()?.at ?? src.length}`);
    p++;
  };
  const or = (): Expr => {
    let l = and();
    while (isOp('||') || isWord('or')) {
      p++;
      l = { t: 'bin', op: 'or', l, r: and() };
    }
    return l;
  };
  const and = (): Expr => {
    let l = not();
    while (isOp('&&') || isWord('and')) {
      p++;
      l = { t: 'bin', op: 'and', l, r: not() };
    }
    return l;
  };
  const not = (): Expr => {
    if (isOp('!') || isWord('not')) {
      p++;
      return { t: 'not', e: not() };
    }
    return cmp();
  };
  const cmp = (): Expr => {
    const l = primary();
    const t = peek();
    if (t && ((t.k === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(t.v)) || (t.k === 'id' && t.v === 'in'))) {
      p++;
      return { t: 'bin', op: t.v, l, r: primary() };
    }
    return l;
  };
  const primary = (): Expr => {
    const t = peek();
    if (!t) throw new ExprError('unexpected end of expression');
    if (t.k === 'num') {
      p++;
      return { t: 'lit', v: Number(t.v) };
    }
    if (t.k === 'str') {
      p++;
      return { t: 'lit', v: t.v };
    }
    if (isOp('(')) {
      p++;
      const e = or();
      expect(')');
      return e;
    }
    if (isOp('[')) {
      p++;
      const items: Expr[] = [];
      if (!isOp(']')) {
        items.push(or());
        while (isOp(',')) {
          p++;
          items.push(or());
        }
      }
      expect(']');
      return { t: 'list', items };
    }
    if (t.k === 'id') {
      p++;
      if (t.v === 'true' || t.v === 'false') return { t: 'lit', v: t.v === 'true' };
      if (t.v === 'null') return { t: 'lit', v: null };
      if (['and', 'or', 'not', 'in'].includes(t.v)) throw new ExprError(`unexpected '${t.v}' at ${t.at}`);
      const parts: (string | number)[] = [t.v];
      for (;;) {
        if (isOp('.')) {
          p++;
          const n = peek();
          if (!n || (n.k !== 'id' && n.k !== 'num')) throw new ExprError(`expected a name after '.' at ${n?.at ?? src.length}`);
          p++;
          parts.push(n.k === 'num' ? Number(n.v) : n.v);
        } else if (isOp('[')) {
          p++;
          const n = peek();
          if (!n || (n.k !== 'num' && n.k !== 'str')) throw new ExprError(`expected an index or a quoted key at ${n?.at ?? src.length}`);
          p++;
          parts.push(n.k === 'num' ? Number(n.v) : n.v);
          expect(']');
        } else break;
      }
      return { t: 'path', parts };
    }
    throw new ExprError(`unexpected '${t.v}' at ${t.at}`);
  };
  const e = or();
  if (p < toks.length) throw new ExprError(`unexpected '${toks[p]!.v}' at ${toks[p]!.at}`);
  return e;
}

/** The paths an expression reads (e.g. to check that `steps.x` names an upstream step). */
export function exprPaths(e: Expr): (string | number)[][] {
  switch (e.t) {
    case 'path':
      return [e.parts];
    case 'list':
      return e.items.flatMap(exprPaths);
    case 'not':
      return exprPaths(e.e);
    case 'bin':
      return [...exprPaths(e.l), ...exprPaths(e.r)];
    default:
      return [];
  }
}

function lookup(ctx: unknown, parts: readonly (string | number)[]): unknown {
  let v: unknown = ctx;
  for (const k of parts) {
    if (v === null || typeof v !== 'object') return null;
    // Own properties only: no way to reach __proto__, constructor or anything inherited.
    if (!Object.prototype.hasOwnProperty.call(v, k)) return null;
    v = (v as Record<string | number, unknown>)[k];
  }
  return v === undefined ? null : v;
}

function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v !== null && typeof v === 'object') return Object.keys(v).length > 0;
  return Boolean(v);
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

export function evalExpr(e: Expr, ctx: Record<string, unknown>): unknown {
  switch (e.t) {
    case 'lit':
      return e.v;
    case 'path':
      return lookup(ctx, e.parts);
    case 'list':
      return e.items.map((x) => evalExpr(x, ctx));
    case 'not':
      return !truthy(evalExpr(e.e, ctx));
    case 'bin': {
      if (e.op === 'and') return truthy(evalExpr(e.l, ctx)) && truthy(evalExpr(e.r, ctx));
      if (e.op === 'or') return truthy(evalExpr(e.l, ctx)) || truthy(evalExpr(e.r, ctx));
      const l = evalExpr(e.l, ctx);
      const r = evalExpr(e.r, ctx);
      switch (e.op) {
        case '==':
          return equal(l, r);
        case '!=':
          return !equal(l, r);
        case 'in':
          if (Array.isArray(r)) return r.some((x) => equal(x, l));
          if (typeof r === 'string' && typeof l === 'string') return r.includes(l);
          if (r !== null && typeof r === 'object' && typeof l === 'string') return Object.prototype.hasOwnProperty.call(r, l);
          return false;
        default: {
          // Ordering compares numbers with numbers and strings with strings; anything else is false.
          if (!((typeof l === 'number' && typeof r === 'number') || (typeof l === 'string' && typeof r === 'string'))) return false;
          if (e.op === '<') return l < r;
          if (e.op === '<=') return l <= r;
          if (e.op === '>') return l > r;
          return l >= r;
        }
      }
    }
  }
}

/** Evaluates a condition to true/false (empty lists/objects, null, 0 and '' are false). */
export function evalCondition(src: string, ctx: Record<string, unknown>): boolean {
  return truthy(evalExpr(parseExpr(src), ctx));
}

const TEMPLATE = /\{\{\s*(.*?)\s*\}\}/g;

/** The `{{ expr }}` references inside a string. */
export function templateExprs(s: string): string[] {
  return [...s.matchAll(TEMPLATE)].map((m) => m[1]!);
}

/**
 * Renders `{{ expr }}` references in a parameter value (deeply). A string that is exactly one
 * reference takes the referenced value with its type (a number stays a number, a list a list);
 * references inside longer strings are interpolated as text (objects as JSON).
 */
export function renderValue(v: unknown, ctx: Record<string, unknown>): unknown {
  if (typeof v === 'string') {
    const whole = /^\{\{\s*(.*?)\s*\}\}$/.exec(v);
    if (whole && !whole[1]!.includes('}}')) return evalExpr(parseExpr(whole[1]!), ctx);
    return v.replace(TEMPLATE, (_m, src: string) => {
      const x = evalExpr(parseExpr(src), ctx);
      return x === null ? '' : typeof x === 'object' ? JSON.stringify(x) : String(x);
    });
  }
  if (Array.isArray(v)) return v.map((x) => renderValue(x, ctx));
  if (v !== null && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = renderValue(x, ctx);
    return o;
  }
  return v;
}

/** Parses `src`, turning a syntax error into VALIDATION_FAILED naming `field`. */
export function checkExpr(src: string, field: string): Expr {
  try {
    return parseExpr(src);
  } catch (err) {
    throw new GantryError('VALIDATION_FAILED', `${field}: invalid expression '${src}': ${(err as Error).message}`, { field });
  }
}
