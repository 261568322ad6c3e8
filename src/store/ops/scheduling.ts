import type { Job, JobControl, WorkerUsage } from '../../core/types.ts';
import { newId } from '../../core/ids.ts';
import { priorityRank } from '../../core/priorities.ts';
import { idsIn, type Row, type SqlExecutor, type SqlValue } from '../driver.ts';
import { ACTIVE_STATES_SQL } from '../rows.ts';
import { applyTransitions, type Transition } from './applyTransitions.ts';
import type { GangInfo } from './gangs.ts';

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

const QUEUED_COLUMNS = 'id, seq, kind, handler, tenant, priority_rank, sort_key, cpu_cores, memory_gb, gpu_count';

function queuedFromRow(r: Record<string, unknown>): QueuedJob {
  return {
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
  };
}

/**
 * Reads the queue in scheduling order — priority class, then position — `limit` at a time
 * after `cursor` (keyset paging, so a blocked head never hides the jobs behind it). With
 * `queueKey` ('' = command jobs, else a handler name) only that queue is read, from the
 * partial index `jobs_queue_by_key`; without it, every queued job is read and sorted (no index has
 * that order since migration 0003 dropped `jobs_queue`) — for tests and tools, not for a hot path.
 */
export async function queuedJobs(db: SqlExecutor, limit: number, cursor: QueueCursor | null, queueKey?: string): Promise<QueuedJob[]> {
  const where = ["state = 'QUEUED'"];
  const params: SqlValue[] = [];
  if (queueKey !== undefined) (where.push('queue_key = ?'), params.push(queueKey));
  if (cursor) (where.push('(priority_rank, sort_key, seq) > (?, ?, ?)'), params.push(cursor.priority_rank, cursor.sort_key, cursor.seq));
  params.push(limit);
  const rows = await db.query(
    `SELECT ${QUEUED_COLUMNS} FROM jobs WHERE ${where.join(' AND ')} ORDER BY ${queueKey !== undefined ? 'queue_key, ' : ''}priority_rank, sort_key, seq LIMIT ?`,
    params,
  );
  return rows.map(queuedFromRow);
}

/** Resources held on each worker by its SCHEDULED, RUNNING and PAUSED jobs. */
export async function workerUsage(db: SqlExecutor): Promise<Map<string, WorkerUsage>> {
  const rows = await db.query(
    `SELECT worker_id, cpu_cores, memory_gb, gpu_count, gpu_indices FROM jobs
     WHERE ${ACTIVE_STATES_SQL} AND worker_id IS NOT NULL`,
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
  /** For a gang, rank 0's worker. */
  worker_id: string;
  gpu_indices: number[];
  /** A gang (nodes > 1): every member's worker and GPUs in rank order (src/store/ops/gangs.ts). */
  members?: { worker_id: string; gpu_indices: number[] }[];
  /** On a single-node admission that took effect: the job as its worker's poll hands it out (read by the assignment's own statement). */
  job?: DeliveredJob;
}

/**
 * Which of these workers may take new work now (online: not released, not draining), locking their
 * rows. The cycle read the workers before this transaction, and the lease reaper may have released
 * one since (its jobs would sit on an offline worker) or a drain may have committed. Touching the
 * rows also locks them on PostgreSQL, so a release that starts now waits for this commit and sees
 * these jobs. On SQLite the transaction already shuts out every other writer (`serialWrites`): a
 * read is enough, and saves rewriting each worker row (a WAL page per assignment). Used by
 * assignJobs and assignGangs (src/store/ops/gangs.ts).
 */
export async function lockOnlineWorkers(tx: SqlExecutor, workerIds: Iterable<string>): Promise<Set<string>> {
  const wsel = idsIn(tx, 'id', [...new Set(workerIds)]);
  const sql = tx.serialWrites
    ? `SELECT id FROM workers WHERE ${wsel.sql} AND state = 'online'`
    : `UPDATE workers SET state = state WHERE ${wsel.sql} AND state = 'online' RETURNING id`;
  const rows = await tx.query(sql, [wsel.param]);
  return new Set(rows.map((r) => String(r.id)));
}

/**
 * A cycle's single-node admissions, in the caller's transaction: QUEUED → SCHEDULED on the chosen worker
 * with a new attempt (its id is the fencing token) and the event. A job that left QUEUED meanwhile
 * (cancelled), or whose worker went offline or started draining meanwhile, is skipped. Returns the
 * assignments that took effect.
 */
export async function assignJobs(tx: SqlExecutor, proposed: readonly Assignment[], now: number): Promise<Assignment[]> {
  const live = await lockOnlineWorkers(tx, proposed.map((a) => a.worker_id));
  const assignments = proposed.filter((a) => live.has(a.worker_id));
  if (assignments.length === 0) return [];
  const attemptIds = assignments.map(() => newId('att'));
  const changes: Transition[] = assignments.map((a, i) => ({
    job_id: a.job_id,
    from: 'QUEUED',
    to: 'SCHEDULED',
    reason: `assigned to worker ${a.worker_id}`,
    actor: 'scheduler',
    patch: {
      worker_id: a.worker_id,
      gpu_indices: JSON.stringify(a.gpu_indices),
      current_attempt_id: attemptIds[i]!,
      attempt_count: { add: 1 },
      retry_count: { add: 1 },
    },
    data: { worker_id: a.worker_id, attempt_id: attemptIds[i]!, gpu_indices: a.gpu_indices },
  }));
  const applied = await applyTransitions(tx, changes, now, ASSIGNED_RETURNING);
  const done: Assignment[] = [];
  const attempts: SqlValue[][] = [];
  assignments.forEach((a, i) => {
    const row = applied[i];
    if (!row) return;
    done.push({ ...a, job: deliveredJobFromRow(row) });
    attempts.push([attemptIds[i]!, a.job_id, Number(row.attempt_count), a.worker_id, now, 'running']);
  });
  await tx.insertMany('job_attempts', ['id', 'job_id', 'number', 'worker_id', 'started_at', 'outcome'], attempts);
  return done;
}

/**
 * The proposed admissions whose tenant is paused now. The cycle read the tenants before this
 * transaction: a pause committed since — and a job submitted after the pause was acknowledged —
 * must not start. Costs one read of the (small) paused set when no tenant is paused.
 */
export async function jobsOfPausedTenants(tx: SqlExecutor, proposed: readonly Assignment[]): Promise<Set<string>> {
  if (proposed.length === 0) return new Set();
  const paused = await tx.query(`SELECT id FROM tenants WHERE paused = 1`);
  if (paused.length === 0) return new Set();
  const jobs = idsIn(tx, 'id', proposed.map((a) => a.job_id));
  const tenants = idsIn(tx, 'tenant', paused.map((r) => String(r.id)));
  const rows = await tx.query(`SELECT id FROM jobs WHERE ${jobs.sql} AND ${tenants.sql}`, [jobs.param, tenants.param]);
  return new Set(rows.map((r) => String(r.id)));
}

/**
 * The part of a job a worker is handed (the poll route's fields, and what orders them). Narrower
 * than `Job`: a W1 drain hands out every job once, and reading and parsing the whole row (retry
 * policy, result, preemption, timestamps) cost ~4 µs per job on SQLite.
 */
export type DeliveredJob = Pick<Job,
  'id' | 'seq' | 'name' | 'type' | 'tenant' | 'priority' | 'state' | 'kind' | 'command' | 'handler' | 'env' | 'working_dir' |
  'timeout' | 'labels' | 'parameters' | 'resources' | 'sort_key' | 'gpu_indices' | 'attempt_count' | 'current_attempt_id' |
  'steps' | 'grace_period' | 'worker_id'>;

const DELIVERED = ['id', 'seq', 'name', 'type', 'tenant', 'priority', 'state', 'kind', 'command', 'handler', 'env', 'working_dir', 'timeout', 'labels',
  'parameters', 'cpu_cores', 'memory_gb', 'gpu_count', 'storage_gb', 'sort_key', 'gpu_indices', 'attempt_count', 'current_attempt_id', 'control', 'steps',
  'grace_period', 'worker_id'] as const;
export const DELIVERED_COLUMNS = DELIVERED.join(', ');
/** The delivered columns an assignment's UPDATE returns besides applyTransitions' own (id, attempt_count): the job as its poll hands it out. */
export const ASSIGNED_RETURNING = DELIVERED.filter((c) => c !== 'id' && c !== 'attempt_count').map((c) => `jobs.${c}`).join(', ');

const parsed = <T>(v: unknown, fallback: T): T => (v === null || v === undefined ? fallback : (JSON.parse(String(v)) as T));
const orNull = <T>(v: unknown, f: (v: unknown) => T): T | null => (v === null || v === undefined ? null : f(v));

export function deliveredJobFromRow(r: Row): DeliveredJob {
  return {
    id: String(r.id), seq: Number(r.seq), name: String(r.name), type: String(r.type), tenant: String(r.tenant),
    priority: r.priority as Job['priority'], state: r.state as Job['state'], kind: r.kind as Job['kind'],
    command: parsed<string[] | null>(r.command, null), handler: orNull(r.handler, String), env: parsed(r.env, {}),
    working_dir: orNull(r.working_dir, String), timeout: orNull(r.timeout, Number),
    labels: parsed(r.labels, {}), parameters: parsed(r.parameters, {}),
    resources: { cpu_cores: Number(r.cpu_cores), memory_gb: Number(r.memory_gb), gpu_count: Number(r.gpu_count), storage_gb: Number(r.storage_gb) },
    sort_key: Number(r.sort_key), gpu_indices: parsed(r.gpu_indices, []), attempt_count: Number(r.attempt_count),
    current_attempt_id: orNull(r.current_attempt_id, String), steps: parsed(r.steps, null), grace_period: orNull(r.grace_period, Number),
    worker_id: orNull(r.worker_id, String),
  };
}

export interface Delivery {
  /** `gang` is set for a gang member (its token is the job's `current_attempt_id` here). */
  jobs: (DeliveredJob & { gang?: GangInfo })[];
  /** `start`: a gang member's start barrier is passed (src/store/ops/gangs.ts). */
  controls: { job_id: string; attempt_id: string; control: JobControl | 'start' }[];
}

/**
 * What is waiting for a worker: its SCHEDULED jobs it does not hold yet (`held` = attempt ids
 * it runs), and pending controls (cancel, pause, resume), which are taken off the jobs. Jobs stay
 * SCHEDULED until the worker's next report says it started them, so handing them out writes
 * nothing. Params: max — how many new jobs the worker has room for.
 */
export async function deliverToWorker(db: SqlExecutor, workerId: string, max: number, held: ReadonlySet<string> = new Set()): Promise<Delivery> {
  // One look (one round trip on PostgreSQL, on the job's way from assignment to handler): the jobs
  // with a pending control (partial index jobs_control) and the SCHEDULED jobs the worker does not
  // hold yet (jobs_active, named by its condition so SQLite uses it too). Ordered and cut here: on SQLite an ORDER BY or a bound LIMIT costs
  // ~50 µs even for no rows, and a worker gets few at a time. The held attempts are a NOT IN over a
  // recordset — a hash lookup per row on PostgreSQL (hashed subplan); `NOT col = ANY(array)` compared
  // each row with every held id (500 × 500 in a W1 drain: 6.3 ms instead of 0.6 ms per look).
  const rows = await db.query(
    `SELECT ${DELIVERED_COLUMNS} FROM jobs WHERE worker_id = ? AND control IS NOT NULL
     UNION ALL
     SELECT ${DELIVERED_COLUMNS} FROM jobs WHERE worker_id = ? AND state = 'SCHEDULED' AND ${ACTIVE_STATES_SQL} AND control IS NULL
       AND current_attempt_id NOT IN (SELECT id FROM ${db.recordset([['id', 'text']])})`,
    [workerId, workerId, JSON.stringify([...held].map((id) => ({ id })))],
  );
  const controls: Delivery['controls'] = [];
  for (const r of rows) {
    if (r.control === null) continue;
    const n = await db.run('UPDATE jobs SET control = NULL WHERE id = ? AND control = ?', [String(r.id), String(r.control)]);
    if (n === 1) controls.push({ job_id: String(r.id), attempt_id: String(r.current_attempt_id), control: r.control as JobControl });
  }
  const jobs = max <= 0 ? [] : rows
    .filter((r) => r.state === 'SCHEDULED' && !held.has(String(r.current_attempt_id)))
    .map(deliveredJobFromRow)
    .sort((a, b) => priorityRank(a.priority) - priorityRank(b.priority) || a.sort_key - b.sort_key || a.seq - b.seq)
    .slice(0, max);
  return { jobs, controls };
}
