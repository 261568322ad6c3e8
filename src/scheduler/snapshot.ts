import type { WorkerInfo, WorkerUsage } from '../core/types.ts';
import { effectiveTenant, QUOTA_RESOURCES, type EffectiveTenant, type TenantRecord, type Tier } from '../core/tiers.ts';
import type { Store, ActiveRow, PendingRow } from '../store/store.ts';
import { addHeldUsage } from '../store/ops/readSchedulingState.ts';
import { buildWorkerViews } from './placement.ts';
import type { ClusterSnapshot, DecayedUsage, PendingJob, PolicyTenant, PolicyWorker, ResourceQuota, RunningJob } from './policy/types.ts';
import type { RuntimeEstimates } from './runtimeEstimates.ts';

export interface SnapshotOptions {
  now: number;
  default_tier: Tier;
  /** Queued jobs read per cycle at most, shared out over the tenants with queued work. */
  scan_limit: number;
  usage: ReadonlyMap<string, DecayedUsage>;
  estimates: RuntimeEstimates;
  /** Also read these queues (e.g. the queue of a job being explained, even if no worker serves it). */
  extra_queue_keys?: readonly string[];
  /**
   * The registered workers (not offline) and tenants as the caller already knows them (the
   * scheduler keeps them between cycles until something may have changed them); read from the store when absent.
   */
  known?: { workers: readonly WorkerInfo[]; tenants: readonly TenantRecord[] };
  /**
   * The queues the caller expects the workers to serve (the last cycle's): the tenants with queued
   * work in them are read at once, alongside the workers, and read again only if the workers read
   * now serve other queues. With head_limit_hint, their heads come in the same read.
   */
  served_hint?: readonly string[];
  /**
   * How many queued jobs per tenant the last cycle read (BuiltSnapshot.head_limit): with a served_hint,
   * the heads of the hinted queues are read this long together with the tenants (Store.queueHeads), so
   * when the workers serve the hinted queues and this cycle needs no more, the heads cost no round trip of their own.
   */
  head_limit_hint?: number;
}

export interface BuiltSnapshot {
  snapshot: ClusterSnapshot;
  /** Effective settings of every tenant in the snapshot (tier defaults + overrides). */
  tenants: ReadonlyMap<string, EffectiveTenant>;
  active: readonly ActiveRow[];
  /** The template of each pending job that has one (circuit breakers are keyed by it too). */
  templates: ReadonlyMap<string, string>;
  /** The workers and tenant records this snapshot was built from (for a caller that keeps them). */
  read: { workers: readonly WorkerInfo[]; tenants: readonly TenantRecord[] };
  /** The queues whose heads were read (those online workers serve, and any extra ones). */
  served: readonly string[];
  /** Every queued job in those queues is in `snapshot.pending` (no tenant's head was cut at the read limit). */
  whole_queue: boolean;
  /** Queued jobs read per tenant (null when no tenant had queued work): the next cycle's head_limit_hint. */
  head_limit: number | null;
}

/** A tenant's queue head is at least this long, however many tenants share the scan limit. */
const MIN_PER_TENANT = 100;
/** With no free slot anywhere, each tenant's first jobs only (candidates for preemption or reclaim). */
const FULL_CLUSTER_HEAD = 20;

export function policyTenant(t: EffectiveTenant): PolicyTenant {
  const quota = {} as Record<(typeof QUOTA_RESOURCES)[number], ResourceQuota>;
  for (const r of QUOTA_RESOURCES) {
    quota[r] = { nominal: t.nominal_quota[r], borrowing_limit: t.borrowing_limit[r] ?? null, lending_limit: t.lending_limit[r] ?? null };
  }
  return {
    id: t.id, cohort: t.cohort, weight: t.fair_share_weight, quota, max_running: t.max_running_jobs, paused: t.paused,
    allowed_priorities: t.allowed_priorities,
  };
}

/**
 * Builds the policy's view of the cluster from the store: online and draining workers with what
 * is free on them, the jobs holding resources (with expected ends), each tenant's queue head (FIFO
 * within the tenant, from the tenant queue index) and every tenant's effective settings, read
 * afresh unless the caller passes them as `known` (the scheduler does on SQLite, until a write may
 * have changed them) — so a quota change is in force on the next cycle.
 */
export async function buildSnapshot(store: Store, o: SnapshotOptions): Promise<BuiltSnapshot> {
  // The reads that do not depend on each other run together (on PostgreSQL each is a round trip):
  // the tenants with queued work need only the workers' queues, so with the workers known they go
  // out alongside the running jobs.
  const workersRead = o.known ? Promise.resolve(o.known.workers) : store.listWorkers(false);
  const tenantsRead = o.known ? Promise.resolve(o.known.tenants) : store.listTenants();
  const hint = o.known ? null : servedKeys(o.served_hint ?? [], o.extra_queue_keys);
  const guess = o.head_limit_hint ?? MIN_PER_TENANT;
  const hinted = hint && hint.size > 0 ? store.queueHeads([...hint], guess) : null;
  // Handled where it is used; this keeps an unused or orphaned read (the workers' read failed) from being an unhandled rejection.
  hinted?.catch(() => {});
  const servedRead = workersRead.then(async (ws) => {
    const keys = servedKeys(ws.filter((w) => w.state === 'online').flatMap(queueKeysOf), o.extra_queue_keys);
    const asHinted = hinted !== null && keys.size === hint!.size && [...keys].every((k) => hint!.has(k));
    const heads = keys.size > 0 && asHinted ? await hinted : null;
    const tenants = keys.size === 0 ? [] : heads ? [...heads.keys()] : await store.queuedTenants([...keys]);
    return { keys, tenants, heads };
  });
  const [workers, active, records, served] = await Promise.all([workersRead, store.activeJobRows(), tenantsRead, servedRead]);
  // What each worker's jobs hold, from the same read as the running jobs (one pass over the active index).
  const usage = addHeldUsage(active, new Map<string, WorkerUsage>());
  const views = buildWorkerViews(workers, usage);
  const policyWorkers: PolicyWorker[] = views.map((v, i) => ({
    id: v.id,
    kind: v.kind,
    queue_keys: queueKeysOf(v),
    capacity: { cpu_cores: v.total.cpu_cores, memory_gb: v.total.memory_gb, gpu_count: v.total.gpu_count, slots: v.total.slots },
    free: { ...v.free },
    free_gpus: v.free_gpus,
    draining: workers[i]!.state !== 'online',
  }));
  const keys = served.keys;
  const queuedTenants = served.tenants;

  const pending = new Map<string, PendingJob[]>();
  const templates = new Map<string, string>();
  let wholeQueue = true;
  let headLimit: number | null = null;
  if (queuedTenants.length > 0) {
    // Read what this cycle can use: with free slots, as many jobs as slots and a quarter more, at least
    // MIN_PER_TENANT more (backfill and other shapes need choice); with none, only each tenant's head —
    // the jobs that could preempt or reclaim. Every row read is also a candidate the policy weighs: four
    // times the slots (as before) made a W1 drain read and weigh each queued job ~4 times (500 slots →
    // 2,000 rows per cycle): server CPU per drained job 100 → 85 µs (SQLite), 107 → 81 µs (PostgreSQL).
    const freeSlots = policyWorkers.reduce((n, w) => n + (w.draining ? 0 : Math.max(0, w.free.slots)), 0);
    const want = freeSlots === 0 ? FULL_CLUSTER_HEAD : freeSlots + Math.max(MIN_PER_TENANT, Math.ceil(freeSlots / 4));
    const per = Math.min(want, Math.max(MIN_PER_TENANT, Math.ceil(o.scan_limit / queuedTenants.length)));
    headLimit = per;
    // Read with the tenants when this cycle needs no more than the hinted length (cut here); otherwise now.
    const known = served.heads && per <= guess ? served.heads : null;
    const heads = await Promise.all(queuedTenants.map((t) => known?.get(t)?.slice(0, per) ?? store.tenantQueueHead(t, [...keys], per)));
    for (const rows of heads) {
      if (rows.length >= per) wholeQueue = false;
      if (rows.length === 0) continue;
      for (const r of rows) if (r.template) templates.set(r.id, r.template);
      pending.set(rows[0]!.tenant, await pendingJobs(rows, o));
    }
  }

  const running: RunningJob[] = [];
  for (const a of active) {
    // A gang's members come as consecutive rows of the same job, one worker each: one running job with N placements.
    const prev = running[running.length - 1];
    if (prev && prev.id === a.id) {
      prev.placements.push({ worker_id: a.worker_id, gpu_indices: a.gpu_indices });
      continue;
    }
    const start = a.started_at ?? a.updated_at;
    const est = await o.estimates.estimateMs(a, o.now);
    const d = est ?? (a.timeout !== null ? a.timeout * 1000 : null);
    running.push({
      id: a.id, tenant: a.tenant, priority: a.priority,
      resources: { cpu_cores: a.cpu_cores, memory_gb: a.memory_gb, gpu_count: a.gpu_count },
      placements: [{ worker_id: a.worker_id, gpu_indices: a.gpu_indices }],
      started_at: start, expected_end: d === null ? null : Math.max(o.now, start + d),
      preemptible: a.preemptible, terminating: a.terminating, queued_at: a.sort_key,
    });
  }

  const byId = new Map(records.map((r) => [r.id, r]));
  const effective = new Map<string, EffectiveTenant>();
  const tenants = new Map<string, PolicyTenant>();
  const add = (id: string) => {
    if (effective.has(id)) return;
    const e = effectiveTenant(id, byId.get(id) ?? null, o.default_tier);
    effective.set(id, e);
    tenants.set(id, policyTenant(e));
  };
  for (const r of records) add(r.id);
  for (const t of pending.keys()) add(t);
  for (const r of running) add(r.tenant);

  return {
    snapshot: { now: o.now, pending, running, workers: policyWorkers, tenants, usage: o.usage }, tenants: effective, active, templates,
    read: { workers, tenants: records }, served: [...keys], whole_queue: wholeQueue, head_limit: headLimit,
  };
}

function servedKeys(keys: readonly string[], extra: readonly string[] | undefined): Set<string> {
  return new Set([...(extra ?? []), ...keys]);
}

/** The queues a worker takes jobs from: '' (command jobs) for a process worker, its handler names for an SDK Worker. */
function queueKeysOf(w: { kind: WorkerInfo['kind']; handlers: Iterable<string> }): string[] {
  return w.kind === 'process' ? [''] : [...w.handlers];
}

/**
 * A queue head's rows as the policy's jobs. One estimate per distinct runtime key, not one await
 * per job: a head is mostly jobs of one type, template and tenant (W1: 600 rows, one key).
 */
async function pendingJobs(rows: readonly PendingRow[], o: SnapshotOptions): Promise<PendingJob[]> {
  const keyOf = (r: PendingRow) => `${r.type}\u0000${r.template ?? ''}\u0000${r.tenant}\u0000${r.expected_duration ?? ''}`;
  const estimates = new Map<string, Promise<number | null>>();
  for (const r of rows) {
    const k = keyOf(r);
    if (!estimates.has(k)) estimates.set(k, o.estimates.estimateMs(r, o.now));
  }
  const known = new Map<string, number | null>();
  await Promise.all([...estimates].map(async ([k, p]) => known.set(k, await p)));
  return rows.map((r) => pendingJob(r, known.get(keyOf(r))!));
}

function pendingJob(r: PendingRow, expected_duration_ms: number | null): PendingJob {
  return {
    id: r.id, tenant: r.tenant, priority: r.priority,
    resources: { cpu_cores: r.cpu_cores, memory_gb: r.memory_gb, gpu_count: r.gpu_count },
    // The queue position key: queue time, as edited by reorder — so FIFO within a tenant honours reorders.
    queued_at: r.sort_key, seq: r.seq,
    expected_duration_ms,
    preemptible: r.preemptible, nodes: r.nodes, queue_key: r.queue_key,
  };
}
