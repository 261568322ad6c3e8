import type { Job, Priority } from '../../core/types.ts';
import { GantryError, notFound } from '../../core/errors.ts';
import { isFinal } from '../../core/states.ts';
import { priorityRank } from '../../core/priorities.ts';
import type { SqlExecutor, SqlReader, SqlValue } from '../driver.ts';
import { jobFromRow } from '../rows.ts';
import { applyTransitions, recordEvents, type PatchValue } from './applyTransitions.ts';

export async function loadJob(tx: SqlExecutor, id: string): Promise<Job> {
  const row = (await tx.query('SELECT * FROM jobs WHERE id = ?', [id]))[0];
  if (!row) throw notFound('job', id);
  return jobFromRow(row);
}

/** What a user action did: the job afterwards, and the worker to wake, if any. */
export interface ActionResult {
  job: Job;
  wake_worker: string | null;
}

/**
 * Cancels a job. Not yet on a worker → CANCELLED at once. SCHEDULED → CANCELLED at once too, and
 * the worker (which may already have been handed it) is told to stop it. On a worker (RUNNING,
 * PAUSED) → the worker is told to stop the process group (SIGTERM, then SIGKILL after the grace
 * period) and the job becomes CANCELLED when it confirms — or when its lease lapses.
 */
export async function cancelJob(tx: SqlExecutor, id: string, reason: string, actor: string, now: number): Promise<ActionResult> {
  // The scheduler (another connection) may move the job (QUEUED → SCHEDULED) between our read and
  // our write; the write then applies to nothing, so read again and cancel from the new state.
  for (let tries = 0; ; tries++) {
    const job = await loadJob(tx, id);
    if (job.state === 'RUNNING' || job.state === 'PAUSED') {
      await tx.run(`UPDATE jobs SET cancel_requested = 1, control = 'cancel', updated_at = ? WHERE id = ?`, [now, id]);
      await recordEvents(tx, [{ job_id: id, state: job.state, reason: `cancel requested: ${reason}`, actor }], now);
      return { job: await loadJob(tx, id), wake_worker: job.worker_id };
    }
    const scheduledOn = job.state === 'SCHEDULED' ? job.worker_id : null;
    // A SCHEDULED job keeps its worker id so the cancel control reaches that worker; it no longer holds resources there.
    const patch: Record<string, PatchValue> = scheduledOn
      ? { finished_at: now, run_after: null, control: 'cancel', cancel_requested: 1 }
      : { finished_at: now, worker_id: null, gpu_indices: '[]', run_after: null };
    const [applied] = await applyTransitions(tx, [{ job_id: id, from: job.state, to: 'CANCELLED', reason, actor, patch }], now);
    if (!applied && tries < 5) continue;
    // A SCHEDULED gang (no job worker) ends its attempt too; its members are stopped or dropped on their workers' next poll.
    if ((scheduledOn || (job.state === 'SCHEDULED' && job.nodes > 1)) && job.current_attempt_id) {
      await tx.run(`UPDATE job_attempts SET ended_at = ?, outcome = 'cancelled' WHERE id = ?`, [now, job.current_attempt_id]);
    }
    return { job: await loadJob(tx, id), wake_worker: scheduledOn };
  }
}

/** Pause (SIGSTOP) or resume (SIGCONT) a running job: the worker is told, the state follows its confirmation. */
export async function controlJob(tx: SqlExecutor, id: string, control: 'pause' | 'resume', actor: string, now: number): Promise<ActionResult> {
  const job = await loadJob(tx, id);
  const need = control === 'pause' ? 'RUNNING' : 'PAUSED';
  if (job.state !== need || job.cancel_requested || job.preemption) {
    throw new GantryError('INVALID_TRANSITION', `job ${id} is ${job.state}; only a ${need} job can be ${control}d`, {
      job_id: id, from: job.state, to: control === 'pause' ? 'PAUSED' : 'RUNNING',
    });
  }
  await tx.run('UPDATE jobs SET control = ?, updated_at = ? WHERE id = ?', [control, now, id]);
  await recordEvents(tx, [{ job_id: id, state: job.state, reason: `${control} requested`, actor }], now);
  return { job: await loadJob(tx, id), wake_worker: job.worker_id };
}

/**
 * Puts a FAILED, TIMEOUT or CANCELLED job back in the queue with a fresh retry budget
 * (manual retry, or a requeue from the dead-letter queue), optionally with new parameters.
 */
export async function requeueJob(
  tx: SqlExecutor, id: string, reason: string, actor: string, now: number, parameters?: Record<string, unknown>,
): Promise<Job> {
  const job = await loadJob(tx, id);
  if (!isFinal(job.state) || job.state === 'COMPLETED') {
    throw new GantryError('INVALID_TRANSITION', `job ${id} is ${job.state}; only FAILED, TIMEOUT or CANCELLED jobs can be retried`, {
      job_id: id, from: job.state, to: 'QUEUED',
    });
  }
  const patch: Record<string, string | number | null> = {
    retry_count: 0, dead_lettered_at: null, finished_at: null, queued_at: now, sort_key: now, cancel_requested: 0,
    control: null, error: null, exit_code: null, run_after: null, current_attempt_id: null,
  };
  if (parameters) patch.parameters = JSON.stringify(parameters);
  await applyTransitions(tx, [{ job_id: id, from: job.state, to: 'QUEUED', reason, actor, patch }], now);
  return loadJob(tx, id);
}

/** Changes a job's priority (seed 002: `{priority, reason}`). A queued job moves to its new class at once. */
export async function setPriority(tx: SqlExecutor, id: string, priority: Priority, reason: string, actor: string, now: number): Promise<Job> {
  const job = await loadJob(tx, id);
  if (isFinal(job.state)) {
    throw new GantryError('INVALID_TRANSITION', `job ${id} is ${job.state}; its priority can no longer change`, { job_id: id, from: job.state });
  }
  await tx.run('UPDATE jobs SET priority = ?, priority_rank = ?, updated_at = ? WHERE id = ?', [priority, priorityRank(priority), now, id]);
  await recordEvents(tx, [{ job_id: id, state: job.state, reason: `priority ${job.priority} → ${priority}: ${reason}`, actor,
    data: { from_priority: job.priority, to_priority: priority } }], now);
  return loadJob(tx, id);
}

/** The queue a job waits in: '' for command jobs, the handler name for handler jobs. */
export function queueKeyOf(job: Pick<Job, 'handler'>): string {
  return job.handler ?? '';
}

/**
 * The condition for the queued jobs (`alias`: `q.` or '') ahead of one with this queue key, rank, sort key and seq
 * (SQL each), as one row comparison — for the submit's count (submitJobsAtOnce), whose job was just written with
 * the latest sort key and seq: no job of its class lies behind it, so the walk ends with the jobs ahead, where the
 * row comparison's bound (its first column only, see AHEAD) would end it. For a job already waiting, see AHEAD.
 */
export function queuedAhead(alias: string, [key, rank, sortKey, seq]: readonly [string, string, string, string]): string {
  return `${alias}state = 'QUEUED' AND ${alias}queue_key = ${key} AND (${alias}priority_rank, ${alias}sort_key, ${alias}seq) < (${rank}, ${sortKey}, ${seq})`;
}

/**
 * One row per queued job ahead of a job (queuedAhead's jobs; parameters: aheadParams), as three ranges of
 * jobs_queue_by_key — the higher classes, the job's class before its sort key, its sort key before its seq —
 * each an equality on every column before its one inequality, so both engines start and end each walk at its
 * range's ends. The row comparison is bounded at its first column only: PostgreSQL 15 walks on to the end of the
 * job's class (the 10th of 300,000 normal jobs: 1,800 index pages, 19 ms), and SQLite (which leaves the rowid
 * `seq` out of a row-value range) to the last job of its millisecond (a batch's: 1,000 entries, 0.1–0.2 ms).
 * The price of three ranges: PostgreSQL plans three scans (~0.3 ms against ~0.15; the statement keeps custom
 * plans), and an empty queue costs SQLite ~1 µs more (5.7 against 4.6 µs).
 */
const AHEAD = ['priority_rank < ?', 'priority_rank = ? AND sort_key < ?', 'priority_rank = ? AND sort_key = ? AND seq < ?']
  .map((range) => `SELECT 1 FROM jobs WHERE state = 'QUEUED' AND queue_key = ? AND ${range}`).join(' UNION ALL ');

function aheadParams(job: Pick<Job, 'priority' | 'sort_key' | 'seq' | 'handler'>): SqlValue[] {
  const [key, rank] = [queueKeyOf(job), priorityRank(job.priority)];
  return [key, rank, key, rank, job.sort_key, key, rank, job.sort_key, job.seq];
}

/**
 * 1-based place of a queued job in its queue (the jobs waiting for the same kind of worker:
 * command jobs, or one handler's jobs), in scheduling order. O(jobs ahead): the last of 300,000
 * took 15–17 ms on SQLite and ~45 ms (GET /jobs/{id}) on PostgreSQL.
 */
export async function queuePosition(db: SqlReader, job: Pick<Job, 'priority' | 'sort_key' | 'seq' | 'handler'>): Promise<number> {
  const r = await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM (${AHEAD}) AS ahead`, aheadParams(job));
  return Number(r[0]?.n ?? 0) + 1;
}

/** How many jobs ahead a submit's answer counts on the store's connection (~0.1 ms); deeper counts go off it. */
export const NEAR_POSITIONS = 1000;

/**
 * queuePosition when fewer than `limit` jobs are ahead, else null — the count stops walking there
 * (the LIMIT is the union's: all three ranges together).
 * The limit is written into the SQL: SQLite ran the statement with `LIMIT ?` at 60–80 µs on an
 * empty queue, against 8–18 µs with the number in the text (COUNT(*) alone: 9–11 µs); an ORDER BY
 * in the index's order (which the one-statement submit on PostgreSQL has, see submitJobsAtOnce) made it
 * 40–60 µs there. A small LIMIT the planner can read keeps PostgreSQL on an index scan as it is.
 */
export async function nearQueuePosition(db: SqlReader, job: Pick<Job, 'priority' | 'sort_key' | 'seq' | 'handler'>, limit: number): Promise<number | null> {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`nearQueuePosition: limit ${limit} is not a positive integer`);
  const r = await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM (${AHEAD} LIMIT ${limit}) AS ahead`, aheadParams(job));
  const n = Number(r[0]?.n ?? 0);
  return n < limit ? n + 1 : null;
}

/**
 * Moves a queued job to `position` (1-based, in its queue — see queuePosition). The job stays in its priority
 * class: a place held by a higher class is refused (change the priority instead); a place beyond
 * its class puts it last in the class.
 */
export async function reorderJob(tx: SqlExecutor, id: string, position: number, reason: string, actor: string, now: number): Promise<Job> {
  const job = await loadJob(tx, id);
  if (job.state !== 'QUEUED') {
    throw new GantryError('INVALID_TRANSITION', `job ${id} is ${job.state}; only a QUEUED job can be reordered`, { job_id: id, from: job.state });
  }
  const rank = priorityRank(job.priority);
  const qk = queueKeyOf(job);
  // A place past the end of the queue is the end of the queue. Counting stops at the place asked for
  // (the rest of a long queue makes no difference, and this runs inside the write transaction).
  const wanted = Math.max(1, Math.floor(position));
  const others = await tx.query<{ n: number }>(
    `SELECT COUNT(*) AS n FROM (SELECT 1 FROM jobs WHERE state = 'QUEUED' AND queue_key = ? AND id != ? LIMIT ?) AS q`, [qk, id, wanted]);
  const pos = Math.min(wanted, Number(others[0]?.n ?? 0) + 1);
  const at = await tx.query(
    `SELECT id, seq, priority, priority_rank, sort_key FROM jobs WHERE state = 'QUEUED' AND queue_key = ? AND id != ?
     ORDER BY priority_rank, sort_key, seq LIMIT 2 OFFSET ?`,
    [qk, id, Math.max(0, pos - 2)],
  );
  // `before` = the job that will precede ours, `after` = the one that will follow.
  const before = pos >= 2 ? at[0] : undefined;
  const after = pos >= 2 ? at[1] : at[0];
  if (after && Number(after.priority_rank) < rank) {
    throw new GantryError('CONFLICT', `position ${position} is held by a ${String(after.priority)} job; raise the priority to move ${id} ahead of it`, {
      field: 'new_position',
    });
  }
  let key: number;
  if (before && Number(before.priority_rank) > rank) {
    // Past the end of its class: last in the class.
    const last = await tx.query<{ k: number | null }>(
      `SELECT MAX(sort_key) AS k FROM jobs WHERE state = 'QUEUED' AND queue_key = ? AND priority_rank = ? AND id != ?`, [qk, rank, id]);
    key = last[0]?.k === null || last[0]?.k === undefined ? job.sort_key : Number(last[0].k) + 1;
  } else {
    const lo = before && Number(before.priority_rank) === rank ? Number(before.sort_key) : null;
    const hi = after && Number(after.priority_rank) === rank ? Number(after.sort_key) : null;
    if (lo !== null && hi !== null) {
      key = (lo + hi) / 2;
      if (!(lo < key && key < hi)) {
        // No key between the neighbours (jobs queued in the same millisecond share one, and halving
        // runs out of precision): move `after` and everything behind it in the class back by 1 ms.
        await tx.run(
          `UPDATE jobs SET sort_key = sort_key + 1 WHERE state = 'QUEUED' AND queue_key = ? AND priority_rank = ? AND id != ?
           AND (sort_key > ? OR (sort_key = ? AND seq >= ?))`,
          [qk, rank, id, hi, hi, Number(after!.seq)],
        );
        key = (lo + hi + 1) / 2;
      }
    } else if (hi !== null) key = hi - 1;
    else if (lo !== null) key = lo + 1;
    else key = job.sort_key;
  }
  await tx.run('UPDATE jobs SET sort_key = ?, updated_at = ? WHERE id = ?', [key, now, id]);
  await recordEvents(tx, [{ job_id: id, state: 'QUEUED', reason: `moved to position ${position}: ${reason}`, actor }], now);
  return loadJob(tx, id);
}
