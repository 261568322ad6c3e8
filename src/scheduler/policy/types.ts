/**
 * The scheduling policy's interface: a pure function `decide(snapshot, config) → Decisions`.
 *
 * The server (the leader's scheduler loop) and the simulator (`src/sim/`) both build a
 * `ClusterSnapshot` and call a `Policy`; neither the policy nor its baselines touch a store,
 * a clock or a process. Times are epoch milliseconds (virtual ones in the simulator).
 *
 * Terms:
 * - **class**: the priority class (`emergency` > `critical` > `high` > `normal` > `low`), rank 0..4.
 * - **nominal quota**: what a tenant is guaranteed per resource. Tenants of one **cohort** pool
 *   their idle nominal quota: a tenant may **borrow** up to `borrowing_limit` above its nominal
 *   (null = as much as the cohort has idle) and lends at most `lending_limit` of its own idle
 *   nominal (null = all of it). A tenant without a cohort never borrows.
 * - **dominant share**: a tenant's largest fraction of any cluster resource (decayed usage plus
 *   what it holds now), divided by its weight; fair share orders tenants by it, lowest first.
 * - **reservation**: the top blocked job's promised start (from running jobs' expected ends);
 *   lower jobs may use the reserved workers only if they end before it (conservative backfill).
 * - **gang**: a job with `nodes: N > 1` needs N workers, each with `resources`, all at once.
 */
import type { Priority } from '../../core/types.ts';

export const RESOURCE_NAMES = ['cpu_cores', 'memory_gb', 'gpu_count'] as const;
export type ResourceName = (typeof RESOURCE_NAMES)[number];
export type ResourceVector = Record<ResourceName, number>;

/** A queued job as the policy sees it. `resources` is per node for gang jobs. */
export interface PendingJob {
  id: string;
  tenant: string;
  priority: Priority;
  resources: ResourceVector;
  /** When it (last) entered the queue; FIFO order within a tenant and the clock of aging. */
  queued_at: number;
  /** Tie-breaker for equal `queued_at` (e.g. the store's seq); ascending = earlier. */
  seq: number;
  /** The runtime estimate (user-given, else learned p90), null if unknown. */
  expected_duration_ms: number | null;
  /** false: only an `emergency` job may preempt it. */
  preemptible: boolean;
  /** Gang size; 1 for an ordinary job. */
  nodes: number;
  /** Which workers can run it: '' = command jobs (process workers), else a handler name. */
  queue_key: string;
}

/** Where one node of a job runs. */
export interface Placement {
  worker_id: string;
  gpu_indices: number[];
}

/** A job holding resources now (SCHEDULED, RUNNING or PAUSED). */
export interface RunningJob {
  id: string;
  tenant: string;
  priority: Priority;
  resources: ResourceVector;
  /** One entry per node (a gang job has several). */
  placements: Placement[];
  started_at: number;
  /** started_at + estimate, or null when unknown (then it never frees room in a reservation). */
  expected_end: number | null;
  preemptible: boolean;
  /** Already told to stop (preempted, in its grace period): its room is about to come free. */
  terminating: boolean;
  /**
   * When it (last) entered the queue, if known. A job past `max_wait_ms` would be requeued ahead of
   * every non-emergency job, so it is no victim for one (it would take the room straight back: a
   * preemption loop).
   */
  queued_at?: number;
}

export interface PolicyWorker {
  id: string;
  /** 'process' workers count cpu/memory/GPUs; 'handler' workers count slots only. */
  kind: 'process' | 'handler';
  /** Queue keys it serves: '' for process workers, handler names for handler workers. */
  queue_keys: readonly string[];
  capacity: ResourceVector & { slots: number };
  /** Free now (capacity minus what running jobs hold). */
  free: ResourceVector & { slots: number };
  /** Free GPU indices, ascending. */
  free_gpus: number[];
  /** Draining: takes no new work. */
  draining: boolean;
}

export interface ResourceQuota {
  /** Guaranteed amount; Infinity = unlimited (no quota on this resource). */
  nominal: number;
  /** How far above nominal the tenant may borrow from its cohort; null = no limit but the cohort's idle quota. */
  borrowing_limit: number | null;
  /** How much of its idle nominal the tenant lends to the cohort; null = all of it. */
  lending_limit: number | null;
}

/** A tenant with its tier defaults already resolved (src/core/tiers.ts does that). */
export interface PolicyTenant {
  id: string;
  /** Cohort name; null = stands alone (never borrows, never lends). */
  cohort: string | null;
  /** Fair-share weight (> 0). */
  weight: number;
  quota: Record<ResourceName, ResourceQuota>;
  /** Max jobs running at once; null = no limit. */
  max_running: number | null;
  /** Paused: its queue admits nothing. */
  paused: boolean;
  /** Priorities it may use; a job with another one waits with an explanation. */
  allowed_priorities: readonly Priority[];
}

/** Resource-milliseconds a tenant used, decayed to `at` with the configured half-life. */
export interface DecayedUsage {
  value: ResourceVector;
  at: number;
}

/**
 * Pending jobs grouped by tenant, each tenant's list in FIFO order: priority rank ascending, then
 * `queued_at`, then `seq` — the store's queue index order, so a caller never re-sorts 100k jobs.
 * Tenants missing from `tenants` get `defaultTenant` (unlimited quota, weight 1).
 */
export interface ClusterSnapshot {
  now: number;
  pending: ReadonlyMap<string, readonly PendingJob[]>;
  running: readonly RunningJob[];
  workers: readonly PolicyWorker[];
  tenants: ReadonlyMap<string, PolicyTenant>;
  /** Decayed past usage per tenant (see `decayUsage` in usage.ts); missing = none. */
  usage: ReadonlyMap<string, DecayedUsage>;
}

export interface PolicyConfig {
  /** Half-life of past usage in fair share (ms). */
  half_life_ms: number;
  /** A waiting low/normal job rises one priority class per this much wait, up to `high`; 0 = no aging. */
  aging_step_ms: number;
  /** Bound on wait: a job waiting longer ranks first among non-emergency jobs. */
  max_wait_ms: number;
  /**
   * Aging within a class, for `high` and above (where aging has no class left to lift a job
   * into): a job that has waited this long goes ahead of the jobs of its class that waited less,
   * oldest first — fair share and nominal-first no longer hold it back, so no tenant's urgent work
   * waits far past the others'. 0 = off.
   */
  class_fifo_after_ms: number;
  /** Whether to preempt (emergency/critical over lower priority; reclaim of borrowed quota). */
  preemption: boolean;
  /**
   * A critical job preempts lower-priority work only after waiting this long (ms): preemption
   * wastes the victims' work, so a critical job first gets the chance to start in room that frees
   * up. Emergency jobs preempt at once; reclaiming nominal quota is immediate too.
   */
  critical_preempt_after_ms: number;
  /** Whether the top blocked job holds a reservation and others backfill around it. */
  backfill: boolean;
  /** At most this many admissions per cycle (bounds a cycle's time). */
  max_admissions: number;
  /** At most this many pending jobs looked at per cycle. */
  max_considered: number;
  /** Stop the cycle after this many jobs in a row found no room or quota (fragmented cluster). */
  max_fruitless: number;
  /** At most this many preemption searches per cycle (each scans running jobs). */
  max_preemption_attempts: number;
  /** No new preemption search once this many victims were chosen in the cycle (and a job's quota victims stop there). */
  max_preemptions: number;
  /** Explanations: for every job looked at and not admitted ('considered'), for the given ids, or none. */
  explain: 'considered' | readonly string[] | 'none';
}

export interface Admission {
  job_id: string;
  tenant: string;
  /** One per node. */
  placements: Placement[];
  /** Admitted above its nominal quota on some resource (may be reclaimed by preemption). */
  borrowing: boolean;
  /** Started ahead of a reserved job because it ends before the reservation. */
  backfilled: boolean;
}

export interface Preemption {
  victim_id: string;
  victim_tenant: string;
  /** The job that needs the room. */
  for_job_id: string;
  for_tenant: string;
  kind: 'priority' | 'reclaim';
  /** Plain words for the victim's event: who and why. */
  reason: string;
}

export interface Reservation {
  job_id: string;
  /** Estimated start (ms). */
  start_at: number;
  worker_ids: string[];
}

/** One structured reason a job is pending. */
export type PendingReasonData =
  | { kind: 'tenant_paused'; tenant: string }
  | { kind: 'priority_not_allowed'; tenant: string; priority: Priority }
  | { kind: 'no_worker_for_queue'; queue_key: string }
  | { kind: 'too_big'; resource: ResourceName | 'nodes'; need: number; largest: number }
  | { kind: 'quota'; tenant: string; resource: ResourceName; used: number; need: number; limit: number; nominal: number; cohort: string | null; cohort_idle: number }
  | { kind: 'max_running'; tenant: string; running: number; limit: number }
  /** `nodes_with_room`: for a gang, how many workers have room for one node now. */
  | { kind: 'no_room'; need: ResourceVector; nodes: number; nodes_with_room?: number }
  | { kind: 'higher_ahead'; count: number }
  | { kind: 'reservation'; start_at: number }
  | { kind: 'blocked_by_reservation'; job_id: string; start_at: number }
  /** `victims` are being stopped now (none: earlier victims are still stopping) to make room on `workers`. */
  | { kind: 'preempting'; victims: string[]; workers?: string[] }
  | { kind: 'cycle_limit' }
  | { kind: 'not_considered' };

export interface Explanation {
  job_id: string;
  reasons: PendingReasonData[];
  /** Estimated start (ms), null when unknown. */
  estimated_start: number | null;
}

export interface Decisions {
  admissions: Admission[];
  preemptions: Preemption[];
  reservations: Reservation[];
  explanations: Map<string, Explanation>;
  /** Counters of the cycle (for metrics and the simulator's decisions/s). */
  stats: { considered: number; admitted: number; preempted: number };
}

/** A scheduling policy: Gantry's or a baseline. Pure: same snapshot and config, same decisions. */
export interface Policy {
  readonly name: string;
  decide(snapshot: ClusterSnapshot, config: PolicyConfig): Decisions;
}

export const DEFAULT_POLICY_CONFIG: PolicyConfig = {
  half_life_ms: 60 * 60_000,
  aging_step_ms: 30 * 60_000,
  max_wait_ms: 24 * 3_600_000,
  class_fifo_after_ms: 10 * 60_000,
  preemption: true,
  critical_preempt_after_ms: 0,
  backfill: true,
  max_admissions: 5_000,
  max_considered: 20_000,
  max_fruitless: 2_000,
  max_preemption_attempts: 8,
  max_preemptions: 64,
  explain: 'considered',
};
