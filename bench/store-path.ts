/**
 * The W1 store hot path alone, no HTTP and no scheduler: `node bench/store-path.ts [sqlite|postgres] [runs]`.
 * Submits 20,000 handler jobs, then per batch of 500 assigns them to one worker (QUEUED → SCHEDULED +
 * attempt) and reports them completed (SCHEDULED → RUNNING → COMPLETED), as a drain does. Prints
 * µs per job for assign and report; GANTRY_SQL_PROFILE=1 adds time per statement.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { openStore } from '../src/store/store.ts';
import { normalizeJobSpec } from '../src/core/jobSpec.ts';
import { DEFAULT_BREAKER_OPTIONS } from '../src/core/breakers.ts';
import { freshDb, type StoreKind } from './gantry.ts';

const kind = (process.argv[2] ?? 'sqlite') as StoreKind;
const runs = Number(process.argv[3] ?? 3);
const pgUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const JOBS = 20_000;

async function dropIndex(url: string, index: string): Promise<void> {
  if (kind === 'sqlite') {
    const d = new Database(url);
    d.exec(`DROP INDEX ${index}`);
    d.close();
    return;
  }
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`DROP INDEX ${index}`);
  await c.end();
}
const BATCH = 500;

for (let r = 0; r < runs; r++) {
  const db = await freshDb(kind, pgUrl);
  const store = await openStore(db.url);
  // BENCH_DROP=a,b: drop these indexes first (to weigh what each costs).
  for (const ix of (process.env.BENCH_DROP ?? '').split(',').filter(Boolean)) await dropIndex(db.url, ix);
  try {
    for (let i = 0; i < JOBS; i += 1000) {
      await store.submitJobs(Array.from({ length: 1000 }, () => normalizeJobSpec({ handler: 'noop' })), 'bench', Date.now(), { batch: true });
    }
    const wid = 'wkr_bench';
    await store.registerWorker({ id: wid, name: 'bench', kind: 'handler', handlers: ['noop'], capacity: { cpu_cores: 1e6, memory_gb: 1e6, gpu_count: 0, slots: 1e6 }, labels: {} });
    let assignMs = 0, deliverMs = 0, reportMs = 0;
    const cpu0 = process.cpuUsage();
    for (;;) {
      const q = await store.queuedJobs(BATCH, null, 'noop');
      if (q.length === 0) break;
      let t = performance.now();
      const done = await store.assignJobs(q.map((j) => ({ job_id: j.id, worker_id: wid, gpu_indices: [] })));
      assignMs += performance.now() - t;
      t = performance.now();
      const d = await store.deliverToWorker(wid, BATCH);
      deliverMs += performance.now() - t;
      t = performance.now();
      await store.reportResults(wid, d.jobs.map((j) => ({ job_id: j.id, attempt_id: j.current_attempt_id!, outcome: 'completed' as const, result: null })), Date.now(), DEFAULT_BREAKER_OPTIONS);
      reportMs += performance.now() - t;
      if (done.length !== q.length) throw new Error('assignment lost');
    }
    const cpu = process.cpuUsage(cpu0);
    const us = (ms: number) => ((ms * 1000) / JOBS).toFixed(1);
    console.log(`${kind}: per job assign ${us(assignMs)} µs, deliver ${us(deliverMs)} µs, report ${us(reportMs)} µs, total ${us(assignMs + deliverMs + reportMs)} µs → ${Math.round(JOBS / ((assignMs + deliverMs + reportMs) / 1000))} jobs/s; process CPU ${((cpu.user + cpu.system) / JOBS).toFixed(1)} µs/job`);
  } finally {
    await store.close();
    await db.drop();
  }
}
