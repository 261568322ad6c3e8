/**
 * W1's floor on this machine: Gantry's SDK Worker and its HTTP hops with nothing behind them —
 * `node bench/w1-floor.ts [runs]`, also a row of `npm run bench`.
 *
 * The worker is W1's own (bench/workerProc.ts: the SDK Worker, concurrency 50, prefetch 450, a no-op
 * handler) in its own process, speaking Gantry's worker protocol — register, heartbeat, long polls that
 * carry the last batch's reports, /report — to a relay (Fastify with Gantry's body limit, no schema, no
 * auth, no store, no scheduler) in another process. The relay holds `jobs` assignments in memory, shaped
 * as Gantry's poll answer for a no-op handler job, and hands out as many as the worker's registered
 * slots leave room for; a report marks its attempt done. What W1 costs beyond this is Gantry's: the
 * writes, the scheduling cycle, validation and the rows' reading and building. Measured as W1: drain
 * jobs/s from the first handler start to the last handler end, and each process's CPU per drained job.
 */
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { newId } from '../src/core/ids.ts';
import type { Assignment, AttemptReport, ReportResult } from '../src/client/http.ts';
import { ask, cpuMs, forkRole, median, profileArgs, startSdkWorker, waitUntil } from './gantry.ts';

/** As Gantry's default (GANTRY_BODY_LIMIT): a poll carrying 500 reports is ~60 KB. */
const BODY_LIMIT = 16 * 1024 * 1024;
const FINAL: Record<string, ReportResult['state']> = { completed: 'COMPLETED', failed: 'FAILED', timeout: 'FAILED', cancelled: 'CANCELLED', preempted: 'QUEUED' };

/** One job as a poll hands it out: the fields Gantry's answer has for a no-op handler job (logged from a W1 run). */
function assignment(): Assignment {
  return {
    job_id: newId('job'), attempt_id: newId('att'), attempt: 1, name: 'noop', type: 'noop', tenant: 'default', kind: 'handler',
    command: null, handler: 'noop', env: {}, working_dir: null, timeout: null, parameters: {},
    resources: { cpu_cores: 1, memory_gb: 0.25, gpu_count: 0, storage_gb: 0 }, gpu_indices: [], labels: {}, grace_period: null, checkpoint: null,
  };
}

type Batch = { reports?: AttemptReport[]; logs?: unknown[] };

async function relayServer(jobs: number): Promise<void> {
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT, forceCloseConnections: true });
  const queue = Array.from({ length: jobs }, assignment);
  let next = 0;
  let done = 0;
  let slots = 0;
  /** Attempts handed out and not reported yet: the worker's used slots. */
  const out = new Map<string, string>();
  /** Polls waiting for room (every slot used) or for the end. */
  const waiting = new Set<() => void>();
  let closing = false;

  const apply = (reports: readonly AttemptReport[]): ReportResult[] => {
    const results: ReportResult[] = [];
    for (const r of reports) {
      const state = FINAL[r.outcome];
      if (out.get(r.attempt_id) !== r.job_id) results.push({ job_id: r.job_id, status: 'stale', state: 'COMPLETED' });
      else if (!state) results.push({ job_id: r.job_id, status: 'applied', state: 'RUNNING' });
      else {
        out.delete(r.attempt_id);
        done++;
        results.push({ job_id: r.job_id, status: 'applied', state });
      }
    }
    if (waiting.size > 0) for (const wake of waiting) wake();
    return results;
  };
  const take = (): Assignment[] => {
    const n = Math.min(slots - out.size, jobs - next);
    if (n <= 0) return [];
    const handed = queue.slice(next, next + n);
    next += n;
    for (const j of handed) out.set(j.attempt_id, j.job_id);
    return handed;
  };

  app.post<{ Body: { id: string; capacity: { slots: number } } }>('/api/v1/workers', async (req, reply) => {
    slots = req.body.capacity.slots;
    return reply.status(201).send({ worker_id: req.body.id, heartbeat_interval_ms: 1000, state: 'online' });
  });
  app.post('/api/v1/workers/:id/heartbeat', async () => ({ ok: true }));
  app.post<{ Params: { id: string } }>('/api/v1/workers/:id/drain', async (req) => ({ worker_id: req.params.id, state: 'draining' }));
  app.post<{ Params: { id: string } }>('/api/v1/workers/:id/deregister', async (req) => ({ worker_id: req.params.id, state: 'offline', requeued_jobs: [] }));
  app.post<{ Body: Batch }>('/api/v1/workers/:id/report', async (req) => ({ results: apply(req.body.reports ?? []) }));
  app.post<{ Body: Batch & { wait_ms?: number } }>('/api/v1/workers/:id/poll', async (req) => {
    const results = req.body.reports ? apply(req.body.reports) : null;
    const deadline = Date.now() + (req.body.wait_ms ?? 20_000);
    let handed = take();
    while (handed.length === 0 && Date.now() < deadline && !closing) {
      let wake!: () => void;
      const woke = new Promise<void>((r) => waiting.add((wake = r)));
      const timer = setTimeout(wake, deadline - Date.now());
      await woke;
      clearTimeout(timer);
      waiting.delete(wake);
      handed = take();
    }
    return { ...(results ? { results } : {}), jobs: handed, controls: [] };
  });
  app.addHook('preClose', async () => {
    closing = true;
    for (const wake of waiting) wake();
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  process.send!({ url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}` });
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'stats') process.send!({ done });
    if (m.cmd === 'stop') void app.close().then(() => process.exit(0));
  });
}

export interface W1Floor {
  drain_per_s: number;
  relay_cpu_us: number;
  worker_cpu_us: number;
}

/** One W1 drain of `jobs` preloaded jobs through the relay, the SDK Worker at `concurrency` + `prefetch`. */
async function relayDrain(jobs: number, concurrency: number, prefetch: number): Promise<W1Floor> {
  const relay = await forkRole<{ url: string }>(import.meta.url, 'relay', [String(jobs)], profileArgs('relay'));
  const url = relay.msg.url;
  const relayDone = async () => (await ask<{ done: number }>(relay.child, 'stats')).done;
  try {
    const w = await startSdkWorker(url, 'relay', concurrency, prefetch);
    try {
      const cpu0 = [cpuMs(relay.child.pid!), cpuMs(w.pid)];
      let s = { first: 0, last: 0, count: 0 };
      await waitUntil(async () => (s = await w.stats()).count >= jobs, 120_000, 'relay drain');
      // As W1: every completion reported back, not just run.
      await waitUntil(async () => (await relayDone()) >= jobs, 60_000, 'relay drain reports');
      return {
        drain_per_s: jobs / ((s.last - s.first) / 1000),
        relay_cpu_us: ((cpuMs(relay.child.pid!) - cpu0[0]!) * 1000) / jobs,
        worker_cpu_us: ((cpuMs(w.pid) - cpu0[1]!) * 1000) / jobs,
      };
    } finally {
      await w.stop();
    }
  } finally {
    const gone = new Promise((r) => relay.child.once('exit', r));
    relay.child.send({ cmd: 'stop' });
    setTimeout(() => relay.child.kill('SIGKILL'), 3000).unref();
    await gone;
  }
}

/** `runs` W1 drains through the relay (W1's worker settings), each with fresh processes; the median of each figure, and every run's. */
export async function w1RelayFloor(jobs = 20_000, runs = 3, concurrency = 50, prefetch = 450): Promise<W1Floor & { runs: W1Floor[] }> {
  const all: W1Floor[] = [];
  for (let i = 0; i < runs; i++) all.push(await relayDrain(jobs, concurrency, prefetch));
  return {
    drain_per_s: median(all.map((r) => r.drain_per_s)),
    relay_cpu_us: median(all.map((r) => r.relay_cpu_us)),
    worker_cpu_us: median(all.map((r) => r.worker_cpu_us)),
    runs: all,
  };
}

if (process.argv[2] === 'relay') await relayServer(Number(process.argv[3]));
else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const f = await w1RelayFloor(20_000, Number(process.argv[2] ?? 5));
  const line = (r: W1Floor) => `drain ${Math.round(r.drain_per_s)}/s, CPU per job: relay ${r.relay_cpu_us.toFixed(1)} µs, worker ${r.worker_cpu_us.toFixed(1)} µs`;
  for (const r of f.runs) console.log(`relay floor: ${line(r)}`);
  console.log(`median: ${line(f)}`);
}
