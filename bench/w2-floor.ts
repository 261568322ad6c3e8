/**
 * W2's floor on this machine: the same three processes and HTTP hops as Gantry's W2, with nothing
 * in between — `node bench/w2-floor.ts [runs] [seconds]`, also a row of `npm run bench`.
 *
 * A producer (this process) sends one job at a time at 200/s with the client's own transport
 * (src/client/transport.ts: node:http, keep-alive); a relay server (Fastify, as Gantry's, no schema,
 * no auth, no store, no scheduler) hands each job to the worker's waiting long poll before it
 * answers the producer; the worker (its own process, the same transport) reads the producer's stamp
 * on arrival and polls again. What W2 costs beyond this is Gantry's: validation, the writes, the
 * scheduling cycle, the assignment, the report. Latency is submit → arrival at the worker, stamped
 * with the monotonic clock shared by all processes, as in W2.
 */
import Fastify from 'fastify';
import { httpRequest } from '../src/client/transport.ts';
import { LATENCY_WARMUP_JOBS } from './peers/util.ts';
import { ask, cpuMs, forkRole, percentile } from './gantry.ts';

const now = () => Number(process.hrtime.bigint()) / 1e6;
const HEADERS = (): Record<string, string> => ({ 'content-type': 'application/json' });

async function relayServer(): Promise<void> {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  const queue: unknown[] = [];
  let waiting: ((jobs: unknown[]) => void) | null = null;
  app.post('/jobs', async (req, reply) => {
    const job = req.body;
    if (waiting) {
      const w = waiting;
      waiting = null;
      w([job]);
    } else queue.push(job);
    return reply.status(201).send({ ok: true });
  });
  app.post('/poll', (_req, reply) => {
    if (queue.length > 0) return reply.send({ jobs: queue.splice(0) });
    const timer = setTimeout(() => {
      waiting = null;
      void reply.send({ jobs: [] });
    }, 25_000);
    waiting = (jobs) => {
      clearTimeout(timer);
      void reply.send({ jobs });
    };
    return reply;
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  process.send!({ url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}` });
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'stop') void app.close().then(() => process.exit(0));
  });
}

async function relayWorker(url: string): Promise<void> {
  const latencies: number[] = [];
  let count = 0;
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'stats') process.send!({ count, latencies });
    if (m.cmd === 'reset') {
      count = 0;
      latencies.length = 0;
      process.send!({ reset: true });
    }
    if (m.cmd === 'stop') process.exit(0);
  });
  process.send!({ ready: true });
  const poll = new URL('/poll', url);
  for (;;) {
    const res = await httpRequest(poll, 'POST', HEADERS(), '{}', 30_000);
    const t = now();
    for (const job of (JSON.parse(res.text) as { jobs: { t?: number }[] }).jobs) {
      if (typeof job.t === 'number') latencies.push(t - job.t);
      count++;
    }
  }
}

export interface RelayFloor {
  samples: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  server_cpu_ms_per_job: number;
}

/** W2's shape through a relay that does nothing: `warm` unpaced jobs first (V8 compiles the path), then the peers' paced warm-up, then `rate`/s for `seconds`. */
export async function w2RelayFloor(rate = 200, seconds = 10, warm = 2000): Promise<RelayFloor> {
  const server = await forkRole<{ url: string }>(import.meta.url, 'server');
  const url = server.msg.url!;
  const worker = await forkRole(import.meta.url, 'worker', [url]);
  const jobs = new URL('/jobs', url);
  const submit = (t: number | undefined) => httpRequest(jobs, 'POST', HEADERS(), JSON.stringify({ handler: 'noop', t }), 30_000);
  const arrived = async (n: number) => {
    const until = now() + 60_000;
    while ((await ask<{ count: number }>(worker.child, 'stats')).count < n) {
      if (now() > until) throw new Error(`relay floor: ${n} jobs did not arrive`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const paced = async (n: number) => {
    const t0 = now();
    for (let i = 0; i < n; i++) {
      const wait = t0 + (i * 1000) / rate - now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await submit(now());
    }
  };
  try {
    for (let i = 0; i < warm; i++) await submit(undefined);
    await arrived(warm);
    await ask(worker.child, 'reset');
    await paced(LATENCY_WARMUP_JOBS);
    await arrived(LATENCY_WARMUP_JOBS);
    await ask(worker.child, 'reset');
    await new Promise((r) => setTimeout(r, 200));
    const total = rate * seconds;
    const cpu0 = cpuMs(server.child.pid!);
    await paced(total);
    await arrived(total);
    const server_cpu_ms_per_job = (cpuMs(server.child.pid!) - cpu0) / total;
    const { latencies } = await ask<{ latencies: number[] }>(worker.child, 'stats');
    const sorted = latencies.sort((a, b) => a - b);
    return { samples: sorted.length, p50_ms: percentile(sorted, 50), p99_ms: percentile(sorted, 99), max_ms: sorted[sorted.length - 1]!, server_cpu_ms_per_job };
  } finally {
    for (const p of [worker.child, server.child]) {
      const gone = new Promise((r) => p.once('exit', r));
      p.send({ cmd: 'stop' });
      setTimeout(() => p.kill('SIGKILL'), 3000).unref();
      await gone;
    }
  }
}

const role = process.argv[2];
if (role === 'server') await relayServer();
else if (role === 'worker') await relayWorker(process.argv[3]!);
else if (import.meta.url === `file://${process.argv[1]}`) {
  const runs = Number(process.argv[2] ?? 1);
  const seconds = Number(process.argv[3] ?? 10);
  for (let i = 0; i < runs; i++) {
    const f = await w2RelayFloor(200, seconds);
    const x = (v: number) => v.toFixed(2);
    console.log(`relay floor: p50 ${x(f.p50_ms)} / p99 ${x(f.p99_ms)} / max ${x(f.max_ms)} ms (${f.samples} samples), relay server CPU ${x(f.server_cpu_ms_per_job)} ms/job`);
  }
}
