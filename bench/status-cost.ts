/**
 * What the dashboard-style reads cost on a server with a big backlog, and what they do to the jobs
 * dispatched meanwhile: `node bench/status-cost.ts sqlite|postgres [backlog] [root]` (backlog default
 * 1,000,000 queued jobs of a queue no worker serves, W4's shape, all of tenant `bench`; `root`: the
 * checkout whose server runs, default this one — for A/B against another worktree).
 * Prints each read's time over HTTP (median and max of 5, server otherwise idle; /metrics 3 times,
 * 2.1 s apart, past its cache) with the longest a /health request sent meanwhile (every 2 ms) took —
 * how long the read held the server's event loop, then W2-style latency (200 jobs/s, 10 s) without and with a client
 * polling queue status, tenant load and /metrics every `BENCH_POLL_MS` (default 1000). Latency runs
 * from the time a job was due to be submitted, not from its submit: the producer waits for each
 * submit's answer, so a stalled server delays the jobs behind it too, and those count.
 */
import { join, resolve } from 'node:path';
import pg from 'pg';
import type * as GantryBench from './gantry.ts';

const kind = (process.argv[2] ?? 'sqlite') as GantryBench.StoreKind;
const backlog = Number(process.argv[3] ?? 1_000_000);
const root = resolve(process.argv[4] ?? join(import.meta.dirname, '..'));
const pollMs = Number(process.env.BENCH_POLL_MS ?? 1000);
const pgUrl = process.env.GANTRY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const { freshDb, startGantryServer, startSdkWorker, submitMany, waitUntil, percentile } = (await import(join(root, 'bench/gantry.ts'))) as typeof GantryBench;
const mono = () => Number(process.hrtime.bigint()) / 1e6;

const db = await freshDb(kind, pgUrl);
const srv = await startGantryServer(db.url, join(db.dir, 'data'));
const get = async (path: string): Promise<unknown> => {
  const r = await fetch(`${srv.url}${path}`, { headers: { authorization: `Bearer ${srv.token}` } });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return path === '/metrics' ? r.text() : r.json();
};
try {
  if (kind === 'postgres') {
    // No autovacuum of the fresh million rows in the middle of the measurements: its ANALYZE turns the
    // single submits' plans slow (~0.3 s each, on main's code too; see docs/notes/issue4g.md), which
    // is not what this bench is about.
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query('ALTER TABLE jobs SET (autovacuum_enabled = false)');
    await c.end();
  }
  await srv.client.createTenant({ id: 'bench' });
  const t0 = mono();
  await submitMany(srv.client, backlog, () => ({ handler: 'backlog', tenant: 'bench' }), 5000, 2);
  const last = await srv.client.submit({ handler: 'backlog', tenant: 'bench' });
  console.log(`${kind} (${root}): ${backlog} queued in ${((mono() - t0) / 1000).toFixed(1)} s`);

  const w = await startSdkWorker(srv.url, srv.token, 10);
  try {
    await submitMany(srv.client, 2000, () => ({ handler: 'noop' }));
    await waitUntil(async () => (await w.stats()).count >= 2000, 60_000, 'warm-up');
    const reads: [string, string][] = [
      ['queue status', '/api/v1/queue/status'],
      ['tenant load', '/api/v1/tenants/bench'],
      ['job (last in queue)', `/api/v1/jobs/${last.job_id}`],
      ['explain (last in queue)', `/api/v1/jobs/${last.job_id}/explain`],
      ['jobs ?status=QUEUED', '/api/v1/jobs?status=QUEUED&limit=50'],
      ['workers', '/api/v1/workers'],
    ];
    /** The read's time, and the longest /health answer while it was out (~ how long the server's event loop stood still). */
    const timed = async (path: string) => {
      let done = false;
      let stall = 0;
      const pings = (async () => {
        while (!done) {
          const t = mono();
          await get('/health');
          stall = Math.max(stall, mono() - t);
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      const t = mono();
      await get(path);
      const ms = mono() - t;
      done = true;
      await pings;
      return { ms, stall };
    };
    const f1 = (x: number) => x.toFixed(1);
    for (const [what, path] of reads) {
      const runs: { ms: number; stall: number }[] = [];
      for (let i = 0; i < 5; i++) {
        runs.push(await timed(path));
        await new Promise((r) => setTimeout(r, 50));
      }
      const ms = runs.map((r) => r.ms).sort((a, b) => a - b);
      console.log(`  ${what}: median ${f1(ms[2]!)} ms, max ${f1(ms[4]!)} ms; longest /health meanwhile ${f1(Math.max(...runs.map((r) => r.stall)))} ms`);
    }
    const mt: { ms: number; stall: number }[] = [];
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 2100));
      mt.push(await timed('/metrics'));
    }
    console.log(`  /metrics (past its cache): ${mt.map((x) => f1(x.ms)).join(', ')} ms; longest /health meanwhile ${f1(Math.max(...mt.map((r) => r.stall)))} ms`);
    const q = (await get('/api/v1/queue/status')) as { queue_length: number };
    console.log(`  queue status says queue_length ${q.queue_length}`);

    const latency = async (poll: boolean) => {
      await w.reset();
      let stop = false;
      let polls = 0;
      const poller = (async () => {
        while (poll && !stop) {
          for (const p of ['/api/v1/queue/status', '/api/v1/tenants/bench', '/metrics']) await get(p);
          polls++;
          await new Promise((r) => setTimeout(r, pollMs));
        }
      })();
      const total = 2000;
      const start = mono();
      for (let i = 0; i < total; i++) {
        const wait = start + i * 5 - mono();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        // Stamped with the time it was due: a stall that holds the producer up counts for every job it delays.
        await srv.client.submit({ handler: 'noop', parameters: { t: start + i * 5 } });
      }
      let s = await w.stats();
      await waitUntil(async () => (s = await w.stats()).count >= total, 60_000, 'latency jobs');
      stop = true;
      await poller;
      const l = s.latencies.sort((a, b) => a - b);
      const f = (x: number) => x.toFixed(2);
      console.log(`  W2 latency ${poll ? `with a poller (${polls} rounds)` : 'no poller'}: p50 ${f(percentile(l, 50))} / p99 ${f(percentile(l, 99))} / max ${f(l[l.length - 1]!)} ms`);
    };
    await latency(false);
    await latency(true);
  } finally {
    await w.stop();
  }
} finally {
  await srv.stop();
  await db.drop();
}
