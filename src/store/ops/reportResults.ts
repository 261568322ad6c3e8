import type { Job } from '../../core/types.ts';
import { hasAttemptsLeft, retryDelaySeconds } from '../../core/retry.ts';
import type { SqlExecutor, SqlValue } from '../driver.ts';
import { jobFromRow, toJson } from '../rows.ts';
import { applyTransitions, recordEvents, type Transition } from './applyTransitions.ts';

/** What a worker says about one attempt it runs. */
export interface AttemptReport {
  job_id: string;
  /** The fencing token handed out with the job. */
  attempt_id: string;
  outcome: 'completed' | 'failed' | 'timeout' | 'cancelled' | 'paused' | 'resumed' | 'progress';
  exit_code?: number | null;
  error?: string | null;
  result?: unknown;
  progress?: number | null;
  /** The failure must not be retried (NonRetryableError, or the configured exit code). */
  non_retryable?: boolean;
}

export interface ReportOutcome {
  job_id: string;
  /** applied: the state moved; stale: the worker no longer owns this attempt (recorded only). */
  status: 'applied' | 'stale';
  state: Job['state'];
}

/**
 * Applies a batch of a worker's reports in one transaction. Fencing: a report applies only if
 * the job is still assigned to this worker under this attempt and holds resources; otherwise
 * it is recorded as a late report and not applied. Failures retry by the job's policy
 * (RETRYING with run_after), or dead-letter when attempts are used up or non-retryable.
 */
export async function reportResults(
  tx: SqlExecutor,
  workerId: string,
  reports: readonly AttemptReport[],
  now: number,
  random: () => number = Math.random,
): Promise<ReportOutcome[]> {
  const out: ReportOutcome[] = [];
  const actor = `worker:${workerId}`;
  for (const r of reports) {
    const row = (await tx.query('SELECT * FROM jobs WHERE id = ?', [r.job_id]))[0];
    if (!row) {
      out.push({ job_id: r.job_id, status: 'stale', state: 'CANCELLED' });
      continue;
    }
    const job = jobFromRow(row);
    const owns =
      job.worker_id === workerId &&
      job.current_attempt_id === r.attempt_id &&
      (job.state === 'RUNNING' || job.state === 'PAUSED' || job.state === 'SCHEDULED');
    if (!owns) {
      await recordEvents(
        tx,
        [{ job_id: job.id, state: job.state, reason: `late report '${r.outcome}' ignored: attempt no longer owned`, actor, data: { attempt_id: r.attempt_id } }],
        now,
      );
      out.push({ job_id: job.id, status: 'stale', state: job.state });
      continue;
    }
    if (r.outcome === 'progress') {
      await tx.run('UPDATE jobs SET progress = ?, updated_at = ? WHERE id = ?', [r.progress ?? null, now, job.id]);
      out.push({ job_id: job.id, status: 'applied', state: job.state });
      continue;
    }
    const changes = transitionsFor(job, r, now, actor, random);
    if (changes.length === 0) {
      out.push({ job_id: job.id, status: 'applied', state: job.state });
      continue;
    }
    // Transitions for one job chain: each starts where the last ended.
    for (const c of changes) {
      const [ok] = await applyTransitions(tx, [c], now);
      if (!ok) break;
    }
    const last = changes[changes.length - 1]!;
    if (last.to !== 'PAUSED' && last.to !== 'RUNNING') {
      await tx.run('UPDATE job_attempts SET ended_at = ?, exit_code = ?, error = ?, outcome = ? WHERE id = ?', [
        now,
        r.exit_code ?? null,
        r.error ?? null,
        attemptOutcome(r.outcome),
        r.attempt_id,
      ]);
    }
    out.push({ job_id: job.id, status: 'applied', state: last.to });
  }
  return out;
}

function attemptOutcome(o: AttemptReport['outcome']): string {
  return o === 'completed' ? 'completed' : o === 'timeout' ? 'timeout' : o === 'cancelled' ? 'cancelled' : 'failed';
}

function transitionsFor(job: Job, r: AttemptReport, now: number, actor: string, random: () => number): Transition[] {
  const from = job.state === 'SCHEDULED' ? 'RUNNING' : job.state;
  const pre: Transition[] =
    job.state === 'SCHEDULED'
      ? [{ job_id: job.id, from: 'SCHEDULED', to: 'RUNNING', reason: 'worker started the job', actor, patch: { started_at: now } }]
      : [];
  const freed: Record<string, SqlValue> = { worker_id: null, gpu_indices: '[]', control: null };
  const data = { attempt_id: r.attempt_id, exit_code: r.exit_code ?? null, error: r.error ?? null };
  switch (r.outcome) {
    case 'completed':
      return [...pre, { job_id: job.id, from, to: 'COMPLETED', reason: 'completed', actor, data,
        patch: { finished_at: now, exit_code: r.exit_code ?? 0, result: toJson(r.result), progress: 1, error: null, ...freed } }];
    case 'cancelled':
      return [...pre, { job_id: job.id, from, to: 'CANCELLED', reason: 'cancelled by request; process stopped', actor, data,
        patch: { finished_at: now, exit_code: r.exit_code ?? null, ...freed } }];
    case 'paused':
      return from === 'RUNNING' ? [...pre, { job_id: job.id, from, to: 'PAUSED', reason: 'paused (SIGSTOP)', actor }] : [];
    case 'resumed':
      return from === 'PAUSED' ? [{ job_id: job.id, from, to: 'RUNNING', reason: 'resumed (SIGCONT)', actor }] : [];
    case 'failed':
    case 'timeout': {
      if (job.cancel_requested) {
        return [...pre, { job_id: job.id, from, to: 'CANCELLED', reason: 'cancelled by request', actor, data,
          patch: { finished_at: now, exit_code: r.exit_code ?? null, ...freed } }];
      }
      const what = r.outcome === 'timeout' ? `timed out after ${job.timeout}s` : (r.error ?? `exited with code ${r.exit_code}`);
      const retry = !r.non_retryable && hasAttemptsLeft(job.retry_policy, job.retry_count);
      const failed = r.outcome === 'timeout' ? 'TIMEOUT' : 'FAILED';
      const failPatch = { exit_code: r.exit_code ?? null, error: what, ...freed };
      if (!retry) {
        const why = r.non_retryable ? 'non-retryable failure' : `attempts used up (${job.retry_count}/${job.retry_policy.max_attempts})`;
        return [...pre, { job_id: job.id, from, to: failed, reason: `${what}; ${why}; moved to dead-letter queue`, actor, data,
          patch: { ...failPatch, finished_at: now, dead_lettered_at: now } }];
      }
      const delay = retryDelaySeconds(job.retry_policy, job.retry_count, random);
      const retrying: Transition = { job_id: job.id, from: failed === 'TIMEOUT' ? 'TIMEOUT' : from, to: 'RETRYING',
        reason: `${what}; retry ${job.retry_count + 1}/${job.retry_policy.max_attempts} in ${delay.toFixed(1)}s`, actor, data,
        patch: { ...failPatch, run_after: Math.round(now + delay * 1000) } };
      return failed === 'TIMEOUT'
        ? [...pre, { job_id: job.id, from, to: 'TIMEOUT', reason: what, actor, data, patch: failPatch }, retrying]
        : [...pre, retrying];
    }
    default:
      return [];
  }
}

/**
 * Moves RETRYING jobs whose backoff has passed back to QUEUED (at the back of their class).
 * Returns how many moved and when the next one is due (epoch ms), or null.
 */
export async function promoteDueRetries(tx: SqlExecutor, now: number): Promise<{ moved: number; next_due: number | null }> {
  const due = await tx.query(`SELECT id FROM jobs WHERE state = 'RETRYING' AND run_after <= ? ORDER BY run_after LIMIT 1000`, [now]);
  const changes: Transition[] = due.map((r) => ({
    job_id: String(r.id), from: 'RETRYING', to: 'QUEUED', reason: 'backoff elapsed', actor: 'scheduler',
    patch: { run_after: null, queued_at: now, sort_key: now },
  }));
  const applied = await applyTransitions(tx, changes, now);
  const next = await tx.query<{ t: number | null }>(`SELECT MIN(run_after) AS t FROM jobs WHERE state = 'RETRYING'`);
  const t = next[0]?.t;
  return { moved: applied.filter(Boolean).length, next_due: t === null || t === undefined ? null : Number(t) };
}

/**
 * Workers whose last heartbeat is older than `cutoff` are marked offline and every job they held
 * goes back to the queue at its old position (see releaseWorker). Returns workers and requeued jobs.
 */
export async function reapLostWorkers(tx: SqlExecutor, cutoff: number, now: number): Promise<{ workers: string[]; jobs: string[] }> {
  const lost = await tx.query(`SELECT id, last_heartbeat FROM workers WHERE state != 'offline' AND last_heartbeat < ?`, [cutoff]);
  const jobs: string[] = [];
  for (const w of lost) {
    const silentFor = ((now - Number(w.last_heartbeat)) / 1000).toFixed(1);
    jobs.push(...(await releaseWorker(tx, String(w.id), `worker ${String(w.id)} lost (no heartbeat for ${silentFor}s)`, 'lease-reaper', now)));
  }
  return { workers: lost.map((w) => String(w.id)), jobs };
}

/**
 * Takes a worker offline and returns every job it held to the queue at its old position, the
 * attempt recorded as lost (not counted against the retry budget) — or to CANCELLED if a cancel
 * was pending. Used for lost workers and for workers that leave. Returns the requeued job ids.
 */
export async function releaseWorker(tx: SqlExecutor, wid: string, why: string, actor: string, now: number): Promise<string[]> {
  const jobs: string[] = [];
  await tx.run(`UPDATE workers SET state = 'offline' WHERE id = ?`, [wid]);
  const held = await tx.query(
    `SELECT id, state, current_attempt_id, cancel_requested FROM jobs WHERE worker_id = ? AND state IN ('SCHEDULED', 'RUNNING', 'PAUSED')`,
    [wid],
  );
  const changes: Transition[] = held.map((j) => {
    const cancel = Number(j.cancel_requested) === 1;
    return {
      job_id: String(j.id), from: j.state as Job['state'], to: cancel ? 'CANCELLED' : 'QUEUED',
      reason: `${why}${cancel ? '; cancel was pending' : '; requeued'}`,
      actor,
      data: { worker_id: wid, attempt_id: j.current_attempt_id },
      patch: cancel
        ? ({ worker_id: null, gpu_indices: '[]', control: null, finished_at: now } as Record<string, SqlValue>)
        : { worker_id: null, gpu_indices: '[]', control: null, queued_at: now, current_attempt_id: null },
    };
  });
  const applied = await applyTransitions(tx, changes, now);
  for (let i = 0; i < held.length; i++) {
    if (!applied[i]) continue;
    const j = held[i]!;
    await tx.run(`UPDATE job_attempts SET ended_at = ?, outcome = 'lost', error = ? WHERE id = ?`, [now, why, String(j.current_attempt_id)]);
    if (changes[i]!.to === 'QUEUED') {
      await tx.run('UPDATE jobs SET retry_count = CASE WHEN retry_count > 0 THEN retry_count - 1 ELSE 0 END WHERE id = ?', [String(j.id)]);
      jobs.push(String(j.id));
    }
  }
  return jobs;
}
