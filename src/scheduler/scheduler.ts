import type { Store, Assignment, DirectPlacement, HandOff, PreemptionOrder } from '../store/store.ts';
import { CHANNELS } from '../store/store.ts';
import type { Tier } from '../core/tiers.ts';
import type { WorkerSlotView } from './placement.ts';
import { DEFAULT_POLICY_CONFIG, type DecayedUsage, type PendingJob, type Policy, type PolicyConfig } from './policy/types.ts';
import { gantryPolicy, POLICIES } from './policy/policies.ts';
import { buildSnapshot } from './snapshot.ts';
import { runtimeEstimatesFor, type RuntimeEstimates } from './runtimeEstimates.ts';
import { TenantUsage } from './tenantUsage.ts';
import { BreakerGate, breakerKeysOf, type Breaker } from '../core/breakers.ts';
import type { WorkerInfo } from '../core/types.ts';
import type { TenantRecord } from '../core/tiers.ts';
import { WAKE, staleAfter } from './wakeReasons.ts';

export interface SchedulerOptions {
  /** A worker silent this long is declared lost and its jobs requeued (ms). */
  lease_timeout_ms: number;
  /** How often the lease reaper looks (ms). */
  reap_interval_ms: number;
  /** A gang not every member of which its worker took this long after the assignment is requeued (ms; the start barrier, src/store/ops/gangs.ts). */
  gang_start_timeout_ms: number;
  /** A safety-net cycle even without wake-ups (ms). */
  idle_cycle_ms: number;
  /** How many queued jobs one cycle reads at most, shared out over the tenants with queued work. */
  scan_limit: number;
  /** Tier of tenants nobody registered. */
  default_tier: Tier;
  /** Half-life of the decayed usage fair share is computed from (ms). */
  usage_half_life_ms: number;
  /** The scheduling policy (Gantry's by default) and overrides of its settings. */
  policy: Policy;
  policy_config?: Partial<PolicyConfig>;
  /** How often a follower tries to become leader (ms). */
  leader_poll_ms: number;
  /** How long a breaker's probe may run before another probe is allowed (ms). */
  breaker_open_ms: number;
  log?: (msg: string, data?: Record<string, unknown>) => void;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = {
  lease_timeout_ms: 5000,
  reap_interval_ms: 1000,
  gang_start_timeout_ms: 60_000,
  idle_cycle_ms: 1000,
  scan_limit: 5000,
  leader_poll_ms: 1000,
  breaker_open_ms: 30_000,
  default_tier: 'enterprise',
  usage_half_life_ms: 3_600_000,
  policy: gantryPolicy,
};

/**
 * How often the leader marks the dead entries of jobs_active (Store.markGoneActiveEntries, PostgreSQL): between
 * two sweeps, reads that the planner runs as bitmap scans visit the heap pages of the jobs that left it since
 * (at 200 jobs/s, up to ~100 entries).
 */
const SWEEP_MS = 250;

/**
 * The scheduler loop. Exactly one server runs it (the leader: an advisory lock on PostgreSQL,
 * the only server on SQLite). A cycle runs on wake-ups (submit, finish, worker join) and on a
 * slow timer, reads the queue in priority order and admits everything that fits, writing all
 * of a cycle's decisions in one transaction, then wakes the workers that got work.
 * Also runs the timers: lease reaper and retry backoff.
 */
export class Scheduler {
  readonly #store: Store;
  readonly #opts: SchedulerOptions;
  #leader = false;
  #running = false;
  #again = false;
  #stopped = false;
  #timers: NodeJS.Timeout[] = [];
  #retryTimer: NodeJS.Timeout | null = null;
  #unlisten: (() => void) | null = null;
  #cycleDone: Promise<void> = Promise.resolve();
  /** Counters for tests and metrics. */
  readonly stats = { cycles: 0, assigned: 0, preempted: 0, requeued_lost: 0, placed_on_submit: 0 };
  readonly #estimates: RuntimeEstimates;
  readonly #usage: TenantUsage;
  #usageBuilt = false;
  #usageBuiltAt = 0;
  readonly #policyConfig: PolicyConfig;
  /**
   * Workers and tenants as the last full read found them, and the circuit breakers when none was
   * held: kept between cycles while only submits and reports woke the scheduler (failures make it
   * read the breakers again) — see WAKE. `gen` / `breakerGen` are the invalidation counts when they
   * were read. Reused only on a single-process store (SQLite), where every write to them passes
   * through this process and wakes the scheduler before anyone is told it happened; with several
   * servers a write elsewhere would reach this one only with its NOTIFY, so a submit right after a
   * pause on another server could be admitted — PostgreSQL reads them every cycle, in parallel with
   * the other reads.
   */
  #known: { workers: readonly WorkerInfo[]; tenants: readonly TenantRecord[]; gen: number; breakers: readonly Breaker[] | null; breakerGen: number } | null = null;
  /** Bumped by every wake-up that may have changed workers or tenants (and by the safety timer). */
  #gen = 0;
  /** Bumped by those and by reports of failures (which may open a breaker). */
  #breakerGen = 0;
  /**
   * After the last cycle no job was left queued in any queue an online worker serves (it found
   * none, or admitted every one it found and had read them all), and no wake-up since said
   * otherwise: any wake-up but a plain report clears it, and a wake-up during a cycle makes another.
   */
  #queuesEmpty = false;
  /** Queued jobs per tenant the last cycle read (the next snapshot reads the hinted heads this long). */
  #headLimit: number | undefined = undefined;
  /** A report (room freed) came during the running cycle: another cycle runs if that one leaves queued work. */
  #freedDuringCycle = false;
  /** The queues the last cycle's workers served: the next snapshot starts reading them before the workers are read. */
  #servedHint: readonly string[] = [];

  constructor(store: Store, opts: Partial<SchedulerOptions> = {}) {
    this.#store = store;
    this.#opts = { ...DEFAULT_SCHEDULER_OPTIONS, ...opts };
    this.#estimates = runtimeEstimatesFor(store);
    this.#usage = new TenantUsage(this.#opts.usage_half_life_ms);
    this.#policyConfig = {
      ...DEFAULT_POLICY_CONFIG, half_life_ms: this.#opts.usage_half_life_ms, explain: 'none',
      max_considered: Math.max(DEFAULT_POLICY_CONFIG.max_considered, this.#opts.scan_limit), ...this.#opts.policy_config,
    };
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  async start(): Promise<void> {
    this.#unlisten = this.#store.listen(CHANNELS.SCHEDULE, (payload) => this.#woken(payload));
    await this.#tryLead();
    this.#every(this.#opts.leader_poll_ms, () => this.#tryLead());
    this.#every(this.#opts.reap_interval_ms, () => this.#reap());
    this.#every(SWEEP_MS, () => (this.#leader ? this.#store.markGoneActiveEntries() : undefined));
    // The safety net also reads everything again: whatever changed without a wake-up is in force within a second.
    this.#every(this.#opts.idle_cycle_ms, () => {
      this.#invalidate('');
      this.requestCycle();
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#unlisten?.();
    await this.#cycleDone;
    // Hand over at once rather than when the connection closes: another server's next try wins.
    if (this.#leader) {
      this.#leader = false;
      await this.#store.releaseLeadership().catch((err) => this.#log('releasing leadership failed', err));
    }
  }

  /** A SCHEDULE wake-up for `payload` (a WAKE reason). */
  #woken(payload: string): void {
    if (payload === WAKE.RETRY) this.#checkRetries();
    this.#invalidate(payload);
    // A report that only freed room changes nothing while the served queues are empty — and during
    // a cycle, nothing unless that cycle leaves queued work behind (requestCycle looks then).
    if (payload === WAKE.REPORT && this.#running) {
      this.#freedDuringCycle = true;
      return;
    }
    if (payload === WAKE.REPORT && this.#queuesEmpty) return;
    this.#queuesEmpty = false;
    this.requestCycle();
  }

  /** Forgets what a wake-up for `reason` may have made stale (WAKE). */
  #invalidate(reason: string): void {
    const stale = staleAfter(reason);
    if (stale === 'nothing') return;
    this.#breakerGen++;
    if (stale === 'everything') this.#gen++;
  }

  #every(ms: number, fn: () => Promise<void> | void): void {
    const t = setInterval(() => {
      if (!this.#stopped) void Promise.resolve(fn()).catch((err) => this.#log('timer failed', err));
    }, ms);
    t.unref();
    this.#timers.push(t);
  }

  #log(msg: string, err?: unknown): void {
    this.#opts.log?.(msg, err ? { error: (err as Error).message } : undefined);
  }

  async #tryLead(): Promise<void> {
    const was = this.#leader;
    this.#leader = await this.#store.tryLeadership();
    if (this.#leader && !was) {
      this.#log('became scheduler leader');
      // A new leader rebuilds everything from the store; decayed usage is rebuilt from attempts on the first cycle.
      this.#usageBuilt = false;
      this.#known = null;
      this.#queuesEmpty = false;
      this.#checkRetries();
      this.requestCycle();
    }
  }

  /**
   * A submit's wake-up (WAKE.SUBMIT) given as its write is issued, before it has committed: starts a
   * cycle now if this server leads and no cycle is running, and says whether it did. Only worth it
   * where the cycle's first reads then follow the write on its connection (SqlDriver.holdTurn), so
   * they see the new jobs; the caller wakes the scheduler as usual after the commit when it did not.
   */
  cycleBehindSubmit(): boolean {
    if (!this.#leader || this.#stopped || this.#running) return false;
    this.#woken(WAKE.SUBMIT);
    return true;
  }

  /**
   * Whether a lone submit may place its job itself, in its own transaction (src/store/ops/placeSubmitted.ts),
   * on one of the workers `waiting` names (those with a poll waiting on this server): only on a single-process store
   * (SQLite: every write passes through this process), while this server leads with a built-in policy, no
   * cycle runs and the last one left no job queued in any queue an online worker serves. `allowed` checks
   * again inside the transaction: a cycle that started meanwhile read before it and will write after it.
   * The store then checks what the policy would (the worker's room, other queued jobs, the tenant's
   * limits and nominal quota, breakers) and leaves the job to the next cycle when anything is off.
   */
  directPlacement(waiting: () => readonly string[]): DirectPlacement | null {
    const may = () => this.#leader && !this.#stopped && !this.#running && this.#queuesEmpty;
    if (this.#store.capabilities.multiProcess || POLICIES.get(this.#opts.policy.name) !== this.#opts.policy || !may()) return null;
    const workers = waiting();
    return workers.length === 0 ? null : { workers, default_tier: this.#opts.default_tier, allowed: may };
  }

  /** Counts jobs placed by their submit (directPlacement) with the cycles' admissions. */
  placedOnSubmit(n: number): void {
    this.stats.assigned += n;
    this.stats.placed_on_submit += n;
  }

  /** Asks for a cycle; wake-ups that arrive during a cycle fold into one more. */
  requestCycle(): void {
    if (!this.#leader || this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    this.#cycleDone = (async () => {
      try {
        do {
          this.#again = false;
          this.#freedDuringCycle = false;
          await this.cycle(Date.now(), { reuse: true });
        } while ((this.#again || (this.#freedDuringCycle && !this.#queuesEmpty)) && !this.#stopped);
      } catch (err) {
        this.#log('scheduling cycle failed', err);
      } finally {
        this.#running = false;
      }
    })();
  }

  /** The decayed usage fair share works from (for explanations on this server). */
  async usage(now = Date.now()): Promise<ReadonlyMap<string, DecayedUsage>> {
    // A follower's copy is not advanced by cycles: rebuild it from the store when it is older than 10 s.
    if (!this.#leader && now - this.#usageBuiltAt > 10_000) this.#usageBuilt = false;
    await this.#ensureUsage(now);
    return this.#usage.snapshot();
  }

  async #ensureUsage(now: number): Promise<void> {
    if (this.#usageBuilt) return;
    await this.#usage.rebuild(this.#store, now);
    this.#usageBuilt = true;
    this.#usageBuiltAt = now;
  }

  /** The options explanations need to rebuild this scheduler's view (same policy, same settings). */
  get policyContext(): { policy: Policy; config: PolicyConfig; default_tier: Tier; scan_limit: number; estimates: RuntimeEstimates } {
    return { policy: this.#opts.policy, config: this.#policyConfig, default_tier: this.#opts.default_tier, scan_limit: this.#opts.scan_limit, estimates: this.#estimates };
  }

  /**
   * One scheduling cycle: builds the policy snapshot from the store (workers, running jobs,
   * each tenant's queue head, tenants' effective quotas, decayed usage), asks the policy, and
   * writes its admissions and preemptions in one transaction; then wakes the workers concerned.
   * With `reuse`, workers, tenants and (when none is held) breakers come from the last cycle's
   * reads unless a wake-up since may have changed them; otherwise everything is read afresh.
   * Returns how many jobs were assigned.
   */
  async cycle(now = Date.now(), opts: { reuse?: boolean } = {}): Promise<number> {
    this.stats.cycles++;
    await this.#ensureUsage(now);
    const gen = this.#gen;
    const breakerGen = this.#breakerGen;
    const reusable = opts.reuse === true && !this.#store.capabilities.multiProcess;
    const known = reusable && this.#known?.gen === gen ? this.#known : null;
    const cachedBreakers = known?.breakerGen === breakerGen ? known.breakers : null;
    const [built, breakers] = await Promise.all([
      buildSnapshot(this.#store, {
        now, default_tier: this.#opts.default_tier, scan_limit: this.#opts.scan_limit, usage: new Map(), estimates: this.#estimates,
        known: known ?? undefined, served_hint: this.#servedHint, head_limit_hint: this.#headLimit,
      }),
      cachedBreakers ?? this.#store.listBreakers(true),
    ]);
    // Kept as read before any wake-up that came in meanwhile (the counters differ then, so the next
    // cycle reads again). Held breakers are read every cycle: a probe's job state and due time matter.
    this.#known = { workers: built.read.workers, tenants: built.read.tenants, gen, breakers: breakers.length === 0 ? breakers : null, breakerGen };
    this.#servedHint = built.served;
    this.#headLimit = built.head_limit ?? this.#headLimit;
    let pendingCount = 0;
    for (const jobs of built.snapshot.pending.values()) pendingCount += jobs.length;
    this.#queuesEmpty = built.whole_queue && pendingCount === 0;
    this.#usage.advance(built.active, now);
    // Open circuit breakers hold their jobs back before the policy sees them; a breaker due a probe lets one job through.
    const gate = new BreakerGate(breakers, now);
    const keysOf = new Map<string, string[]>();
    const pending = new Map<string, readonly PendingJob[]>();
    for (const [tenant, jobs] of built.snapshot.pending) {
      // No breaker at all (the common case): nothing to hold back, no keys to build per job.
      if (breakers.length === 0) {
        if (jobs.length > 0) pending.set(tenant, jobs);
        continue;
      }
      const open = jobs.filter((j) => {
        const keys = breakerKeysOf({ handler: j.queue_key === '' ? null : j.queue_key, template: built.templates.get(j.id) ?? null });
        keysOf.set(j.id, keys);
        return !keys.some((k) => gate.blocks(k));
      });
      if (open.length > 0) pending.set(tenant, open);
    }
    if (built.snapshot.workers.length === 0 || pending.size === 0) return 0;
    const decisions = this.#opts.policy.decide({ ...built.snapshot, pending, usage: this.#usage.snapshot() }, this.#policyConfig);
    const assignments: Assignment[] = [];
    for (const a of decisions.admissions) {
      const p = a.placements[0];
      if (!p) continue;
      if (!gate.admit(a.job_id, keysOf.get(a.job_id) ?? [])) continue;
      // A gang (nodes > 1): all its members in one admission (src/store/ops/gangs.ts).
      const members = a.placements.length > 1 ? a.placements.map((m) => ({ worker_id: m.worker_id, gpu_indices: m.gpu_indices })) : undefined;
      assignments.push({ job_id: a.job_id, worker_id: p.worker_id, gpu_indices: p.gpu_indices, ...(members ? { members } : {}) });
    }
    const orders: PreemptionOrder[] = decisions.preemptions.map((p) => ({
      victim_id: p.victim_id, by_job: p.for_job_id, by_tenant: p.for_tenant, reason: p.reason, at: now,
    }));
    if (assignments.length === 0 && orders.length === 0) return 0;
    const { assigned, preempted, sent } = await this.#store.applySchedulingDecisions(assignments, orders, now);
    this.#queuesEmpty = built.whole_queue && assigned.length === pendingCount;
    await this.#store.startProbes(gate.probes(new Set(assigned.map((a) => a.job_id))), this.#opts.breaker_open_ms, now);
    this.stats.assigned += assigned.length;
    this.stats.preempted += preempted.job_ids.length;
    if (preempted.job_ids.length > 0) this.#opts.log?.('preempting jobs', { jobs: preempted.job_ids });
    // A worker's new single-node jobs go with its wake-up: a poll waiting for them here answers without a
    // look. Not to a worker that also has a gang member or a preemption coming: its poll looks for those.
    const looking = new Set([...assigned.flatMap((a) => a.members?.map((m) => m.worker_id) ?? []), ...preempted.workers]);
    const handOffs = new Map<string, HandOff>();
    for (const a of assigned) {
      if (!a.job || looking.has(a.worker_id)) continue;
      let h = handOffs.get(a.worker_id);
      if (!h) handOffs.set(a.worker_id, (h = { sent, jobs: [] }));
      h.jobs.push(a.job);
    }
    for (const w of new Set([...assigned.map((a) => a.worker_id), ...looking])) this.#store.wakeWorker(w, handOffs.get(w));
    return assigned.length;
  }

  async #reap(): Promise<void> {
    if (!this.#leader) return;
    const now = Date.now();
    const { workers, jobs } = await this.#store.reapLostWorkers(now - this.#opts.lease_timeout_ms, now);
    if (workers.length > 0) {
      this.#invalidate('');
      this.stats.requeued_lost += jobs.length;
      this.#opts.log?.('workers lost; their jobs requeued', { workers, jobs: jobs.length });
      this.requestCycle();
    }
    const gangs = await this.#store.expireGangStarts(now - this.#opts.gang_start_timeout_ms, this.#opts.gang_start_timeout_ms, now);
    if (gangs.length > 0) {
      this.#opts.log?.('gangs did not start together in time; requeued', { jobs: gangs });
      this.requestCycle();
    }
  }

  /** Moves due retries to the queue and arms a timer for the next one. */
  #checkRetries(): void {
    if (!this.#leader || this.#stopped) return;
    void this.#store
      .promoteDueRetries()
      .then(({ moved, next_due }) => {
        if (moved > 0) this.requestCycle();
        if (this.#retryTimer) clearTimeout(this.#retryTimer);
        this.#retryTimer = null;
        if (next_due !== null && !this.#stopped) {
          this.#retryTimer = setTimeout(() => this.#checkRetries(), Math.max(5, next_due - Date.now()));
          this.#retryTimer.unref();
        }
      })
      .catch((err) => this.#log('retry promotion failed', err));
  }
}

export type { WorkerSlotView };
