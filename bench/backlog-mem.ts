/**
 * W4's memory alone: a server with `n` queued jobs that no worker takes (default 1,000,000); prints
 * the server's RSS and memory breakdown after the submits and again after a few scheduler cycles.
 * Usage: node bench/backlog-mem.ts sqlite|postgres [n]
 */
import { join } from 'node:path';
import { freshDb, startGantryServer, submitMany, type StoreKind } from './gantry.ts';

const kind = (process.argv[2] ?? 'sqlite') as StoreKind;
const n = Number(process.argv[3] ?? 1_000_000);
const pgUrl = process.env.GANTRY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const db = await freshDb(kind, pgUrl);
const srv = await startGantryServer(db.url, join(db.dir, 'data'));
try {
  await new Promise((r) => setTimeout(r, 500));
  process.kill(srv.pid, 'SIGUSR2');
  await new Promise((r) => setTimeout(r, 200));
  console.log(JSON.stringify({ empty_rss_mb: Math.round(srv.rssMb()) }));
  const t0 = Date.now();
  const rate = await submitMany(srv.client, n, () => ({ handler: 'backlog' }), 5000, 2);
  console.log(JSON.stringify({ kind, n, submit_per_s: Math.round(rate), s: (Date.now() - t0) / 1000, rss_mb: Math.round(srv.rssMb()) }));
  process.kill(srv.pid, 'SIGUSR2');
  await new Promise((r) => setTimeout(r, 3000));
  console.log(JSON.stringify({ after_3s_rss_mb: Math.round(srv.rssMb()) }));
  if (process.env.SNAPSHOT) {
    process.kill(srv.pid, 'SIGHUP');
    await new Promise((r) => setTimeout(r, 8000));
    await import('node:fs').then((fs) => fs.copyFileSync(join(db.dir, 'data', 'server.heapsnapshot'), process.env.SNAPSHOT!));
  }
  process.kill(srv.pid, 'SIGUSR2');
  await new Promise((r) => setTimeout(r, 200));
} catch (e) {
  console.error(e);
} finally {
  await srv.stop();
  await db.drop();
}
