import { EventEmitter } from 'node:events';
import type { Attempt, Job, JobEvent, JobSpec, LogChunk, Priority, StoredLogChunk, WorkerInfo, WorkerUsage } from '../core/types.ts';
import { GantryError } from '../core/errors.ts';
import type { DriverCapabilities, SqlDriver } from './driver.ts';
import { migrate } from './migrate.ts';
import { SqliteDriver } from './sqlite/driver.ts';
import { PostgresDriver } from './postgres/driver.ts';
import { submitJobs, type SubmitResult } from './ops/submitJobs.ts';
import { assignJobs, deliverToWorker, queuedJobs, workerUsage, type Assignment, type Delivery, type QueueCursor, type QueuedJob } from './ops/scheduling.ts';
import { promoteDueRetries, reapLostWorkers, releaseWorker, reportResults, type AttemptReport, type ReportOutcome } from './ops/reportResults.ts';
import { cancelJob, controlJob, loadJob, queuePosition, reorderJob, requeueJob, setPriority, type ActionResult } from './ops/jobActions.ts';
import { activeJobs, jobAttempts, jobEvents, listJobs, queueStats, recentDurations, type JobFilter, type QueueStats } from './ops/reads.ts';
import { getWorker, heartbeat, listWorkers, registerWorker, setWorkerState } from './ops/workers.ts';
import { appendLogs, readLogs } from './ops/logs.ts';
import { countTokens, createToken, findToken, type TokenInfo } from './ops/tokens.ts';
import { createTenant, deleteTenant, getTenant, listTenants, tenantLoad, updateTenant, type TenantChanges, type TenantLoad } from './ops/tenants.ts';
import type { TenantRecord, Tier } from '../core/tiers.ts';
import { activeJobRows, queuedTenants, tenantQueueHead, usageHistory, type ActiveRow, type PendingRow } from './ops/readSchedulingState.ts';
import { preemptJobs, type PreemptionOrder } from './ops/preemptJobs.ts';
import { jobHistory, type HistoryRow } from './ops/jobHistory.ts';

export type { TenantChanges, TenantLoad, ActiveRow, PendingRow, PreemptionOrder, HistoryRow };
export type { AttemptReport, ReportOutcome, Assignment, Delivery, QueuedJob, QueueCursor, JobFilter, QueueStats, TokenInfo, SubmitResult, ActionResult };

/** Wake-up channels. Payloads: a worker id (WORKER), a job id (JOB), nothing (SCHEDULE). */
export const CHANNELS = {
  SCHEDULE: 'gantry_schedule',
  WORKER: 'gantry_worker',
  JOB: 'gantry_job',
} as const;

/**
 * The store: Gantry's source of truth, one interface over SQLite and PostgreSQL.
 * Every state change is one transaction that writes the new state and its event.
 */
export class Store {
  readonly #db: SqlDriver;
  readonly #local = new EventEmitter();

  constructor(driver: SqlDriver) {
    this.#db = driver;
    this.#local.setMaxListeners(0);
  }

  get dialect(): SqlDriver['dialect'] {
    return this.#db.dialect;
  }
  get capabilities(): DriverCapabilities {
    return this.#db.capabilities;
  }

  migrate(): Promise<number[]> {
    return migrate(this.#db);
  }
  close(): Promise<void> {
    return this.#db.close();
  }
  /** Wakes listeners of `channel`. JOB wake-ups stay in this process (watchers elsewhere poll slowly). */
  notify(channel: string, payload = ''): void {
    if (channel === CHANNELS.JOB) this.#local.emit(channel, payload);
    else this.#db.notify(channel, payload);
  }
  listen(channel: string, fn: (payload: string) => void): () => void {
    if (channel !== CHANNELS.JOB) return this.#db.listen(channel, fn);
    this.#local.on(channel, fn);
    return () => this.#local.off(channel, fn);
  }
  tryLeadership(): Promise<boolean> {
    return this.#db.tryLeadership();
  }

  // Tokens
  createToken(name: string, role: TokenInfo['role'], tenant: string | null, now = Date.now()) {
    return createToken(this.#db, name, role, tenant, now);
  }
  findToken(token: string) {
    return findToken(this.#db, token);
  }
  countTokens() {
    return countTokens(this.#db);
  }

  // Jobs
  async submitJobs(specs: readonly JobSpec[], actor: string, now = Date.now()): Promise<SubmitResult[]> {
    const keyed = specs.some((s) => s.idempotency_key !== null);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#db.transaction((tx) => submitJobs(tx, specs, now, actor));
      } catch (err) {
        // Two submits with one idempotency key raced: both saw no job and the later insert hit the
        // unique index. Run again: this time it finds the winner's job and returns it.
        if (!keyed || attempt >= 3 || !isUniqueViolation(err)) throw err;
      }
    }
  }
  async getJob(id: string): Promise<Job | null> {
    try {
      return await loadJob(this.#db, id);
    } catch (err) {
      if (err instanceof GantryError && err.code === 'NOT_FOUND') return null;
      throw err;
    }
  }
  listJobs(filter: JobFilter, limit: number, beforeSeq: number | null): Promise<Job[]> {
    return listJobs(this.#db, filter, limit, beforeSeq);
  }
  jobEvents(id: string): Promise<JobEvent[]> {
    return jobEvents(this.#db, id);
  }
  jobAttempts(id: string): Promise<Attempt[]> {
    return jobAttempts(this.#db, id);
  }
  cancelJob(id: string, reason: string, actor: string, now = Date.now()): Promise<ActionResult> {
    return this.#db.transaction((tx) => cancelJob(tx, id, reason, actor, now));
  }
  controlJob(id: string, control: 'pause' | 'resume', actor: string, now = Date.now()): Promise<ActionResult> {
    return this.#db.transaction((tx) => controlJob(tx, id, control, actor, now));
  }
  requeueJob(id: string, reason: string, actor: string, parameters?: Record<string, unknown>, now = Date.now()): Promise<Job> {
    return this.#db.transaction((tx) => requeueJob(tx, id, reason, actor, now, parameters));
  }
  setPriority(id: string, priority: Priority, reason: string, actor: string, now = Date.now()): Promise<Job> {
    return this.#db.transaction((tx) => setPriority(tx, id, priority, reason, actor, now));
  }
  reorderJob(id: string, position: number, reason: string, actor: string, now = Date.now()): Promise<Job> {
    return this.#db.transaction((tx) => reorderJob(tx, id, position, reason, actor, now));
  }
  queuePosition(job: Pick<Job, 'priority' | 'sort_key' | 'seq' | 'handler'>): Promise<number> {
    return queuePosition(this.#db, job);
  }
  queueStats(now = Date.now()): Promise<QueueStats> {
    return queueStats(this.#db, now);
  }
  recentDurations(type: string, limit = 50): Promise<number[]> {
    return recentDurations(this.#db, type, limit);
  }
  activeJobs(): Promise<Job[]> {
    return activeJobs(this.#db);
  }

  // Scheduling and execution
  /** The queue in scheduling order; `queueKey` ('' = commands, else a handler name) reads one queue only. */
  queuedJobs(limit: number, cursor: QueueCursor | null = null, queueKey?: string): Promise<QueuedJob[]> {
    return queuedJobs(this.#db, limit, cursor, queueKey);
  }
  workerUsage(): Promise<Map<string, WorkerUsage>> {
    return workerUsage(this.#db);
  }
  assignJobs(assignments: readonly Assignment[], now = Date.now()): Promise<Assignment[]> {
    return this.#db.transaction((tx) => assignJobs(tx, assignments, now));
  }
  /**
   * A cycle's decisions in one transaction: admissions (QUEUED → SCHEDULED + attempt) and
   * preemption requests. Returns the admissions that took effect and the preemptions asked.
   */
  applySchedulingDecisions(assignments: readonly Assignment[], preemptions: readonly PreemptionOrder[], now = Date.now()) {
    return this.#db.transaction(async (tx) => ({
      assigned: assignments.length > 0 ? await assignJobs(tx, assignments, now) : [],
      preempted: preemptions.length > 0 ? await preemptJobs(tx, preemptions, now) : { job_ids: [], workers: [] },
    }));
  }
  /** Tenants with queued jobs in the given queues ('' = commands, else handler names). */
  queuedTenants(queueKeys: readonly string[]): Promise<string[]> {
    return queuedTenants(this.#db, queueKeys);
  }
  /** A tenant's first `limit` queued jobs in the given queues, in queue order. */
  tenantQueueHead(tenant: string, queueKeys: readonly string[], limit: number): Promise<PendingRow[]> {
    return tenantQueueHead(this.#db, tenant, queueKeys, limit);
  }
  /** Jobs holding resources on workers, lean. */
  activeJobRows(): Promise<ActiveRow[]> {
    return activeJobRows(this.#db);
  }
  /** Runs since `since` (or still running), for rebuilding decayed usage on a new leader. */
  usageHistory(since: number) {
    return usageHistory(this.#db, since);
  }
  /** What a worker should get now; `held` = the attempt ids it already runs. Writes nothing but taken controls. */
  deliverToWorker(workerId: string, max: number, held: ReadonlySet<string> = new Set()): Promise<Delivery> {
    return deliverToWorker(this.#db, workerId, max, held);
  }
  reportResults(workerId: string, reports: readonly AttemptReport[], now = Date.now()): Promise<ReportOutcome[]> {
    return this.#db.transaction((tx) => reportResults(tx, workerId, reports, now));
  }
  promoteDueRetries(now = Date.now()) {
    return this.#db.transaction((tx) => promoteDueRetries(tx, now));
  }
  reapLostWorkers(cutoff: number, now = Date.now()) {
    return this.#db.transaction((tx) => reapLostWorkers(tx, cutoff, now));
  }
  /** A worker leaving: offline, its jobs back in the queue. Returns the requeued job ids. */
  releaseWorker(id: string, why: string, actor: string, now = Date.now()): Promise<string[]> {
    return this.#db.transaction((tx) => releaseWorker(tx, id, why, actor, now));
  }

  // Workers
  registerWorker(w: Omit<WorkerInfo, 'registered_at' | 'last_heartbeat' | 'state'>, now = Date.now()): Promise<WorkerInfo> {
    return this.#db.transaction((tx) => registerWorker(tx, w, now));
  }
  heartbeat(id: string, now = Date.now()): Promise<boolean> {
    return heartbeat(this.#db, id, now);
  }
  listWorkers(includeOffline = false): Promise<WorkerInfo[]> {
    return listWorkers(this.#db, includeOffline);
  }
  getWorker(id: string): Promise<WorkerInfo | null> {
    return getWorker(this.#db, id);
  }
  setWorkerState(id: string, state: WorkerInfo['state']): Promise<boolean> {
    return setWorkerState(this.#db, id, state);
  }

  // Tenants
  listTenants(): Promise<TenantRecord[]> {
    return listTenants(this.#db);
  }
  getTenant(id: string): Promise<TenantRecord | null> {
    return getTenant(this.#db, id);
  }
  createTenant(id: string, c: TenantChanges & { tier: Tier }, now = Date.now()): Promise<TenantRecord> {
    return this.#db.transaction((tx) => createTenant(tx, id, c, now));
  }
  /** `replace` (PUT): settings not given go back to the tier default; otherwise (PATCH) only the given ones change. */
  updateTenant(id: string, c: TenantChanges, replace: boolean, now = Date.now()): Promise<TenantRecord> {
    return this.#db.transaction((tx) => updateTenant(tx, id, c, replace, now));
  }
  /** A tenant's jobs on workers, the resources they hold, and its queued jobs. */
  tenantLoad(id: string): Promise<TenantLoad> {
    return tenantLoad(this.#db, id);
  }
  deleteTenant(id: string): Promise<void> {
    return this.#db.transaction((tx) => deleteTenant(tx, id));
  }

  /** Finished runs of jobs created in [since, until), `limit` jobs after `afterSeq` (for trace export). */
  jobHistory(since: number, until: number, afterSeq: number, limit: number): Promise<{ rows: HistoryRow[]; next_after: number | null }> {
    return jobHistory(this.#db, since, until, afterSeq, limit);
  }

  // Logs
  appendLogs(chunks: readonly LogChunk[]): Promise<void> {
    return chunks.length === 0 ? Promise.resolve() : this.#db.transaction((tx) => appendLogs(tx, chunks));
  }
  readLogs(jobId: string, afterSeq = 0, limit = 1000): Promise<StoredLogChunk[]> {
    return readLogs(this.#db, jobId, afterSeq, limit);
  }
}

/**
 * Opens the store named by a database URL — `postgres://…` / `postgresql://…`, or
 * `sqlite:PATH` / a plain file path — and applies pending migrations.
 */
export async function openStore(url: string): Promise<Store> {
  let driver: SqlDriver;
  if (/^postgres(ql)?:\/\//.test(url)) driver = new PostgresDriver(url);
  else if (url.startsWith('sqlite:')) driver = new SqliteDriver(url.slice('sqlite:'.length));
  else if (/^[a-z]+:\/\//i.test(url)) throw new GantryError('VALIDATION_FAILED', `unsupported database URL scheme: ${url.split(':')[0]} (use postgres:// or a SQLite file path)`, { field: 'database' });
  else driver = new SqliteDriver(url);
  const store = new Store(driver);
  try {
    await store.migrate();
  } catch (err) {
    await store.close();
    if (err instanceof GantryError) throw err;
    throw new GantryError('STORE_UNAVAILABLE', `cannot prepare database ${redact(url)}: ${(err as Error).message}`);
  }
  return store;
}

/** A unique-index violation, as PostgreSQL (23505) or SQLite reports it. */
function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
