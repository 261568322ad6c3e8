import type { Priority, WorkerUsage } from '../../core/types.ts';
import { PLAIN_TEXT, type Row, type SqlExecutor } from '../driver.ts';
import { ACTIVE_STATES_SQL } from '../rows.ts';

/**
 * Reads for the scheduling policy's snapshot (src/scheduler/snapshot.ts): the tenants with queued
 * work, each tenant's queue head, and the jobs holding resources — lean rows, no JSON but GPU indices.
 */

/** A queued job as the policy needs it. */
export interface PendingRow {
  id: string;
  seq: number;
  tenant: string;
  priority: Priority;
  priority_rank: number;
  sort_key: number;
  queue_key: string;
  type: string;
  cpu_cores: number;
  memory_gb: number;
  gpu_count: number;
  expected_duration: number | null;
  template: string | null;
  preemptible: boolean;
  nodes: number;
}

/** A job holding resources on a worker (SCHEDULED, RUNNING, PAUSED). */
export interface ActiveRow {
  id: string;
  tenant: string;
  priority: Priority;
  state: string;
  type: string;
  cpu_cores: number;
  memory_gb: number;
  gpu_count: number;
  worker_id: string;
  gpu_indices: number[];
  started_at: number | null;
  updated_at: number;
  expected_duration: number | null;
  template: string | null;
  timeout: number | null;
  preemptible: boolean;
  /** A preemption is pending (the worker was told to stop it). */
  terminating: boolean;
  /** Its queue position (`sort_key`), kept when it is requeued: the policy skips victims that would come back ahead of their preemptor. */
  sort_key: number;
}

/**
 * Tenants that have queued jobs in the queues `queueKeys`: per queue, one probe of
 * `jobs_queue_by_tenant (queue_key, tenant, …)` per tenant — a loose index scan written as a
 * recursive CTE, which both engines run (and which never walks a queue's jobs).
 * `CAST(? AS TEXT)`: see {@link PLAIN_TEXT}.
 */
export async function queuedTenants(db: SqlExecutor, queueKeys: readonly string[]): Promise<string[]> {
  const lists = await Promise.all(queueKeys.map((k) => db.query<{ tenant: string | null }>(
    `WITH RECURSIVE t(tenant) AS (
       SELECT MIN(tenant) FROM jobs WHERE state = 'QUEUED' AND queue_key = ${PLAIN_TEXT}
       UNION ALL
       SELECT (SELECT MIN(j.tenant) FROM jobs j WHERE j.state = 'QUEUED' AND j.queue_key = ${PLAIN_TEXT} AND j.tenant > t.tenant) FROM t WHERE t.tenant IS NOT NULL
     )
     SELECT tenant FROM t WHERE tenant IS NOT NULL`,
    [k, k],
  )));
  return [...new Set(lists.flat().map((r) => String(r.tenant)))].sort();
}

/**
 * The first `limit` queued jobs of one tenant in queue order (priority class, position, seq),
 * only from the queues in `queueKeys` ('' = command jobs, else handler names) — those some worker
 * serves. One index range per queue (`jobs_queue_by_tenant`), merged here, so a backlog in a queue
 * no worker serves is never walked. `CAST(? AS …)`: see {@link PLAIN_TEXT}.
 */
export async function tenantQueueHead(db: SqlExecutor, tenant: string, queueKeys: readonly string[], limit: number): Promise<PendingRow[]> {
  const lists = await Promise.all(queueKeys.map((k) => db.query(
    `SELECT ${PENDING_COLUMNS} FROM jobs WHERE state = 'QUEUED' AND queue_key = ${PLAIN_TEXT} AND tenant = ${PLAIN_TEXT} ORDER BY priority_rank, sort_key, seq LIMIT CAST(? AS INTEGER)`,
    [k, tenant, limit],
  )));
  const rows = lists.flat().map(pendingFromRow);
  if (lists.length > 1) rows.sort(queueOrder);
  return rows.slice(0, limit);
}

const PENDING_COLUMNS = 'id, seq, tenant, priority, priority_rank, sort_key, queue_key, type, cpu_cores, memory_gb, gpu_count, expected_duration, preemptible, nodes, template';

function pendingFromRow(r: Row): PendingRow {
  return {
    id: String(r.id), seq: Number(r.seq), tenant: String(r.tenant), priority: r.priority as Priority, priority_rank: Number(r.priority_rank),
    sort_key: Number(r.sort_key), queue_key: String(r.queue_key), type: String(r.type), cpu_cores: Number(r.cpu_cores),
    memory_gb: Number(r.memory_gb), gpu_count: Number(r.gpu_count), expected_duration: r.expected_duration === null ? null : Number(r.expected_duration),
    preemptible: Number(r.preemptible) === 1, nodes: Number(r.nodes), template: r.template == null ? null : String(r.template),
  };
}

const queueOrder = (a: PendingRow, b: PendingRow) => a.priority_rank - b.priority_rank || a.sort_key - b.sort_key || a.seq - b.seq;

/**
 * queuedTenants and each of those tenants' tenantQueueHead (`limit` jobs) at once: tenant → its head.
 * With `lateral` (PostgreSQL) one statement per queue — queuedTenants' loose index scan joined
 * LATERAL to each tenant's head on the same index — so a scheduling cycle that knows its queues
 * reads the heads alongside the workers, not in a round trip after them. Otherwise (SQLite, no
 * round trips to save) the two reads in a row.
 */
export async function queueHeads(db: SqlExecutor, queueKeys: readonly string[], limit: number, lateral: boolean): Promise<Map<string, PendingRow[]>> {
  if (!lateral) {
    const tenants = await queuedTenants(db, queueKeys);
    return new Map(await Promise.all(tenants.map(async (t): Promise<[string, PendingRow[]]> => [t, await tenantQueueHead(db, t, queueKeys, limit)])));
  }
  // Each probe is `ORDER BY tenant LIMIT 1`, not MIN(tenant): with the table analysed while the queue was
  // small, PostgreSQL took MIN over the queue's few estimated rows as a plain aggregate — every queued job of
  // the queue read on every cycle (15,000 during W4's warm-up drain: 5–16 ms a cycle) — where the LIMIT
  // stops at the first entry.
  const lists = await Promise.all(queueKeys.map((k) => db.query(
    `WITH RECURSIVE t(tenant) AS (
       SELECT (SELECT tenant FROM jobs WHERE state = 'QUEUED' AND queue_key = ? ORDER BY tenant LIMIT 1)
       UNION ALL
       SELECT (SELECT j.tenant FROM jobs j WHERE j.state = 'QUEUED' AND j.queue_key = ? AND j.tenant > t.tenant ORDER BY j.tenant LIMIT 1) FROM t WHERE t.tenant IS NOT NULL
     )
     SELECT h.* FROM t CROSS JOIN LATERAL (
       SELECT ${PENDING_COLUMNS} FROM jobs j WHERE j.state = 'QUEUED' AND j.queue_key = ? AND j.tenant = t.tenant ORDER BY priority_rank, sort_key, seq LIMIT ?
     ) h WHERE t.tenant IS NOT NULL`,
    [k, k, k, limit],
  )));
  const heads = new Map<string, PendingRow[]>();
  for (const r of lists.flat()) {
    const row = pendingFromRow(r);
    let h = heads.get(row.tenant);
    if (!h) heads.set(row.tenant, (h = []));
    h.push(row);
  }
  for (const [t, rows] of heads) heads.set(t, rows.sort(queueOrder).slice(0, limit));
  return new Map([...heads].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * PostgreSQL: walks jobs_active with an index scan so that the entries of jobs that left SCHEDULED, RUNNING
 * and PAUSED are marked dead (LP_DEAD) — every other read then skips them without visiting the table. Each
 * such job leaves one or two entries behind until VACUUM (a real server's autovacuum waits for 20% of the
 * table to be dead, and this machine's runs none). An index scan marks the entries it finds dead; a bitmap
 * scan never does, and on a big table without statistics (a million jobs queued, never analysed) the
 * planner reads jobs_active with bitmap scans: after a drain of 20,000 jobs every worker look and every
 * cycle's active-jobs read visited 276–789 heap pages to find no live row (~1–1.5 ms each, W4). No query
 * shape turns those reads into index scans whatever the estimates, so the scheduler's leader runs this
 * sweep every SWEEP_MS (src/scheduler/scheduler.ts): ~0.05 ms when nothing new is dead, and each dead
 * entry's heap page is visited once instead of by every read. `enable_*` only for this transaction.
 */
export async function markGoneActiveEntries(tx: SqlExecutor): Promise<void> {
  await tx.run('SET LOCAL enable_bitmapscan = off');
  await tx.run('SET LOCAL enable_seqscan = off');
  await tx.query(`SELECT COUNT(*) AS n FROM jobs WHERE ${ACTIVE_STATES_SQL}`);
}

export async function activeJobRows(db: SqlExecutor): Promise<ActiveRow[]> {
  const rows = await db.query(
    `SELECT id, tenant, priority, state, type, cpu_cores, memory_gb, gpu_count, worker_id, gpu_indices, started_at, updated_at,
       expected_duration, template, timeout, preemptible, preemption, sort_key
     FROM jobs WHERE ${ACTIVE_STATES_SQL} AND worker_id IS NOT NULL`,
  );
  return rows.map((r) => ({
    id: String(r.id), tenant: String(r.tenant), priority: r.priority as Priority, state: String(r.state), type: String(r.type),
    cpu_cores: Number(r.cpu_cores), memory_gb: Number(r.memory_gb), gpu_count: Number(r.gpu_count), worker_id: String(r.worker_id),
    gpu_indices: Number(r.gpu_count) > 0 ? (JSON.parse(String(r.gpu_indices)) as number[]) : [],
    started_at: r.started_at === null ? null : Number(r.started_at), updated_at: Number(r.updated_at),
    expected_duration: r.expected_duration === null ? null : Number(r.expected_duration), timeout: r.timeout === null ? null : Number(r.timeout),
    template: r.template == null ? null : String(r.template), preemptible: Number(r.preemptible) === 1, terminating: r.preemption !== null,
    sort_key: Number(r.sort_key),
  }));
}

/** Runs that used resources since `since` (ended after it, or still running): for rebuilding decayed usage. */
export async function usageHistory(db: SqlExecutor, since: number): Promise<{ tenant: string; cpu_cores: number; memory_gb: number; gpu_count: number; started_at: number; ended_at: number | null }[]> {
  const rows = await db.query(
    `SELECT j.tenant, j.cpu_cores * j.nodes AS cpu_cores, j.memory_gb * j.nodes AS memory_gb, j.gpu_count * j.nodes AS gpu_count, a.started_at, a.ended_at
     FROM job_attempts a JOIN jobs j ON j.id = a.job_id WHERE a.ended_at IS NULL OR a.ended_at >= ?`,
    [since],
  );
  return rows.map((r) => ({
    tenant: String(r.tenant), cpu_cores: Number(r.cpu_cores), memory_gb: Number(r.memory_gb), gpu_count: Number(r.gpu_count),
    started_at: Number(r.started_at), ended_at: r.ended_at === null ? null : Number(r.ended_at),
  }));
}

/** Adds what each row holds to its worker's usage (one slot per row); returns `usage`. */
export function addHeldUsage(rows: readonly ActiveRow[], usage: Map<string, WorkerUsage>): Map<string, WorkerUsage> {
  for (const a of rows) {
    let u = usage.get(a.worker_id);
    if (!u) usage.set(a.worker_id, (u = { cpu_cores: 0, memory_gb: 0, gpu_count: 0, slots: 0, gpu_indices: [] }));
    u.cpu_cores += a.cpu_cores;
    u.memory_gb += a.memory_gb;
    u.gpu_count += a.gpu_count;
    u.slots += 1;
    u.gpu_indices.push(...a.gpu_indices);
  }
  return usage;
}
