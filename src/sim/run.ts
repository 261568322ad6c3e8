/** Runs one trace on one cluster under several policies (and what-if changes) and collects the metrics. */
import { POLICIES, POLICY_NAMES } from '../scheduler/policy/policies.ts';
import { DEFAULT_TENANT } from '../scheduler/policy/quota.ts';
import { RESOURCE_NAMES, type ResourceName } from '../scheduler/policy/types.ts';
import { criticalDelayLowerBound, meanJctLowerBound } from './bound.ts';
import { computeMetrics, type PolicyMetrics } from './metrics.ts';
import { simulate } from './simulator.ts';
import { SimInputError, type ClusterSpec, type TraceJob } from './trace.ts';

export interface WhatIf {
  /** Adds workers shaped like the largest GPU worker group until this many GPUs are added. */
  add_gpus?: number;
  /** Sets a tenant's nominal quota per resource. */
  quota?: { tenant: string; values: Partial<Record<ResourceName, number>> }[];
}

/** `all`, one name or a comma list → policy names, in the order given. */
export function parsePolicies(arg: string): string[] {
  const names = arg === 'all' ? POLICY_NAMES : arg.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!POLICIES.has(n)) throw new SimInputError(`unknown policy '${n}' (use ${POLICY_NAMES.join(', ')} or all)`);
  if (names.length === 0) throw new SimInputError('no policy given');
  return names;
}

/** `tenant=X,gpu_count=16,cpu_cores=8` → a quota change. */
export function parseQuotaArg(arg: string): { tenant: string; values: Partial<Record<ResourceName, number>> } {
  let tenant: string | null = null;
  const values: Partial<Record<ResourceName, number>> = {};
  for (const part of arg.split(',')) {
    const [k, v] = part.split('=').map((s) => s.trim());
    if (!k || v === undefined || v === '') throw new SimInputError(`--quota ${arg}: expected tenant=NAME,RESOURCE=N,…`);
    if (k === 'tenant') tenant = v;
    else if ((RESOURCE_NAMES as readonly string[]).includes(k)) {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new SimInputError(`--quota ${arg}: ${k} must be a number >= 0`);
      values[k as ResourceName] = n;
    } else throw new SimInputError(`--quota ${arg}: unknown key ${k} (use tenant, ${RESOURCE_NAMES.join(', ')})`);
  }
  if (tenant === null) throw new SimInputError(`--quota ${arg}: tenant=NAME is required`);
  return { tenant, values };
}

export function applyWhatIf(spec: ClusterSpec, w: WhatIf): ClusterSpec {
  const out: ClusterSpec = structuredClone(spec);
  if (w.add_gpus && w.add_gpus > 0) {
    const gpuGroups = out.workers.filter((g) => g.gpu_count > 0);
    if (gpuGroups.length === 0) throw new SimInputError('--add-gpus: the cluster has no GPU workers to copy');
    const largest = gpuGroups.reduce((a, b) => (b.gpu_count > a.gpu_count ? b : a));
    out.workers.push({ ...largest, name: `${largest.name}-added`, count: Math.ceil(w.add_gpus / largest.gpu_count) });
  }
  for (const q of w.quota ?? []) {
    let t = out.tenants.find((x) => x.id === q.tenant);
    if (!t) out.tenants.push((t = DEFAULT_TENANT(q.tenant)));
    for (const [r, v] of Object.entries(q.values)) t.quota[r as ResourceName].nominal = v;
  }
  return out;
}

export function runPolicies(trace: readonly TraceJob[], spec: ClusterSpec, names: readonly string[]): PolicyMetrics[] {
  const ms = names.map((n) => computeMetrics(simulate(trace, spec, POLICIES.get(n)!)));
  if (trace.some((j) => j.priority === 'critical')) {
    for (const m of ms) {
      const p99 = m.queue_delay_s.critical?.p99;
      if (p99 === undefined) continue;
      m.bound = { mean_jct_s: meanJctLowerBound(trace, spec, p99), critical_p99_s: criticalDelayLowerBound(trace, spec, m.mean_jct_s) };
    }
  }
  return ms;
}
