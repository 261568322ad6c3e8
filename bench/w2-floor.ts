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
 *
 * `node bench/w2-floor.ts [runs] [seconds] writes` (and the row "with the writes" of `npm run bench`):
 * the same relay also writes what a job's way needs written before any worker may see it, on SQLite
 * with the server's settings and Gantry's own schema — the job's row (already assigned), its two events
 * and its attempt, in one transaction (one commit: fewer than Gantry's two) — and the report's
 * transaction (the row, the attempt, one event) when the worker's next poll carries the job back.
 * No validation, no reads, no scheduling, and no checkpoints (the WAL grows, as in the write floors):
 * what any server costs here that makes a job durable before handing it off.
 */
import Fastify from 'fastify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpRequest } from '../src/client/transport.ts';
import { openSqliteLikeServer, seedQueuedJobs } from './floorSetup.ts';
import { LATENCY_WARMUP_JOBS } from './peers/util.ts';
import { ask, cpuMs, forkRole, percentile } from './gantry.ts';

const now = () => Number(process.hrtime.bigint()) / 1e6;
const HEADERS = (): Record<string, string> => ({ 'content-type': 'application/json' });

/**
 * The writes of a job's way on SQLite, as raw prepared statements on Gantry's schema (created by the store in a
 * fresh file, with one job submitted through it as the model of every row written here, then removed).
 */
async function jobWrites(dir: string): Promise<{ submit: (body: unknown) => string; report: (ids: readonly string[]) => void; close: () => void }> {
  const file = join(dir, 'floor.db');
  await seedQueuedJobs(file, 1);
  const db = openSqliteLikeServer(file);
  const model = db.prepare('SELECT * FROM jobs LIMIT 1').get() as Record<string, unknown>;
  db.exec('DELETE FROM job_events; DELETE FROM job_attempts; DELETE FROM jobs; PRAGMA wal_checkpoint(TRUNCATE)');
  const columns = Object.keys(model).filter((c) => c !== 'seq');
  const insertJob = db.prepare(`INSERT INTO jobs (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
  const event = db.prepare('INSERT INTO job_events (job_id, at, from_state, to_state, reason, actor, data, steps) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  const attempt = db.prepare('INSERT INTO job_attempts (id, job_id, number, worker_id, started_at, outcome) VALUES (?, ?, ?, ?, ?, ?)');
  const done = db.prepare(`UPDATE jobs SET state = ?, updated_at = ?, finished_at = ?, result = ?, worker_id = NULL WHERE id = ? AND state = 'SCHEDULED'`);
  const attemptEnd = db.prepare('UPDATE job_attempts SET ended_at = ?, exit_code = ?, error = ?, outcome = ? WHERE id = ?');
  const w = 'wkr_floor';
  const steps = JSON.stringify([{ to: 'RUNNING', reason: 'worker started the job' }]);
  let n = 0;
  return {
    submit(body) {
      const k = (n++).toString(36).padStart(12, '0');
      const id = `job_${k}`;
      const att = `att_${k}`;
      const now = Date.now();
      db.exec('BEGIN IMMEDIATE');
      const row: Record<string, unknown> = { ...model, id, state: 'SCHEDULED', parameters: JSON.stringify(body), created_at: now, updated_at: now, worker_id: w, current_attempt_id: att, attempt_count: 1 };
      insertJob.run(columns.map((c) => row[c]));
      event.run(id, now, null, 'QUEUED', 'submitted', 'bench', null, null);
      event.run(id, now, 'QUEUED', 'SCHEDULED', `assigned to worker ${w}`, 'scheduler', JSON.stringify({ worker_id: w, attempt_id: att, gpu_indices: [] }), null);
      attempt.run(att, id, 1, w, now, 'running');
      db.exec('COMMIT');
      return id;
    },
    report(ids) {
      const now = Date.now();
      db.exec('BEGIN IMMEDIATE');
      for (const id of ids) {
        const att = `att_${id.slice(4)}`;
        done.run('COMPLETED', now, now, 'null', id);
        attemptEnd.run(now, null, null, 'completed', att);
        event.run(id, now, 'SCHEDULED', 'COMPLETED', 'completed', `worker:${w}`, JSON.stringify({ attempt_id: att, exit_code: null, error: null }), steps);
      }
      db.exec('COMMIT');
    },
    close: () => db.close(),
  };
}

async function relayServer(withWrites: boolean): Promise<void> {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  const dir = withWrites ? mkdtempSync(join(tmpdir(), 'gantry-w2floor-')) : null;
  const writes = dir ? await jobWrites(dir) : null;
  const queue: unknown[] = [];
  let waiting: ((jobs: unknown[]) => void) | null = null;
  app.post('/jobs', async (req, reply) => {
    const job = writes ? { ...(req.body as object), id: writes.submit(req.body) } : req.body;
    if (waiting) {
      const w = waiting;
      waiting = null;
      w([job]);
    } else queue.push(job);
    return reply.status(201).send({ ok: true });
  });
  app.post('/poll', (req, reply) => {
    const done = (req.body as { done?: string[] } | undefined)?.done;
    if (writes && done?.length) writes.report(done);
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
    if (m.cmd === 'stop')
      void app.close().then(() => {
        writes?.close();
        if (dir) rmSync(dir, { recursive: true, force: true });
        process.exit(0);
      });
  });
}

/** Reads the stamp of each job on arrival; with `report`, its next poll carries the ids of the jobs it got (as the SDK's carries their results). */
async function relayWorker(url: string, report: boolean): Promise<void> {
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
  let done: string[] = [];
  for (;;) {
    const res = await httpRequest(poll, 'POST', HEADERS(), report ? JSON.stringify({ done }) : '{}', 30_000);
    const t = now();
    done = [];
    for (const job of (JSON.parse(res.text) as { jobs: { t?: number; id?: string }[] }).jobs) {
      if (typeof job.t === 'number') latencies.push(t - job.t);
      if (job.id) done.push(job.id);
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

/**
 * W2's shape through a relay that does nothing (`writes`: nothing but a job's writes on SQLite): `warm` unpaced jobs
 * first (V8 compiles the path), then the peers' paced warm-up, then `rate`/s for `seconds`.
 */
export async function w2RelayFloor(rate = 200, seconds = 10, { warm = 2000, writes = false } = {}): Promise<RelayFloor> {
  const server = await forkRole<{ url: string }>(import.meta.url, 'server', writes ? ['writes'] : []);
  const url = server.msg.url!;
  const worker = await forkRole(import.meta.url, 'worker', [url, ...(writes ? ['writes'] : [])]);
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
if (role === 'server') await relayServer(process.argv[3] === 'writes');
else if (role === 'worker') await relayWorker(process.argv[3]!, process.argv[4] === 'writes');
else if (import.meta.url === `file://${process.argv[1]}`) {
  const runs = Number(process.argv[2] ?? 1);
  const seconds = Number(process.argv[3] ?? 10);
  const writes = process.argv[4] === 'writes';
  for (let i = 0; i < runs; i++) {
    const f = await w2RelayFloor(200, seconds, { writes });
    const x = (v: number) => v.toFixed(2);
    console.log(`relay floor${writes ? ' with the writes' : ''}: p50 ${x(f.p50_ms)} / p99 ${x(f.p99_ms)} / max ${x(f.max_ms)} ms (${f.samples} samples), relay server CPU ${x(f.server_cpu_ms_per_job)} ms/job`);
  }
}
