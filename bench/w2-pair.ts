/**
 * W2 for A/B work: servers of several Gantry checkouts run at once, each on a fresh database with its own
 * SDK Worker (concurrency 10, idle and waiting), and one producer submits single jobs to them in turn,
 * one every 5 ms — so every checkout is measured in the same seconds. This VM's speed moves up to 2×
 * within minutes (issue 3ad), and back-to-back runs of one checkout differed by up to 0.4 ms at p50;
 * taking turns, two servers of the same checkout differed by ≤ 0.05 ms (issue 3ae).
 * `node bench/w2-pair.ts <sqlite|postgres> <seconds> <checkout>...`, e.g. `… postgres 15 /work/base .`
 * (each checkout's own bench/gantry.ts starts its server and worker). Not W2 itself: every server gets
 * 200 / (number of checkouts) jobs/s, and the machine runs them all.
 */
import { join, resolve } from 'node:path';
import type * as GantryBench from './gantry.ts';

const [kind, seconds, ...checkouts] = process.argv.slice(2);
if ((kind !== 'sqlite' && kind !== 'postgres') || !(Number(seconds) > 0) || checkouts.length === 0) {
  throw new Error('usage: w2-pair.ts <sqlite|postgres> <seconds> <checkout>...');
}
const pgUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const GAP_MS = 5;
const WARM = 5000;
const now = () => Number(process.hrtime.bigint()) / 1e6;

const parts: { checkout: string; m: typeof GantryBench; db: Awaited<ReturnType<typeof GantryBench.freshDb>>; srv: GantryBench.GantryServerProc; w: GantryBench.WorkerProc }[] = [];
try {
  for (const checkout of checkouts) {
    const m = (await import(join(resolve(checkout), 'bench/gantry.ts'))) as typeof GantryBench;
    const db = await m.freshDb(kind, pgUrl);
    const srv = await m.startGantryServer(db.url, join(db.dir, 'data'));
    const w = await m.startSdkWorker(srv.url, srv.token, 10);
    parts.push({ checkout, m, db, srv, w });
  }
  // A warm-up drain for each (JIT, caches), then single submits in turn, discarded, then the measured ones.
  for (const p of parts) {
    await p.m.submitMany(p.srv.client, WARM, () => ({ handler: 'noop' }));
    await p.m.waitUntil(async () => (await p.w.stats()).count >= WARM, 120_000, 'warm-up drain');
  }
  const paced = async (n: number) => {
    const t0 = now();
    for (let i = 0; i < n; i++) {
      const wait = t0 + i * GAP_MS - now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const p = parts[i % parts.length]!;
      void p.srv.client.submit({ handler: 'noop', parameters: { t: now() } });
    }
  };
  await paced(200 * parts.length);
  await new Promise((r) => setTimeout(r, 500));
  for (const p of parts) await p.w.reset();
  const cpu0 = parts.map((p) => p.srv.cpuMs());
  const total = Math.round((Number(seconds) * 1000) / GAP_MS);
  await paced(total);
  const each = Math.floor(total / parts.length);
  for (const p of parts) await p.m.waitUntil(async () => (await p.w.stats()).count >= each, 30_000, 'measured jobs');
  console.log(`W2 taking turns: ${parts.length} servers on ${kind}, ${each} jobs each over ${seconds} s (ms)`);
  for (const [i, p] of parts.entries()) {
    const l = (await p.w.stats()).latencies.sort((a, b) => a - b);
    const f = (q: number) => p.m.percentile(l, q).toFixed(2);
    console.log(`${p.checkout.padEnd(16)} p50 ${f(50)}  p90 ${f(90)}  p99 ${f(99)}  max ${l[l.length - 1]!.toFixed(2)}  server CPU ${((p.srv.cpuMs() - cpu0[i]!) / l.length).toFixed(2)} ms/job`);
  }
} finally {
  for (const p of parts) {
    await p.w.stop();
    await p.srv.stop();
    await p.db.drop();
  }
}
