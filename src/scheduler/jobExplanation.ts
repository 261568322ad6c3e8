import type { Job } from '../core/types.ts';
import type { EffectiveTenant } from '../core/tiers.ts';
import type { Store } from '../store/store.ts';
import { renderReason } from './policy/explain.ts';
import type { PendingReasonData } from './policy/types.ts';
import type { Scheduler } from './scheduler.ts';
import { buildSnapshot, type BuiltSnapshot } from './snapshot.ts';

export interface JobExplanation {
  job_id: string;
  state: Job['state'];
  /** Plain words: why it is not running yet (null: it starts on the next cycle, or it is not waiting). */
  summary: string | null;
  reasons: (PendingReasonData & { text: string })[];
  /** Epoch ms, null when unknown. */
  estimated_start: number | null;
  /** The policy would admit it now: it starts on the next cycle. */
  admissible: boolean;
  tenant: Pick<EffectiveTenant, 'id' | 'tier' | 'cohort' | 'paused' | 'registered'>;
}

/** Explanations within this long of each other share one snapshot (clients polling a queued job, `waitFor`). */
const SNAPSHOT_MS = 250;
const snapshots = new WeakMap<Store, Map<string, { at: number; built: Promise<BuiltSnapshot> }>>();

function cachedSnapshot(store: Store, scheduler: Scheduler, queueKey: string, now: number): Promise<BuiltSnapshot> {
  let byKey = snapshots.get(store);
  if (!byKey) snapshots.set(store, (byKey = new Map()));
  const hit = byKey.get(queueKey);
  if (hit && now - hit.at < SNAPSHOT_MS && now >= hit.at) return hit.built;
  const pc = scheduler.policyContext;
  const built = scheduler.usage(now).then((usage) => buildSnapshot(store, {
    now, default_tier: pc.default_tier, scan_limit: pc.scan_limit, usage, estimates: pc.estimates, extra_queue_keys: [queueKey],
  }));
  if (byKey.size > 100) byKey.clear();
  byKey.set(queueKey, { at: now, built });
  built.catch(() => byKey.delete(queueKey));
  return built;
}

/**
 * Why a job waits, from the scheduling model itself: builds the same snapshot the scheduler's
 * cycle builds (workers, running jobs, tenants' queue heads and quotas, decayed usage) and asks
 * the same policy to explain this job (the snapshot is shared for 250 ms). Read-only: the decisions are not applied. The estimated
 * start comes from the policy's reservation and running jobs' expected ends.
 */
export async function explainJob(store: Store, scheduler: Scheduler, job: Job, now = Date.now(), opts: { shared?: boolean } = {}): Promise<JobExplanation> {
  const pc = scheduler.policyContext;
  const built = await cachedSnapshot(store, scheduler, job.handler ?? '', now);
  if (opts.shared && job.state === 'QUEUED') {
    // Submit answers: jobs of one shape submitted while the snapshot is shared get one policy run between them.
    let byShape = sharedAnswers.get(built);
    if (!byShape) sharedAnswers.set(built, (byShape = new Map()));
    const key = [job.tenant, job.priority, job.handler ?? '', job.resources.cpu_cores, job.resources.memory_gb, job.resources.gpu_count, job.nodes,
      job.preemptible, job.expected_duration, job.type, job.template ?? ''].join('\u0000');
    let answer = byShape.get(key);
    if (!answer) {
      answer = explainWith(built, pc, job, now);
      byShape.set(key, answer);
      answer.catch(() => byShape.delete(key));
    }
    return { ...(await answer), job_id: job.id };
  }
  return explainWith(built, pc, job, now);
}

/** Policy answers for submits, per shared snapshot and job shape (see explainJob's `shared`). */
const sharedAnswers = new WeakMap<BuiltSnapshot, Map<string, Promise<JobExplanation>>>();

async function explainWith(built: BuiltSnapshot, pc: Scheduler['policyContext'], job: Job, now: number): Promise<JobExplanation> {
  const t = built.tenants.get(job.tenant);
  const tenant = t
    ? { id: t.id, tier: t.tier, cohort: t.cohort, paused: t.paused, registered: t.registered }
    : { id: job.tenant, tier: pc.default_tier, cohort: 'default', paused: false, registered: false };
  if (job.state !== 'QUEUED') {
    return { job_id: job.id, state: job.state, summary: notWaiting(job), reasons: [], estimated_start: null, admissible: false, tenant };
  }
  // The job may lie beyond the queue head read for its tenant: add it at the end of its tenant's list (its order holds).
  const pending = new Map(built.snapshot.pending);
  const mine = pending.get(job.tenant) ?? [];
  if (!mine.some((p) => p.id === job.id)) {
    pending.set(job.tenant, [...mine, {
      id: job.id, tenant: job.tenant, priority: job.priority,
      resources: { cpu_cores: job.resources.cpu_cores, memory_gb: job.resources.memory_gb, gpu_count: job.resources.gpu_count },
      queued_at: job.sort_key, seq: job.seq, expected_duration_ms: await pc.estimates.estimateMs({ type: job.type, template: job.template ?? null, tenant: job.tenant, expected_duration: job.expected_duration }, now),
      preemptible: job.preemptible, nodes: job.nodes, queue_key: job.handler ?? '',
    }]);
  }
  const d = pc.policy.decide({ ...built.snapshot, pending }, { ...pc.config, explain: [job.id] });
  if (d.admissions.some((a) => a.job_id === job.id)) {
    return { job_id: job.id, state: job.state, summary: null, reasons: [], estimated_start: now, admissible: true, tenant };
  }
  const e = d.explanations.get(job.id);
  const reasons = (e?.reasons ?? []).map((r) => ({ ...r, text: renderReason(r) }));
  const victims = d.preemptions.filter((p) => p.for_job_id === job.id).map((p) => p.victim_id);
  if (victims.length > 0 && !reasons.some((r) => r.kind === 'preempting')) {
    const r: PendingReasonData = { kind: 'preempting', victims };
    reasons.push({ ...r, text: renderReason(r) });
  }
  const reservation = d.reservations.find((r) => r.job_id === job.id);
  const estimated = e?.estimated_start ?? reservation?.start_at ?? null;
  const words = reasons.map((r) => r.text);
  if (estimated !== null && !reasons.some((r) => r.kind === 'reservation')) words.push(`estimated start ${new Date(estimated).toISOString()}`);
  return { job_id: job.id, state: job.state, summary: words.join('; ') || null, reasons, estimated_start: estimated, admissible: false, tenant };
}

function notWaiting(job: Job): string {
  switch (job.state) {
    case 'SCHEDULED':
      return job.nodes > 1 ? `placed as a gang of ${job.nodes}; starting` : `placed on worker ${job.worker_id}; starting`;
    case 'RUNNING':
    case 'PAUSED':
      return job.preemption
        ? `being preempted (${job.preemption.reason}); it goes back to the queue when its worker has stopped it`
        : `${job.state === 'RUNNING' ? 'running' : 'paused'} ${job.nodes > 1 ? `as a gang of ${job.nodes}` : `on worker ${job.worker_id}`}`;
    case 'RETRYING':
      return `waiting for its retry backoff${job.run_after ? ` until ${new Date(job.run_after).toISOString()}` : ''}`;
    default:
      return `not waiting: ${job.state}`;
  }
}
