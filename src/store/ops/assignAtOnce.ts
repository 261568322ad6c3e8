import { newId } from '../../core/ids.ts';
import type { SqlExecutor } from '../driver.ts';
import { ASSIGNED_RETURNING, DELIVERED_COLUMNS, deliveredJobFromRow, type Assignment } from './scheduling.ts';
import { transitionCtes } from './applyTransitions.ts';

/**
 * A cycle's plain admissions (no gang) as ONE statement where the engine allows it (PostgreSQL, a
 * data-modifying `WITH`, its own transaction; the state change and its events come from
 * applyTransitions' transitionCtes): one round trip on the job's way to its worker instead of seven
 * (BEGIN, the paused tenants, the worker lock, the jobs, events, attempts, COMMIT). Writes what
 * jobsOfPausedTenants + assignJobs write: skips jobs of a paused tenant and workers no longer online
 * (locking the others' rows, see lockOnlineWorkers), moves the rest QUEUED → SCHEDULED with their
 * event and a new attempt. Returns the assignments that took effect, each with its job as delivered.
 * The workers' rows are locked FOR SHARE, not by the row update lockOnlineWorkers makes: a release or
 * drain still waits for this commit (and sees these jobs), but the parts of one big cycle's admissions,
 * written at once on several connections (Store #inParts), do not wait for each other on a worker they share.
 */
export async function assignJobsAtOnce(db: SqlExecutor, proposed: readonly Assignment[], now: number): Promise<Assignment[]> {
  if (proposed.length === 0) return [];
  const rows = proposed.map((a) => {
    const attempt = newId('att');
    return {
      id: a.job_id, worker_id: a.worker_id, gpu_indices: JSON.stringify(a.gpu_indices), attempt_id: attempt,
      reason: `assigned to worker ${a.worker_id}`, data: JSON.stringify({ worker_id: a.worker_id, attempt_id: attempt, gpu_indices: a.gpu_indices }),
    };
  });
  const v = db.recordset([['id', 'text'], ['worker_id', 'text'], ['gpu_indices', 'text'], ['attempt_id', 'text'], ['reason', 'text'], ['data', 'text']]);
  // The same change, event and guard as assignJobs: workers locked and still online, tenant not paused.
  const t = transitionCtes({
    source: 'admit', from: 'QUEUED', to: 'SCHEDULED', actor: 'scheduler', now,
    set: ['worker_id = v.worker_id', 'gpu_indices = v.gpu_indices', 'current_attempt_id = v.attempt_id',
      'attempt_count = jobs.attempt_count + 1', 'retry_count = jobs.retry_count + 1'],
    where: 'v.worker_id IN (SELECT id FROM w) AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = jobs.tenant AND t.paused = 1)',
    // The job as its worker's poll hands it out, for a poll waiting for it (no look after the wake-up).
    returning: ['jobs.attempt_count', ASSIGNED_RETURNING],
  });
  const done = await db.query(
    `WITH admit AS MATERIALIZED (SELECT * FROM ${v}),
     w AS (SELECT id FROM workers WHERE id IN (SELECT worker_id FROM admit) AND state = 'online' FOR SHARE),
     ${t.sql},
     a AS (INSERT INTO job_attempts (id, job_id, number, worker_id, started_at, outcome) SELECT current_attempt_id, id, attempt_count, worker_id, ?::int8, 'running' FROM u)
     SELECT ${DELIVERED_COLUMNS} FROM u`,
    [JSON.stringify(rows), ...t.params, now],
  );
  const applied = new Map(done.map((r) => [String(r.id), r]));
  return proposed.flatMap((a) => {
    const row = applied.get(a.job_id);
    return row ? [{ ...a, job: deliveredJobFromRow(row) }] : [];
  });
}
