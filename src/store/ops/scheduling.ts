import type { Job, JobControl, WorkerUsage } from '../../core/types.ts';
import { newId } from '../../core/ids.ts';
import type { SqlExecutor, SqlValue } from '../driver.ts';
import { jobFromRow } from '../rows.ts';
import { applyTransitions, type Transition } from './applyTransitions.ts';

/** The slice of a queued job the scheduler needs to place it. */
export interface QueuedJob {
  id: string;
  seq: number;
  kind: Job['kind'];
  handler: string | null;
  tenant: string;
  priority_rank: number;
  sort_key: number;
  cpu_cores: number;
  memory_gb: number;
  gpu_count: number;
}

export interface QueueCursor {
  priority_rank: number;
  sort_key: number;
  seq: number;
}

/**
 * Reads the queue in scheduling order — priority class, then position — from the partial index
 * `jobs_queue`, `limit` at a time, after `cursor` (keyset paging, so a blocked head never hides
 * the jobs behind it).
 */
export async function queuedJobs(db: SqlExecutor, limit: number, cursor: QueueCursor | null): Promise<QueuedJob[]> {
  const cols = 'id, seq, kind, handler, tenant, priority_rank, sort_key, cpu_cores, memory_gb, gpu_count';
  const rows = cursor
    ? await db.query(
        `SELECT ${cols} FROM jobs WHERE state = 'QUEUED' AND (priority_rank, sort_key, seq) > (?, ?, ?)
         ORDER BY priority_rank, sort_key, seq LIMIT ?`,
        [cursor.priority_rank, cursor.sort_key, cursor.seq, limit],
      )
    : await db.query(`SELECT ${cols} FROM jobs WHERE state = 'QUEUED' ORDER BY priority_rank, sort_key, seq LIMIT ?`, [limit]);
  return rows.map((r) => ({
    id: String(r.id),
    seq: Number(r.seq),
    kind: r.kind as Job['kind'],
    handler: r.handler === null ? null : String(r.handler),
    tenant: String(r.tenant),
    priority_rank: Number(r.priority_rank),
    sort_key: Number(r.sort_key),
    cpu_cores: Number(r.cpu_cores),
    memory_gb: Number(r.memory_gb),
    gpu_count: Number(r.gpu_count),
  }));
}

/** Resources held on each worker by its SCHEDULED, RUNNING and PAUSED jobs. */
export async function workerUsage(db: SqlExecutor): Promise<Map<string, WorkerUsage>> {
  const rows = await db.query(
    `SELECT worker_id, cpu_cores, memory_gb, gpu_count, gpu_indices FROM jobs
     WHERE state IN ('SCHEDULED', 'RUNNING', 'PAUSED') AND worker_id IS NOT NULL`,
  );
  const usage = new Map<string, WorkerUsage>();
  for (const r of rows) {
    const id = String(r.worker_id);
    let u = usage.get(id);
    if (!u) {
      u = { cpu_cores: 0, memory_gb: 0, gpu_count: 0, slots: 0, gpu_indices: [] };
      usage.set(id, u);
    }
    u.cpu_cores += Number(r.cpu_cores);
    u.memory_gb += Number(r.memory_gb);
    u.gpu_count += Number(r.gpu_count);
    u.slots += 1;
    if (Number(r.gpu_count) > 0) u.gpu_indices.push(...(JSON.parse(String(r.gpu_indices)) as number[]));
  }
  return usage;
}

export interface Assignment {
  job_id: string;
  worker_id: string;
  gpu_indices: number[];
}

/**
 * Writes a scheduling cycle's decisions in one transaction: QUEUED→SCHEDULED on the chosen
 * worker with a new attempt (its id is the fencing token). A job that left QUEUED meanwhile
 * (cancelled) is skipped. Returns the assignments that took effect.
 */
export async function assignJobs(tx: SqlExecutor, assignments: readonly Assignment[], now: number): Promise<Assignment[]> {
  const changes: Transition[] = [];
  const attemptIds: string[] = [];
  for (const a of assignments) {
    const attemptId = newId('att');
    attemptIds.push(attemptId);
    changes.push({
      job_id: a.job_id,
      from: 'QUEUED',
      to: 'SCHEDULED',
      reason: `assigned to worker ${a.worker_id}`,
      actor: 'scheduler',
      patch: {
        worker_id: a.worker_id,
        gpu_indices: JSON.stringify(a.gpu_indices),
        current_attempt_id: attemptId,
      },
      data: { worker_id: a.worker_id, attempt_id: attemptId, gpu_indices: a.gpu_indices },
    });
  }
  const applied = await applyTransitions(tx, changes, now);
  const done: Assignment[] = [];
  const attemptRows: SqlValue[][] = [];
  for (let i = 0; i < assignments.length; i++) {
    if (!applied[i]) continue;
    const a = assignments[i]!;
    done.push(a);
    attemptRows.push([attemptIds[i]!, a.job_id, a.worker_id, now, 'running']);
  }
  if (done.length > 0) {
    // One statement per job keeps it portable; the counters decide the attempt number.
    for (const a of done) {
      await tx.run('UPDATE jobs SET attempt_count = attempt_count + 1, retry_count = retry_count + 1 WHERE id = ?', [a.job_id]);
    }
    for (const r of attemptRows) {
      await tx.run(
        `INSERT INTO job_attempts (id, job_id, number, worker_id, started_at, outcome)
         VALUES (?, ?, (SELECT attempt_count FROM jobs WHERE id = ?), ?, ?, ?)`,
        [r[0]!, r[1]!, r[1]!, r[2]!, r[3]!, r[4]!],
      );
    }
  }
  return done;
}

export interface Delivery {
  jobs: Job[];
  controls: { job_id: string; attempt_id: string; control: JobControl }[];
}

/**
 * Hands a worker what is waiting for it: its SCHEDULED jobs become RUNNING (the worker has
 * them now), and pending controls (cancel, pause, resume) are taken off the jobs.
 * Params: max — how many new jobs the worker has room for.
 */
export async function deliverToWorker(tx: SqlExecutor, workerId: string, max: number, now: number): Promise<Delivery> {
  const controls: Delivery['controls'] = [];
  const ctl = await tx.query(
    `SELECT id, current_attempt_id, control FROM jobs
     WHERE worker_id = ? AND state IN ('SCHEDULED', 'RUNNING', 'PAUSED') AND control IS NOT NULL`,
    [workerId],
  );
  for (const r of ctl) {
    controls.push({ job_id: String(r.id), attempt_id: String(r.current_attempt_id), control: r.control as JobControl });
    await tx.run('UPDATE jobs SET control = NULL WHERE id = ?', [String(r.id)]);
  }
  const jobs: Job[] = [];
  if (max > 0) {
    const rows = await tx.query(
      `SELECT * FROM jobs WHERE worker_id = ? AND state = 'SCHEDULED' ORDER BY priority_rank, sort_key LIMIT ?`,
      [workerId, max],
    );
    const changes: Transition[] = rows.map((r) => ({
      job_id: String(r.id),
      from: 'SCHEDULED',
      to: 'RUNNING',
      reason: 'worker took the job',
      actor: `worker:${workerId}`,
      patch: { started_at: now },
    }));
    const applied = await applyTransitions(tx, changes, now);
    rows.forEach((r, i) => {
      if (!applied[i]) return;
      const job = jobFromRow(r);
      job.state = 'RUNNING';
      job.started_at = now;
      jobs.push(job);
    });
  }
  return { jobs, controls };
}
