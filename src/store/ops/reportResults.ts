import type { Job } from '../../core/types.ts';
import { hasAttemptsLeft, retryDelaySeconds } from '../../core/retry.ts';
import { ACTIVE_STATES } from '../../core/states.ts';
import { batchSet, idsIn, type SqlExecutor, type SqlValue } from '../driver.ts';
import { ACTIVE_STATES_SQL, toJson } from '../rows.ts';
import { encodeCheckpoint, upsertCheckpoint, type Checkpoint } from './checkpoints.ts';
import { GantryError } from '../../core/errors.ts';
import { applyTransitions, recordEvents, type PatchValue, type Step, type Transition } from './applyTransitions.ts';
import { releaseGangMembers, strandedGangWorkers } from './gangs.ts';

/** What a worker says about one attempt it runs. */
export interface AttemptReport {
  job_id: string;
  /** The fencing token handed out with the job. */
  attempt_id: string;
  outcome: 'started' | 'completed' | 'failed' | 'timeout' | 'cancelled' | 'preempted' | 'paused' | 'resumed' | 'progress' | 'checkpoint';
  exit_code?: number | null;
  error?: string | null;
  result?: unknown;
  progress?: number | null;
  /** The failure must not be retried (NonRetryableError, or the configured exit code). */
  non_retryable?: boolean;
  /** outcome 'checkpoint': what the job saved (SDK `job.checkpoint()`, or `$GANTRY_CHECKPOINT_FILE`). */
  checkpoint?: Checkpoint;
}

export interface ReportOutcome {
  job_id: string;
  /** applied: the state moved; stale: the worker no longer owns this attempt (recorded only). */
  status: 'applied' | 'stale';
  state: Job['state'];
}

const FINAL_OUTCOMES = new Set<AttemptReport['outcome']>(['completed', 'failed', 'timeout', 'cancelled', 'preempted']);

/** What reporting needs to know of a job. */
export type ReportedJob = Pick<Job, 'id' | 'state' | 'worker_id' | 'current_attempt_id' | 'retry_policy' | 'retry_count' | 'timeout' | 'cancel_requested' | 'preemption'>;

/** An attempt that ended, as its row is written. */
interface Ended {
  id: string;
  ended_at: number;
  exit_code: SqlValue;
  error: SqlValue;
  outcome: string;
}

/** A job's changes within one batch: one write, one event per step. */
interface Chain {
  job: ReportedJob;
  from: Job['state'];
  steps: Step[];
  patch: Record<string, PatchValue>;
  actor: string;
  outcomes: number[];
}

/**
 * Applies a batch of a worker's reports in one transaction, one statement per shape of change.
 * Fencing: a report applies only if the job is still assigned to this worker under this
 * attempt and holds resources; otherwise it is recorded as a late report and not applied.
 * `started` moves SCHEDULED→RUNNING; a job that starts and ends within one batch is written
 * once, with both events. Failures retry by the job's policy (RETRYING with run_after), or
 * dead-letter when attempts are used up or the failure is non-retryable.
 */
export async function reportResults(
  tx: SqlExecutor,
  workerId: string,
  reports: readonly AttemptReport[],
  now: number,
  random: () => number = Math.random,
): Promise<ReportOutcome[]> {
  const actor = `worker:${workerId}`;
  const jobs = new Map<string, ReportedJob>();
  const ids = [...new Set(reports.map((r) => r.job_id))];
  {
    const sel = idsIn(tx, 'id', ids);
    const rows = await tx.query(
      `SELECT id, state, worker_id, current_attempt_id, retry_policy, retry_count, timeout, cancel_requested, preemption FROM jobs WHERE ${sel.sql}`,
      [sel.param],
    );
    // A batch's jobs mostly share one retry policy text: parse each text once (read-only below).
    const policies = new Map<string, Job['retry_policy']>();
    const policyOf = (text: string): Job['retry_policy'] => {
      let p = policies.get(text);
      if (!p) policies.set(text, (p = JSON.parse(text) as Job['retry_policy']));
      return p;
    };
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      jobs.set(String(r.id), {
        id: String(r.id), state: r.state as Job['state'], worker_id: r.worker_id === null ? null : String(r.worker_id),
        current_attempt_id: r.current_attempt_id === null ? null : String(r.current_attempt_id),
        retry_policy: policyOf(String(r.retry_policy)), retry_count: Number(r.retry_count),
        timeout: r.timeout === null ? null : Number(r.timeout), cancel_requested: Number(r.cancel_requested) === 1,
        preemption: r.preemption === null || r.preemption === undefined ? null : (JSON.parse(String(r.preemption)) as Job['preemption']),
      });
    }
  }
  const out: ReportOutcome[] = [];
  const chains = new Map<string, Chain>();
  const late: { job_id: string; state: Job['state']; reason: string; actor: string; data: Record<string, unknown> }[] = [];
  const progress: [number | null, string][] = [];
  const checkpoints: { job_id: string; attempt_id: string; text: string }[] = [];
  const ended: Ended[] = [];
  // Chains in the order they were begun (the transitions' order).
  const begun: Chain[] = [];
  // Indexed loops over a batch: this runs a few times per second, often before V8 optimizes it, and
  // an unoptimized for-of allocates an iterator result per element (~500 reports per W1 batch).
  for (let i = 0; i < reports.length; i++) {
    const r = reports[i]!;
    const job = jobs.get(r.job_id);
    if (!job) {
      out.push({ job_id: r.job_id, status: 'stale', state: 'CANCELLED' });
      continue;
    }
    if (job.worker_id !== workerId || job.current_attempt_id !== r.attempt_id || !ACTIVE_STATES.has(job.state)) {
      late.push({ job_id: job.id, state: job.state, reason: `late report '${r.outcome}' ignored: attempt no longer owned`, actor, data: { attempt_id: r.attempt_id } });
      out.push({ job_id: job.id, status: 'stale', state: job.state });
      continue;
    }
    if (r.outcome === 'progress') {
      progress.push([r.progress ?? null, job.id]);
      out.push({ job_id: job.id, status: 'applied', state: job.state });
      continue;
    }
    if (r.outcome === 'checkpoint') {
      try {
        checkpoints.push({ job_id: job.id, attempt_id: r.attempt_id, text: encodeCheckpoint(r.checkpoint ?? { data: null, file: null }) });
      } catch (err) {
        // Too big: the rest of the batch still applies; the job's events say why the checkpoint is missing.
        late.push({ job_id: job.id, state: job.state, reason: `checkpoint refused: ${(err as GantryError).message}`, actor, data: { attempt_id: r.attempt_id } });
      }
      out.push({ job_id: job.id, status: 'applied', state: job.state });
      continue;
    }
    const { steps, patch } = stepsFor(job, r, now, random);
    let chain = chains.get(job.id);
    // The first report of a job (usually its only one) hands its fresh steps and patch to the chain.
    if (!chain) {
      chains.set(job.id, (chain = { job, from: job.state, steps, patch, actor, outcomes: [] }));
      begun.push(chain);
    } else {
      chain.steps.push(...steps);
      Object.assign(chain.patch, patch);
    }
    const last = steps[steps.length - 1];
    if (last) job.state = last.to;
    if (FINAL_OUTCOMES.has(r.outcome)) {
      ended.push({ id: r.attempt_id, ended_at: now, exit_code: r.exit_code ?? null, error: r.error ?? null, outcome: attemptOutcome(r.outcome) });
      // Once the attempt is over the job no longer holds the worker: later reports for it are late.
      job.worker_id = null;
    }
    chain.outcomes.push(out.length);
    out.push({ job_id: job.id, status: 'applied', state: job.state });
  }
  const list = begun.filter((c) => c.steps.length > 0);
  const transitions: Transition[] = list.map((c) => {
    // The last step is the transition's own; the chain's steps are not read again.
    const last = c.steps.pop()!;
    return { job_id: c.job.id, from: c.from, via: c.steps, to: last.to, reason: last.reason, actor: c.actor, data: last.data, patch: c.patch };
  });
  // Progress first: a job that also finishes in this batch ends at progress 1.
  for (const [p, id] of progress) await tx.run('UPDATE jobs SET progress = ?, updated_at = ? WHERE id = ?', [p, now, id]);
  // Checkpoints before the transitions: one saved just before a failure is there for the retry.
  for (const c of checkpoints) await upsertCheckpoint(tx, c.job_id, c.attempt_id, c.text, now);
  const applied = await applyTransitions(tx, transitions, now);
  const staleAttempts = new Set<string | null>();
  list.forEach((c, i) => {
    if (applied[i]) return;
    // The job changed under us (e.g. cancelled meanwhile): nothing of this batch applies to it.
    staleAttempts.add(c.job.current_attempt_id);
    for (const o of c.outcomes) out[o] = { job_id: c.job.id, status: 'stale', state: out[o]!.state };
  });
  const endedApplied = staleAttempts.size > 0 ? ended.filter((e) => !staleAttempts.has(e.id)) : ended;
  if (endedApplied.length > 0) {
    const b = batchSet(
      'update job_attempts', [['id', 'text']], [['ended_at', 'int'], ['exit_code', 'int'], ['error', 'text'], ['outcome', 'text']],
      endedApplied.length, (i, c) => endedApplied[i]![c as keyof Ended],
    );
    tx.later(`UPDATE job_attempts SET ${b.sets.join(', ')} FROM ${tx.recordset(b.recordset)} WHERE job_attempts.id = v.id`, b.params);
  }
  if (late.length > 0) await recordEvents(tx, late, now);
  return out;
}

export function attemptOutcome(o: AttemptReport['outcome']): string {
  return o === 'completed' || o === 'timeout' || o === 'cancelled' || o === 'preempted' ? o : 'failed';
}

/** Columns an attempt's end clears: the job no longer holds its worker. Spread into each patch, never written to. */
const FREED: Readonly<Record<string, PatchValue>> = { worker_id: null, gpu_indices: '[]', control: null, preemption: null };

/** The steps one report takes a job through (from its current state), and the columns to write. */
export function stepsFor(job: ReportedJob, r: AttemptReport, now: number, random: () => number): { steps: Step[]; patch: Record<string, PatchValue> } {
  const pre: Step[] = job.state === 'SCHEDULED' ? [{ to: 'RUNNING', reason: 'worker started the job' }] : [];
  const startPatch: Record<string, PatchValue> = job.state === 'SCHEDULED' ? { started_at: now } : {};
  const data = { attempt_id: r.attempt_id, exit_code: r.exit_code ?? null, error: r.error ?? null };
  switch (r.outcome) {
    case 'started':
      return { steps: pre, patch: startPatch };
    case 'completed':
      return {
        steps: [...pre, { to: 'COMPLETED', reason: 'completed', data }],
        patch: { ...startPatch, finished_at: now, exit_code: r.exit_code ?? 0, result: toJson(r.result), progress: 1, error: null, ...FREED },
      };
    case 'cancelled':
      return {
        steps: [...pre, { to: 'CANCELLED', reason: 'cancelled by request; process stopped', data }],
        patch: { ...startPatch, finished_at: now, exit_code: r.exit_code ?? null, ...FREED },
      };
    case 'preempted': {
      if (job.cancel_requested) {
        return {
          steps: [...pre, { to: 'CANCELLED', reason: 'cancelled by request (was being preempted)', data }],
          patch: { ...startPatch, finished_at: now, exit_code: r.exit_code ?? null, ...FREED },
        };
      }
      // Back to the queue at its old place; the attempt is recorded 'preempted' and does not count against the retry budget.
      const p = job.preemption;
      const reason = p ? `preempted: ${p.reason}; requeued` : 'preempted by the worker; requeued';
      return {
        steps: [...pre, { to: 'QUEUED', reason, data: { ...data, preempted_by_job: p?.by_job ?? null, preempted_by_tenant: p?.by_tenant ?? null } }],
        patch: { ...startPatch, ...FREED, queued_at: now, current_attempt_id: null, retry_count: { add: -1 }, exit_code: r.exit_code ?? null },
      };
    }
    case 'paused':
      return job.state === 'PAUSED' ? { steps: [], patch: {} } : { steps: [...pre, { to: 'PAUSED', reason: 'paused (SIGSTOP)' }], patch: startPatch };
    case 'resumed':
      return job.state === 'PAUSED' ? { steps: [{ to: 'RUNNING', reason: 'resumed (SIGCONT)' }], patch: {} } : { steps: [], patch: {} };
    case 'failed':
    case 'timeout': {
      if (job.cancel_requested) {
        return {
          steps: [...pre, { to: 'CANCELLED', reason: 'cancelled by request', data }],
          patch: { ...startPatch, finished_at: now, exit_code: r.exit_code ?? null, ...FREED },
        };
      }
      // A step of a multi-step job (its own timeout) is named by the worker: "step train (2/4) timed out after 60s".
      const what = r.outcome === 'timeout'
        ? (r.error?.startsWith('step ') ? r.error : `timed out after ${job.timeout}s`)
        : (r.error ?? `exited with code ${r.exit_code}`);
      const nonRetryable = r.non_retryable === true || (r.exit_code != null && r.exit_code === job.retry_policy.non_retryable_exit_code);
      const retry = !nonRetryable && hasAttemptsLeft(job.retry_policy, job.retry_count);
      const failed = r.outcome === 'timeout' ? 'TIMEOUT' : 'FAILED';
      const failPatch = { ...startPatch, exit_code: r.exit_code ?? null, error: what, ...FREED };
      if (!retry) {
        const why = nonRetryable ? 'non-retryable failure' : `attempts used up (${job.retry_count}/${job.retry_policy.max_attempts})`;
        return {
          steps: [...pre, { to: failed, reason: `${what}; ${why}; moved to dead-letter queue`, data }],
          patch: { ...failPatch, finished_at: now, dead_lettered_at: now },
        };
      }
      const delay = retryDelaySeconds(job.retry_policy, job.retry_count, random);
      const retrying: Step = { to: 'RETRYING', reason: `${what}; retry ${job.retry_count + 1}/${job.retry_policy.max_attempts} in ${delay.toFixed(1)}s`, data };
      const patch = { ...failPatch, run_after: Math.round(now + delay * 1000) };
      return failed === 'TIMEOUT'
        ? { steps: [...pre, { to: 'TIMEOUT', reason: what, data }, retrying], patch }
        : { steps: [...pre, retrying], patch };
    }
    default:
      return { steps: [], patch: {} };
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
 * goes back to the queue at its old position (see releaseWorker); jobs still assigned to an
 * offline worker (an assignment that raced the release) go back too. Returns workers and requeued jobs.
 */
export async function reapLostWorkers(tx: SqlExecutor, cutoff: number, now: number): Promise<{ workers: string[]; jobs: string[] }> {
  const lost = await tx.query(`SELECT id, last_heartbeat FROM workers WHERE state != 'offline' AND last_heartbeat < ?`, [cutoff]);
  const jobs: string[] = [];
  for (const w of lost) {
    const silentFor = ((now - Number(w.last_heartbeat)) / 1000).toFixed(1);
    jobs.push(...(await releaseWorker(tx, String(w.id), `worker ${String(w.id)} lost (no heartbeat for ${silentFor}s)`, 'lease-reaper', now)));
  }
  // A scheduling cycle that read the worker as online can commit its assignments just after the
  // worker was released: those jobs sit on an offline worker that no lease will ever reap. Sweep them.
  const stranded = await tx.query(
    `SELECT DISTINCT worker_id FROM jobs WHERE ${ACTIVE_STATES_SQL} AND worker_id IN (SELECT id FROM workers WHERE state = 'offline')`,
  );
  const strandedIds = [...new Set([...stranded.map((s) => String(s.worker_id)), ...(await strandedGangWorkers(tx))])];
  for (const wid of strandedIds) {
    jobs.push(...(await releaseWorker(tx, wid, `worker ${wid} lost (offline, but jobs were assigned to it as it was released)`, 'lease-reaper', now)));
  }
  return { workers: [...lost.map((w) => String(w.id)), ...strandedIds], jobs };
}

/**
 * Takes a worker offline and returns every job it held to the queue at its old position, the
 * attempt recorded as `outcome` — lost, or interrupted by a graceful shutdown — and not counted
 * against the retry budget; the job's checkpoint stays for the next attempt — or to CANCELLED if a cancel
 * was pending. Used for lost workers and for workers that leave. Returns the requeued job ids.
 */
export async function releaseWorker(
  tx: SqlExecutor, wid: string, why: string, actor: string, now: number, outcome: 'lost' | 'interrupted' = 'lost',
): Promise<string[]> {
  const jobs: string[] = [];
  await tx.run(`UPDATE workers SET state = 'offline' WHERE id = ?`, [wid]);
  const held = await tx.query(
    `SELECT id, state, current_attempt_id, cancel_requested FROM jobs WHERE worker_id = ? AND ${ACTIVE_STATES_SQL}`,
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
        ? ({ worker_id: null, gpu_indices: '[]', control: null, preemption: null, finished_at: now } as Record<string, SqlValue>)
        : { worker_id: null, gpu_indices: '[]', control: null, preemption: null, queued_at: now, current_attempt_id: null },
    };
  });
  const applied = await applyTransitions(tx, changes, now);
  for (let i = 0; i < held.length; i++) {
    if (!applied[i]) continue;
    const j = held[i]!;
    await tx.run(`UPDATE job_attempts SET ended_at = ?, outcome = ?, error = ? WHERE id = ?`, [now, outcome, why, String(j.current_attempt_id)]);
    if (changes[i]!.to === 'QUEUED') {
      await tx.run('UPDATE jobs SET retry_count = CASE WHEN retry_count > 0 THEN retry_count - 1 ELSE 0 END WHERE id = ?', [String(j.id)]);
      jobs.push(String(j.id));
    }
  }
  // Gang members on this worker: their whole gang goes back (src/store/ops/gangs.ts).
  jobs.push(...(await releaseGangMembers(tx, wid, why, actor, now, outcome)));
  return jobs;
}
