/**
 * Seeded synthetic traces and their clusters.
 *
 * - `kueue`: shaped like Kueue's scheduler benchmark (test/performance/scheduler, "baseline"):
 *   cohorts × tenants (ClusterQueues with nominal quota 20 cpu, borrowing limit 100), each tenant
 *   submitting three workload classes — small (1 cpu, 350 jobs, every 100 units, runs 200),
 *   medium (5 cpu, 100 jobs, every 500, runs 500), large (20 cpu, 50 jobs, every 1200, runs
 *   1000) — with priorities normal/high/critical. A unit is `unit_ms` (default 1 s, so runs are
 *   minutes). Arrival gaps and run times are jittered ±50%; the estimate the scheduler sees is
 *   the class run time × 1.5 (an upper bound, like a user's estimate). Default 5 × 6 × 500 = 15,000 jobs.
 * - `gpu`: modelled on public GPU cluster traces (Philly, Alibaba PAI): heavy-tailed (log-normal)
 *   run times, 1/2/4/8-GPU jobs and some 2-node gangs, bursts of submissions, a few priorities;
 *   30% of jobs without an estimate.
 */
import type { Priority } from '../core/types.ts';
import type { ResourceName } from '../scheduler/policy/types.ts';
import { formatCluster, type TraceJob, type WorkerGroup } from './trace.ts';

/** mulberry32: small, fast, seeded; good enough for workloads. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Generated {
  trace: TraceJob[];
  cluster_yaml: string;
}

export interface KueueOptions {
  seed: number;
  cohorts: number;
  tenants_per_cohort: number;
  /** Multiplies the job counts of each class (1 = 350/100/50 per tenant). */
  scale: number;
  unit_ms: number;
}

export const DEFAULT_KUEUE: KueueOptions = { seed: 1, cohorts: 5, tenants_per_cohort: 6, scale: 1, unit_ms: 1000 };

const KUEUE_CLASSES = [
  { name: 'small', count: 350, interval: 100, runtime: 200, cpu: 1, priority: 'normal' as Priority },
  { name: 'medium', count: 100, interval: 500, runtime: 500, cpu: 5, priority: 'high' as Priority },
  { name: 'large', count: 50, interval: 1200, runtime: 1000, cpu: 20, priority: 'critical' as Priority },
];

export function generateKueue(o: Partial<KueueOptions> = {}): Generated {
  const opt = { ...DEFAULT_KUEUE, ...o };
  const rand = rng(opt.seed);
  const jitter = () => 0.5 + rand();
  const trace: TraceJob[] = [];
  const tenants: { id: string; cohort: string; quota: Partial<Record<ResourceName, number>>; borrowing_limit: Partial<Record<ResourceName, number>> }[] = [];
  for (let c = 0; c < opt.cohorts; c++) {
    for (let q = 0; q < opt.tenants_per_cohort; q++) {
      const tenant = `c${c}-t${q}`;
      tenants.push({ id: tenant, cohort: `cohort-${c}`, quota: { cpu_cores: 20 }, borrowing_limit: { cpu_cores: 100 } });
      for (const k of KUEUE_CLASSES) {
        let t = rand() * k.interval * opt.unit_ms;
        const n = Math.max(1, Math.round(k.count * opt.scale));
        for (let i = 0; i < n; i++) {
          trace.push({
            id: `${tenant}-${k.name}-${i}`,
            submit_ms: Math.round(t),
            tenant,
            priority: k.priority,
            cpu_cores: k.cpu,
            memory_gb: k.cpu * 2,
            gpu_count: 0,
            nodes: 1,
            duration_ms: Math.round(k.runtime * opt.unit_ms * jitter()),
            expected_duration_ms: Math.round(k.runtime * opt.unit_ms * 1.5),
            preemptible: true,
            queue_key: '',
          });
          t += k.interval * opt.unit_ms * jitter();
        }
      }
    }
  }
  trace.sort((a, b) => a.submit_ms - b.submit_ms || (a.id < b.id ? -1 : 1));
  // Capacity = the sum of nominal quotas (Kueue's benchmark sizes its cluster the same way), in 24-core workers.
  const cpu = 20 * opt.cohorts * opt.tenants_per_cohort;
  const workers: WorkerGroup[] = [{ name: 'cpu', count: Math.ceil(cpu / 24), cpu_cores: 24, memory_gb: 96, gpu_count: 0, slots: 1000 }];
  return { trace, cluster_yaml: formatCluster({ workers, tenants }) };
}

export interface GpuOptions {
  seed: number;
  jobs: number;
  tenants: number;
  nodes: number;
  gpus_per_node: number;
  /** Offered load as a fraction of GPU capacity. */
  load: number;
}

export const DEFAULT_GPU: GpuOptions = { seed: 1, jobs: 2000, tenants: 8, nodes: 16, gpus_per_node: 8, load: 1.1 };

export function generateGpu(o: Partial<GpuOptions> = {}): Generated {
  const opt = { ...DEFAULT_GPU, ...o };
  const rand = rng(opt.seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const pick = <T>(items: readonly (readonly [T, number])[]): T => {
    let x = rand();
    for (const [v, p] of items) if ((x -= p) < 0) return v;
    return items[items.length - 1]![0];
  };
  const shapes: [[number, number], number][] = [[[1, 1], 0.5], [[2, 1], 0.2], [[4, 1], 0.14], [[8, 1], 0.11], [[8, 2], 0.05]];
  const priorities: [Priority, number][] = [['low', 0.15], ['normal', 0.65], ['high', 0.13], ['critical', 0.07]];
  const medianS = 1200;
  const sigma = 1.4;
  const meanGpuS = (1 * 0.5 + 2 * 0.2 + 4 * 0.14 + 8 * 0.11 + 16 * 0.05) * medianS * Math.exp((sigma * sigma) / 2);
  const rate = (opt.load * opt.nodes * opt.gpus_per_node) / meanGpuS; // jobs per second
  const trace: TraceJob[] = [];
  let t = 0;
  let burst = 0;
  let burstTenant = 0;
  for (let i = 0; i < opt.jobs; i++) {
    if (burst === 0 && rand() < 0.02) {
      burst = 10 + Math.floor(rand() * 30);
      burstTenant = Math.floor(rand() * opt.tenants);
    }
    const inBurst = burst > 0;
    if (inBurst) burst--;
    t += inBurst ? rand() * 5_000 : (-Math.log(1 - rand()) / rate) * 1000;
    const [gpus, nodes] = pick(shapes);
    const duration = Math.min(48 * 3_600_000, Math.round(medianS * 1000 * Math.exp(sigma * normal())));
    const tenant = `team-${inBurst ? burstTenant : Math.floor(rand() * opt.tenants)}`;
    trace.push({
      id: `g${i}`,
      submit_ms: Math.round(t),
      tenant,
      priority: pick(priorities),
      cpu_cores: gpus * 4,
      memory_gb: gpus * 32,
      gpu_count: gpus,
      nodes,
      duration_ms: Math.max(10_000, duration),
      expected_duration_ms: rand() < 0.3 ? null : Math.round(Math.max(10_000, duration) * (1 + rand())),
      preemptible: rand() > 0.05,
      queue_key: '',
    });
  }
  const gpusTotal = opt.nodes * opt.gpus_per_node;
  const tenants = Array.from({ length: opt.tenants }, (_, i) => ({
    id: `team-${i}`,
    cohort: 'all',
    weight: i % 3 === 0 ? 2 : 1,
    quota: { gpu_count: Math.floor(gpusTotal / opt.tenants) },
  }));
  const workers: WorkerGroup[] = [{ name: 'gpu', count: opt.nodes, cpu_cores: opt.gpus_per_node * 4, memory_gb: opt.gpus_per_node * 32, gpu_count: opt.gpus_per_node, slots: 64 }];
  return { trace, cluster_yaml: formatCluster({ workers, tenants, preempt_grace_ms: 30_000 }) };
}
