/**
 * Scheduler benchmark (`node bench/scheduler.ts`, also part of `npm run bench` with --only=sched).
 *
 * 1. Scale: 100,000 pending jobs from 100 tenants (in 10 cohorts, with quotas) on 1,000 workers
 *    (32 cpu, 8 of 4 have GPUs). Each cycle is the real `decide` on a full snapshot; between
 *    cycles ~5% of running jobs finish and as many new jobs arrive, so every cycle has room to
 *    fill and 100k jobs waiting. Reports admissions/s (admissions ÷ time inside decide), cycle
 *    time p50/p99 (wall and CPU), MB allocated per cycle and the cycles with a GC pause inside
 *    decide, over 240 cycles after 20 warm-up cycles.
 * 2. Quality: the Kueue-shaped trace (5 cohorts × 6 tenants, 15,000 jobs of 1/5/20 cpu) under
 *    every policy in the simulator: mean JCT, p99 queueing delay of critical jobs, utilization,
 *    Jain's index — and the lower bound from the trace (src/sim/bound.ts): the least mean JCT any
 *    policy can have for a cap on critical p99 queueing, and the reverse.
 * Flags: --quick (smaller trace and fewer cycles), --skip-quality, --skip-scale, --cycles=N (measured
 * cycles per scale run, default 240), --per-cycle (print each cycle's time, e.g. with node --trace-gc),
 * --decisions (print a SHA-256 of every scale cycle's decisions, warm-up included — admissions with
 * their workers and GPUs, preemptions, reservations, counts — to check that a change to the policy's
 * code decides exactly as before: run it on both revisions; the hashing is outside the timed part).
 */
import { createHash } from 'node:crypto';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { cpus } from 'node:os';
import type { Priority } from '../src/core/types.ts';
import { gantryPolicy, POLICY_NAMES } from '../src/scheduler/policy/policies.ts';
import { DEFAULT_TENANT } from '../src/scheduler/policy/quota.ts';
import { DEFAULT_POLICY_CONFIG, type Admission, type ClusterSnapshot, type PendingJob, type PolicyTenant, type PolicyWorker, type RunningJob } from '../src/scheduler/policy/types.ts';
import { generateKueue, rng } from '../src/sim/generate.ts';
import { percentile } from '../src/sim/metrics.ts';
import { meanJctLowerBound } from '../src/sim/bound.ts';
import { runPolicies } from '../src/sim/run.ts';
import { parseCluster } from '../src/sim/trace.ts';

export interface SchedBenchResult {
  scale?: ScaleResult;
  scale_no_preemption?: ScaleResult;
  quality?: {
    jobs: number;
    policies: { policy: string; mean_jct_s: number; critical_p99_delay_s: number | null; util: number | null; jain: number | null; preemptions: number; bound?: { mean_jct_s: number; critical_p99_s: number } }[];
    /** Least mean JCT any policy can have with critical p99 queueing ≤ cap (src/sim/bound.ts). */
    frontier: { critical_p99_cap_s: number; mean_jct_lb_s: number }[];
  };
}

interface ScaleResult {
  pending: number; tenants: number; workers: number; cycles: number; admissions_per_s: number; cycle_p50_ms: number; cycle_p99_ms: number; admitted_per_cycle: number; preemptions_per_cycle: number;
  /** Heap allocated by one decide (MB, median over cycles without a GC inside; independent of machine load). */
  alloc_mb_per_cycle: number;
  /** Cycles with a GC pause inside decide, and the pauses' total (ms). */
  cycles_with_gc: number; gc_ms_in_decide: number;
  /** CPU time of one decide (this process's user + system): unlike wall time, not inflated when other processes take the CPU. */
  cpu_p50_ms: number; cpu_p99_ms: number;
  /** With `decisions`: SHA-256 of every cycle's decisions (see the header). */
  decisions_sha256?: string;
}

const PRIORITY_MIX: [Priority, number][] = [['critical', 0.05], ['high', 0.15], ['normal', 0.6], ['low', 0.2]];
/** Measured cycles per run: enough that p99 is a percentile (the 3rd slowest of 240), not the slowest cycle. */
const MEASURED_CYCLES = 240;
const RANK: Record<Priority, number> = { emergency: 0, critical: 1, high: 2, normal: 3, low: 4 };

export async function benchScale(opts: { pending?: number; tenants?: number; workers?: number; cycles?: number; preemption?: boolean; perCycle?: boolean; decisions?: boolean } = {}): Promise<ScaleResult> {
  const P = opts.pending ?? 100_000;
  const T = opts.tenants ?? 100;
  const W = opts.workers ?? 1000;
  const cycles = opts.cycles ?? MEASURED_CYCLES;
  // The first cycles fill an empty cluster (30k+ admissions, capped per cycle) and run while V8 is still compiling
  // the cycle's code (--per-cycle shows ~15 cycles of 2–5× the steady CPU time); measure the steady state, as a
  // long-running server sees it.
  const warmup = 20;
  const rand = rng(42);
  const workers: PolicyWorker[] = Array.from({ length: W }, (_, i) => {
    const gpus = i % 4 === 0 ? 8 : 0;
    const cap = { cpu_cores: 32, memory_gb: 128, gpu_count: gpus, slots: 64 };
    return { id: `w${i}`, kind: 'process', queue_keys: [''], capacity: cap, free: { ...cap }, free_gpus: [...Array(gpus).keys()], draining: false };
  });
  const byId = new Map(workers.map((w) => [w.id, w]));
  const tenants = new Map<string, PolicyTenant>();
  for (let t = 0; t < T; t++) {
    const ten = DEFAULT_TENANT(`t${t}`);
    ten.cohort = `c${t % 10}`;
    ten.weight = 1 + (t % 3);
    ten.quota.cpu_cores = { nominal: (W * 32) / T, borrowing_limit: null, lending_limit: null };
    ten.quota.gpu_count = { nominal: (W / 4) * 8 / T, borrowing_limit: null, lending_limit: null };
    tenants.set(ten.id, ten);
  }
  let seq = 0;
  let now = 1_000_000;
  const newJob = (): PendingJob => {
    let x = rand();
    let priority: Priority = 'normal';
    for (const [p, f] of PRIORITY_MIX) if ((x -= f) < 0) { priority = p; break; }
    const gpu = rand() < 0.1 ? [1, 2, 4, 8][Math.floor(rand() * 4)]! : 0;
    return {
      id: `j${seq}`, tenant: `t${Math.floor(rand() * T)}`, priority,
      resources: { cpu_cores: gpu ? gpu * 2 : [1, 1, 2, 4][Math.floor(rand() * 4)]!, memory_gb: 2, gpu_count: gpu },
      queued_at: now - Math.floor(rand() * 3_600_000), seq: seq++, expected_duration_ms: rand() < 0.8 ? 60_000 + Math.floor(rand() * 3_600_000) : null,
      preemptible: true, nodes: 1, queue_key: '',
    };
  };
  const pending = new Map<string, PendingJob[]>();
  for (const t of tenants.keys()) pending.set(t, []);
  const less = (a: PendingJob, b: PendingJob) => RANK[a.priority] - RANK[b.priority] || a.queued_at - b.queued_at || a.seq - b.seq;
  for (let i = 0; i < P; i++) {
    const j = newJob();
    pending.get(j.tenant)!.push(j);
  }
  for (const l of pending.values()) l.sort(less);
  const insert = (j: PendingJob) => {
    const list = pending.get(j.tenant)!;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (less(list[mid]!, j) < 0) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, j);
  };
  // The harness changes its state in place between cycles (as a long-lived server's caches would), so the
  // garbage collector's work measured inside decide is the policy's, not the harness's copies.
  const running: RunningJob[] = [];
  const snap: { -readonly [K in keyof ClusterSnapshot]: ClusterSnapshot[K] } = { now, pending, running, workers, tenants, usage: new Map() };
  const cfg = { ...DEFAULT_POLICY_CONFIG, explain: 'none' as const, preemption: opts.preemption ?? true };
  const times: number[] = [];
  let admitted = 0;
  let preempted = 0;
  let decideMs = 0;
  const admByJob = new Map<string, Admission>();
  const stopping = new Set<string>();
  const touched = new Set<string>();
  // GC pauses, attributed to the cycles they fall in (entries arrive between cycles).
  const gcs: { start: number; ms: number }[] = [];
  const obs = new PerformanceObserver((l) => { for (const e of l.getEntries()) gcs.push({ start: e.startTime, ms: e.duration }); });
  obs.observe({ entryTypes: ['gc'] });
  const windows: { t0: number; t1: number; heap: number }[] = [];
  const cpuTimes: number[] = [];
  const digest = opts.decisions ? createHash('sha256') : null;
  for (let c = 0; c < warmup + cycles; c++) {
    now += 1000;
    snap.now = now;
    await new Promise((r) => setImmediate(r));
    const h0 = getHeapStatistics().used_heap_size;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const d = gantryPolicy.decide(snap, cfg);
    const t1 = performance.now();
    const cpu = process.cpuUsage(c0);
    const dt = t1 - t0;
    digest?.update(JSON.stringify([d.admissions, d.preemptions, d.reservations, d.stats]));
    if (c >= warmup) {
      windows.push({ t0, t1, heap: getHeapStatistics().used_heap_size - h0 });
      cpuTimes.push((cpu.user + cpu.system) / 1000);
    }
    if (opts.perCycle) console.log(`cycle ${c - warmup}: ${dt.toFixed(1)} ms (CPU ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms), ${d.stats.considered} considered, ${d.admissions.length} admitted, ${d.preemptions.length} preempted, ${running.length} running`);
    if (c >= warmup) {
      times.push(dt);
      decideMs += dt;
      admitted += d.admissions.length;
      preempted += d.preemptions.length;
    }
    // Apply: admitted jobs start; ~5% of running jobs finish; new jobs keep the backlog at P.
    admByJob.clear();
    touched.clear();
    for (const a of d.admissions) {
      admByJob.set(a.job_id, a);
      touched.add(a.tenant);
    }
    for (const t of touched) {
      const list = pending.get(t)!;
      let k = 0;
      for (let i = 0; i < list.length; i++) {
        const j = list[i]!;
        const a = admByJob.get(j.id);
        if (!a) {
          list[k++] = j;
          continue;
        }
        const p = a.placements[0]!;
        const w = byId.get(p.worker_id)!;
        w.free.cpu_cores -= j.resources.cpu_cores; w.free.memory_gb -= j.resources.memory_gb; w.free.gpu_count -= j.resources.gpu_count; w.free.slots -= 1;
        for (const g of p.gpu_indices) w.free_gpus.splice(w.free_gpus.indexOf(g), 1);
        running.push({ id: j.id, tenant: j.tenant, priority: j.priority, resources: j.resources, placements: a.placements, started_at: now, expected_end: j.expected_duration_ms === null ? null : now + j.expected_duration_ms, preemptible: true, terminating: false });
      }
      list.length = k;
    }
    // Preempted jobs stop (no grace period here) and go back to the queue.
    stopping.clear();
    for (const p of d.preemptions) stopping.add(p.victim_id);
    let k = 0;
    for (let i = 0; i < running.length; i++) {
      const r = running[i]!;
      const stop = stopping.has(r.id);
      if (!stop && rand() >= 0.05) {
        running[k++] = r;
        continue;
      }
      const p = r.placements[0]!;
      const w = byId.get(p.worker_id)!;
      w.free.cpu_cores += r.resources.cpu_cores; w.free.memory_gb += r.resources.memory_gb; w.free.gpu_count += r.resources.gpu_count; w.free.slots += 1;
      for (const g of p.gpu_indices) {
        let at = 0;
        while (at < w.free_gpus.length && w.free_gpus[at]! < g) at++;
        w.free_gpus.splice(at, 0, g);
      }
      if (stop) {
        const back = newJob();
        back.id = `${r.id}-r`;
        back.queued_at = now;
        insert(back);
      }
    }
    running.length = k;
    for (let i = 0; i < d.admissions.length; i++) {
      const j = newJob();
      j.queued_at = now;
      insert(j);
    }
  }
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  const gcIn = windows.map((w) => gcs.filter((g) => g.start >= w.t0 && g.start < w.t1).reduce((n, g) => n + g.ms, 0));
  const clean = windows.filter((_, i) => gcIn[i] === 0).map((w) => w.heap / 2 ** 20).sort((a, b) => a - b);
  times.sort((a, b) => a - b);
  cpuTimes.sort((a, b) => a - b);
  return {
    pending: P, tenants: T, workers: W, cycles: times.length,
    admissions_per_s: admitted / (decideMs / 1000),
    cycle_p50_ms: percentile(times, 50), cycle_p99_ms: percentile(times, 99),
    admitted_per_cycle: admitted / times.length,
    preemptions_per_cycle: preempted / times.length,
    alloc_mb_per_cycle: clean.length > 0 ? percentile(clean, 50) : NaN,
    cycles_with_gc: gcIn.filter((g) => g > 0).length,
    gc_ms_in_decide: gcIn.reduce((a, b) => a + b, 0),
    cpu_p50_ms: percentile(cpuTimes, 50), cpu_p99_ms: percentile(cpuTimes, 99),
    ...(digest ? { decisions_sha256: digest.digest('hex') } : {}),
  };
}

export function benchQuality(scale = 1): NonNullable<SchedBenchResult['quality']> {
  const g = generateKueue({ scale });
  const ms = runPolicies(g.trace, parseCluster(g.cluster_yaml), POLICY_NAMES);
  const spec = parseCluster(g.cluster_yaml);
  const caps = [0, 600, 1200, 1800, 2400, 3600, 5400, 7200, Infinity];
  return {
    jobs: g.trace.length,
    policies: ms.map((m) => ({ policy: m.policy, mean_jct_s: m.mean_jct_s, critical_p99_delay_s: m.queue_delay_s.critical?.p99 ?? null, util: m.util_cpu, jain: m.jain, preemptions: m.preemptions, bound: m.bound })),
    frontier: caps.map((c) => ({ critical_p99_cap_s: c, mean_jct_lb_s: meanJctLowerBound(g.trace, spec, c) })),
  };
}

export function printSched(r: SchedBenchResult): void {
  const f = (n: number | null | undefined, d = 1) => (n === null || n === undefined ? '-' : n.toFixed(d));
  const scaleRow = (label: string, s: ScaleResult) =>
    console.log(`| ${label} | ${Math.round(s.admissions_per_s).toLocaleString('en-US')} | ${f(s.cycle_p50_ms)} | ${f(s.cycle_p99_ms)} | ${f(s.cpu_p50_ms)} | ${f(s.cpu_p99_ms)} | ${Math.round(s.admitted_per_cycle)} | ${Math.round(s.preemptions_per_cycle)} | ${f(s.alloc_mb_per_cycle)} | ${s.cycles_with_gc} (${f(s.gc_ms_in_decide, 0)} ms) |`);
  if (r.scale) {
    const s = r.scale;
    console.log(`\nScheduler scale — ${s.pending.toLocaleString('en-US')} pending, ${s.tenants} tenants, ${s.workers} workers, ${s.cycles} cycles`);
    console.log(`| policy config | admissions/s | cycle p50 ms | cycle p99 ms | cycle CPU p50 ms | cycle CPU p99 ms | admitted per cycle | preemptions per cycle | MB allocated per cycle | cycles with a GC pause (total) |`);
    console.log(`|---|---|---|---|---|---|---|---|---|---|`);
    scaleRow('gantry (default)', s);
    if (r.scale_no_preemption) scaleRow('gantry, preemption off', r.scale_no_preemption);
    for (const [label, x] of [['gantry (default)', s], ['gantry, preemption off', r.scale_no_preemption]] as const) {
      if (x?.decisions_sha256) console.log(`decisions of ${label} (every cycle, warm-up included): sha256 ${x.decisions_sha256}`);
    }
  }
  if (r.quality) {
    console.log(`\nScheduler quality — Kueue-shaped trace, ${r.quality.jobs.toLocaleString('en-US')} jobs`);
    console.log('| policy | mean JCT s | critical p99 queueing s | utilization | Jain | preemptions | any policy: mean JCT ≥ s at this critical p99 | any policy: critical p99 ≥ s at this mean JCT |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const p of r.quality.policies) {
      console.log(`| ${p.policy} | ${f(p.mean_jct_s, 0)} | ${f(p.critical_p99_delay_s, 0)} | ${p.util === null ? '-' : (p.util * 100).toFixed(1) + '%'} | ${f(p.jain, 3)} | ${p.preemptions} | ${f(p.bound?.mean_jct_s, 0)} | ${f(p.bound?.critical_p99_s, 0)} |`);
    }
    console.log('\nLower bound from the trace (src/sim/bound.ts, fluid relaxation): least mean JCT of any policy whose critical p99 queueing delay is at most the cap');
    console.log(`| critical p99 cap s | ${r.quality.frontier.map((x) => (Number.isFinite(x.critical_p99_cap_s) ? x.critical_p99_cap_s : 'none')).join(' | ')} |`);
    console.log(`|---|${r.quality.frontier.map(() => '---|').join('')}`);
    console.log(`| mean JCT ≥ s | ${r.quality.frontier.map((x) => f(x.mean_jct_lb_s, 0)).join(' | ')} |`);
  }
}

export async function runSchedBench(argv: readonly string[]): Promise<SchedBenchResult> {
  const quick = argv.includes('--quick');
  const r: SchedBenchResult = {};
  if (!argv.includes('--skip-scale')) {
    const cyclesArg = argv.find((a) => a.startsWith('--cycles='));
    const cycles = cyclesArg ? Number(cyclesArg.slice('--cycles='.length)) : quick ? 12 : MEASURED_CYCLES;
    const perCycle = argv.includes('--per-cycle');
    const decisions = argv.includes('--decisions');
    r.scale = await benchScale({ cycles, perCycle, decisions });
    r.scale_no_preemption = await benchScale({ cycles, preemption: false, perCycle, decisions });
  }
  if (!argv.includes('--skip-quality')) r.quality = benchQuality(quick ? 0.2 : 1);
  return r;
}

if (import.meta.filename === process.argv[1]) {
  const r = await runSchedBench(process.argv.slice(2));
  console.log(`machine: ${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, Node ${process.version}`);
  printSched(r);
}
