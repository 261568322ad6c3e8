/**
 * Hand-off: the next step of a workflow goes straight to the SDK Worker that just finished its
 * upstream, inside the transaction that finished it — no scheduler cycle between the steps.
 * Only when it changes nothing the scheduler would decide differently in a way that matters:
 * the job is a handler job, the worker is an online handler worker serving that handler with a
 * free slot, no other queued job of that queue is ahead of it, its tenant's queue is not paused
 * and no circuit breaker holds its handler or template back. Otherwise the scheduler
 * places it as usual. (A scheduler cycle that read the worker's usage just before this commit
 * may place one more job there; it then waits SCHEDULED until the worker has room, as any
 * delivery beyond a worker's `max_jobs` does.)
 */
import type { SqlExecutor } from '../driver.ts';
import type { Job } from '../../core/types.ts';
import { priorityRank } from '../../core/priorities.ts';
import { assignJobs, type DeliveredJob } from './scheduling.ts';
import { assignJobsAtOnce } from './assignAtOnce.ts';
import { ACTIVE_STATES_SQL } from '../rows.ts';

/**
 * Assigns `job` (QUEUED, just submitted in this transaction) to `workerId` when the rules above
 * allow it. Returns the job as the worker's poll hands it out when it was handed off (give it to
 * the worker's waiting poll after commit: Store.wakeWorker's hand-off), else null.
 */
export async function handOffStep(tx: SqlExecutor, job: Job, workerId: string, now: number): Promise<DeliveredJob | null> {
  if (job.kind !== 'handler' || job.state !== 'QUEUED' || job.handler === null) return null;
  const rank = priorityRank(job.priority);
  // The three looks go together: one round trip on PostgreSQL (a transaction's statements are
  // pipelined on its connection and run in the order issued).
  const [[w], ahead, held] = await Promise.all([
    tx.query(
      `SELECT w.state, w.kind, w.handlers, w.slots,
         (SELECT COUNT(*) FROM jobs WHERE worker_id = w.id AND ${ACTIVE_STATES_SQL}) AS used
       FROM workers w WHERE w.id = ?`,
      [workerId],
    ),
    tx.query(
      `SELECT 1 AS x FROM jobs WHERE state = 'QUEUED' AND queue_key = ? AND id != ?
         AND (priority_rank < ? OR (priority_rank = ? AND (sort_key < ? OR (sort_key = ? AND seq < ?)))) LIMIT 1`,
      [job.handler, job.id, rank, rank, job.sort_key, job.sort_key, job.seq],
    ),
    // What the scheduler would hold back stays with the scheduler: a paused tenant, a breaker not closed.
    tx.query(
      `SELECT 1 AS x FROM tenants WHERE id = ? AND paused = 1
       UNION ALL SELECT 1 AS x FROM breakers WHERE key IN (?, ?) AND state != 'closed' LIMIT 1`,
      [job.tenant, `handler:${job.handler}`, `template:${job.template ?? ''}`],
    ),
  ]);
  if (!w || w.state !== 'online' || w.kind !== 'handler' || !(JSON.parse(String(w.handlers)) as string[]).includes(job.handler)) return null;
  if (Number(w.used) >= Number(w.slots)) return null;
  if (ahead.length > 0) return null;
  if (held.length > 0) return null;
  return assignOne(tx, job.id, workerId, now);
}

/**
 * One single-node job (QUEUED) assigned to `workerId` in the caller's transaction, as a scheduling cycle
 * assigns it; the job as the worker's poll hands it out, or null when the assignment did not take effect
 * (the job left QUEUED, the worker went offline or is draining). PostgreSQL: one statement, as a cycle's
 * (one round trip instead of four). Used by the hand-offs that bypass the cycle (this file, placeSubmitted.ts).
 */
export async function assignOne(tx: SqlExecutor, jobId: string, workerId: string, now: number): Promise<DeliveredJob | null> {
  const assignment = [{ job_id: jobId, worker_id: workerId, gpu_indices: [] }];
  const done = tx.serialWrites ? await assignJobs(tx, assignment, now) : await assignJobsAtOnce(tx, assignment, now);
  return done[0]?.job ?? null;
}
