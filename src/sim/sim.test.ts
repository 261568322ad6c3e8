/**
 * Scenario tests over time (the real policy under the simulator's virtual clock), and
 * `gantry simulate` end to end as a child process.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bestEffortFifoPolicy, gantryPolicy, strictFifoPolicy } from '../scheduler/policy/policies.ts';
import { criticalDelayLowerBound, meanJctLowerBound } from './bound.ts';
import { generateGpu, generateKueue } from './generate.ts';
import { computeMetrics } from './metrics.ts';
import { textReport } from './report.ts';
import { runPolicies } from './run.ts';
import { simulate, type SimJob } from './simulator.ts';
import { parseCluster, parseTrace, type TraceJob } from './trace.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tj(id: string, o: Partial<TraceJob> & { submit_ms: number; duration_ms: number }): TraceJob {
  return { id, tenant: 'default', priority: 'normal', cpu_cores: 1, memory_gb: 0, gpu_count: 0, nodes: 1, expected_duration_ms: o.duration_ms, preemptible: true, queue_key: '', ...o };
}

const byId = (jobs: SimJob[]) => new Map(jobs.map((j) => [j.id, j]));

test('a flooding tenant does not starve a small one: both progress and shares follow the weights', () => {
  const trace: TraceJob[] = [];
  for (let i = 0; i < 600; i++) trace.push(tj(`flood-${i}`, { tenant: 'flood', submit_ms: i, duration_ms: 10_000 }));
  for (let i = 0; i < 200; i++) trace.push(tj(`small-${i}`, { tenant: 'small', submit_ms: 5_000 + i * 1000, duration_ms: 10_000 }));
  trace.sort((a, b) => a.submit_ms - b.submit_ms);
  const spec = parseCluster('workers: [{ name: w, count: 1, cpu_cores: 6 }]\ntenants: [{ id: flood, weight: 1 }, { id: small, weight: 2 }]\n');
  const r = simulate(trace, spec, gantryPolicy);
  const jobs = byId(r.jobs);
  // The small tenant's first job starts at once although 600 jobs were queued before it.
  assert.equal(jobs.get('small-0')!.first_start_ms, 5_000 + 5_000);
  // While both have work waiting, cpu-time splits 1:2 (flood : small).
  const window = [10_000, 150_000];
  const held = (t: string) =>
    r.jobs.filter((j) => j.tenant === t && j.start_ms !== null).reduce((s, j) => s + Math.max(0, Math.min(j.end_ms!, window[1]!) - Math.max(j.start_ms!, window[0]!)), 0);
  const share = held('small') / (held('small') + held('flood'));
  assert.ok(Math.abs(share - 2 / 3) < 0.05, `small tenant's share ${share.toFixed(3)} should be ≈ 0.667`);
  // Strict FIFO makes the small tenant wait for the whole flood to pass instead.
  const fifo = byId(simulate(trace, spec, bestEffortFifoPolicy).jobs);
  assert.ok(fifo.get('small-0')!.first_start_ms! > 500_000);
  assert.ok((computeMetrics(r).jain ?? 0) > 0.9);
});

test('backfill never delays the reserved job; small jobs that end before the reservation go first', () => {
  const trace = [
    tj('long', { submit_ms: 0, duration_ms: 100_000, cpu_cores: 2 }),
    tj('big', { submit_ms: 1_000, duration_ms: 50_000, cpu_cores: 4 }),
    tj('short', { submit_ms: 2_000, duration_ms: 40_000, cpu_cores: 2 }),
    tj('too-long', { submit_ms: 3_000, duration_ms: 200_000, cpu_cores: 2 }),
  ];
  const spec = parseCluster('workers: [{ name: w, count: 1, cpu_cores: 4 }]\n');
  const reservations: number[] = [];
  const r = byId(simulate(trace, spec, gantryPolicy, spec.policy, { afterCycle: (_n, d) => d.reservations.forEach((x) => reservations.push(x.start_at)) }).jobs);
  assert.equal(r.get('big')!.start_ms, 100_000, 'starts exactly when the running job ends');
  assert.equal(r.get('short')!.start_ms, 2_000, 'backfilled: ends at 42 s, before the reservation at 100 s');
  assert.ok(r.get('too-long')!.start_ms! >= 150_000, 'would end after the reservation: waits');
  assert.ok(reservations.includes(100_000));
  // Best-effort FIFO starts the too-long job at once and so delays the big one.
  const fifo = byId(simulate(trace, spec, bestEffortFifoPolicy).jobs);
  assert.ok(fifo.get('big')!.start_ms! > 100_000);
});

test('an emergency job preempts; the victim is requeued and finishes later; wasted GPU time is counted', () => {
  const trace = [
    tj('victim', { submit_ms: 0, duration_ms: 100_000, gpu_count: 4, priority: 'low' }),
    tj('keeper', { submit_ms: 0, duration_ms: 100_000, gpu_count: 4, priority: 'normal', preemptible: false }),
    tj('urgent', { submit_ms: 10_000, duration_ms: 20_000, gpu_count: 4, priority: 'emergency' }),
  ];
  const spec = parseCluster('workers: [{ name: g, count: 1, cpu_cores: 32, gpu_count: 8 }]\npreempt_grace_ms: 5000\n');
  const r = simulate(trace, spec, gantryPolicy);
  const j = byId(r.jobs);
  assert.equal(r.preemptions, 1);
  assert.equal(j.get('victim')!.preempted, 1);
  assert.equal(j.get('urgent')!.start_ms, 15_000, 'starts when the victim stopped after its grace period');
  assert.equal(j.get('keeper')!.end_ms, 100_000);
  assert.equal(j.get('victim')!.end_ms, 35_000 + 100_000, 'requeued; reruns from the start once the urgent job is done');
  assert.ok(Math.abs(r.wasted_gpu_hours - (4 * 15_000) / 3_600_000) < 1e-9);
});

test('a critical gang preempts on two workers at once; the victims stop after their grace period and rerun later', () => {
  const trace = [
    tj('a', { submit_ms: 0, duration_ms: 100_000, cpu_cores: 4 }),
    tj('b', { submit_ms: 0, duration_ms: 100_000, cpu_cores: 4, priority: 'low' }),
    tj('c', { submit_ms: 0, duration_ms: 100_000, cpu_cores: 4, priority: 'high' }),
    tj('gang', { submit_ms: 10_000, duration_ms: 20_000, cpu_cores: 4, nodes: 2, priority: 'critical' }),
    tj('later', { submit_ms: 12_000, duration_ms: 1_000, cpu_cores: 4 }),
  ];
  const spec = parseCluster('workers: [{ name: w, count: 3, cpu_cores: 4 }]\npreempt_grace_ms: 5000\n');
  const r = simulate(trace, spec, gantryPolicy);
  const j = byId(r.jobs);
  assert.equal(r.preemptions, 2, 'one victim on each of two workers, nothing more while they stop');
  assert.deepEqual(['a', 'b', 'c'].map((id) => j.get(id)!.preempted), [1, 1, 0], 'the normal and the low job; the high job runs on');
  assert.equal(j.get('gang')!.start_ms, 15_000, 'both nodes start together once the victims stopped after their grace period');
  assert.equal(j.get('gang')!.end_ms, 35_000);
  assert.ok(j.get('later')!.start_ms! >= 35_000, 'the room freed for the gang was not given to later normal work');
  assert.equal(j.get('a')!.end_ms! > 100_000 && j.get('b')!.end_ms! > 100_000, true, 'the victims were requeued and finished later');
  assert.equal(j.get('c')!.end_ms, 100_000);
});

test('simulations are deterministic and the generators are seeded', () => {
  const a = generateKueue({ scale: 0.02, seed: 7 });
  const b = generateKueue({ scale: 0.02, seed: 7 });
  assert.deepEqual(a.trace, b.trace);
  assert.notDeepEqual(generateKueue({ scale: 0.02, seed: 8 }).trace, a.trace);
  assert.equal(a.trace.length, 5 * 6 * Math.round(350 * 0.02) + 5 * 6 * Math.round(100 * 0.02) + 5 * 6 * Math.round(50 * 0.02));
  const spec = parseCluster(a.cluster_yaml);
  const m1 = computeMetrics(simulate(a.trace, spec, gantryPolicy));
  const m2 = computeMetrics(simulate(a.trace, spec, gantryPolicy));
  assert.equal(m1.mean_jct_s, m2.mean_jct_s);
  assert.equal(m1.finished, a.trace.length);
  const g = generateGpu({ jobs: 300, seed: 3 });
  assert.ok(g.trace.some((t) => t.nodes === 2) && g.trace.some((t) => t.gpu_count === 8));
  const mg = computeMetrics(simulate(g.trace, parseCluster(g.cluster_yaml), strictFifoPolicy));
  assert.equal(mg.finished, 300);
});

test('trace and cluster errors name the line or field', () => {
  assert.throws(() => parseTrace('{"submit_ms": 0}\n'), /trace line 1: duration_ms is required/);
  assert.throws(() => parseTrace('{"submit_ms": 0, "duration_ms": 5, "priority": "huge"}\n'), /trace line 1: priority must be one of/);
  assert.throws(() => parseCluster('workers: []\n'), /workers must be a non-empty list/);
  assert.throws(() => parseCluster('workers: [{cpu_cores: 4}]\ntenants: [{id: a, quota: {disk: 3}}]\n'), /tenants\[0\].quota.disk: unknown resource/);
});

const BIN = resolve(import.meta.dirname, '../../bin/gantry.js');
const gantry = (args: string[], cwd: string) => spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });

test('gantry simulate generate + simulate: a side-by-side table on stdout and an HTML report', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-sim-'));
  dirs.push(dir);
  const gen = gantry(['simulate', 'generate', '--scale', '0.02', '--seed', '3'], dir);
  assert.equal(gen.status, 0, gen.stderr);
  assert.match(gen.stdout, /wrote 300 jobs to trace.jsonl and the cluster to cluster.yaml/);
  const run = gantry(['simulate', '--policy', 'gantry,strict-fifo', '--report', 'out.html'], dir);
  assert.equal(run.status, 0, run.stderr);
  const header = run.stdout.split('\n').find((l) => l.startsWith('metric'))!;
  assert.match(header, /gantry\s+strict-fifo/);
  for (const row of ['mean JCT', 'p99 JCT', 'queue delay critical p99', 'utilization cpu', 'makespan', "Jain's index", 'preemptions', 'wasted GPU-hours', 'decisions/s']) {
    assert.ok(run.stdout.includes(row), `row ${row}`);
  }
  assert.match(run.stdout, /jobs finished\s+300\s+300/);
  const html = readFileSync(join(dir, 'out.html'), 'utf8');
  assert.match(html, /<th>gantry<\/th><th>strict-fifo<\/th>/);
  // What-if: a quota change reaches the simulation (a tenant with 0 cpu quota and no cohort can never run).
  writeFileSync(join(dir, 'tiny.jsonl'), '{"id":"a","submit_ms":0,"duration_ms":1000,"tenant":"t"}\n{"id":"b","submit_ms":0,"duration_ms":1000,"tenant":"u"}\n');
  writeFileSync(join(dir, 'c.yaml'), 'workers: [{ name: w, count: 1, cpu_cores: 2 }]\n');
  const whatIf = gantry(['simulate', '--trace', 'tiny.jsonl', '--cluster', 'c.yaml', '--policy', 'gantry', '--quota', 'tenant=t,cpu_cores=0', '-o', 'json'], dir);
  assert.equal(whatIf.status, 0, whatIf.stderr);
  assert.equal(JSON.parse(whatIf.stdout).policies[0].finished, 1);
  const bad = gantry(['simulate', '--policy', 'nope'], dir);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /error: unknown policy 'nope'/);
  assert.ok(existsSync(join(dir, 'trace.jsonl')));
});

test('lower bound from the trace: exact on a two-job trace, and no policy beats it', () => {
  // One 1-cpu worker; a 100 s critical job and a 10 s normal job arrive together. With the critical
  // job not waiting, the best is 100 s then 110 s (mean 105 s); unconstrained, the short job goes
  // first (10 s, 110 s: mean 60 s) and the critical job waits 10 s.
  const spec = parseCluster('workers: [{ name: w, count: 1, cpu_cores: 1 }]\n');
  const two = [tj('a', { submit_ms: 0, duration_ms: 100_000, priority: 'critical' }), tj('b', { submit_ms: 0, duration_ms: 10_000 })];
  const near = (x: number, want: number) => assert.ok(x <= want && x >= want - 1, `${x} should be just under ${want}`);
  near(meanJctLowerBound(two, spec, 0), 105);
  near(meanJctLowerBound(two, spec, Infinity), 60);
  assert.equal(criticalDelayLowerBound(two, spec, 60), 10, 'a 60 s mean JCT needs the critical job to wait 10 s');
  assert.equal(criticalDelayLowerBound(two, spec, 105), 0);

  // On a small Kueue-shaped trace every policy lands on or above the bound at its own critical p99.
  const g = generateKueue({ scale: 0.05 });
  const kspec = parseCluster(g.cluster_yaml);
  const ms = runPolicies(g.trace, kspec, ['gantry', 'strict-fifo', 'best-effort-fifo']);
  for (const m of ms) {
    assert.ok(m.bound, m.policy);
    assert.ok(m.bound.mean_jct_s <= m.mean_jct_s, `${m.policy}: bound ${m.bound.mean_jct_s} > mean JCT ${m.mean_jct_s}`);
    assert.ok(m.bound.critical_p99_s <= m.queue_delay_s.critical!.p99, `${m.policy}: bound ${m.bound.critical_p99_s} > critical p99`);
  }
  assert.match(textReport(ms), /any policy: mean JCT ≥ \(s\) at this critical p99/);
});
