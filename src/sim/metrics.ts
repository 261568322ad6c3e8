/**
 * The numbers a simulation is judged by (REFERENCE.md §2, "how schedulers are evaluated"):
 * JCT, queueing delay per priority class, utilization, makespan, Jain's index, preemptions and
 * wasted GPU-hours, decisions/s.
 */
import { PRIORITIES, type Priority } from '../core/types.ts';
import type { SimResult } from './simulator.ts';

export interface PolicyMetrics {
  policy: string;
  jobs: number;
  finished: number;
  /** Seconds. */
  mean_jct_s: number;
  p99_jct_s: number;
  /** Queueing delay = completion − submit − the successful run (so it includes waits after preemption). */
  queue_delay_s: Partial<Record<Priority, { mean: number; p99: number; jobs: number }>>;
  /** Fraction of capacity allocated over the makespan, per resource (null without that resource). */
  util_cpu: number | null;
  util_gpu: number | null;
  makespan_s: number;
  jain: number | null;
  contended_s: number;
  preemptions: number;
  wasted_gpu_hours: number;
  wasted_cpu_hours: number;
  decisions_per_s: number;
  cycles: number;
  /** Per tenant: share of the dominant resource-time it received, and its weight's share. */
  tenant_shares: { tenant: string; share: number; weight_share: number }[];
  /**
   * Lower bounds for any policy on the same trace (bound.ts; set by `runPolicies` when the trace
   * has critical jobs): the least mean JCT possible with this policy's critical p99 queueing
   * delay, and the least critical p99 possible with this policy's mean JCT. Seconds.
   */
  bound?: { mean_jct_s: number; critical_p99_s: number };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

const mean = (xs: readonly number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

export function computeMetrics(r: SimResult): PolicyMetrics {
  const done = r.jobs.filter((j) => j.end_ms !== null);
  const jct = done.map((j) => (j.end_ms! - j.submit_ms) / 1000).sort((a, b) => a - b);
  const queue_delay_s: PolicyMetrics['queue_delay_s'] = {};
  for (const p of PRIORITIES) {
    const d = done.filter((j) => j.priority === p).map((j) => (j.end_ms! - j.submit_ms - j.duration_ms) / 1000).sort((a, b) => a - b);
    if (d.length > 0) queue_delay_s[p] = { mean: mean(d), p99: percentile(d, 99), jobs: d.length };
  }
  const span = Math.max(1, r.last_end_ms - r.first_submit_ms);
  const dominant = r.capacity.gpu_count > 0 ? 'gpu_count' : 'cpu_cores';
  let total = 0;
  let wsum = 0;
  for (const [t, u] of r.tenant_usage) {
    total += u[dominant];
    wsum += r.tenants.get(t)?.weight ?? 1;
  }
  const tenant_shares = [...r.tenant_usage].map(([t, u]) => ({ tenant: t, share: total > 0 ? u[dominant] / total : 0, weight_share: (r.tenants.get(t)?.weight ?? 1) / wsum }));
  return {
    policy: r.policy,
    jobs: r.jobs.length,
    finished: done.length,
    mean_jct_s: mean(jct),
    p99_jct_s: percentile(jct, 99),
    queue_delay_s,
    util_cpu: r.capacity.cpu_cores > 0 ? r.allocated.cpu_cores / (r.capacity.cpu_cores * span) : null,
    util_gpu: r.capacity.gpu_count > 0 ? r.allocated.gpu_count / (r.capacity.gpu_count * span) : null,
    makespan_s: span / 1000,
    jain: r.jain,
    contended_s: r.contended_ms / 1000,
    preemptions: r.preemptions,
    wasted_gpu_hours: r.wasted_gpu_hours,
    wasted_cpu_hours: r.wasted_cpu_hours,
    decisions_per_s: r.decide_ms > 0 ? r.decisions / (r.decide_ms / 1000) : 0,
    cycles: r.cycles,
    tenant_shares,
  };
}
