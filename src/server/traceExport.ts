import { stringify as toYaml } from 'yaml';
import { effectiveTenant, QUOTA_RESOURCES, type Tier } from '../core/tiers.ts';
import type { HistoryRow, Store } from '../store/store.ts';

/**
 * The recorded job history as a simulator trace (JSONL, the format of src/sim/trace.ts: one job
 * per line, `submit_ms` relative to the first job) and the cluster as the simulator's YAML — so
 * `gantry simulate` can answer "what if we add 8 GPUs / raise tenant X's quota" on real history.
 * A job run several times (retries) is one trace job with the runtime of its last run.
 */
export async function* traceLines(store: Store, since: number, until: number): AsyncGenerator<string> {
  let after = 0;
  let t0: number | null = null;
  for (;;) {
    const page = await store.jobHistory(since, until, after, 2000);
    const last = new Map<string, HistoryRow>();
    for (const r of page.rows) last.set(r.id, r);
    for (const r of last.values()) {
      t0 ??= r.created_at;
      yield JSON.stringify({
        id: r.id, submit_ms: r.created_at - t0, tenant: r.tenant, priority: r.priority,
        cpu_cores: r.cpu_cores, memory_gb: r.memory_gb, gpu_count: r.gpu_count, nodes: r.nodes,
        duration_ms: Math.max(0, r.ended_at - r.started_at),
        expected_duration_ms: r.expected_duration === null ? null : r.expected_duration * 1000,
        preemptible: r.preemptible, queue_key: r.queue_key,
      }) + '\n';
    }
    if (page.next_after === null) return;
    after = page.next_after;
  }
}

/** The cluster now: online and draining workers grouped by capacity, and every registered tenant's effective settings. */
export async function clusterYaml(store: Store, defaultTier: Tier): Promise<string> {
  const groups = new Map<string, { name: string; count: number; cpu_cores: number; memory_gb: number; gpu_count: number; slots: number }>();
  for (const w of await store.listWorkers(false)) {
    if (w.kind !== 'process') continue;
    const key = `${w.capacity.cpu_cores}/${w.capacity.memory_gb}/${w.capacity.gpu_count}/${w.capacity.slots}`;
    const g = groups.get(key);
    if (g) g.count++;
    else groups.set(key, { name: `w${groups.size + 1}`, count: 1, ...w.capacity });
  }
  const tenants = (await store.listTenants()).map((rec) => {
    const t = effectiveTenant(rec.id, rec, defaultTier);
    const pick = (m: Partial<Record<(typeof QUOTA_RESOURCES)[number], number>>) => Object.fromEntries(QUOTA_RESOURCES.filter((r) => m[r] !== undefined).map((r) => [r, m[r]]));
    return {
      id: t.id, cohort: t.cohort, weight: t.fair_share_weight, quota: { ...t.nominal_quota },
      ...(Object.keys(pick(t.borrowing_limit)).length ? { borrowing_limit: pick(t.borrowing_limit) } : {}),
      ...(Object.keys(pick(t.lending_limit)).length ? { lending_limit: pick(t.lending_limit) } : {}),
      ...(t.max_running_jobs !== null ? { max_running: t.max_running_jobs } : {}),
      paused: t.paused, allowed_priorities: [...t.allowed_priorities],
    };
  });
  return `# Exported from Gantry ${new Date().toISOString()}: workers grouped by capacity; tenants with tier defaults applied.\n` +
    `# Tenants not listed (unregistered) run under tier ${defaultTier} on the server; the simulator gives them no quota.\n` +
    toYaml({ workers: [...groups.values()], tenants });
}
