/**
 * Bounded preemption (issue 4c): quota victims must hold the resource the quota lacks, and a
 * cycle chooses at most `max_preemptions` victims for critical/reclaim work (emergency exempt).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Priority } from '../../core/types.ts';
import { gantryPolicy } from './policies.ts';
import { DEFAULT_TENANT } from './quota.ts';
import { DEFAULT_POLICY_CONFIG, type ClusterSnapshot, type PendingJob, type PolicyTenant, type PolicyWorker, type RunningJob } from './types.ts';

function worker(id: string, cpu: number, gpus: number, run: { id: string; tenant: string; cpu: number; gpu: number; priority?: Priority; started_at?: number }[]): { w: PolicyWorker; running: RunningJob[] } {
  const cap = { cpu_cores: cpu, memory_gb: cpu * 4, gpu_count: gpus, slots: 100 };
  const w: PolicyWorker = { id, kind: 'process', queue_keys: [''], capacity: cap, free: { ...cap }, free_gpus: [...Array(gpus).keys()], draining: false };
  const running = run.map((r): RunningJob => {
    w.free.cpu_cores -= r.cpu;
    w.free.gpu_count -= r.gpu;
    w.free.slots -= 1;
    const gpu_indices = w.free_gpus.splice(0, r.gpu);
    const started_at = r.started_at ?? 0;
    return { id: r.id, tenant: r.tenant, priority: r.priority ?? 'normal', resources: { cpu_cores: r.cpu, memory_gb: 0, gpu_count: r.gpu }, placements: [{ worker_id: id, gpu_indices }], started_at, expected_end: started_at + 600_000, preemptible: true, terminating: false };
  });
  return { w, running };
}

let seq = 0;
const job = (id: string, tenant: string, priority: Priority, gpu = 0): PendingJob => ({
  id, tenant, priority, resources: { cpu_cores: 1, memory_gb: 0, gpu_count: gpu }, queued_at: 0, seq: seq++, expected_duration_ms: 60_000, preemptible: true, nodes: 1, queue_key: '',
});

function snap(ws: { w: PolicyWorker; running: RunningJob[] }[], pending: PendingJob[], tenants: PolicyTenant[] = []): ClusterSnapshot {
  const byTenant = new Map<string, PendingJob[]>();
  for (const j of pending) byTenant.set(j.tenant, [...(byTenant.get(j.tenant) ?? []), j]);
  return { now: 1000, pending: byTenant, running: ws.flatMap((x) => x.running), workers: ws.map((x) => x.w), tenants: new Map(tenants.map((t) => [t.id, t])), usage: new Map() };
}

test('a job held back by its GPU quota preempts only jobs that hold GPUs, not the CPU-only jobs of its cohort', () => {
  const gpuTenant = (id: string, cohort: string): PolicyTenant => {
    const t = DEFAULT_TENANT(id);
    t.cohort = cohort;
    t.quota.gpu_count = { nominal: 2, borrowing_limit: null, lending_limit: null };
    return t;
  };
  const ws = [
    worker('w1', 8, 2, [{ id: 'o-gpu', tenant: 'o', cpu: 1, gpu: 2 }]),
    worker('w2', 8, 2, [{ id: 'g-gpu', tenant: 'g', cpu: 1, gpu: 2, started_at: 0 }]),
    // Newer CPU-only jobs of the same tenant: first in "newest first" order, but they free no GPU quota.
    worker('w3', 8, 0, [0, 1, 2, 3].map((i) => ({ id: `g-cpu${i}`, tenant: 'g', cpu: 1, gpu: 0, started_at: 10 + i }))),
  ];
  const d = gantryPolicy.decide(snap(ws, [job('crit', 'g', 'critical', 2)], [gpuTenant('g', 'c'), gpuTenant('o', 'other')]), { ...DEFAULT_POLICY_CONFIG });
  const victims = d.preemptions.map((p) => p.victim_id).sort();
  assert.ok(victims.includes('g-gpu'), `the GPU job of its own quota is a victim: ${victims.join(',')}`);
  assert.ok(!victims.some((v) => v.startsWith('g-cpu')), `no CPU-only job is preempted for GPU quota: ${victims.join(',')}`);
  // w2's own-cohort GPU job frees room and quota at once: one victim, not o-gpu (room only) plus g-gpu (quota).
  assert.deepEqual(victims, ['g-gpu'], 'the fewest victims');
  assert.ok(d.preemptions.every((p) => p.for_job_id === 'crit'));
});

test('a cycle preempts at most max_preemptions victims for critical jobs; emergency jobs are not held back', () => {
  const mk = () => [worker('w1', 2, 0, [{ id: 'low1', tenant: 'x', cpu: 1, gpu: 0, priority: 'low' }, { id: 'low2', tenant: 'x', cpu: 1, gpu: 0, priority: 'low' }])];
  const crit = [job('c1', 'y', 'critical'), job('c2', 'y', 'critical')];
  assert.equal(gantryPolicy.decide(snap(mk(), crit), { ...DEFAULT_POLICY_CONFIG }).preemptions.length, 2, 'default budget: both critical jobs preempt');
  const limited = gantryPolicy.decide(snap(mk(), crit), { ...DEFAULT_POLICY_CONFIG, max_preemptions: 1, explain: ['c2'] });
  assert.deepEqual(limited.preemptions.map((p) => p.for_job_id), ['c1'], 'the budget stops the second search');
  assert.ok(!limited.explanations.get('c2')?.reasons.some((r) => r.kind === 'preempting'), 'c2 waits for a later cycle');
  const emer = [job('e1', 'y', 'emergency'), job('e2', 'y', 'emergency')];
  assert.equal(gantryPolicy.decide(snap(mk(), emer), { ...DEFAULT_POLICY_CONFIG, max_preemptions: 1 }).preemptions.length, 2, 'emergency preempts at once');
});
