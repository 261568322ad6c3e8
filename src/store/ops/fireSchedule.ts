/**
 * Firing a schedule once for one fire time. Exactly once across servers: the
 * (schedule_id, fire_time) row is inserted in the same transaction as the submit, and a second
 * server's insert of the same row finds it and does nothing.
 */
import { isFinal } from '../../core/states.ts';
import { normalizeJobSpec, type JobRequest } from '../../core/jobSpec.ts';
import { GantryError } from '../../core/errors.ts';
import type { JobState } from '../../core/types.ts';
import type { SqlExecutor } from '../driver.ts';
import { submitJobs } from './submitJobs.ts';
import { cancelJob } from './jobActions.ts';
import { findWorkflow } from './createWorkflow.ts';
import { cancelWorkflowRun, noEffects, startWorkflowRun, type StepJobBuilder, type WorkflowEffects } from './advanceWorkflows.ts';
import { scheduleFromRow, type OverlapPolicy, type Schedule } from './schedules.ts';

export interface FireResult {
  /** false: another server (or an earlier tick) already handled this fire time. */
  fired: boolean;
  outcome: 'started' | 'skipped' | 'buffered' | 'duplicate' | 'failed';
  target_id: string | null;
  effects: WorkflowEffects;
}

/** Is the job or run a schedule started last still going? */
async function targetActive(tx: SqlExecutor, s: Schedule): Promise<boolean> {
  if (!s.last_target_id) return false;
  if (s.target.kind === 'job') {
    const r = await tx.query<{ state: string }>('SELECT state FROM jobs WHERE id = ?', [s.last_target_id]);
    return r[0] !== undefined && !isFinal(r[0].state as JobState);
  }
  const r = await tx.query<{ state: string }>('SELECT state FROM workflow_runs WHERE id = ?', [s.last_target_id]);
  return r[0]?.state === 'RUNNING';
}

/** Starts what the schedule names for one fire time. Returns the job or run id. */
async function startTarget(tx: SqlExecutor, s: Schedule, fireTime: number, now: number, build: StepJobBuilder, effects: WorkflowEffects): Promise<string> {
  const iso = new Date(fireTime).toISOString();
  if (s.target.kind === 'job') {
    const req = s.target.job as JobRequest;
    const spec = normalizeJobSpec({ ...req, labels: { ...req.labels, 'gantry.schedule': s.id, 'gantry.fire_time': iso } });
    const [res] = await submitJobs(tx, [spec], now, `schedule:${s.name}`);
    effects.submitted++;
    return res!.job.id;
  }
  const wf = await findWorkflow(tx, s.target.workflow);
  if (!wf) throw new GantryError('NOT_FOUND', `schedule ${s.name}: workflow ${s.target.workflow} not found`, { field: 'workflow' });
  const r = await startWorkflowRun(tx, wf, s.target.parameters, { kind: 'schedule', schedule_id: s.id, fire_time: iso }, `schedule:${s.name}`, now, build);
  effects.submitted += r.effects.submitted;
  effects.finished_runs.push(...r.effects.finished_runs);
  return r.run_id;
}

async function stopTarget(tx: SqlExecutor, s: Schedule, now: number, effects: WorkflowEffects): Promise<void> {
  const why = `schedule ${s.name}: a newer fire replaces it (overlap cancel_other)`;
  if (s.target.kind === 'job') {
    const r = await cancelJob(tx, s.last_target_id!, why, `schedule:${s.name}`, now);
    if (r.wake_worker) effects.wake_workers.push(r.wake_worker);
  } else {
    const e = await cancelWorkflowRun(tx, s.last_target_id!, why, `schedule:${s.name}`, now);
    effects.wake_workers.push(...e.wake_workers);
  }
}

/**
 * Fires schedule `id` for `fireTime` (kind: scheduled | catchup | backfill) under its overlap
 * policy — or `overlap` when given (backfills run with `allow`). Params: now — epoch ms.
 */
export async function fireSchedule(
  tx: SqlExecutor, id: string, fireTime: number, kind: string, now: number, build: StepJobBuilder, overlap?: OverlapPolicy,
): Promise<FireResult> {
  const effects = noEffects();
  const claimed = await tx.query(
    `INSERT INTO schedule_fires (schedule_id, fire_time, kind, outcome, target_id, created_at) VALUES (?, ?, ?, 'pending', NULL, ?)
     ON CONFLICT (schedule_id, fire_time) DO NOTHING RETURNING schedule_id`,
    [id, fireTime, kind, now],
  );
  if (claimed.length === 0) return { fired: false, outcome: 'duplicate', target_id: null, effects };
  const row = (await tx.query('SELECT * FROM schedules WHERE id = ?', [id]))[0];
  if (!row) return { fired: false, outcome: 'duplicate', target_id: null, effects };
  const s = scheduleFromRow(row);
  const policy = overlap ?? s.overlap;
  let outcome: FireResult['outcome'] = 'started';
  if (policy !== 'allow' && (await targetActive(tx, s))) {
    if (policy === 'skip') outcome = 'skipped';
    else if (policy === 'buffer_one') outcome = s.buffered_fire === null ? 'buffered' : 'skipped';
    else await stopTarget(tx, s, now, effects);
  }
  let target: string | null = null;
  if (outcome === 'started') {
    try {
      target = await startTarget(tx, s, fireTime, now, build, effects);
      await tx.run('UPDATE schedules SET last_target_id = ? WHERE id = ?', [target, id]);
    } catch (err) {
      // The target cannot start (its workflow was deleted, the job request no longer validates):
      // this fire time is recorded as failed rather than retried at every look. Nothing was written yet.
      if (!(err instanceof GantryError)) throw err;
      outcome = 'failed';
    }
  } else if (outcome === 'buffered') {
    await tx.run('UPDATE schedules SET buffered_fire = ? WHERE id = ?', [fireTime, id]);
  }
  await tx.run('UPDATE schedule_fires SET outcome = ?, target_id = ? WHERE schedule_id = ? AND fire_time = ?', [outcome, target, id, fireTime]);
  return { fired: true, outcome, target_id: target, effects };
}

/** buffer_one: starts the buffered fire once the previous target has finished. */
export async function releaseBufferedFire(tx: SqlExecutor, id: string, now: number, build: StepJobBuilder): Promise<FireResult | null> {
  const row = (await tx.query('SELECT * FROM schedules WHERE id = ? AND buffered_fire IS NOT NULL', [id]))[0];
  if (!row) return null;
  const s = scheduleFromRow(row);
  if (await targetActive(tx, s)) return null;
  const effects = noEffects();
  // Only one server moves it: the conditional UPDATE claims the buffered fire.
  const n = await tx.run('UPDATE schedules SET buffered_fire = NULL WHERE id = ? AND buffered_fire = ?', [id, s.buffered_fire]);
  if (n === 0) return null;
  const target = await startTarget(tx, s, s.buffered_fire!, now, build, effects);
  await tx.run('UPDATE schedules SET last_target_id = ? WHERE id = ?', [target, id]);
  await tx.run(`UPDATE schedule_fires SET outcome = 'started', target_id = ? WHERE schedule_id = ? AND fire_time = ?`, [target, id, s.buffered_fire]);
  return { fired: true, outcome: 'started', target_id: target, effects };
}

/** Moves a schedule's cursor forward (never back). */
export async function advanceScheduleCursor(tx: SqlExecutor, id: string, to: number): Promise<void> {
  await tx.run('UPDATE schedules SET cursor_at = ? WHERE id = ? AND cursor_at < ?', [to, id, to]);
}
