/**
 * What a user waits for a queued job's position in a big priority class: GET /jobs/{id} for jobs near
 * the front, in the middle and at the end of `jobs` queued normal jobs, from servers of each Gantry
 * checkout given (e.g. /work/base and this worktree), taking turns on the same database:
 * `node bench/position-times.ts <sqlite-file | postgres-url> <checkout>... [--rounds N] [--jobs N]`.
 * The database is seeded through the store (bench/floorSetup.ts) when it holds no queued job.
 * Prints the median and p90 per checkout, round and job, in ms.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openStore } from '../src/store/store.ts';
import { seedQueuedJobs } from './floorSetup.ts';
import { percentile } from './gantry.ts';
import type * as GantryBench from './gantry.ts';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i < 0 ? fallback : Number(args.splice(i, 2)[1]);
};
const ROUNDS = option('--rounds', 3);
const JOBS = option('--jobs', 300_000);
const REQUESTS = 100;
const [database, ...checkouts] = args;
if (!database || checkouts.length === 0) throw new Error('usage: position-times.ts <database> <checkout>... [--rounds N] [--jobs N]');

const store = await openStore(database);
const place = async (offset: number) =>
  String((await store.queuedJobs(1, offset === 0 ? null : await cursorAt(offset - 1), 'noop'))[0]?.id ?? '');
async function cursorAt(offset: number) {
  // Keyset paging to the `offset`th job (0-based) in pages the store reads anyway.
  let cursor = null;
  for (let left = offset + 1; left > 0; left -= Math.min(left, 10_000)) {
    const page = await store.queuedJobs(Math.min(left, 10_000), cursor, 'noop');
    const last = page.at(-1)!;
    cursor = { priority_rank: last.priority_rank, sort_key: last.sort_key, seq: last.seq };
  }
  return cursor;
}
if ((await place(0)) === '') await seedQueuedJobs(database, JOBS);
const queued = (await store.queueStats()).queued;
// A token of its own: only the first server on a database makes one, and prints it once.
const { token } = await store.createToken('position-times', 'admin', null);
const jobs = { '10th': await place(9), '1,501st': await place(1500), last: await place(queued - 1) };
await store.close();

const ms = (xs: number[], p: number) => percentile([...xs].sort((a, b) => a - b), p).toFixed(2);
console.log(`${queued} queued; ${ROUNDS} rounds of ${REQUESTS} GET /jobs/{id} per job and checkout (median / p90 ms)`);
for (let round = 1; round <= ROUNDS; round++) {
  for (const checkout of checkouts) {
    const dataDir = mkdtempSync(join(tmpdir(), 'gantry-position-times-'));
    // Each checkout's own bench code starts its own server (as bench/status-cost.ts does).
    const { startGantryServer } = (await import(join(resolve(checkout), 'bench/gantry.ts'))) as typeof GantryBench;
    const srv = await startGantryServer(database!, dataDir);
    try {
      const line: string[] = [];
      for (const [what, id] of Object.entries(jobs)) {
        const get = async () => {
          const t = performance.now();
          const r = await fetch(`${srv.url}/api/v1/jobs/${id}`, { headers: { authorization: `Bearer ${token}` } });
          const body = (await r.json()) as { queue_position?: number };
          if (!r.ok) throw new Error(`GET /jobs/${id}: ${r.status} ${JSON.stringify(body)}`);
          return { ms: performance.now() - t, position: body.queue_position };
        };
        for (let i = 0; i < 10; i++) await get();
        const times: number[] = [];
        let position: number | undefined;
        for (let i = 0; i < (what === 'last' ? REQUESTS / 5 : REQUESTS); i++) {
          const r = await get();
          times.push(r.ms);
          position = r.position;
        }
        line.push(`${what} (#${position}): ${ms(times, 50)} / ${ms(times, 90)}`);
      }
      console.log(`round ${round} ${checkout}: ${line.join('  ')}`);
    } finally {
      await srv.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
}
