/**
 * The discrete-event simulator: runs a real `Policy` (the same `decide` the server calls) under a
 * virtual clock. Events are job arrivals, job ends and preempted jobs stopping (after the grace
 * period); after the events of one instant, one scheduling cycle runs on a snapshot of the
 * simulated cluster and its decisions are applied at once. No processes, no waiting: a day of
 * cluster time takes seconds.
 *
 * A preempted job is requeued at its original queue position (aging never lifts a job over
 * critical work, so it cannot bounce back over its preemptor) and later runs from the start (no
 * checkpoint is modelled); the GPU time it had used counts as wasted.
 */
import { performance } from 'node:perf_hooks';
import type { Priority } from '../core/types.ts';
import { PRIORITY_RANK } from '../scheduler/policy/engine.ts';
import { Heap } from '../scheduler/policy/heap.ts';
import { DEFAULT_TENANT } from '../scheduler/policy/quota.ts';
import {
  RESOURCE_NAMES,
  type ClusterSnapshot,
  type DecayedUsage,
  type PendingJob,
  type Placement,
  type Policy,
  type PolicyConfig,
  type PolicyTenant,
  type PolicyWorker,
  type ResourceVector,
  type RunningJob,
} from '../scheduler/policy/types.ts';
import { accrueUsage, dominantShare, zeroVector } from '../scheduler/policy/usage.ts';
import type { ClusterSpec, TraceJob } from './trace.ts';

export interface SimJob {
  id: string;
  tenant: string;
  priority: Priority;
  submit_ms: number;
  /** Start of the run that completed (null if it never did). */
  start_ms: number | null;
  end_ms: number | null;
  first_start_ms: number | null;
  duration_ms: number;
  preempted: number;
  /** GPUs × nodes. */
  gpus: number;
  cpus: number;
}

export interface SimResult {
  policy: string;
  jobs: SimJob[];
  cycles: number;
  /** Wall time spent inside `decide` (ms) and the admissions + preemptions it returned. */
  decide_ms: number;
  decisions: number;
  preemptions: number;
  wasted_gpu_hours: number;
  wasted_cpu_hours: number;
  /** ∫ allocated dt per resource (resource-ms), over the whole run. */
  allocated: ResourceVector;
  capacity: ResourceVector;
  /**
   * Jain's index over tenants' average weighted dominant share while backlogged (jobs waiting) at a
   * time when at least one other tenant was backlogged too; null without contention.
   */
  jain: number | null;
  contended_ms: number;
  /** Resource-ms each tenant held, per resource. */
  tenant_usage: Map<string, ResourceVector>;
  tenants: Map<string, PolicyTenant>;
  first_submit_ms: number;
  last_end_ms: number;
}

export interface SimOptions {
  /** Called before each cycle: may change tenants (quota changes between cycles). */
  beforeCycle?: (now: number, tenants: Map<string, PolicyTenant>) => void;
  /** Called after each cycle with the decisions (tests inspect explanations and reservations). */
  afterCycle?: (now: number, d: ReturnType<Policy['decide']>, snap: ClusterSnapshot) => void;
}

interface Run {
  job: PendingJob;
  trace: TraceJob;
  placements: Placement[];
  start: number;
  end: number;
  terminating: boolean;
  /** Unique per run and renewed on preemption, so stale end events are ignored. */
  gen: number;
}

interface SimEvent {
  t: number;
  kind: 'end' | 'stop';
  id: string;
  gen: number;
}

const pendingLess = (a: PendingJob, b: PendingJob): boolean => {
  const ra = PRIORITY_RANK[a.priority];
  const rb = PRIORITY_RANK[b.priority];
  if (ra !== rb) return ra < rb;
  if (a.queued_at !== b.queued_at) return a.queued_at < b.queued_at;
  return a.seq < b.seq;
};

function insertSorted(list: PendingJob[], j: PendingJob): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (pendingLess(list[mid]!, j)) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, j);
}

const MAX_CYCLES_PER_INSTANT = 20;

export function buildWorkers(spec: ClusterSpec): PolicyWorker[] {
  const out: PolicyWorker[] = [];
  for (const g of spec.workers) {
    for (let i = 0; i < g.count; i++) {
      const cap = { cpu_cores: g.cpu_cores, memory_gb: g.memory_gb, gpu_count: g.gpu_count, slots: g.slots };
      out.push({ id: `${g.name}-${i}`, kind: 'process', queue_keys: [''], capacity: cap, free: { ...cap }, free_gpus: [...Array(g.gpu_count).keys()], draining: false });
    }
  }
  return out;
}

export function simulate(trace: readonly TraceJob[], spec: ClusterSpec, policy: Policy, config: PolicyConfig = spec.policy, opts: SimOptions = {}): SimResult {
  const workers = buildWorkers(spec);
  const byWorker = new Map(workers.map((w) => [w.id, w]));
  const tenants = new Map(spec.tenants.map((t) => [t.id, structuredClone(t)]));
  for (const j of trace) if (!tenants.has(j.tenant)) tenants.set(j.tenant, DEFAULT_TENANT(j.tenant));
  const capacity = zeroVector();
  for (const w of workers) for (const r of RESOURCE_NAMES) capacity[r] += w.capacity[r];

  const results = new Map<string, SimJob>();
  const traceById = new Map<string, TraceJob>();
  const pending = new Map<string, PendingJob[]>();
  const running = new Map<string, Run>();
  const events = new Heap<SimEvent>((a, b) => a.t < b.t || (a.t === b.t && a.id < b.id));
  const usage = new Map<string, DecayedUsage>();
  const alloc = new Map<string, ResourceVector>();
  const tenantUsage = new Map<string, ResourceVector>();
  for (const t of tenants.keys()) {
    alloc.set(t, zeroVector());
    tenantUsage.set(t, zeroVector());
    pending.set(t, []);
  }
  const allocated = zeroVector();
  let pendingCount = 0;
  let next = 0;
  let now = trace[0]?.submit_ms ?? 0;
  let cycles = 0;
  let decideMs = 0;
  let decisions = 0;
  let preemptions = 0;
  let wastedGpuMs = 0;
  let wastedCpuMs = 0;
  /** Per tenant: ∫ weighted dominant share dt and ∫ dt over the time it was backlogged while another was too. */
  const fair = new Map<string, { share_ms: number; ms: number }>();
  let contended = 0;
  let lastEnd = now;
  let seq = 0;
  /** Run generations: an event applies only to the run (and state) it was scheduled for. */
  let gens = 0;

  const enqueue = (t: TraceJob, queuedAt: number): void => {
    const pj: PendingJob = {
      id: t.id,
      tenant: t.tenant,
      priority: t.priority,
      resources: { cpu_cores: t.cpu_cores, memory_gb: t.memory_gb, gpu_count: t.gpu_count },
      queued_at: queuedAt,
      seq: seq++,
      expected_duration_ms: t.expected_duration_ms,
      preemptible: t.preemptible,
      nodes: t.nodes,
      queue_key: t.queue_key,
    };
    insertSorted(pending.get(t.tenant)!, pj);
    pendingCount++;
  };

  /** Integrates utilization, usage and fairness from `now` to `t`. */
  const advance = (t: number): void => {
    const dt = t - now;
    if (dt <= 0) return;
    for (const r of RESOURCE_NAMES) {
      let sum = 0;
      for (const a of alloc.values()) sum += a[r];
      allocated[r] += sum * dt;
    }
    let backlogged = 0;
    for (const id of alloc.keys()) if ((pending.get(id)?.length ?? 0) > 0) backlogged++;
    for (const [id, a] of alloc) {
      const tu = tenantUsage.get(id)!;
      for (const r of RESOURCE_NAMES) tu[r] += a[r] * dt;
      if (backlogged >= 2 && (pending.get(id)?.length ?? 0) > 0) {
        const f = fair.get(id) ?? { share_ms: 0, ms: 0 };
        f.share_ms += dominantShare(zeroVector(), a, capacity, 1, tenants.get(id)!.weight) * dt;
        f.ms += dt;
        fair.set(id, f);
      }
    }
    if (backlogged >= 2) contended += dt;
    now = t;
  };

  const charge = (tenant: string, res: ResourceVector, nodes: number, sign: 1 | -1): void => {
    usage.set(tenant, accrueUsage(usage.get(tenant), alloc.get(tenant)!, now, config.half_life_ms));
    const a = alloc.get(tenant)!;
    for (const r of RESOURCE_NAMES) a[r] += sign * res[r] * nodes;
  };

  const release = (run: Run): void => {
    for (const p of run.placements) {
      const w = byWorker.get(p.worker_id)!;
      w.free.slots += 1;
      w.free.cpu_cores += run.job.resources.cpu_cores;
      w.free.memory_gb += run.job.resources.memory_gb;
      w.free.gpu_count += p.gpu_indices.length;
      w.free_gpus = [...w.free_gpus, ...p.gpu_indices].sort((a, b) => a - b);
    }
    charge(run.job.tenant, run.job.resources, run.placements.length, -1);
    running.delete(run.job.id);
  };

  const cycle = (): void => {
    opts.beforeCycle?.(now, tenants);
    const runningList: RunningJob[] = [];
    for (const r of running.values()) {
      runningList.push({
        id: r.job.id,
        tenant: r.job.tenant,
        priority: r.job.priority,
        resources: r.job.resources,
        placements: r.placements,
        started_at: r.start,
        expected_end: r.job.expected_duration_ms === null ? null : r.start + r.job.expected_duration_ms,
        preemptible: r.job.preemptible,
        terminating: r.terminating,
        queued_at: r.job.queued_at,
      });
    }
    for (const id of tenants.keys()) usage.set(id, accrueUsage(usage.get(id), alloc.get(id)!, now, config.half_life_ms));
    const snap: ClusterSnapshot = { now, pending, running: runningList, workers, tenants, usage };
    const t0 = performance.now();
    const d = policy.decide(snap, config);
    decideMs += performance.now() - t0;
    cycles++;
    decisions += d.admissions.length + d.preemptions.length;
    opts.afterCycle?.(now, d, snap);
    const admitted = new Map(d.admissions.map((a) => [a.job_id, a]));
    const touched = new Set(d.admissions.map((a) => a.tenant));
    for (const t of touched) {
      const list = pending.get(t)!;
      const kept = list.filter((j) => !admitted.has(j.id));
      for (const j of list) {
        if (!admitted.has(j.id)) continue;
        const tj = traceById.get(j.id)!;
        const a = admitted.get(j.id)!;
        for (const p of a.placements) {
          const w = byWorker.get(p.worker_id)!;
          w.free.slots -= 1;
          w.free.cpu_cores -= j.resources.cpu_cores;
          w.free.memory_gb -= j.resources.memory_gb;
          w.free.gpu_count -= p.gpu_indices.length;
          const taken = new Set(p.gpu_indices);
          w.free_gpus = w.free_gpus.filter((g) => !taken.has(g));
        }
        charge(t, j.resources, a.placements.length, 1);
        const run: Run = { job: j, trace: tj, placements: a.placements, start: now, end: now + tj.duration_ms, terminating: false, gen: ++gens };
        running.set(j.id, run);
        const res = results.get(j.id)!;
        if (res.first_start_ms === null) res.first_start_ms = now;
        events.push({ t: run.end, kind: 'end', id: j.id, gen: run.gen });
      }
      pendingCount -= list.length - kept.length;
      pending.set(t, kept);
    }
    for (const p of d.preemptions) {
      const run = running.get(p.victim_id);
      if (!run || run.terminating) continue;
      run.terminating = true;
      run.gen = ++gens;
      preemptions++;
      results.get(p.victim_id)!.preempted++;
      events.push({ t: now + spec.preempt_grace_ms, kind: 'stop', id: p.victim_id, gen: run.gen });
    }
  };

  for (const t of trace) {
    traceById.set(t.id, t);
    results.set(t.id, {
      id: t.id,
      tenant: t.tenant,
      priority: t.priority,
      submit_ms: t.submit_ms,
      start_ms: null,
      end_ms: null,
      first_start_ms: null,
      duration_ms: t.duration_ms,
      preempted: 0,
      gpus: t.gpu_count * t.nodes,
      cpus: t.cpu_cores * t.nodes,
    });
  }

  const maxCycles = 100 * trace.length + 1000;
  let sameInstant = 0;
  let lastCycleAt = -Infinity;
  while (cycles < maxCycles) {
    const ta = next < trace.length ? trace[next]!.submit_ms : Infinity;
    const te = events.peek()?.t ?? Infinity;
    const t = Math.min(ta, te);
    if (t === Infinity) break;
    advance(t);
    while (next < trace.length && trace[next]!.submit_ms <= now) {
      enqueue(trace[next]!, trace[next]!.submit_ms);
      next++;
    }
    while ((events.peek()?.t ?? Infinity) <= now) {
      const e = events.pop()!;
      const run = running.get(e.id);
      if (!run || run.gen !== e.gen) continue;
      if (e.kind === 'end') {
        const res = results.get(e.id)!;
        res.start_ms = run.start;
        res.end_ms = now;
        lastEnd = Math.max(lastEnd, now);
        release(run);
      } else {
        const ran = now - run.start;
        wastedGpuMs += ran * run.job.resources.gpu_count * run.placements.length;
        wastedCpuMs += ran * run.job.resources.cpu_cores * run.placements.length;
        release(run);
        enqueue(run.trace, run.job.queued_at);
      }
    }
    // A policy that keeps deciding without time passing (preempt, requeue, preempt…) must not hang the simulation.
    sameInstant = now === lastCycleAt ? sameInstant + 1 : 0;
    lastCycleAt = now;
    if (pendingCount > 0 && sameInstant < MAX_CYCLES_PER_INSTANT) cycle();
  }

  return {
    policy: policy.name,
    jobs: [...results.values()],
    cycles,
    decide_ms: decideMs,
    decisions,
    preemptions,
    wasted_gpu_hours: wastedGpuMs / 3_600_000,
    wasted_cpu_hours: wastedCpuMs / 3_600_000,
    allocated,
    capacity,
    jain: jainIndex([...fair.values()].filter((f) => f.ms > 0).map((f) => f.share_ms / f.ms)),
    contended_ms: contended,
    tenant_usage: tenantUsage,
    tenants,
    first_submit_ms: trace[0]?.submit_ms ?? 0,
    last_end_ms: lastEnd,
  };
}

/** Jain's fairness index (Σx)² / (n·Σx²): 1 = all equal, 1/n = one tenant has everything. */
export function jainIndex(xs: readonly number[]): number | null {
  if (xs.length < 2) return null;
  const s = xs.reduce((a, b) => a + b, 0);
  const s2 = xs.reduce((a, b) => a + b * b, 0);
  return s2 > 0 ? (s * s) / (xs.length * s2) : null;
}
