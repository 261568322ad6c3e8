import type { JobState } from '../../core/types.ts';
import { assertTransition, FINAL_STATES } from '../../core/states.ts';
import { batchSet, type ColumnType, type Row, type SqlExecutor, type SqlValue } from '../driver.ts';
import { JOB_COLUMN_TYPES, type EventStep } from '../rows.ts';
import { runFinalHooks, type FinishedJob } from '../finalHooks.ts';

/** Add to a counter column instead of setting it. */
export interface Increment {
  add: number;
}
export type PatchValue = SqlValue | Increment;

/** One step of a job's state machine, as recorded in its event. */
export interface Step {
  to: JobState;
  reason: string;
  actor?: string;
  data?: Record<string, unknown>;
}

/** One requested state change of one job, as seen by the caller (`from` must still hold). */
export interface Transition {
  job_id: string;
  from: JobState;
  /** States passed through on the way to `to`, each recorded as its own event (e.g. SCHEDULED → RUNNING → COMPLETED in one write). */
  via?: Step[];
  to: JobState;
  reason: string;
  actor: string;
  /** Columns to write along with the state. */
  patch?: Record<string, PatchValue>;
  /** Structured detail stored on the event (exit code, worker, attempt…). */
  data?: Record<string, unknown>;
}

const EVENT_COLUMNS = ['job_id', 'at', 'from_state', 'to_state', 'reason', 'actor', 'data', 'steps'] as const;
/** What every applied transition hands back: enough to number a new attempt. */
const RETURNING = 'jobs.id, jobs.attempt_count, jobs.retry_count, jobs.watched';

const isIncrement = (v: PatchValue): v is Increment => v !== null && typeof v === 'object';

/**
 * The one place a job's state is written. Each change is checked against the transition table
 * (a refused one throws INVALID_TRANSITION), applied only if the job is still in `from` (a
 * concurrent change wins; the caller learns it from the result), and recorded as events in the
 * same transaction — one per step. Changes of the same shape are written with one statement.
 * Params: tx — an open transaction; changes — at most one per job; now — epoch ms.
 * Watched jobs that become final run the final-state hooks in the same transaction (src/store/finalHooks.ts).
 * Returns, per change, the updated row's id and counters (and the columns `extra` lists, SQL such as
 * `jobs.name, jobs.env`), or null if it was not applied.
 */
export async function applyTransitions(tx: SqlExecutor, changes: readonly Transition[], now: number, extra = ''): Promise<(Row | null)[]> {
  const returning = extra ? `${RETURNING}, ${extra}` : RETURNING;
  const out: (Row | null)[] = new Array(changes.length).fill(null);
  const groups = new Map<string, number[]>();
  // Like changes come in runs (a report batch's completions, a cycle's admissions): a change shaped
  // like the last one grouped by its shape joins that group without its own shape being built (string
  // work on every change).
  let last: Transition | null = null;
  let lastKeys: string[] = [];
  let lastGroup: number[] = [];
  // Indexed loops over the changes, as in reportResults (an unoptimized for-of allocates per element).
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    let at = c.from;
    const via = c.via;
    if (via) {
      for (let s = 0; s < via.length; s++) {
        assertTransition(c.job_id, at, via[s]!.to);
        at = via[s]!.to;
      }
    }
    assertTransition(c.job_id, at, c.to);
    if (last && sameShape(last, lastKeys, c)) {
      lastGroup.push(i);
      continue;
    }
    const shape = shapeOf(c);
    let g = groups.get(shape);
    if (!g) groups.set(shape, (g = []));
    g.push(i);
    last = c;
    lastKeys = c.patch ? Object.keys(c.patch) : [];
    lastGroup = g;
  }
  for (const [shape, idx] of groups) {
    const first = changes[idx[0]!]!;
    const cols = first.patch ? Object.keys(first.patch).sort() : [];
    if (idx.length === 1) {
      const sets = ['state = ?', 'updated_at = ?', ...cols.map((k) => (isIncrement(first.patch![k]!) ? `${k} = ${k} + ?` : `${k} = ?`))];
      const params: SqlValue[] = [first.to, now, ...cols.map((k) => valueOf(first.patch![k]!)), first.job_id, first.from];
      const rows = await tx.query(`UPDATE jobs SET ${sets.join(', ')} WHERE id = ? AND state = ? RETURNING ${returning}`, params);
      out[idx[0]!] = rows[0] ?? null;
      continue;
    }
    // Shared values (a finish time, a freed worker, an increment of 1) go once (batchSet). The expected
    // state travels with each row (not as one parameter) so the planner joins by id instead of walking
    // every job in that state.
    const b = batchSet(
      `update jobs ${shape}`,
      [['id', 'text'], ['from_state', 'text']],
      cols.map((k): [string, ColumnType] => [k, JOB_COLUMN_TYPES[k] ?? 'text']),
      idx.length,
      (row, k) => {
        const c = changes[idx[row]!]!;
        return k === 'id' ? c.job_id : k === 'from_state' ? c.from : valueOf(c.patch![k]!);
      },
      (k, value) => (isIncrement(first.patch![k]!) ? `${k} = jobs.${k} + ${value}` : `${k} = ${value}`),
    );
    const rows = await tx.query(
      `UPDATE jobs SET ${['state = ?', 'updated_at = ?', ...b.sets].join(', ')} FROM ${tx.recordset(b.recordset)} WHERE jobs.id = v.id AND jobs.state = v.from_state RETURNING ${returning}`,
      [first.to, now, ...b.params],
    );
    const byId = new Map<string, Row>();
    for (let r = 0; r < rows.length; r++) byId.set(String(rows[r]!.id), rows[r]!);
    for (let j = 0; j < idx.length; j++) out[idx[j]!] = byId.get(changes[idx[j]!]!.job_id) ?? null;
  }
  // One event row per change: the states passed through on the way (`via`) travel in its `steps`
  // (read back as one event each, src/store/rows.ts eventsFromRow).
  const events: SqlValue[][] = [];
  // Watched jobs that just became final: their follow-ups run now, in this transaction (src/store/finalHooks.ts).
  const finished: FinishedJob[] = [];
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!, row = out[i];
    if (!row) continue;
    events.push([c.job_id, now, c.from, c.to, c.reason, c.actor, c.data ? JSON.stringify(c.data) : null, stepsJson(c.via, c.actor)]);
    if (Number(row.watched) === 1 && FINAL_STATES.has(c.to)) finished.push({ id: c.job_id, state: c.to, reason: c.reason });
  }
  await tx.insertMany('job_events', EVENT_COLUMNS, events);
  if (finished.length > 0) await runFinalHooks(tx, finished, now);
  return out;
}

/** Whether `b` has `a`'s shape: the same from and to, and the same patch keys (`keys`, `a`'s) in the same order, increments alike. */
function sameShape(a: Transition, keys: readonly string[], b: Transition): boolean {
  if (a.from !== b.from || a.to !== b.to) return false;
  let n = 0;
  if (b.patch) {
    for (const k in b.patch) {
      if (keys[n] !== k || isIncrement(a.patch![k]!) !== isIncrement(b.patch[k]!)) return false;
      n++;
    }
  }
  return n === keys.length;
}

/** Shapes by the patch's own key order (a few per code path; bounded all the same). */
const shapes = new Map<string, string>();

/** A change's batch shape: from, to and the sorted patch columns, `+` marking increments. */
function shapeOf(c: Transition): string {
  let sig = `${c.from}>${c.to}|`;
  if (c.patch) for (const k in c.patch) sig += isIncrement(c.patch[k]!) ? `+${k},` : `${k},`;
  let shape = shapes.get(sig);
  if (shape === undefined) {
    const cols = c.patch ? Object.keys(c.patch).sort() : [];
    shape = `${c.from}>${c.to}|${cols.map((k) => (isIncrement(c.patch![k]!) ? `+${k}` : k)).join(',')}`;
    if (shapes.size < 1000) shapes.set(sig, shape);
  }
  return shape;
}

/** A single step's `steps` text, kept for reuse. */
interface OneStep {
  to: JobState;
  /** The step's own actor where it differs from its event's, else ''. */
  actor: string;
  text: string;
}

/**
 * `steps` texts of single steps without data ("worker started the job"), shared by a batch's rows: by
 * reason — a constant string whose hash V8 keeps, so no key is built per row — then to and actor.
 */
const oneStep = new Map<string, OneStep[]>();
let oneStepCount = 0;

/** The `steps` column of an event row: the steps before its last one, or null for a single step. */
export function stepsJson(via: readonly Step[] | undefined, actor: string): string | null {
  if (!via || via.length === 0) return null;
  const only = via.length === 1 && !via[0]!.data ? via[0]! : null;
  const ownActor = only && only.actor !== undefined && only.actor !== actor ? only.actor : '';
  const known = only ? oneStep.get(only.reason) : undefined;
  if (known) {
    for (let i = 0; i < known.length; i++) if (known[i]!.to === only!.to && known[i]!.actor === ownActor) return known[i]!.text;
  }
  const text = JSON.stringify(via.map((s): EventStep => {
    const e: EventStep = { to: s.to, reason: s.reason };
    if (s.actor !== undefined && s.actor !== actor) e.actor = s.actor;
    if (s.data) e.data = s.data;
    return e;
  }));
  if (only && oneStepCount < 1000) {
    const entry = { to: only.to, actor: ownActor, text };
    if (known) known.push(entry);
    else oneStep.set(only.reason, [entry]);
    oneStepCount++;
  }
  return text;
}

/**
 * applyTransitions' writes for a batch of like changes as parts of ONE data-modifying `WITH`
 * (PostgreSQL, `capabilities.roundTrips`), for a hot path that must be one round trip
 * (src/store/ops/assignAtOnce.ts, reportAtOnce.ts): CTE `u` moves the jobs listed in the CTE named
 * `source` (columns `id`, `reason`, `data` — the event's — and whatever `set`, `where` and `returning`
 * use, as `v.…`) from `from` to `to` where `where` also holds, and CTE `e` records one event per moved
 * job. `from` may list several states: then `source` also has `from_state`, each job's state read in
 * the same statement (the row moves only if it still holds), and `via` gives, per from-state, the
 * states passed on the way (recorded in the event's `steps`, as applyTransitions does). `set`, `where`
 * and `returning` are SQL without placeholders. A final `to` moves only unwatched jobs (final-state
 * hooks run only through applyTransitions): the caller sends watched ones that way.
 * The parts' parameters are `params`, in text order.
 */
export function transitionCtes(o: {
  source: string; from: JobState | readonly JobState[]; to: JobState; actor: string; now: number; set: readonly string[]; where: string; returning: readonly string[];
  via?: Partial<Record<JobState, readonly Step[]>>;
}): { sql: string; params: SqlValue[] } {
  const froms: readonly JobState[] = typeof o.from === 'string' ? [o.from] : o.from;
  for (const f of froms) {
    let at = f;
    for (const s of o.via?.[f] ?? []) {
      assertTransition('(batch)', at, s.to);
      at = s.to;
    }
    assertTransition('(batch)', at, o.to);
  }
  const where = FINAL_STATES.has(o.to) ? `${o.where} AND jobs.watched = 0` : o.where;
  const steps = froms.flatMap((f) => {
    const text = stepsJson(o.via?.[f], o.actor);
    return text === null ? [] : [[f, text] as const];
  });
  const single = typeof o.from === 'string';
  if (single && steps.length > 0) throw new Error('transitionCtes: steps on the way need the from-state list form');
  // The states are the transition table's own names (checked above), safe as literals.
  const guard = single ? 'jobs.state = ?' : `jobs.state = v.from_state AND v.from_state IN (${froms.map((f) => `'${f}'`).join(', ')})`;
  const stepsSql = steps.length === 0 ? 'NULL' : `CASE from_state ${steps.map(() => 'WHEN ? THEN ?::text').join(' ')} END`;
  return {
    sql: `u AS (
       UPDATE jobs SET state = ?, updated_at = ?::int8, ${o.set.join(', ')}
       FROM ${o.source} v WHERE jobs.id = v.id AND ${guard} AND ${where}
       RETURNING jobs.id, ${single ? '' : 'v.from_state, '}v.reason, v.data, ${o.returning.join(', ')}
     ),
     e AS (INSERT INTO job_events (${EVENT_COLUMNS.join(', ')}) SELECT id, ?::int8, ${single ? '?::text' : 'from_state'}, ?::text, reason, ?::text, data, ${stepsSql} FROM u)`,
    params: single ? [o.to, o.now, o.from as JobState, o.now, o.from as JobState, o.to, o.actor] : [o.to, o.now, o.now, o.to, o.actor, ...steps.flat()],
  };
}

function valueOf(v: PatchValue): SqlValue {
  return isIncrement(v) ? v.add : v;
}

/** Records an event that is not a transition (a late report, a priority change) — from = to. */
export async function recordEvents(
  tx: SqlExecutor,
  events: readonly { job_id: string; state: JobState; reason: string; actor: string; data?: Record<string, unknown> }[],
  now: number,
): Promise<void> {
  await tx.insertMany(
    'job_events',
    EVENT_COLUMNS,
    events.map((e) => [e.job_id, now, e.state, e.state, e.reason, e.actor, e.data ? JSON.stringify(e.data) : null, null]),
  );
}
