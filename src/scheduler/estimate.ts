import type { Job } from '../core/types.ts';
import type { Store } from '../store/store.ts';
import { runtimeEstimatesFor } from './runtimeEstimates.ts';
import { buildWorkerViews, fitsEver, fitsNow, pendingReason, type PlacementRequest, type WorkerSlotView } from './placement.ts';

export interface QueueInsight {
  queue_position: number;
  /** ISO time, or null when nothing is known to estimate from. */
  estimated_start_time: string | null;
  /** Why the job is not running yet, in plain words (null: it starts on the next cycle). */
  pending_reason: string | null;
}

/**
 * Workers, their use and the running jobs. The submit answer (an estimate anyway) may use a
 * snapshot up to SNAPSHOT_MS old, so one submit at a time at hundreds per second does not re-read
 * the cluster for each answer; GET /jobs/{id} always reads afresh.
 */
const SNAPSHOT_MS = 250;
const snapshots = new WeakMap<Store, { at: number; views: WorkerSlotView[]; active: Job[] }>();
const reading = new WeakMap<Store, Promise<{ at: number; views: WorkerSlotView[]; active: Job[] }>>();

async function clusterSnapshot(store: Store, now: number, allowStale: boolean): Promise<{ views: WorkerSlotView[]; active: Job[] }> {
  const hit = snapshots.get(store);
  if (allowStale && hit && now - hit.at < SNAPSHOT_MS && now >= hit.at) return { views: hit.views.map(copyView), active: hit.active };
  // Concurrent submits share one read in flight instead of each re-reading the cluster (a stampede
  // that took every pool connection and cut PostgreSQL submits to a few dozen per second under load).
  let read = allowStale ? reading.get(store) : undefined;
  if (!read) {
    read = (async () => {
      const workers = (await store.listWorkers()).filter((w) => w.state === 'online');
      const views = buildWorkerViews(workers, await store.workerUsage());
      const active = await store.activeJobs();
      const snap = { at: now, views, active };
      snapshots.set(store, snap);
      return snap;
    })();
    const mine = read;
    reading.set(store, mine);
    void mine.finally(() => reading.get(store) === mine && reading.delete(store)).catch(() => {});
  }
  const snap = await read;
  return { views: snap.views.map(copyView), active: snap.active };
}

const copyView = (v: WorkerSlotView): WorkerSlotView => ({ ...v, free: { ...v.free }, free_gpus: [...v.free_gpus] });

function request(job: Job): PlacementRequest {
  return { kind: job.kind, handler: job.handler, ...job.resources };
}

/**
 * Position, estimated start and pending reason of a QUEUED job. The estimate: if a worker
 * can take it now, now; otherwise the n-th earliest expected end among running jobs that could
 * make room for it, n being the number of jobs ahead of it plus one. A running job's expected
 * end is its start plus its runtime estimate (the one estimator, `runtimeEstimates.ts`: `expected_duration`,
 * else the p90 of its template/type/tenant history), else its timeout. Null when no running job has any of these, or when no worker could ever fit it.
 * The position is counted off the event loop (`long_read`, the default) unless the caller says otherwise.
 */
export async function queueInsight(
  store: Store, job: Job, now = Date.now(), opts: { allow_stale?: boolean; position?: number; long_read?: boolean } = {},
): Promise<QueueInsight> {
  const position = opts.position ?? (await store.queuePosition(job, { long_read: opts.long_read ?? true }));
  const { views, active } = await clusterSnapshot(store, now, opts.allow_stale ?? false);
  const req = request(job);
  const reason = pendingReason(views, req);
  const iso = (t: number) => new Date(t).toISOString();
  if (views.some((v) => fitsNow(v, req)) && position === 1) {
    return { queue_position: position, estimated_start_time: iso(now), pending_reason: null };
  }
  const capable = new Set(views.filter((v) => fitsEver(v, req)).map((v) => v.id));
  if (capable.size === 0) return { queue_position: position, estimated_start_time: null, pending_reason: reason };
  const ends: number[] = [];
  const estimates = runtimeEstimatesFor(store);
  for (const r of active) {
    if (!r.worker_id || !capable.has(r.worker_id)) continue;
    const d = (await estimates.estimateMs({ type: r.type, template: r.template ?? null, tenant: r.tenant, expected_duration: r.expected_duration }, now))
      ?? (r.timeout !== null ? r.timeout * 1000 : null);
    if (d !== null) ends.push(Math.max(now, (r.started_at ?? now) + d));
  }
  ends.sort((a, b) => a - b);
  const free = views.filter((v) => fitsNow(v, req)).reduce((n, v) => n + Math.max(0, v.free.slots), 0);
  const k = position - 1 - free; // jobs that must first get a freed place
  if (k < 0) return { queue_position: position, estimated_start_time: iso(now), pending_reason: reason };
  // More jobs ahead than running jobs with a known end: unknown, rather than a guess that is too early.
  const at = ends[k];
  return { queue_position: position, estimated_start_time: at === undefined ? null : iso(at), pending_reason: reason };
}
