import type { Attempt, Job, JobEvent, JobState, Priority } from '../../core/types.ts';
import { PRIORITIES } from '../../core/types.ts';
import type { SqlExecutor, SqlReader, SqlValue } from '../driver.ts';
import { ACTIVE_STATES_SQL, attemptFromRow, eventsFromRow, jobFromRow, STATE_SEQ_SQL } from '../rows.ts';

export interface JobFilter {
  state?: JobState;
  tenant?: string;
  type?: string;
  priority?: Priority;
  /** Only jobs in the dead-letter queue. */
  dead_letter?: boolean;
}

/** Jobs newest first; `before_seq` is the keyset cursor (jobs with a smaller seq). */
export async function listJobs(db: SqlExecutor, filter: JobFilter, limit: number, beforeSeq: number | null): Promise<Job[]> {
  const where: string[] = [];
  const params: SqlValue[] = [];
  // The partial index's own condition goes along (jobs_active for SCHEDULED, else jobs_state_seq).
  const scheduled = filter.state === 'SCHEDULED';
  if (filter.state) (where.push('state = ?', scheduled ? ACTIVE_STATES_SQL : STATE_SEQ_SQL), params.push(filter.state));
  if (filter.tenant) (where.push('tenant = ?'), params.push(filter.tenant));
  if (filter.type) (where.push('type = ?'), params.push(filter.type));
  if (filter.priority) (where.push('priority = ?'), params.push(filter.priority));
  if (filter.dead_letter) where.push(`dead_lettered_at IS NOT NULL AND state IN ('FAILED', 'TIMEOUT') AND ${STATE_SEQ_SQL}`);
  if (beforeSeq !== null) (where.push('seq < ?'), params.push(beforeSeq));
  params.push(limit);
  const rows = await db.query(
    // SCHEDULED jobs are few (placed, not started yet; at most the workers' slots): sorted after reading
    // the jobs on workers from jobs_active (`+seq` keeps SQLite from walking every job in seq order instead).
    `SELECT * FROM jobs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY ${scheduled ? '+seq' : 'seq'} DESC LIMIT ?`,
    params,
  );
  return rows.map(jobFromRow);
}

export async function jobEvents(db: SqlExecutor, jobId: string): Promise<JobEvent[]> {
  return (await db.query('SELECT * FROM job_events WHERE job_id = ? ORDER BY id', [jobId])).flatMap(eventsFromRow);
}

export async function jobAttempts(db: SqlExecutor, jobId: string): Promise<Attempt[]> {
  return (await db.query('SELECT * FROM job_attempts WHERE job_id = ? ORDER BY number', [jobId])).map(attemptFromRow);
}

export interface QueueStats {
  queued: number;
  running: number;
  scheduled: number;
  paused: number;
  retrying: number;
  per_priority: Record<Priority, { length: number; oldest_queued_at: number | null; sum_wait_ms: number }>;
}

/**
 * Counts by state, and per priority class the queue length and waiting time so far. QUEUED jobs are
 * walked once, by the per-priority read (their total is its sum): with a big backlog that walk is
 * the whole cost (1M queued: ~0.5 s on PostgreSQL, ~0.3 s on SQLite), and it used to be made twice.
 */
export async function queueStats(db: SqlReader, now: number): Promise<QueueStats> {
  const counts = await db.query<{ state: string; n: number }>(
    `SELECT state, COUNT(*) AS n FROM jobs WHERE state IN ('RUNNING', 'PAUSED', 'RETRYING') AND ${STATE_SEQ_SQL} GROUP BY state
     UNION ALL SELECT state, COUNT(*) AS n FROM jobs WHERE state = 'SCHEDULED' AND ${ACTIVE_STATES_SQL} GROUP BY state`,
  );
  const by = Object.fromEntries(counts.map((c) => [c.state, Number(c.n)]));
  const per = await db.query<{ priority: string; n: number; oldest: number | null; total: number | null }>(
    `SELECT priority, COUNT(*) AS n, MIN(queued_at) AS oldest, SUM(? - queued_at) AS total FROM jobs WHERE state = 'QUEUED' GROUP BY priority`,
    [now],
  );
  const per_priority = Object.fromEntries(
    PRIORITIES.map((p) => [p, { length: 0, oldest_queued_at: null as number | null, sum_wait_ms: 0 }]),
  ) as QueueStats['per_priority'];
  for (const r of per) {
    per_priority[r.priority as Priority] = {
      length: Number(r.n),
      oldest_queued_at: r.oldest === null ? null : Number(r.oldest),
      sum_wait_ms: Number(r.total ?? 0),
    };
  }
  return {
    queued: per.reduce((n, r) => n + Number(r.n), 0),
    running: by.RUNNING ?? 0,
    scheduled: by.SCHEDULED ?? 0,
    paused: by.PAUSED ?? 0,
    retrying: by.RETRYING ?? 0,
    per_priority,
  };
}

/**
 * Run times (ms) of the latest completed jobs of a type, newest first, with their tenant and
 * template — the history runtime estimates learn from (src/scheduler/runtimeEstimates.ts).
 */
export async function recentRuns(db: SqlExecutor, type: string, limit: number): Promise<{ tenant: string; template: string | null; ms: number }[]> {
  const rows = await db.query(
    `SELECT tenant, template, finished_at - started_at AS d FROM jobs WHERE type = ? AND state = 'COMPLETED' AND started_at IS NOT NULL
     ORDER BY finished_at DESC LIMIT ?`,
    [type, limit],
  );
  return rows.map((r) => ({ tenant: String(r.tenant), template: r.template == null ? null : String(r.template), ms: Number(r.d) }));
}

/** The jobs holding resources now (for start-time estimates and worker views). */
export async function activeJobs(db: SqlExecutor): Promise<Job[]> {
  return (await db.query(`SELECT * FROM jobs WHERE ${ACTIVE_STATES_SQL}`)).map(jobFromRow);
}
