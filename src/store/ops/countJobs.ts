import type { SqlReader } from '../driver.ts';
import { ACTIVE_STATES_SQL, STATE_SEQ_SQL } from '../rows.ts';

/** Counts for the metrics endpoint. */
export interface JobCounts {
  by_state: Record<string, number>;
  /** QUEUED jobs per queue ('' = command jobs, else a handler name). */
  queue_depth: Record<string, number>;
  /** Attempts per outcome (running, completed, failed, timeout, cancelled, lost, interrupted, …). */
  attempts_by_outcome: Record<string, number>;
  dead_lettered: number;
}

/** Counts jobs by state, queue depth per queue, attempts by outcome and dead-lettered jobs, each from an index. */
export async function countJobs(db: SqlReader): Promise<JobCounts> {
  const tally = (rows: Record<string, unknown>[], key: string) => Object.fromEntries(rows.map((r) => [String(r[key]), Number(r.n)]));
  const [states, queues, outcomes, dead] = await Promise.all([
    // Two partial indexes between them hold every job (migration 0011).
    db.query(`SELECT state, COUNT(*) AS n FROM jobs WHERE ${STATE_SEQ_SQL} GROUP BY state
              UNION ALL SELECT state, COUNT(*) AS n FROM jobs WHERE state = 'SCHEDULED' AND ${ACTIVE_STATES_SQL} GROUP BY state`),
    db.query(`SELECT queue_key, COUNT(*) AS n FROM jobs WHERE state = 'QUEUED' GROUP BY queue_key`),
    db.query('SELECT outcome, COUNT(*) AS n FROM job_attempts GROUP BY outcome'),
    db.query('SELECT COUNT(*) AS n FROM jobs WHERE dead_lettered_at IS NOT NULL'),
  ]);
  return {
    by_state: tally(states, 'state'),
    queue_depth: tally(queues, 'queue_key'),
    attempts_by_outcome: tally(outcomes, 'outcome'),
    dead_lettered: Number(dead[0]?.n ?? 0),
  };
}
