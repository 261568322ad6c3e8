import type { JobState } from '../../core/types.ts';
import { ACTIVE_STATES } from '../../core/states.ts';
import type { ColumnType, SqlExecutor, SqlValue } from '../driver.ts';
import { JOB_COLUMN_TYPES } from '../rows.ts';
import { transitionCtes, type PatchValue } from './applyTransitions.ts';
import { DIRTY_BREAKER } from './breakers.ts';
import { isMemberReport } from './gangs.ts';
import { attemptOutcome, stepsFor, type AttemptReport, type ReportedJob } from './reportResults.ts';

/** The states a completion may leave (the fencing of reportResults: the attempt must still hold its worker). */
const FROM: readonly JobState[] = [...ACTIVE_STATES];

/** A batch the one statement can take: every report a `completed` of its own job, none a gang member's. */
export function plainCompletions(reports: readonly AttemptReport[]): boolean {
  if (reports.length === 0) return false;
  const seen = new Set<string>();
  for (const r of reports) {
    if (r.outcome !== 'completed' || isMemberReport(r) || seen.has(r.job_id)) return false;
    seen.add(r.job_id);
  }
  return true;
}

/**
 * A worker's `completed` reports (plainCompletions) as ONE statement where the engine allows it
 * (PostgreSQL, a data-modifying `WITH`, its own transaction; the state change and its event from
 * applyTransitions' transitionCtes, the change itself from reportResults' stepsFor): one round trip
 * instead of seven (BEGIN, the jobs read, the jobs, events, attempts, the breakers' look, COMMIT).
 * Writes what reportResults writes for them — the job COMPLETED (through RUNNING, in the event's
 * steps, if it had not started), the attempt ended — for each job still held by this worker under
 * the reported attempt, not watched (final-state hooks need the transaction path), and, with
 * `breakerGate`, only while no circuit breaker is dirty (a success would then change one).
 * It takes the whole batch or none of it: a batch with a report it cannot take (late, a watched job) goes whole
 * the transaction way, which records late reports, runs the hooks and steps the breakers as before.
 * Returns the ids of the jobs it moved: all, or none — or, when another writer changed one of them during the
 * statement (the guard re-checked on the newest row), all but those, which the caller sends the transaction way.
 */
export async function reportCompletionsAtOnce(
  db: SqlExecutor, workerId: string, reports: readonly AttemptReport[], now: number, breakerGate: boolean,
): Promise<Set<string>> {
  // A completion depends only on the state it leaves: SCHEDULED adds the start (a step and started_at).
  const changeFrom = (state: JobState, r: AttemptReport) => stepsFor({ state } as ReportedJob, r, now, Math.random);
  const first = changeFrom('SCHEDULED', reports[0]!);
  const cols = Object.keys(first.patch).sort();
  const running = new Set(Object.keys(changeFrom('RUNNING', reports[0]!).patch));
  if (cols.some((k) => !isValue(first.patch[k]!))) throw new Error('reportCompletionsAtOnce: a completion patch with an increment');
  const rows = reports.map((r) => {
    const { steps, patch } = changeFrom('SCHEDULED', r);
    const last = steps[steps.length - 1]!;
    const row: Record<string, SqlValue> = {
      id: r.job_id, attempt_id: r.attempt_id, worker_id: workerId, reason: last.reason, data: last.data ? JSON.stringify(last.data) : null,
      a_exit_code: r.exit_code ?? null, a_error: r.error ?? null,
    };
    for (const k of cols) row[`p_${k}`] = patch[k] as SqlValue;
    return row;
  });
  const v = db.recordset([
    ['id', 'text'], ['attempt_id', 'text'], ['worker_id', 'text'], ['reason', 'text'], ['data', 'text'], ['a_exit_code', 'int'], ['a_error', 'text'],
    ...cols.map((k): [string, ColumnType] => [`p_${k}`, JOB_COLUMN_TYPES[k] ?? 'text']),
  ]);
  const t = transitionCtes({
    source: 'cur', from: FROM, to: 'COMPLETED', actor: `worker:${workerId}`, now,
    // Columns only a start writes (started_at) keep their value when the job had started.
    set: cols.map((k) => (running.has(k) ? `${k} = v.p_${k}` : `${k} = CASE WHEN v.from_state = 'SCHEDULED' THEN v.p_${k} ELSE jobs.${k} END`)),
    where: 'jobs.worker_id = v.worker_id AND jobs.current_attempt_id = v.attempt_id',
    returning: ['v.attempt_id', 'v.a_exit_code', 'v.a_error'],
    via: { SCHEDULED: first.steps.slice(0, -1) },
  });
  // `held`: the reports it can take; `cur`: all of them, or none (the batch then goes whole the transaction way).
  const done = await db.query(
    `WITH rep AS MATERIALIZED (SELECT * FROM ${v}),
     held AS MATERIALIZED (
       -- Each report's job by its id (OFFSET 0 keeps the subquery whole): joined on id and worker, the planner
       -- may walk jobs_active by worker instead — the worker's every job for each report — when the table's
       -- statistics were taken while its jobs were queued (a W1 drain: 50 ms instead of 2 ms per 500 reports).
       SELECT rep.*, o.state AS from_state FROM rep
       CROSS JOIN LATERAL (SELECT state, worker_id, current_attempt_id, watched FROM jobs WHERE jobs.id = rep.id OFFSET 0) o
       WHERE o.worker_id = rep.worker_id AND o.current_attempt_id = rep.attempt_id AND o.state IN (${FROM.map((f) => `'${f}'`).join(', ')}) AND o.watched = 0
         ${breakerGate ? `AND NOT EXISTS (SELECT 1 FROM breakers WHERE ${DIRTY_BREAKER})` : ''}
     ),
     cur AS (SELECT * FROM held WHERE (SELECT count(*) FROM held) = (SELECT count(*) FROM rep)),
     ${t.sql},
     a AS (UPDATE job_attempts SET ended_at = ?::int8, exit_code = u.a_exit_code, error = u.a_error, outcome = ?::text FROM u WHERE job_attempts.id = u.attempt_id)
     SELECT id FROM u`,
    [JSON.stringify(rows), ...t.params, now, attemptOutcome('completed')],
  );
  return new Set(done.map((r) => String(r.id)));
}

const isValue = (v: PatchValue): v is SqlValue => v === null || typeof v !== 'object';
