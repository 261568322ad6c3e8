import type { Priority } from '../../core/types.ts';
import { idsIn, type Row, type SqlExecutor } from '../driver.ts';

/** One finished run of a job, for trace export. */
export interface HistoryRow {
  id: string;
  seq: number;
  created_at: number;
  tenant: string;
  priority: Priority;
  cpu_cores: number;
  memory_gb: number;
  gpu_count: number;
  nodes: number;
  expected_duration: number | null;
  preemptible: boolean;
  queue_key: string;
  started_at: number;
  ended_at: number;
  outcome: string;
}

/**
 * Jobs created in [since, until) with runs that ended on their own (completed, failed, timed out
 * or cancelled — not preempted or lost, which say nothing of a job's runtime), `limit` jobs at a
 * time after `afterSeq` (keyset paging; `next_after` null at the end). A job run several times has one row per run.
 */
export async function jobHistory(
  db: SqlExecutor, since: number, until: number, afterSeq: number, limit: number,
): Promise<{ rows: HistoryRow[]; next_after: number | null }> {
  const jobs = await db.query(
    `SELECT id, seq, created_at, tenant, priority, cpu_cores, memory_gb, gpu_count, nodes, expected_duration, preemptible, queue_key
     FROM jobs WHERE created_at >= ? AND created_at < ? AND seq > ? AND attempt_count > 0 ORDER BY seq LIMIT ?`,
    [since, until, afterSeq, limit],
  );
  if (jobs.length === 0) return { rows: [], next_after: null };
  const ids = idsIn(db, 'job_id', jobs.map((j) => String(j.id)));
  const runs = new Map<string, Row[]>();
  for (const a of await db.query(
    `SELECT job_id, started_at, ended_at, outcome FROM job_attempts
     WHERE ${ids.sql} AND ended_at IS NOT NULL AND outcome IN ('completed', 'failed', 'timeout', 'cancelled') ORDER BY number`,
    [ids.param],
  )) {
    const list = runs.get(String(a.job_id)) ?? [];
    list.push(a);
    runs.set(String(a.job_id), list);
  }
  const rows: HistoryRow[] = [];
  for (const r of jobs) {
    for (const a of runs.get(String(r.id)) ?? []) {
      rows.push({
        id: String(r.id), seq: Number(r.seq), created_at: Number(r.created_at), tenant: String(r.tenant), priority: r.priority as Priority,
        cpu_cores: Number(r.cpu_cores), memory_gb: Number(r.memory_gb), gpu_count: Number(r.gpu_count), nodes: Number(r.nodes),
        expected_duration: r.expected_duration === null ? null : Number(r.expected_duration), preemptible: Number(r.preemptible) === 1,
        queue_key: String(r.queue_key), started_at: Number(a.started_at), ended_at: Number(a.ended_at), outcome: String(a.outcome),
      });
    }
  }
  return { rows, next_after: jobs.length === limit ? Number(jobs[jobs.length - 1]!.seq) : null };
}
