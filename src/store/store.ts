import { EventEmitter } from 'node:events';
import type { Attempt, DependencyType, Job, JobEvent, JobSpec, LogChunk, Priority, StoredLogChunk, WorkerInfo, WorkerUsage } from '../core/types.ts';
import { GantryError } from '../core/errors.ts';
import { isPostgresUrl, type DriverCapabilities, type SqlDriver, type SqlExecutor, type SqlReader } from './driver.ts';
import { AfterCommit, afterCommitOf, bindAfterCommit, registerFinalHook } from './finalHooks.ts';
import { placeSubmitted, type DirectPlacement } from './ops/placeSubmitted.ts';
import { createTemplate, deleteTemplate, ensureTemplates, getTemplate, listTemplates, templatesIn, updateTemplate, type StoredTemplate } from './ops/templates.ts';
import type { TemplateRequest } from '../templates/definition.ts';
import type { TemplateSource } from '../templates/render.ts';
import { addJobDependencies, dependencyStatus, releaseDependents } from './ops/dependencies.ts';
import { migrate } from './migrate.ts';
import { SqliteDriver } from './sqlite/driver.ts';
import { PostgresDriver } from './postgres/driver.ts';
import { plainSubmits, submitJobs, submitJobsAtOnce, type SubmitResult } from './ops/submitJobs.ts';
import { assignJobsAtOnce } from './ops/assignAtOnce.ts';
import { plainCompletions, reportCompletionsAtOnce } from './ops/reportAtOnce.ts';
import {
  assignJobs, deliverToWorker, jobsOfPausedTenants, queuedJobs, workerUsage, type Assignment, type DeliveredJob, type Delivery, type QueueCursor, type QueuedJob,
} from './ops/scheduling.ts';
import { promoteDueRetries, reapLostWorkers, releaseWorker, reportResults, type AttemptReport, type ReportOutcome } from './ops/reportResults.ts';
import { cancelJob, controlJob, loadJob, nearQueuePosition, NEAR_POSITIONS, queuePosition, reorderJob, requeueJob, setPriority, type ActionResult } from './ops/jobActions.ts';
import { activeJobs, jobAttempts, jobEvents, listJobs, queueStats, recentRuns, type JobFilter, type QueueStats } from './ops/reads.ts';
import { getWorker, heartbeat, listWorkers, registerWorker, setWorkerState } from './ops/workers.ts';
import { appendLogs, readLogs } from './ops/logs.ts';
import { countTokens, createToken, findToken, type TokenInfo } from './ops/tokens.ts';
import { listBreakers, recordBreakerOutcomes, resetBreaker, startProbes, type SettledAttempt } from './ops/breakers.ts';
import { checkpointsOf, saveCheckpoint, type Checkpoint, type StoredCheckpoint } from './ops/checkpoints.ts';
import { requeueDeadLetters, type RequeueEdits, type DeadLetterSelection } from './ops/requeueDeadLetters.ts';
import type { Breaker, BreakerOptions } from '../core/breakers.ts';
import { countJobs, type JobCounts } from './ops/countJobs.ts';

export type { Checkpoint, StoredCheckpoint, RequeueEdits, DeadLetterSelection, JobCounts };
import { createWorkflow, findWorkflow, listWorkflows, type StoredWorkflow } from './ops/createWorkflow.ts';
import {
  cancelWorkflowRun, getWorkflowRun, listWorkflowRuns, rerunWorkflowRun, startWorkflowRun, workflowJobsFinished, type WorkflowEffects, type WorkflowRun,
} from './ops/advanceWorkflows.ts';
import { createSchedule, deleteSchedule, getSchedule, listSchedules, scheduleFires, updateSchedule, type ScheduleInput } from './ops/schedules.ts';
import { advanceScheduleCursor, fireSchedule, releaseBufferedFire, type FireResult } from './ops/fireSchedule.ts';
import type { OverlapPolicy } from './ops/schedules.ts';
import type { WorkflowDef } from '../workflows/definition.ts';
import { buildStepJob } from '../workflows/stepJob.ts';

// Jobs waiting on `depends_on` react to their upstream's end in the same transaction.
registerFinalHook('dependencies', releaseDependents);
// Workflow steps advance when their jobs end, in the same transaction (no poll interval between steps).
registerFinalHook('workflows', async (tx, finished, ctx) => {
  const e = await workflowJobsFinished(tx, finished.map((f) => f.id), ctx.now, buildStepJob);
  if (e.submitted > e.hand_offs.length) ctx.wakeScheduler();
  for (const w of e.wake_workers) ctx.wakeWorker(w);
  for (const h of e.hand_offs) ctx.handOff(h.worker, h.job);
});

export type { StoredWorkflow, WorkflowRun, WorkflowEffects, FireResult, ScheduleInput };
export type { StoredTemplate };
import { createTenant, deleteTenant, getTenant, listTenants, tenantLoad, updateTenant, type TenantChanges, type TenantLoad } from './ops/tenants.ts';
import type { TenantRecord, Tier } from '../core/tiers.ts';
import { activeJobRows, addHeldUsage, markGoneActiveEntries, queueHeads, queuedTenants, tenantQueueHead, usageHistory, type ActiveRow, type PendingRow } from './ops/readSchedulingState.ts';
import { preemptJobs, type PreemptionOrder } from './ops/preemptJobs.ts';
import { jobHistory, type HistoryRow } from './ops/jobHistory.ts';
import {
  assignGangs, deliverGangWork, expireGangStarts, gangActiveRows, gangMemberRows, gangMembers, gangWorkersOf, isMemberReport, reportGangResults, type GangMemberView,
} from './ops/gangs.ts';

export type { TenantChanges, TenantLoad, ActiveRow, PendingRow, PreemptionOrder, HistoryRow };
export type { AttemptReport, ReportOutcome, Assignment, DeliveredJob, Delivery, QueuedJob, QueueCursor, JobFilter, QueueStats, TokenInfo, SubmitResult, ActionResult };
export type { DirectPlacement };

/** Wake-up channels. Payloads: a worker id (WORKER), a job id (JOB), nothing (SCHEDULE). */
export const CHANNELS = {
  SCHEDULE: 'gantry_schedule',
  WORKER: 'gantry_worker',
  JOB: 'gantry_job',
} as const;

/** How many recent placements Store.placedAt remembers (a few KB). */
const PLACED_KEPT = 1024;
/**
 * A batch is cut in parts for SqlDriver.spread only when each part gets at least this many rows: below
 * that, a second connection's round trip and statement cost more than the backend time it shares out.
 */
const SPREAD_MIN = 64;

/**
 * Jobs a scheduling cycle of this server just assigned to one worker, as its poll hands them out:
 * given to that worker's long poll with the wake-up (`Store.wakeWorker`), so a poll that waits can
 * answer without looking. `sent` is the server's mark (`Store.mark`) taken before the assignment
 * was written: only a poll that came in before it may take them (see the poll route).
 */
export interface HandOff {
  sent: number;
  jobs: DeliveredJob[];
}

/**
 * The store: Gantry's source of truth, one interface over SQLite and PostgreSQL.
 * Every state change is one transaction that writes the new state and its event.
 */
export class Store {
  readonly #db: SqlDriver;
  /** Counts over the whole backlog or history go here, off the event loop (SqlDriver.longReads). */
  readonly #longReads: SqlReader;
  readonly #local = new EventEmitter();
  /** Counts marks (see mark). */
  #marks = 0;
  /** The hand-off that goes with the WORKER wake-up being sent now, and whether a poll here took all of it (see wakeWorker). */
  #handOff: { worker: string; handOff: HandOff; taken: boolean } | null = null;

  constructor(driver: SqlDriver) {
    this.#db = driver;
    this.#longReads = driver.longReads ?? driver;
    this.#local.setMaxListeners(0);
  }

  /**
   * A transaction whose final-state hooks may ask for wake-ups (src/store/finalHooks.ts):
   * they are sent once it commits, and dropped if it rolls back.
   */
  async #tx<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const effects = new AfterCommit();
    // Marked before anything is written: the `sent` of the hand-offs the hooks ask for (HandOff).
    const sent = this.mark();
    const out = await this.#db.transaction((tx) => {
      bindAfterCommit(tx, effects);
      return fn(tx);
    });
    if (effects.schedule) this.notify(CHANNELS.SCHEDULE);
    for (const [w, jobs] of effects.handOffs) if (!effects.workers.has(w)) this.wakeWorker(w, { sent, jobs });
    for (const w of effects.workers) this.notify(CHANNELS.WORKER, w);
    for (const j of effects.jobs) this.notify(CHANNELS.JOB, j);
    return out;
  }

  /**
   * A write to workers, tenants or breakers wakes the scheduler: its cycles keep those between
   * wake-ups (src/scheduler/wakeReasons.ts), and this tells it — on any server — to read them again.
   */
  async #changed<T>(write: Promise<T>): Promise<T> {
    const out = await write;
    this.notify(CHANNELS.SCHEDULE);
    return out;
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
  /**
   * Holds the turn (SqlDriver.holdTurn) for a submit of `specs` that goes out in it as one statement
   * (PostgreSQL: plain submits, the tables' column types known), and says whether it did: a read issued
   * next in this turn then runs after that statement has committed. A submit in a transaction of its
   * own (an idempotency key, dependencies) commits on another connection, whenever it ends: not held.
   * Nor while this process does not lead: its submits' wake-ups must reach the leader (notify).
   */
  holdTurnForSubmit(specs: readonly JobSpec[]): boolean {
    const db = this.#db;
    if (!db.holdTurn || !db.leading || !this.#submitsAtOnce(specs) || !db.insertSqlReady?.('jobs') || !db.insertSqlReady('job_events')) return false;
    db.holdTurn();
    return true;
  }
  /** PostgreSQL: plain submits are one statement (one round trip) instead of a transaction of five. */
  #submitsAtOnce(specs: readonly JobSpec[]): boolean {
    return this.#db.capabilities.roundTrips && this.#db.insertSql !== undefined && specs.length > 0 && plainSubmits(specs);
  }
  /**
   * Wakes listeners of `channel`. JOB wake-ups stay in this process (watchers elsewhere poll slowly).
   * So do SCHEDULE wake-ups while this process leads: only the leader's scheduler acts on them, and
   * each NOTIFY costs the database a statement and a signal to every listening session (three per
   * W2 job before: the submit's, the assignment's, the report's). A server that leads without
   * knowing it yet sends to all, as does one that lost the lead without knowing it yet — until its
   * session's end reaches it, the new leader meets that server's submits in its first cycle (it reads
   * everything on taking over) or in its one-second safety cycle.
   */
  notify(channel: string, payload = ''): void {
    if (channel === CHANNELS.JOB) this.#local.emit(channel, payload);
    else this.#db.notify(channel, payload, channel === CHANNELS.SCHEDULE && this.#db.leading ? 'here' : 'everywhere');
  }
  /**
   * WORKER listeners in this process also get the hand-off sent with the wake-up, if any (wakeWorker),
   * and return true when a poll took all of it.
   */
  listen(channel: string, fn: (payload: string, handOff?: HandOff) => unknown): () => void {
    if (channel === CHANNELS.WORKER) {
      return this.#db.listen(channel, (id) => {
        const h = this.#handOff?.worker === id ? this.#handOff : null;
        if (fn(id, h?.handOff) === true && h) h.taken = true;
      });
    }
    if (channel !== CHANNELS.JOB) return this.#db.listen(channel, fn);
    this.#local.on(channel, fn);
    return () => this.#local.off(channel, fn);
  }
  /**
   * Wakes a worker's long polls, here with `handOff` (both drivers call this process's listeners
   * before notify returns) and on other servers with the plain wake-up, where a poll looks — unless
   * a poll here took all of the hand-off: a worker polls one server at a time, and a poll of it
   * that reaches another server later looks when it arrives.
   */
  wakeWorker(worker: string, handOff?: HandOff): void {
    const wake = handOff ? { worker, handOff, taken: false } : null;
    this.#handOff = wake;
    try {
      this.#db.notify(CHANNELS.WORKER, worker, 'here');
    } finally {
      this.#handOff = null;
    }
    if (!wake?.taken) this.#db.notify(CHANNELS.WORKER, worker, 'elsewhere');
  }
  /**
   * A point in this server's order of events: a later mark was taken later. A poll marks its
   * arrival, an assignment its write (HandOff.sent).
   */
  mark(): number {
    return ++this.#marks;
  }
  tryLeadership(): Promise<boolean> {
    return this.#db.tryLeadership();
  }
  releaseLeadership(): Promise<void> {
    return this.#db.releaseLeadership();
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
  /**
   * `opts.batch`: errors name fields as `jobs[i].…` (POST /jobs/batch). `opts.positions`: read each
   * queued job's queue position with the write where that costs no statement (one-statement path).
   * `opts.place`: a lone submit places its job itself if it may (Scheduler.directPlacement); a placement
   * that fails undoes the whole transaction, which then runs again without it — the submit never fails for it.
   */
  async submitJobs(
    specs: readonly JobSpec[], actor: string, now = Date.now(), opts: { batch?: boolean; positions?: boolean; place?: DirectPlacement } = {},
  ): Promise<SubmitResult[]> {
    const keyed = specs.some((s) => s.idempotency_key !== null);
    let place = specs.length === 1 ? opts.place : undefined;
    if (this.#submitsAtOnce(specs) && !place) {
      return submitJobsAtOnce(this.#db as Parameters<typeof submitJobsAtOnce>[0], specs, now, actor, opts.positions ?? false);
    }
    for (let attempt = 1; ; attempt++) {
      let placing = false;
      try {
        return await this.#tx(async (tx) => {
          const res = await submitJobs(tx, specs, now, actor, opts.batch ?? false);
          if (place && res[0]!.created) {
            placing = true;
            res[0] = await this.#placeSubmitted(tx, res[0]!, place, now);
            placing = false;
          }
          return res;
        });
      } catch (err) {
        if (placing) {
          place = undefined;
          continue;
        }
        // Two submits with one idempotency key raced: both saw no job and the later insert hit the
        // unique index. Run again: this time it finds the winner's job and returns it.
        if (!keyed || attempt >= 3 || !isUniqueViolation(err)) throw err;
      }
    }
  }
  /**
   * Direct placement of a lone submit (src/store/ops/placeSubmitted.ts), in its transaction: the job as
   * assigned, handed to the worker's waiting poll after commit; or the result unchanged.
   */
  async #placeSubmitted(tx: SqlExecutor, res: SubmitResult, place: DirectPlacement, now: number): Promise<SubmitResult> {
    const d = await placeSubmitted(tx, res.job, place, now);
    if (!d) return res;
    afterCommitOf(tx)!.handOffs.set(d.worker_id!, [d]);
    return {
      ...res,
      job: { ...res.job, state: d.state, worker_id: d.worker_id, gpu_indices: d.gpu_indices, attempt_count: d.attempt_count, current_attempt_id: d.current_attempt_id, updated_at: now },
    };
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
    return this.#tx((tx) => cancelJob(tx, id, reason, actor, now));
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
  /**
   * `long_read`: counted off the event loop (SqlDriver.longReads) — for reads of a job that may sit
   * deep in a big backlog (GET /jobs/{id}, explain: ~100 ms for the last of a million queued jobs on
   * SQLite). Otherwise (a submit's or a reorder's answer, right after its write) counted on the
   * store's own connection while fewer than NEAR_POSITIONS jobs are ahead, and off it beyond: a
   * submit into a deep queue no longer holds up every other request on SQLite for the count.
   */
  async queuePosition(job: Pick<Job, 'priority' | 'sort_key' | 'seq' | 'handler'>, opts: { long_read?: boolean } = {}): Promise<number> {
    if (opts.long_read) return queuePosition(this.#longReads, job);
    return (await nearQueuePosition(this.#db, job, NEAR_POSITIONS)) ?? queuePosition(this.#longReads, job);
  }
  /** The database answers a read of the jobs table (readiness): one row, whatever the table holds. */
  async ping(): Promise<void> {
    await this.#db.query('SELECT id FROM jobs LIMIT 1');
  }
  queueStats(now = Date.now()): Promise<QueueStats> {
    return queueStats(this.#longReads, now);
  }
  /** The newest completed runs of a type (tenant, template, run time in ms), for runtime estimates. */
  recentRuns(type: string, limit = 500): Promise<{ tenant: string; template: string | null; ms: number }[]> {
    return recentRuns(this.#db, type, limit);
  }
  activeJobs(): Promise<Job[]> {
    return activeJobs(this.#db);
  }
  /** Jobs by state, queue depth, attempts by outcome, dead-lettered count (for /metrics). */
  countJobs(): Promise<JobCounts> {
    return countJobs(this.#longReads);
  }

  /** Adds dependencies to a SUBMITTED or QUEUED job (it waits, is released, or is cancelled at once). Returns ids released to QUEUED. */
  addJobDependencies(id: string, dependsOn: readonly string[], type: DependencyType, actor: string, now = Date.now()): Promise<string[]> {
    return this.#tx((tx) => addJobDependencies(tx, id, dependsOn, type, actor, now));
  }
  /** A job's dependencies, what it still waits for and why; null when it has none. */
  dependencyStatus(job: Pick<Job, 'id' | 'state' | 'dependency_type'>) {
    return dependencyStatus(this.#db, job);
  }

  // Templates (src/store/ops/templates.ts)
  /** Templates for renderTemplate (src/templates/render.ts). */
  get templates(): TemplateSource {
    return templatesIn(this.#db);
  }
  getTemplate(id: string, version?: number): Promise<StoredTemplate | null> {
    return getTemplate(this.#db, id, version);
  }
  listTemplates(category?: string): Promise<StoredTemplate[]> {
    return listTemplates(this.#db, category);
  }
  createTemplate(req: TemplateRequest, actor: string, now = Date.now()): Promise<StoredTemplate> {
    return this.#db.transaction((tx) => createTemplate(tx, req, actor, now)).catch(concurrentVersion);
  }
  updateTemplate(id: string, req: TemplateRequest, actor: string, now = Date.now()): Promise<StoredTemplate> {
    return this.#db.transaction((tx) => updateTemplate(tx, id, req, actor, now)).catch(concurrentVersion);
  }
  deleteTemplate(id: string, now = Date.now()): Promise<void> {
    return this.#db.transaction((tx) => deleteTemplate(tx, id, now));
  }
  /** Built-in templates stored as version 1 when absent. Returns the ids added. */
  ensureTemplates(requests: readonly TemplateRequest[], now = Date.now()): Promise<string[]> {
    return this.#db.transaction((tx) => ensureTemplates(tx, requests, now));
  }

  // Scheduling and execution
  /** The queue in scheduling order; `queueKey` ('' = commands, else a handler name) reads one queue only. */
  queuedJobs(limit: number, cursor: QueueCursor | null = null, queueKey?: string): Promise<QueuedJob[]> {
    return queuedJobs(this.#db, limit, cursor, queueKey);
  }
  async workerUsage(): Promise<Map<string, WorkerUsage>> {
    const [usage, gangs] = await Promise.all([workerUsage(this.#db), gangActiveRows(this.#db)]);
    // Gang members hold room on their workers too (src/store/ops/gangs.ts).
    return addHeldUsage(gangs, usage);
  }
  assignJobs(assignments: readonly Assignment[], now = Date.now()): Promise<Assignment[]> {
    return this.#db.transaction((tx) => assignJobs(tx, assignments, now));
  }
  /**
   * A cycle's decisions in one transaction: admissions (QUEUED → SCHEDULED + attempt) and
   * preemption requests. Returns the admissions that took effect (a single-node one with its job as
   * delivered), the preemptions asked, and the mark taken before the write (`sent`, see HandOff).
   */
  async applySchedulingDecisions(assignments: readonly Assignment[], preemptions: readonly PreemptionOrder[], now = Date.now()) {
    // Marked before anything is written: the hand-off's `sent` (HandOff).
    const sent = this.mark();
    // PostgreSQL: plain admissions (no gang, no preemption) are one statement instead of a transaction of seven.
    // A big cycle's are cut in parts that run at once (#inParts), each its own statement: when one fails the
    // others may have committed — their workers are woken to look for them, and the cycle fails as it would.
    if (this.#db.capabilities.roundTrips && preemptions.length === 0 && !assignments.some((a) => a.members)) {
      const parts = await this.#inParts(assignments, (db, part) => assignJobsAtOnce(db, part, now));
      const assigned = parts.flatMap((p) => (p.status === 'fulfilled' ? p.value : []));
      this.#notePlaced(assigned, now);
      const failed = parts.find((p) => p.status === 'rejected');
      if (failed) {
        for (const w of new Set(assigned.map((a) => a.worker_id))) this.notify(CHANNELS.WORKER, w);
        throw failed.reason;
      }
      return { sent, assigned, preempted: { job_ids: [] as string[], workers: [] as string[] } };
    }
    const out = await this.#db.transaction(async (tx) => {
      const held = await jobsOfPausedTenants(tx, assignments);
      if (held.size > 0) assignments = assignments.filter((a) => !held.has(a.job_id));
      // Gangs (nodes > 1) have their own path (src/store/ops/gangs.ts); single-node admissions are untouched by it.
      const gangs = assignments.some((a) => a.members) ? assignments.filter((a) => a.members) : [];
      const single = gangs.length > 0 ? assignments.filter((a) => !a.members) : assignments;
      const assigned = single.length > 0 ? await assignJobs(tx, single, now) : [];
      if (gangs.length > 0) assigned.push(...(await assignGangs(tx, gangs, now)));
      const preempted = preemptions.length > 0 ? await preemptJobs(tx, preemptions, now) : { job_ids: [], workers: [] };
      // A preempted gang's members hold no job row worker: wake each member's worker.
      if (preempted.job_ids.length > 0) preempted.workers.push(...(await gangWorkersOf(tx, preempted.job_ids)));
      return { assigned, preempted };
    });
    this.#notePlaced(out.assigned, now);
    return { sent, ...out };
  }
  /**
   * `write` over `items`, as one statement per part: where the driver spreads (SqlDriver.spread, PostgreSQL)
   * and every part gets at least SPREAD_MIN items, in `ways` parts on as many connections at once — the
   * database's work on a W1 batch (500 completions, then 500 admissions) otherwise runs on one backend, one
   * CPU, while the rest of the machine waits for it; elsewhere whole, on the driver. The parts must be
   * independent (no row in two of them) and each statement its own transaction. Each part's outcome, in order.
   */
  async #inParts<T, R>(items: readonly T[], write: (db: SqlExecutor, part: readonly T[]) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
    const spread = this.#db.spread;
    const ways = spread ? Math.min(spread.ways, Math.floor(items.length / SPREAD_MIN)) : 1;
    if (!spread || ways < 2) return Promise.allSettled([write(this.#db, items)]);
    const size = Math.ceil(items.length / ways);
    const parts: Promise<R>[] = [];
    for (let i = 0; i < items.length; i += size) parts.push(write(spread.executor, items.slice(i, i + size)));
    return Promise.allSettled(parts);
  }
  /** The jobs this process's scheduler placed lately (job id → when), newest last, at most PLACED_KEPT. */
  readonly #placed = new Map<string, number>();
  #notePlaced(assigned: readonly Assignment[], now: number): void {
    for (const a of assigned) this.#placed.set(a.job_id, now);
    for (const id of this.#placed.keys()) {
      if (this.#placed.size <= PLACED_KEPT) break;
      this.#placed.delete(id);
    }
  }
  /**
   * When this process's scheduler placed the job on a worker, if it did among its last PLACED_KEPT
   * placements; null otherwise (not placed yet, placed long ago, or by another server's scheduler).
   * The submit answer uses it: a job the cycle its submit woke has already placed starts now.
   */
  placedAt(jobId: string): number | null {
    return this.#placed.get(jobId) ?? null;
  }
  /** Tenants with queued jobs in the given queues ('' = commands, else handler names). */
  queuedTenants(queueKeys: readonly string[]): Promise<string[]> {
    return queuedTenants(this.#db, queueKeys);
  }
  /** queuedTenants with each tenant's first `limit` queued jobs in those queues (one round trip per queue on PostgreSQL). */
  queueHeads(queueKeys: readonly string[], limit: number): Promise<Map<string, PendingRow[]>> {
    return queueHeads(this.#db, queueKeys, limit, this.#db.capabilities.roundTrips);
  }
  /** A tenant's first `limit` queued jobs in the given queues, in queue order. */
  tenantQueueHead(tenant: string, queueKeys: readonly string[], limit: number): Promise<PendingRow[]> {
    return tenantQueueHead(this.#db, tenant, queueKeys, limit);
  }
  /** PostgreSQL: marks jobs_active's entries of jobs that left it as dead (markGoneActiveEntries); SQLite keeps none. */
  async markGoneActiveEntries(): Promise<void> {
    if (this.#db.dialect === 'postgres') await this.#db.transaction(markGoneActiveEntries);
  }
  /** Jobs holding resources on workers, lean. */
  async activeJobRows(): Promise<ActiveRow[]> {
    const [rows, gangs] = await Promise.all([activeJobRows(this.#db), gangActiveRows(this.#db)]);
    return gangs.length > 0 ? rows.concat(gangs) : rows;
  }
  /** The members of a gang job's current (or last) attempt. */
  gangMembers(jobId: string, attemptId: string | null): Promise<GangMemberView[]> {
    return gangMembers(this.#db, jobId, attemptId);
  }
  /** Workers running members of these gang jobs (to wake them for a control). */
  gangWorkersOf(jobIds: readonly string[]): Promise<string[]> {
    return gangWorkersOf(this.#db, jobIds);
  }
  /** Runs since `since` (or still running), for rebuilding decayed usage on a new leader. */
  usageHistory(since: number) {
    return usageHistory(this.#db, since);
  }
  /** What a worker should get now; `held` = the attempt ids it already runs. Writes nothing but taken controls. */
  async deliverToWorker(workerId: string, max: number, held: ReadonlySet<string> = new Set()): Promise<Delivery> {
    // Both looks go out at once (one round trip on PostgreSQL, src/store/postgres/driver.ts TickBatch).
    const gang = gangMemberRows(this.#db, workerId);
    gang.catch(() => {});
    const d = await deliverToWorker(this.#db, workerId, max, held);
    // The poll that completes a gang's start barrier wakes the other members' workers for their `start`.
    for (const w of await deliverGangWork(this.#db, workerId, max, held, d, gang)) this.notify(CHANNELS.WORKER, w);
    return d;
  }
  /** Gangs not every member of which was taken by its worker before `cutoff`: requeued (see `expireGangStarts`). */
  async expireGangStarts(cutoff: number, timeoutMs: number, now = Date.now()): Promise<string[]> {
    const { jobs, workers } = await this.#tx((tx) => expireGangStarts(tx, cutoff, now, timeoutMs));
    for (const w of workers) this.notify(CHANNELS.WORKER, w);
    return jobs;
  }
  /** Applies a worker's reports; with `breakers`, attempt ends also step the circuit breakers, in the same transaction. */
  async reportResults(workerId: string, reports: readonly AttemptReport[], now = Date.now(), breakers?: BreakerOptions): Promise<ReportOutcome[]> {
    // PostgreSQL: a batch of plain completions is one statement (one round trip) instead of a transaction of
    // seven; the reports it leaves (late, watched jobs, a dirty breaker) take the transaction path.
    // A big batch is cut in parts that run at once (#inParts); a part whose statement failed goes the
    // transaction way too (a statement is all or nothing: none of its reports was applied, or — its answer
    // lost after the commit — each is found done by its own attempt there and recorded stale).
    if (this.#db.capabilities.roundTrips && plainCompletions(reports)) {
      const gate = breakers !== undefined && breakers.threshold > 0;
      const parts = await this.#inParts(reports, (db, part) => reportCompletionsAtOnce(db, workerId, part, now, gate));
      const applied = new Set<string>();
      for (const p of parts) if (p.status === 'fulfilled') for (const id of p.value) applied.add(id);
      const rest = reports.filter((r) => !applied.has(r.job_id));
      const restOut = rest.length > 0 ? await this.#reportResults(workerId, rest, now, breakers) : [];
      let i = 0;
      return reports.map((r): ReportOutcome => (applied.has(r.job_id) ? { job_id: r.job_id, status: 'applied', state: 'COMPLETED' } : restOut[i++]!));
    }
    return this.#reportResults(workerId, reports, now, breakers);
  }
  #reportResults(workerId: string, reports: readonly AttemptReport[], now: number, breakers?: BreakerOptions): Promise<ReportOutcome[]> {
    return this.#tx(async (tx) => {
      const out = reports.some(isMemberReport) ? await splitGangReports(tx, workerId, reports, now) : await reportResults(tx, workerId, reports, now);
      if (breakers) await recordBreakerOutcomes(tx, settledAttempts(reports, out), breakers, now);
      return out;
    });
  }
  promoteDueRetries(now = Date.now()) {
    return this.#db.transaction((tx) => promoteDueRetries(tx, now));
  }
  reapLostWorkers(cutoff: number, now = Date.now()) {
    return this.#tx((tx) => reapLostWorkers(tx, cutoff, now));
  }
  /** A worker leaving: offline, its jobs back in the queue. Returns the requeued job ids. */
  releaseWorker(id: string, why: string, actor: string, now = Date.now(), outcome: 'lost' | 'interrupted' = 'lost'): Promise<string[]> {
    return this.#changed(this.#tx((tx) => releaseWorker(tx, id, why, actor, now, outcome)));
  }

  // Circuit breakers (src/core/breakers.ts)
  /** Every breaker, or only the open and half-open ones. */
  listBreakers(heldOnly = false): Promise<Breaker[]> {
    return listBreakers(this.#db, heldOnly);
  }
  startProbes(probes: readonly { key: string; job_id: string }[], openMs: number, now = Date.now()): Promise<void> {
    return probes.length === 0 ? Promise.resolve() : this.#db.transaction((tx) => startProbes(tx, probes, openMs, now));
  }
  resetBreaker(key: string, now = Date.now()): Promise<Breaker | null> {
    return this.#changed(this.#db.transaction((tx) => resetBreaker(tx, key, now)));
  }

  // Checkpoints
  saveCheckpoint(jobId: string, attemptId: string, c: Checkpoint, now = Date.now()): Promise<StoredCheckpoint> {
    return this.#db.transaction((tx) => saveCheckpoint(tx, jobId, attemptId, c, now));
  }
  checkpointsOf(jobIds: readonly string[]): Promise<Map<string, StoredCheckpoint>> {
    return checkpointsOf(this.#db, jobIds);
  }

  // Dead-letter queue
  /** Requeues dead-lettered jobs (by id or filter) with edits, all or nothing. Returns the job ids. */
  requeueDeadLetters(sel: DeadLetterSelection, edits: RequeueEdits, reason: string, actor: string, now = Date.now()): Promise<string[]> {
    return this.#db.transaction((tx) => requeueDeadLetters(tx, sel, edits, reason, actor, now));
  }

  // Workers
  registerWorker(w: Omit<WorkerInfo, 'registered_at' | 'last_heartbeat' | 'state'>, now = Date.now()): Promise<WorkerInfo> {
    return this.#changed(this.#db.transaction((tx) => registerWorker(tx, w, now)));
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
    return this.#changed(setWorkerState(this.#db, id, state));
  }

  // Tenants
  listTenants(): Promise<TenantRecord[]> {
    return listTenants(this.#db);
  }
  getTenant(id: string): Promise<TenantRecord | null> {
    return getTenant(this.#db, id);
  }
  createTenant(id: string, c: TenantChanges & { tier: Tier }, now = Date.now()): Promise<TenantRecord> {
    return this.#changed(this.#db.transaction((tx) => createTenant(tx, id, c, now)));
  }
  /** `replace` (PUT): settings not given go back to the tier default; otherwise (PATCH) only the given ones change. */
  updateTenant(id: string, c: TenantChanges, replace: boolean, now = Date.now()): Promise<TenantRecord> {
    return this.#changed(this.#db.transaction((tx) => updateTenant(tx, id, c, replace, now)));
  }
  /** A tenant's jobs on workers, the resources they hold, and its queued jobs. */
  tenantLoad(id: string): Promise<TenantLoad> {
    return tenantLoad(this.#longReads, id);
  }
  deleteTenant(id: string): Promise<void> {
    return this.#changed(this.#db.transaction((tx) => deleteTenant(tx, id)));
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

  // Workflows (src/store/ops/createWorkflow.ts, advanceWorkflows.ts). Writes wake whom they must after commit.
  #afterWorkflowWrite(e: WorkflowEffects): void {
    if (e.submitted > 0) this.notify(CHANNELS.SCHEDULE);
    for (const w of new Set(e.wake_workers)) this.notify(CHANNELS.WORKER, w);
  }
  async createWorkflow(def: WorkflowDef, actor: string, now = Date.now()): Promise<StoredWorkflow> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#tx((tx) => createWorkflow(tx, def, actor, now));
      } catch (err) {
        // Two creates of one name raced for the same version: the loser takes the next one.
        if (attempt >= 5 || !isUniqueViolation(err)) throw err;
      }
    }
  }
  findWorkflow(ref: string): Promise<StoredWorkflow | null> {
    return findWorkflow(this.#db, ref);
  }
  listWorkflows() {
    return listWorkflows(this.#db);
  }
  async startWorkflowRun(wf: StoredWorkflow, params: Record<string, unknown>, actor: string, now = Date.now()): Promise<string> {
    const r = await this.#tx((tx) => startWorkflowRun(tx, wf, params, { kind: 'manual' }, actor, now, buildStepJob));
    this.#afterWorkflowWrite(r.effects);
    return r.run_id;
  }
  getWorkflowRun(id: string) {
    return getWorkflowRun(this.#db, id);
  }
  listWorkflowRuns(name: string, limit = 50): Promise<WorkflowRun[]> {
    return listWorkflowRuns(this.#db, name, limit);
  }
  async cancelWorkflowRun(id: string, reason: string, actor: string, now = Date.now()): Promise<void> {
    this.#afterWorkflowWrite(await this.#tx((tx) => cancelWorkflowRun(tx, id, reason, actor, now)));
  }
  async rerunWorkflowRun(id: string, params: Record<string, unknown>, actor: string, now = Date.now()): Promise<{ run_id: string; reused: string[] }> {
    const r = await this.#tx((tx) => rerunWorkflowRun(tx, id, params, actor, now, buildStepJob));
    this.#afterWorkflowWrite(r.effects);
    return { run_id: r.run_id, reused: r.reused };
  }

  // Schedules (src/store/ops/schedules.ts, fireSchedule.ts)
  createSchedule(s: ScheduleInput, now = Date.now()) {
    return this.#tx((tx) => createSchedule(tx, s, now));
  }
  getSchedule(ref: string) {
    return getSchedule(this.#db, ref);
  }
  listSchedules() {
    return listSchedules(this.#db);
  }
  updateSchedule(ref: string, s: ScheduleInput, now = Date.now()) {
    return this.#tx((tx) => updateSchedule(tx, ref, s, now));
  }
  deleteSchedule(ref: string) {
    return this.#tx((tx) => deleteSchedule(tx, ref));
  }
  scheduleFires(id: string, limit = 100) {
    return scheduleFires(this.#db, id, limit);
  }
  /** Fires a schedule for one fire time, exactly once across servers (see ops/fireSchedule.ts). */
  async fireSchedule(id: string, fireTime: number, kind: string, now = Date.now(), overlap?: OverlapPolicy): Promise<FireResult> {
    const r = await this.#tx(async (tx) => {
      const res = await fireSchedule(tx, id, fireTime, kind, now, buildStepJob, overlap);
      if (kind !== 'backfill') await advanceScheduleCursor(tx, id, fireTime);
      return res;
    });
    this.#afterWorkflowWrite(r.effects);
    return r;
  }
  async releaseBufferedFire(id: string, now = Date.now()): Promise<FireResult | null> {
    const r = await this.#tx((tx) => releaseBufferedFire(tx, id, now, buildStepJob));
    if (r) this.#afterWorkflowWrite(r.effects);
    return r;
  }
  advanceScheduleCursor(id: string, to: number): Promise<void> {
    return this.#tx((tx) => advanceScheduleCursor(tx, id, to));
  }
}

/**
 * Opens the store named by a database URL — `postgres://…` / `postgresql://…`, or
 * `sqlite:PATH` / a plain file path — and applies pending migrations.
 */
export async function openStore(url: string): Promise<Store> {
  let driver: SqlDriver;
  if (isPostgresUrl(url)) driver = new PostgresDriver(url);
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

/** A batch with gang members' reports: each part by its own path, results in the batch's order. */
async function splitGangReports(tx: SqlExecutor, workerId: string, reports: readonly AttemptReport[], now: number): Promise<ReportOutcome[]> {
  const single = reports.filter((r) => !isMemberReport(r));
  const gang = reports.filter(isMemberReport);
  const a = single.length > 0 ? await reportResults(tx, workerId, single, now) : [];
  const b = await reportGangResults(tx, workerId, gang, now);
  let i = 0;
  let j = 0;
  return reports.map((r) => (isMemberReport(r) ? b[j++]! : a[i++]!));
}

/** Attempt ends a breaker counts: retryable failures and timeouts, and completions (see src/core/breakers.ts). */
function settledAttempts(reports: readonly AttemptReport[], out: readonly ReportOutcome[]): SettledAttempt[] {
  const settled: SettledAttempt[] = [];
  reports.forEach((r, i) => {
    const o = out[i];
    if (!o || o.status !== 'applied') return;
    if (r.outcome === 'completed') settled.push({ job_id: r.job_id, ok: true, error: null });
    else if ((r.outcome === 'failed' || r.outcome === 'timeout') && !r.non_retryable && o.state !== 'CANCELLED') {
      settled.push({ job_id: r.job_id, ok: false, error: r.error ?? (r.exit_code != null ? `exit code ${r.exit_code}` : r.outcome) });
    }
  });
  return settled;
}

/** Two writers made the same template version at once: the later one is told, not a 500. */
function concurrentVersion(err: unknown): never {
  if (isUniqueViolation(err)) throw new GantryError('CONFLICT', 'the template changed while this request was being applied; read it again and retry', { field: 'id' });
  throw err;
}

/** A unique-index violation, as PostgreSQL (23505) or SQLite reports it. */
function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
