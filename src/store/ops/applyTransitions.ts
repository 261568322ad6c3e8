import type { JobState } from '../../core/types.ts';
import { assertTransition } from '../../core/states.ts';
import type { SqlExecutor, SqlValue } from '../driver.ts';

/** One requested state change of one job, as seen by the caller (`from` must still hold). */
export interface Transition {
  job_id: string;
  from: JobState;
  to: JobState;
  reason: string;
  actor: string;
  /** Columns to write along with the state. */
  patch?: Record<string, SqlValue>;
  /** Structured detail stored on the event (exit code, worker, attempt…). */
  data?: Record<string, unknown>;
}

const EVENT_COLUMNS = ['job_id', 'at', 'from_state', 'to_state', 'reason', 'actor', 'data'] as const;

/**
 * The one place a job's state is written. Each change is checked against the transition table
 * (a refused one throws INVALID_TRANSITION), applied only if the job is still in `from`
 * (a concurrent change wins; the caller learns it from the returned flags), and recorded as
 * an event in the same transaction. Params: tx — an open transaction; changes — in order;
 * now — epoch ms. Returns, per change, whether it was applied.
 */
export async function applyTransitions(tx: SqlExecutor, changes: readonly Transition[], now: number): Promise<boolean[]> {
  const applied: boolean[] = [];
  const events: SqlValue[][] = [];
  for (const c of changes) {
    assertTransition(c.job_id, c.from, c.to);
    const cols = c.patch ? Object.keys(c.patch) : [];
    const sets = ['state = ?', 'updated_at = ?', ...cols.map((k) => `${k} = ?`)].join(', ');
    const params: SqlValue[] = [c.to, now, ...cols.map((k) => c.patch![k] as SqlValue), c.job_id, c.from];
    const n = await tx.run(`UPDATE jobs SET ${sets} WHERE id = ? AND state = ?`, params);
    applied.push(n === 1);
    if (n === 1) {
      events.push([c.job_id, now, c.from, c.to, c.reason, c.actor, c.data ? JSON.stringify(c.data) : null]);
    }
  }
  await tx.insertMany('job_events', EVENT_COLUMNS, events);
  return applied;
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
    events.map((e) => [e.job_id, now, e.state, e.state, e.reason, e.actor, e.data ? JSON.stringify(e.data) : null]),
  );
}
