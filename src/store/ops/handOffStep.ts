/**
 * Hand-off: the next step of a workflow goes straight to the SDK Worker that just finished its
 * upstream, inside the transaction that finished it — no scheduler cycle between the steps.
 * Only when it changes nothing the scheduler would decide differently in a way that matters:
 * the job is a handler job, the worker is an online handler worker serving that handler with a
 * free slot, and no other queued job of that queue is ahead of it. Otherwise the scheduler
 * places it as usual. (A scheduler cycle that read the worker's usage just before this commit
 * may place one more job there; it then waits SCHEDULED until the worker has room, as any
 * delivery beyond a worker's `max_jobs` does.)
 */
import type { SqlExecutor } from '../driver.ts';
import { getWorker } from './workers.ts';
import { assignJobs } from './scheduling.ts';

/**
 * The worker that ran a job's current attempt, for jobs that just became final.
 * Params: jobIds — final jobs. Returns job id → worker id.
 */
export async function finishingWorkers(tx: SqlExecutor, jobIds: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const id of jobIds) {
    const r = await tx.query('SELECT a.worker_id FROM jobs j JOIN job_attempts a ON a.id = j.current_attempt_id WHERE j.id = ?', [id]);
    if (r[0]?.worker_id) out.set(id, String(r[0].worker_id));
  }
  return out;
}

/**
 * Assigns `jobId` (QUEUED, just submitted) to `workerId` when the rules above allow it.
 * Returns true when it was handed off (wake the worker after commit).
 */
export async function handOffStep(tx: SqlExecutor, jobId: string, workerId: string, now: number): Promise<boolean> {
  const j = (await tx.query('SELECT kind, handler, queue_key, priority_rank, sort_key, seq, state FROM jobs WHERE id = ?', [jobId]))[0];
  if (!j || j.kind !== 'handler' || j.state !== 'QUEUED') return false;
  const w = await getWorker(tx, workerId);
  if (!w || w.state !== 'online' || w.kind !== 'handler' || !w.handlers.includes(String(j.handler))) return false;
  const used = await tx.query<{ n: number }>(`SELECT COUNT(*) AS n FROM jobs WHERE worker_id = ? AND state IN ('SCHEDULED', 'RUNNING', 'PAUSED')`, [workerId]);
  if (Number(used[0]?.n ?? 0) >= w.capacity.slots) return false;
  const rank = Number(j.priority_rank);
  const key = Number(j.sort_key);
  const ahead = await tx.query(
    `SELECT 1 AS x FROM jobs WHERE state = 'QUEUED' AND queue_key = ? AND id != ?
       AND (priority_rank < ? OR (priority_rank = ? AND (sort_key < ? OR (sort_key = ? AND seq < ?)))) LIMIT 1`,
    [String(j.queue_key), jobId, rank, rank, key, key, Number(j.seq)],
  );
  if (ahead.length > 0) return false;
  const done = await assignJobs(tx, [{ job_id: jobId, worker_id: workerId, gpu_indices: [] }], now);
  return done.length === 1;
}
