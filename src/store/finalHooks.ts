/**
 * Follow-ups that react when jobs reach a final state (COMPLETED, FAILED, TIMEOUT, CANCELLED),
 * in the SAME transaction that made them final — no polling, no window where the upstream is
 * final and its followers have not moved yet.
 *
 * How it works
 * - A job whose end matters to someone is **watched** (`jobs.watched = 1`): set it with
 *   `watchJobs(tx, ids)` in the transaction that creates the relationship (a dependency, a
 *   workflow step). Unwatched jobs cost nothing: the flag comes back with the state UPDATE.
 * - `applyTransitions` (the one writer of job states, so the report, cancel, reaper and
 *   dead-letter paths all pass through it) calls every registered hook with the watched jobs
 *   that just became final, right after writing their states and events.
 * - A hook gets the open transaction and may submit (`submitJobs`), queue or cancel
 *   (`applyTransitions`, `cancelJob`) further jobs. Those changes pass through applyTransitions
 *   too, so cascades (a cancelled dependent that is itself watched) follow by themselves.
 * - Wake-ups (scheduler, a worker that must stop a job, job watchers) are asked for with
 *   `ctx.wakeScheduler()` / `ctx.wakeWorker(id)` and sent once the transaction commits
 *   (the Store binds a collector to each transaction it opens; see `Store.#tx`).
 *
 * Registered hooks (in src/store/store.ts): `dependencies` (src/store/ops/dependencies.ts —
 * releases or cancels jobs waiting on `depends_on`). Add one with `registerFinalHook(name, fn)`.
 * A hook that throws rolls back the whole transaction — including the upstream's own change —
 * so hooks must only fail on real database errors.
 */
import type { JobState } from '../core/types.ts';
import type { SqlExecutor } from './driver.ts';
import type { DeliveredJob } from './ops/scheduling.ts';
import { idsIn } from './driver.ts';

export interface FinishedJob {
  id: string;
  /** The final state it just reached. */
  state: JobState;
  /** The transition's reason (e.g. "completed", "attempts used up …"). */
  reason: string;
}

export interface HookContext {
  now: number;
  /** Run a scheduling cycle after commit (jobs were queued). */
  wakeScheduler(): void;
  /** Wake a worker's long-poll after commit (a control such as cancel awaits it). */
  wakeWorker(id: string): void;
  /**
   * Give `job`, assigned to `worker` in this transaction, to that worker's waiting poll with its
   * wake-up after commit (Store.wakeWorker's hand-off: the poll answers without a look). A worker
   * also woken with wakeWorker gets the plain wake-up instead, and its poll looks.
   */
  handOff(worker: string, job: DeliveredJob): void;
  /** Wake watchers of one job (log followers) after commit. */
  wakeJob(id: string): void;
}

export type FinalHook = (tx: SqlExecutor, finished: readonly FinishedJob[], ctx: HookContext) => Promise<void>;

const hooks = new Map<string, FinalHook>();

/** Registers (or replaces) the follow-up `name`. Hooks run in registration order. */
export function registerFinalHook(name: string, fn: FinalHook): void {
  hooks.set(name, fn);
}

/** What the hooks of one transaction asked for, sent after it commits. */
export class AfterCommit {
  schedule = false;
  readonly workers = new Set<string>();
  readonly jobs = new Set<string>();
  readonly handOffs = new Map<string, DeliveredJob[]>();
}

const bound = new WeakMap<SqlExecutor, AfterCommit>();

/** Binds a collector to an open transaction (the Store does this for every transaction it opens). */
export function bindAfterCommit(tx: SqlExecutor, effects: AfterCommit): void {
  bound.set(tx, effects);
}

/** The collector bound to `tx`, if the Store opened it (wake-ups to send once it commits). */
export function afterCommitOf(tx: SqlExecutor): AfterCommit | null {
  return bound.get(tx) ?? null;
}

/** Called by applyTransitions with the watched jobs that just became final. */
export async function runFinalHooks(tx: SqlExecutor, finished: readonly FinishedJob[], now: number): Promise<void> {
  if (finished.length === 0 || hooks.size === 0) return;
  const effects = bound.get(tx) ?? new AfterCommit();
  const ctx: HookContext = {
    now,
    wakeScheduler: () => void (effects.schedule = true),
    wakeWorker: (id) => void effects.workers.add(id),
    handOff: (worker, job) => {
      const jobs = effects.handOffs.get(worker);
      if (jobs) jobs.push(job);
      else effects.handOffs.set(worker, [job]);
    },
    wakeJob: (id) => void effects.jobs.add(id),
  };
  for (const fn of hooks.values()) await fn(tx, finished, ctx);
}

const WATCH_SQL = 'UPDATE jobs SET watched = 1 WHERE';

/** watchJobs for a caller that needs no states back: not waited for (SqlExecutor.later). */
export function watchJobsLater(tx: SqlExecutor, ids: readonly string[]): void {
  if (ids.length === 0) return;
  const sel = idsIn(tx, 'id', ids);
  tx.later(`${WATCH_SQL} ${sel.sql}`, [sel.param]);
}

/**
 * Marks jobs as watched, so the hooks hear when they end. Returns each job's current state
 * (read under the row lock the UPDATE takes, so a job finishing concurrently either sees the
 * flag or has its final state returned here — never neither). Unknown ids are absent from the map.
 */
export async function watchJobs(tx: SqlExecutor, ids: readonly string[]): Promise<Map<string, JobState>> {
  const out = new Map<string, JobState>();
  if (ids.length === 0) return out;
  const sel = idsIn(tx, 'id', ids);
  const rows = await tx.query(`${WATCH_SQL} ${sel.sql} RETURNING id, state`, [sel.param]);
  for (const r of rows) out.set(String(r.id), r.state as JobState);
  return out;
}
