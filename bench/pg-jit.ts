/**
 * A lone submit's time on PostgreSQL with a big backlog, before and after the table is analysed,
 * with Gantry's connections as they run (JIT off) and with the server's default (JIT on):
 * `node bench/pg-jit.ts [jobs] [keep]` (default 1,000,000 queued no-op jobs in a fresh database
 * `gantry_jit`; `keep` reuses it). Autovacuum is off for that database, so "before" stays before.
 */
import pg from 'pg';
import { openStore } from '../src/store/store.ts';
import { normalizeJobSpec } from '../src/core/jobSpec.ts';
import { seedQueuedJobs } from './floorSetup.ts';

const base = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const jobs = Number(process.argv[2] ?? 1_000_000);
const url = base.replace(/\/[^/?]*(\?|$)/, '/gantry_jit$1');
const admin = new pg.Client(base);
await admin.connect();
if (process.argv[3] !== 'keep') {
  await admin.query('DROP DATABASE IF EXISTS gantry_jit');
  await admin.query('CREATE DATABASE gantry_jit');
  await admin.query('ALTER DATABASE gantry_jit SET autovacuum_enabled = off').catch(() => {});
  const t0 = Date.now();
  await seedQueuedJobs(url, jobs);
  console.log(`seeded ${jobs} queued jobs in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
await admin.end();

/** Median and max ms of 8 lone submits (each answers its queue position) into the backlog's queue and into another. */
async function submits(label: string, jit: boolean): Promise<void> {
  const store = await openStore(jit ? `${url}?options=${encodeURIComponent('-c jit=on')}` : url);
  for (const handler of ['noop', 'other']) {
    const ms: number[] = [];
    for (let i = 0; i < 8; i++) {
      const t = performance.now();
      await store.submitJobs([normalizeJobSpec({ handler })], 'bench', Date.now(), { positions: true });
      ms.push(performance.now() - t);
    }
    ms.sort((a, b) => a - b);
    const where = handler === 'noop' ? 'into the backlog\'s queue' : 'into another queue     ';
    console.log(`${label.padEnd(15)} JIT ${jit ? 'on ' : 'off'}  ${where}  median ${ms[4]!.toFixed(1).padStart(7)} ms, max ${ms[7]!.toFixed(1).padStart(7)} ms`);
  }
  await store.close();
}

const c = new pg.Client(url);
await c.connect();
await c.query('VACUUM jobs');
await submits('before ANALYZE', true);
await submits('before ANALYZE', false);
await c.query('ANALYZE jobs');
await submits('after ANALYZE', true);
await submits('after ANALYZE', false);
await c.end();
