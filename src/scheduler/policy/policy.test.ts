/**
 * Scenario tests of the scheduling policy, one cycle at a time: snapshots in, decisions out.
 * (Whole runs over time are in src/sim/sim.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Priority } from '../../core/types.ts';
import { renderExplanation } from './explain.ts';
import { bestEffortFifoPolicy, gantryPolicy } from './policies.ts';
import { DEFAULT_TENANT } from './quota.ts';
import { DEFAULT_POLICY_CONFIG, type ClusterSnapshot, type PendingJob, type PolicyConfig, type PolicyTenant, type PolicyWorker, type RunningJob } from './types.ts';

const cfg = (o: Partial<PolicyConfig> = {}): PolicyConfig => ({ ...DEFAULT_POLICY_CONFIG, ...o });

function worker(id: string, cpu: number, gpus = 0): PolicyWorker {
  const cap = { cpu_cores: cpu, memory_gb: cpu * 4, gpu_count: gpus, slots: 100 };
  return { id, kind: 'process', queue_keys: [''], capacity: cap, free: { ...cap }, free_gpus: [...Array(gpus).keys()], draining: false };
}

let seq = 0;
function job(id: string, tenant: string, o: Partial<PendingJob> & { cpu?: number; gpu?: number } = {}): PendingJob {
  return {
    id,
    tenant,
    priority: o.priority ?? 'normal',
    resources: { cpu_cores: o.cpu ?? 1, memory_gb: 0, gpu_count: o.gpu ?? 0 },
    queued_at: o.queued_at ?? 0,
    seq: seq++,
    expected_duration_ms: o.expected_duration_ms ?? 60_000,
    preemptible: o.preemptible ?? true,
    nodes: o.nodes ?? 1,
    queue_key: '',
  };
}

/** A running job on `w`, taking its room off the worker's free room. */
function running(w: PolicyWorker, id: string, tenant: string, o: { cpu?: number; gpu?: number; priority?: Priority; started_at?: number; preemptible?: boolean } = {}): RunningJob {
  const res = { cpu_cores: o.cpu ?? 1, memory_gb: 0, gpu_count: o.gpu ?? 0 };
  w.free.cpu_cores -= res.cpu_cores;
  w.free.slots -= 1;
  w.free.gpu_count -= res.gpu_count;
  const gpus = w.free_gpus.splice(0, res.gpu_count);
  return {
    id,
    tenant,
    priority: o.priority ?? 'normal',
    resources: res,
    placements: [{ worker_id: w.id, gpu_indices: gpus }],
    started_at: o.started_at ?? 0,
    expected_end: (o.started_at ?? 0) + 600_000,
    preemptible: o.preemptible ?? true,
    terminating: false,
  };
}

function tenant(id: string, o: Partial<PolicyTenant> & { cpu?: number; gpu?: number; borrow?: number } = {}): PolicyTenant {
  const t = { ...DEFAULT_TENANT(id), ...o };
  t.quota = structuredClone(DEFAULT_TENANT(id).quota);
  if (o.cpu !== undefined) t.quota.cpu_cores = { nominal: o.cpu, borrowing_limit: o.borrow ?? null, lending_limit: null };
  if (o.gpu !== undefined) t.quota.gpu_count = { nominal: o.gpu, borrowing_limit: o.borrow ?? null, lending_limit: null };
  return t;
}

function snapshot(o: { now?: number; pending?: PendingJob[]; running?: RunningJob[]; workers: PolicyWorker[]; tenants?: PolicyTenant[] }): ClusterSnapshot {
  const pending = new Map<string, PendingJob[]>();
  for (const j of o.pending ?? []) {
    if (!pending.has(j.tenant)) pending.set(j.tenant, []);
    pending.get(j.tenant)!.push(j);
  }
  const rank = (p: Priority) => ['emergency', 'critical', 'high', 'normal', 'low'].indexOf(p);
  for (const l of pending.values()) l.sort((a, b) => rank(a.priority) - rank(b.priority) || a.queued_at - b.queued_at || a.seq - b.seq);
  return { now: o.now ?? 1000, pending, running: o.running ?? [], workers: o.workers, tenants: new Map((o.tenants ?? []).map((t) => [t.id, t])), usage: new Map() };
}

test('an 8-GPU job on 4-GPU machines stays pending, says why, and does not block smaller jobs', () => {
  const snap = snapshot({ workers: [worker('w1', 16, 4), worker('w2', 16, 4)], pending: [job('big', 'a', { gpu: 8, queued_at: 0 }), job('small', 'a', { gpu: 2, queued_at: 5 }), job('other', 'b', { gpu: 4, queued_at: 9 })] });
  const d = gantryPolicy.decide(snap, cfg());
  assert.deepEqual(d.admissions.map((a) => a.job_id).sort(), ['other', 'small']);
  const e = d.explanations.get('big')!;
  assert.deepEqual(e.reasons[0], { kind: 'too_big', resource: 'gpu_count', need: 8, largest: 4 });
  assert.match(renderExplanation(e), /too big for any worker: needs gpu_count 8, the largest worker has 4/);
  // GPUs are bin-packed: the 2-GPU and the 4-GPU job do not spread over both machines' GPUs halfway.
  const used = d.admissions.map((a) => a.placements[0]!.worker_id);
  assert.notEqual(used[0], used[1]);
});

test('a multi-GPU job is never split; a gang (nodes: N) starts on N workers at once or not at all', () => {
  const ws = [worker('w1', 16, 4), worker('w2', 16, 4), worker('w3', 16, 4)];
  const r = running(ws[2]!, 'r', 'x', { gpu: 2 });
  const d1 = gantryPolicy.decide(snapshot({ workers: ws, running: [r], pending: [job('gang', 'a', { gpu: 4, nodes: 3 })] }), cfg({ preemption: false }));
  assert.equal(d1.admissions.length, 0, 'only two workers have 4 free GPUs: nothing starts');
  assert.deepEqual(d1.explanations.get('gang')!.reasons[0], { kind: 'no_room', need: { cpu_cores: 1, memory_gb: 0, gpu_count: 4 }, nodes: 3, nodes_with_room: 2 });
  assert.match(renderExplanation(d1.explanations.get('gang')!), /on each of 3 workers \(2 have room now\)/);
  const free = [worker('w1', 16, 4), worker('w2', 16, 4), worker('w3', 16, 4)];
  const d2 = gantryPolicy.decide(snapshot({ workers: free, pending: [job('gang', 'a', { gpu: 4, nodes: 3 })] }), cfg());
  assert.equal(d2.admissions.length, 1);
  const p = d2.admissions[0]!.placements;
  assert.equal(new Set(p.map((x) => x.worker_id)).size, 3);
  assert.ok(p.every((x) => x.gpu_indices.length === 4));
});

test('quota: jobs stop at the nominal quota with an explanation, and a quota raised between cycles takes effect', () => {
  const w = worker('w1', 64, 8);
  const pending = Array.from({ length: 6 }, (_, i) => job(`j${i}`, 'acme', { gpu: 1, queued_at: i }));
  const d1 = gantryPolicy.decide(snapshot({ workers: [w], pending, tenants: [tenant('acme', { gpu: 4 })] }), cfg());
  assert.deepEqual(d1.admissions.map((a) => a.job_id), ['j0', 'j1', 'j2', 'j3']);
  assert.match(renderExplanation(d1.explanations.get('j4')!), /tenant acme at quota for gpu_count \(4\/4, needs 1 more; nominal 4\)/);
  // Next cycle: the four run, the quota is now 6.
  const w2 = worker('w1', 64, 8);
  const run = ['j0', 'j1', 'j2', 'j3'].map((id) => running(w2, id, 'acme', { gpu: 1 }));
  const d2 = gantryPolicy.decide(snapshot({ workers: [w2], running: run, pending: pending.slice(4), tenants: [tenant('acme', { gpu: 6 })] }), cfg());
  assert.deepEqual(d2.admissions.map((a) => a.job_id), ['j4', 'j5']);
});

test('borrowing from the cohort, then the lender reclaims its quota by preempting the borrower', () => {
  const w = worker('w1', 8);
  const tenants = [tenant('a', { cpu: 4, cohort: 'c' }), tenant('b', { cpu: 4, cohort: 'c' })];
  const pending = Array.from({ length: 8 }, (_, i) => job(`a${i}`, 'a', { queued_at: i }));
  const d1 = gantryPolicy.decide(snapshot({ workers: [w], pending, tenants }), cfg());
  assert.equal(d1.admissions.length, 8, 'a borrows b’s idle quota');
  assert.deepEqual(d1.admissions.map((a) => a.borrowing), [false, false, false, false, true, true, true, true]);
  // b's jobs arrive; the machine is full of a's jobs.
  const w2 = worker('w1', 8);
  const run = Array.from({ length: 8 }, (_, i) => running(w2, `a${i}`, 'a', { started_at: i * 10 }));
  const d2 = gantryPolicy.decide(snapshot({ now: 5000, workers: [w2], running: run, pending: [job('b0', 'b', { queued_at: 4000 }), job('b1', 'b', { queued_at: 4001 })], tenants }), cfg());
  assert.equal(d2.admissions.length, 0);
  const victims = d2.preemptions.map((p) => p.victim_id).sort();
  assert.deepEqual(victims, ['a6', 'a7'], 'the newest borrowed jobs, one per reclaiming job');
  assert.ok(d2.preemptions.every((p) => p.kind === 'reclaim' && /reclaims its nominal quota/.test(p.reason)));
  // Within its nominal, a is not reclaimed from: with 4 of its jobs running, b's jobs just start.
  const w3 = worker('w1', 8);
  const run3 = Array.from({ length: 4 }, (_, i) => running(w3, `a${i}`, 'a'));
  const d3 = gantryPolicy.decide(snapshot({ workers: [w3], running: run3, pending: [job('b0', 'b')], tenants }), cfg());
  assert.deepEqual(d3.admissions.map((a) => a.job_id), ['b0']);
  assert.equal(d3.preemptions.length, 0);
});

test('preemption: victims are the lowest priority, then the newest; preemptible:false only yields to emergency', () => {
  const mk = () => {
    const w = worker('w1', 4);
    return { w, run: [running(w, 'a', 'x', { priority: 'normal' }), running(w, 'b', 'x', { priority: 'low', started_at: 0 }), running(w, 'c', 'x', { priority: 'low', started_at: 5 }), running(w, 'd', 'x', { priority: 'normal', preemptible: false })] };
  };
  let s = mk();
  let d = gantryPolicy.decide(snapshot({ workers: [s.w], running: s.run, pending: [job('crit', 'y', { priority: 'critical' })] }), cfg());
  assert.deepEqual(d.preemptions.map((p) => p.victim_id), ['c'], 'lowest priority, newest');
  assert.match(d.preemptions[0]!.reason, /preempted by critical job crit of tenant y/);
  s = mk();
  d = gantryPolicy.decide(snapshot({ workers: [s.w], running: s.run, pending: [job('crit', 'y', { priority: 'critical', cpu: 4 })] }), cfg());
  assert.equal(d.preemptions.length, 0, 'd is not preemptible, so a critical job cannot get 4 cores');
  s = mk();
  d = gantryPolicy.decide(snapshot({ workers: [s.w], running: s.run, pending: [job('emer', 'y', { priority: 'emergency', cpu: 4 })] }), cfg());
  assert.deepEqual(d.preemptions.map((p) => p.victim_id).sort(), ['a', 'b', 'c', 'd']);
  // Borrowing tenants' jobs go first, even before a lower priority.
  const w = worker('w1', 2);
  const run = [running(w, 'own-low', 'lender', { priority: 'low' }), running(w, 'borrowed', 'borrower', { priority: 'normal' })];
  const tenants = [tenant('lender', { cpu: 4, cohort: 'c' }), tenant('borrower', { cpu: 0, cohort: 'c' })];
  d = gantryPolicy.decide(snapshot({ workers: [w], running: run, pending: [job('crit', 'z', { priority: 'critical' })], tenants }), cfg());
  assert.deepEqual(d.preemptions.map((p) => p.victim_id), ['borrowed']);
  // Without preemption the baseline just waits.
  assert.equal(bestEffortFifoPolicy.decide(snapshot({ workers: [mk().w], running: mk().run, pending: [job('crit', 'y', { priority: 'critical' })] }), cfg()).preemptions.length, 0);
});

test('aging lifts a long-waiting low-priority job over newer normal work', () => {
  const step = 600_000;
  const pending = () => [job('old-low', 'a', { priority: 'low', queued_at: 0 }), job('new-normal', 'b', { priority: 'normal', queued_at: 2 * step })];
  const early = gantryPolicy.decide(snapshot({ now: 2 * step, workers: [worker('w1', 1)], pending: pending() }), cfg({ aging_step_ms: step }));
  assert.deepEqual(early.admissions.map((a) => a.job_id), ['old-low'], 'waited 2 steps: low → high, ahead of normal');
  const noAging = gantryPolicy.decide(snapshot({ now: 2 * step, workers: [worker('w1', 1)], pending: pending() }), cfg({ aging_step_ms: 0 }));
  assert.deepEqual(noAging.admissions.map((a) => a.job_id), ['new-normal']);
  // The bound on wait: past max_wait_ms a job goes ahead of critical work too.
  const starving = [job('starved', 'a', { priority: 'low', queued_at: 0 }), job('crit', 'b', { priority: 'critical', queued_at: 10 * step })];
  const d = gantryPolicy.decide(snapshot({ now: 10 * step, workers: [worker('w1', 1)], pending: starving }), cfg({ aging_step_ms: step, max_wait_ms: 5 * step, preemption: false }));
  assert.deepEqual(d.admissions.map((a) => a.job_id), ['starved']);
});

test('fair share: within a class, the tenant with the lower weighted share goes first; many admissions per tenant per cycle', () => {
  const w = worker('w1', 6);
  const pending = [...Array.from({ length: 10 }, (_, i) => job(`a${i}`, 'a', { queued_at: i })), ...Array.from({ length: 10 }, (_, i) => job(`b${i}`, 'b', { queued_at: 100 + i }))];
  const d = gantryPolicy.decide(snapshot({ workers: [w], pending, tenants: [tenant('a', { weight: 1 }), tenant('b', { weight: 2 })] }), cfg());
  const count = (t: string) => d.admissions.filter((a) => a.tenant === t).length;
  assert.equal(count('a'), 2);
  assert.equal(count('b'), 4);
  // FIFO would give all six to the tenant that queued first.
  const fifo = bestEffortFifoPolicy.decide(snapshot({ workers: [worker('w1', 6)], pending }), cfg());
  assert.equal(fifo.admissions.filter((a) => a.tenant === 'a').length, 6);
});

test('a paused tenant admits nothing; explanations for asked-for ids come in plain words', () => {
  const snap = snapshot({ workers: [worker('w1', 4)], pending: [job('p1', 'paused'), job('ok', 'live')], tenants: [tenant('paused', { paused: true })] });
  const d = gantryPolicy.decide(snap, cfg({ explain: ['p1'] }));
  assert.deepEqual(d.admissions.map((a) => a.job_id), ['ok']);
  assert.equal(renderExplanation(d.explanations.get('p1')!), "tenant paused's queue is paused");
  assert.equal(d.explanations.has('ok'), false);
});

test('best fit: CPU jobs fill the fullest worker that fits and stay off GPU machines; GPU jobs pack, distinct indices within a cycle', () => {
  const place = (workers: PolicyWorker[], jobs: PendingJob[], runningJobs: RunningJob[] = []) =>
    Object.fromEntries(gantryPolicy.decide(snapshot({ workers, pending: jobs, running: runningJobs }), cfg()).admissions.map((a) => [a.job_id, a.placements[0]!]));
  const sized = () => [worker('big', 32), worker('small', 4), worker('mid', 8)];
  assert.equal(place(sized(), [job('two', 'a', { cpu: 2 })]).two?.worker_id, 'small');
  assert.equal(place(sized(), [job('six', 'a', { cpu: 6 })]).six?.worker_id, 'mid', 'does not fit on small');
  assert.equal(place(sized(), [job('twenty', 'a', { cpu: 20 })]).twenty?.worker_id, 'big');
  assert.equal(place(sized(), [job('forty', 'a', { cpu: 40 })]).forty, undefined);
  // Free room counts, not size: a has 2 free of 16, b 8 of 8.
  const a = worker('a', 16);
  const busy = running(a, 'r', 'x', { cpu: 14 });
  assert.equal(place([a, worker('b', 8)], [job('one', 'a', { cpu: 1 })], [busy]).one?.worker_id, 'a');
  assert.equal(place([worker('gpu', 4, 2), worker('cpu', 16)], [job('c', 'a', { cpu: 1 })]).c?.worker_id, 'cpu', 'CPU job off the GPU machine');
  // GPU jobs onto the machine with the fewest free GPUs that fit, lowest free indices first.
  const empty = worker('empty', 16, 8);
  const full = worker('busy', 16, 8);
  const holding = running(full, 'g', 'x', { gpu: 5 });
  const p = place([empty, full], [job('two-gpu', 'a', { gpu: 2, queued_at: 0 }), job('four-gpu', 'a', { gpu: 4, queued_at: 1 })], [holding]);
  assert.deepEqual(p['two-gpu'], { worker_id: 'busy', gpu_indices: [5, 6] });
  assert.deepEqual(p['four-gpu'], { worker_id: 'empty', gpu_indices: [0, 1, 2, 3] }, 'does not fit in what busy has left');
  // Two jobs in one cycle on one worker get distinct GPUs, and the cycle sees the room they took.
  const one = worker('one', 4, 4);
  one.capacity.slots = one.free.slots = 3;
  const q = place([one], [job('j1', 'a', { cpu: 2, gpu: 2, queued_at: 0 }), job('j2', 'a', { cpu: 2, gpu: 2, queued_at: 1 }), job('j3', 'a', { cpu: 0.5, queued_at: 2 })]);
  assert.deepEqual([q.j1?.gpu_indices, q.j2?.gpu_indices, q.j3], [[0, 1], [2, 3], undefined]);
});

test('slots bound a worker; handler workers take only their handlers, count slots only and assign no GPUs', () => {
  const w = worker('w', 64);
  w.capacity.slots = w.free.slots = 1;
  assert.equal(gantryPolicy.decide(snapshot({ workers: [w], pending: [job('a1', 'a', { queued_at: 0 }), job('a2', 'a', { queued_at: 1 })] }), cfg()).admissions.length, 1);
  const h: PolicyWorker = { ...worker('h', 1), kind: 'handler', queue_keys: ['resize'] };
  h.capacity.slots = h.free.slots = 1;
  const handlerJob = (id: string, key: string) => ({ ...job(id, 'a', { cpu: 8 }), queue_key: key });
  const d = gantryPolicy.decide(snapshot({ workers: [h, worker('p', 4)], pending: [handlerJob('resize-1', 'resize'), handlerJob('resize-2', 'resize'), handlerJob('ocr', 'ocr'), job('cmd', 'b')] }), cfg());
  assert.deepEqual(
    d.admissions.map((x) => [x.job_id, x.placements[0]!.worker_id, x.placements[0]!.gpu_indices]).sort(),
    [['cmd', 'p', []], ['resize-1', 'h', []]],
    '8 cpu fit a 1-cpu handler worker (it runs in its process); its one slot takes one; no worker serves ocr',
  );
});

test('aging within a class: a critical job waiting past class_fifo_after_ms goes before newer critical work, whatever its tenant share or quota', () => {
  const min = 60_000;
  const w = worker('w1', 20);
  // Tenant "heavy" holds much of the cluster (high share) and would borrow; "light" holds nothing.
  const held = running(w, 'r', 'heavy', { cpu: 10 });
  const tenants = [tenant('heavy', { cpu: 10, cohort: 'c' }), tenant('light', { cpu: 10, cohort: 'c' })];
  const pending = [job('old', 'heavy', { priority: 'critical', cpu: 10, queued_at: 0 }), job('new', 'light', { priority: 'critical', cpu: 10, queued_at: 9 * min })];
  const at = (now: number, o: Partial<PolicyConfig> = {}) =>
    gantryPolicy.decide(snapshot({ now, workers: [structuredClone(w)], running: [held], pending: pending.map((j) => ({ ...j })), tenants }), cfg({ preemption: false, ...o })).admissions.map((a) => a.job_id);
  assert.deepEqual(at(9 * min), ['new'], 'before the bound: nominal-first and fair share put the light tenant first');
  assert.deepEqual(at(10 * min), ['old'], 'waited 10 min: first in its class, by arrival');
  assert.deepEqual(at(10 * min, { class_fifo_after_ms: 0 }), ['new'], 'off');
});

test('reclaim at high and above takes only lower-priority jobs: no preemption ping-pong between same-class jobs of one cohort', () => {
  const mk = (victimPriority: Priority) => {
    const w = worker('w1', 10);
    const borrowed = running(w, 'borrowed', 'heavy', { cpu: 10, priority: victimPriority });
    const tenants = [tenant('heavy', { cpu: 0, cohort: 'c' }), tenant('light', { cpu: 10, cohort: 'c' })];
    return gantryPolicy.decide(snapshot({ workers: [w], running: [borrowed], pending: [job('mine', 'light', { priority: 'critical', cpu: 10 })], tenants }), cfg({ critical_preempt_after_ms: Infinity }));
  };
  assert.deepEqual(mk('normal').preemptions.map((p) => [p.victim_id, p.kind]), [['borrowed', 'reclaim']]);
  assert.deepEqual(mk('critical').preemptions, [], 'the borrower’s critical job keeps running; the lender’s waits (and ages ahead of newer critical work)');
});

test('held back by quota, a job takes quota only from its own tenant or borrowers, not from a tenant within its nominal (which would retake it at once)', () => {
  const w = worker('w1', 40);
  const run = [
    running(w, 'b-own', 'b', { cpu: 10, started_at: 0 }),
    // Tenant a runs exactly its nominal quota; its jobs are the newest, so plain victim order would take them.
    ...Array.from({ length: 10 }, (_, i) => running(w, `a${i}`, 'a', { cpu: 1, started_at: 100 + i })),
  ];
  const tenants = [tenant('a', { cpu: 10, cohort: 'c' }), tenant('b', { cpu: 10, cohort: 'c' })];
  const d = gantryPolicy.decide(snapshot({ workers: [w], running: run, pending: [job('crit', 'b', { priority: 'critical', cpu: 10 })], tenants }), cfg());
  assert.deepEqual(d.preemptions.map((p) => p.victim_id), ['b-own']);
});

test('a critical gang preempts on N distinct workers: the minimal set on each, lowest priority then newest, nothing elsewhere, and the room is promised to it', () => {
  const ws = [worker('w1', 4), worker('w2', 4), worker('w3', 4)];
  const run = [
    running(ws[0]!, 'n1', 'x', { cpu: 2, priority: 'normal' }), running(ws[0]!, 'l1', 'x', { cpu: 2, priority: 'low', started_at: 5 }),
    running(ws[1]!, 'n2', 'x', { cpu: 2, priority: 'normal', started_at: 1 }), running(ws[1]!, 'n3', 'x', { cpu: 2, priority: 'normal', started_at: 9 }),
    running(ws[2]!, 'h1', 'x', { cpu: 4, priority: 'high' }),
  ];
  const pending = [job('gang', 'y', { priority: 'critical', cpu: 2, nodes: 2 }), job('filler', 'z', { cpu: 2, queued_at: 1 })];
  const d = gantryPolicy.decide(snapshot({ workers: ws, running: run, pending }), cfg());
  assert.deepEqual(d.preemptions.map((p) => p.victim_id).sort(), ['l1', 'n3'], 'on w1 the low job, on w2 the newer normal job; the high job on w3 is not needed');
  assert.ok(d.preemptions.every((p) => p.for_job_id === 'gang' && p.kind === 'priority' && /preempted by critical job gang of tenant y/.test(p.reason)));
  assert.deepEqual(d.admissions, [], 'the freed room is promised to the gang: the normal job behind it does not take it');
  assert.match(renderExplanation(d.explanations.get('gang')!), /preempting (l1, n3|n3, l1) to make room on workers w1, w2/);

  // Next cycle, the victims are stopping: no new victims, the gang keeps its claim; once they are gone it starts on w1 and w2.
  const ws2 = [worker('w1', 4), worker('w2', 4), worker('w3', 4)];
  const run2 = [
    running(ws2[0]!, 'n1', 'x', { cpu: 2 }), { ...running(ws2[0]!, 'l1', 'x', { cpu: 2, priority: 'low', started_at: 5 }), terminating: true },
    running(ws2[1]!, 'n2', 'x', { cpu: 2, started_at: 1 }), { ...running(ws2[1]!, 'n3', 'x', { cpu: 2, started_at: 9 }), terminating: true },
    running(ws2[2]!, 'h1', 'x', { cpu: 4, priority: 'high' }),
  ];
  const d2 = gantryPolicy.decide(snapshot({ workers: ws2, running: run2, pending }), cfg());
  assert.deepEqual(d2.preemptions, []);
  assert.deepEqual(d2.admissions, []);
  assert.match(renderExplanation(d2.explanations.get('gang')!), /room is coming free on workers w1, w2: preempted jobs are stopping/);
  const ws3 = [worker('w1', 4), worker('w2', 4), worker('w3', 4)];
  const run3 = [running(ws3[0]!, 'n1', 'x', { cpu: 2 }), running(ws3[1]!, 'n2', 'x', { cpu: 2, started_at: 1 }), running(ws3[2]!, 'h1', 'x', { cpu: 4, priority: 'high' })];
  const d3 = gantryPolicy.decide(snapshot({ workers: ws3, running: run3, pending }), cfg());
  assert.deepEqual(d3.admissions.map((a) => [a.job_id, a.placements.map((p) => p.worker_id).sort()]), [['gang', ['w1', 'w2']]]);
});

test('gang preemption is all or nothing: no victim anywhere unless N workers can be made free; preemptible:false yields only to emergency', () => {
  const mk = () => {
    const ws = [worker('w1', 2), worker('w2', 2), worker('w3', 2)];
    const run = [
      running(ws[0]!, 'a', 'x', { cpu: 2, priority: 'low' }),
      running(ws[1]!, 'b', 'x', { cpu: 2, priority: 'low', preemptible: false }),
      running(ws[2]!, 'c', 'x', { cpu: 2, priority: 'critical' }),
    ];
    return { ws, run };
  };
  const gang = (priority: Priority, nodes: number) => [job('gang', 'y', { priority, cpu: 2, nodes })];
  let s = mk();
  const crit = gantryPolicy.decide(snapshot({ workers: s.ws, running: s.run, pending: gang('critical', 2) }), cfg());
  assert.deepEqual(crit.preemptions, [], 'only w1 can be made free for critical work: nobody is preempted');
  assert.deepEqual(crit.admissions, []);
  s = mk();
  const emerg = gantryPolicy.decide(snapshot({ workers: s.ws, running: s.run, pending: gang('emergency', 2) }), cfg());
  assert.deepEqual(emerg.preemptions.map((p) => p.victim_id).sort(), ['a', 'b'], 'emergency work preempts the non-preemptible job too');
  s = mk();
  const three = gantryPolicy.decide(snapshot({ workers: s.ws, running: s.run, pending: gang('emergency', 4) }), cfg());
  assert.equal(three.preemptions.length, 0, 'a 4-node gang on 3 workers never preempts');
  // Critical work waits `critical_preempt_after_ms` first, as single jobs do.
  s = mk();
  const early = gantryPolicy.decide(snapshot({ workers: [s.ws[0]!, worker('w4', 2)], running: [s.run[0]!], pending: gang('critical', 2) }), cfg({ critical_preempt_after_ms: 60_000 }));
  assert.deepEqual(early.preemptions, []);
});

test('gang preemption takes borrowing tenants first, reclaims borrowed quota, and stops a victim gang once', () => {
  // Victim order on each worker: the borrowing tenant's job before the lender's own, though the lender's is newer.
  const tenants = [tenant('lender', { cpu: 8 }), tenant('borrower', { cpu: 2 })].map((t) => ({ ...t, cohort: 'c' }));
  const ws = [worker('w1', 4), worker('w2', 4)];
  const run = [
    running(ws[0]!, 'own1', 'lender', { cpu: 2, started_at: 9 }), running(ws[0]!, 'bor1', 'borrower', { cpu: 2, started_at: 1 }),
    running(ws[1]!, 'own2', 'lender', { cpu: 2, started_at: 9 }), running(ws[1]!, 'bor2', 'borrower', { cpu: 2, started_at: 1 }),
  ];
  const d = gantryPolicy.decide(snapshot({ workers: ws, running: run, pending: [job('gang', 'lender', { cpu: 2, nodes: 2 })], tenants }), cfg());
  assert.deepEqual(d.preemptions.map((p) => [p.victim_id, p.kind]).sort(), [['bor1', 'reclaim'], ['bor2', 'reclaim']], 'a normal gang within its nominal quota reclaims what the borrower took');

  // A running low gang on both workers is one victim: preempted once, whole.
  const gw = [worker('w1', 2), worker('w2', 2)];
  const victimGang: RunningJob = { ...running(gw[0]!, 'low-gang', 'x', { cpu: 2, priority: 'low' }) };
  const second = running(gw[1]!, 'low-gang', 'x', { cpu: 2, priority: 'low' });
  victimGang.placements = [...victimGang.placements, ...second.placements];
  const d2 = gantryPolicy.decide(snapshot({ workers: gw, running: [victimGang], pending: [job('gang', 'y', { priority: 'emergency', cpu: 2, nodes: 2 })] }), cfg());
  assert.deepEqual(d2.preemptions.map((p) => p.victim_id), ['low-gang']);
});

test('no victim that aging would requeue ahead of its preemptor (it would take the room straight back: a preemption loop)', () => {
  const h = 3_600_000;
  const now = 30 * h;
  // Past the bound on wait (24 h) a job ranks above critical work: preempting it for a critical job would only bounce it back.
  const w = worker('w1', 4);
  const aged = { ...running(w, 'aged', 'x', { cpu: 2, priority: 'low', started_at: now - 1000 }), queued_at: 0 };
  const fresh = { ...running(w, 'fresh', 'x', { cpu: 2, priority: 'low', started_at: now - 5000 }), queued_at: now - 6000 };
  const d = gantryPolicy.decide(snapshot({ now, workers: [w], running: [aged, fresh], pending: [job('crit', 'y', { priority: 'critical', cpu: 2, queued_at: now })] }), cfg());
  assert.deepEqual(d.preemptions.map((p) => p.victim_id), ['fresh'], 'the newest job is aged past the bound: the other one goes');

  // Aging within a class: a reclaiming job that waited past `class_fifo_after_ms` does not take an older job of its (aged) class.
  const tenants = [tenant('lender', { cpu: 4 }), tenant('borrower', { cpu: 0 })].map((t) => ({ ...t, cohort: 'c' }));
  const w2 = worker('w1', 4);
  const older = { ...running(w2, 'older', 'borrower', { cpu: 2, priority: 'low', started_at: now - 1000 }), queued_at: now - 3 * h };
  const younger = { ...running(w2, 'younger', 'borrower', { cpu: 2, priority: 'low', started_at: now - 5000 }), queued_at: now - h };
  const d2 = gantryPolicy.decide(snapshot({ now, workers: [w2], running: [older, younger], pending: [job('mine', 'lender', { cpu: 2, queued_at: now - 2 * h })], tenants }), cfg());
  assert.deepEqual(d2.preemptions.map((p) => [p.victim_id, p.kind]), [['younger', 'reclaim']]);
});
