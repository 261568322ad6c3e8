/**
 * How long the reads by state take on a big SQLite database, through the store:
 * `node bench/listing-times.ts [jobs]` (default 1,000,000). Seeds `jobs` queued jobs, moves them into
 * a spread of states (80% COMPLETED, 1% each FAILED/dead-lettered, SCHEDULED, RUNNING, RETRYING,
 * the rest QUEUED), then times each listing and count (median of 5, ms).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../src/store/store.ts';
import type { JobState } from '../src/core/types.ts';
import { openSqliteLikeServer, seedQueuedJobs } from './floorSetup.ts';

const JOBS = Number(process.argv[2] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'gantry-listing-'));
const file = join(dir, 'g.db');
await seedQueuedJobs(file, JOBS);
const raw = openSqliteLikeServer(file);
for (const s of [
  `UPDATE jobs SET state = 'COMPLETED', started_at = 1, finished_at = seq, updated_at = seq WHERE seq % 100 < 80`,
  `UPDATE jobs SET state = 'FAILED', finished_at = seq, dead_lettered_at = seq WHERE seq % 100 = 80`,
  `UPDATE jobs SET state = 'SCHEDULED', worker_id = 'w' || (seq % 7) WHERE seq % 100 = 81`,
  `UPDATE jobs SET state = 'RUNNING', worker_id = 'w' || (seq % 7) WHERE seq % 100 = 82`,
  `UPDATE jobs SET state = 'RETRYING', run_after = seq WHERE seq % 100 = 83`,
]) raw.exec(s);
raw.exec('PRAGMA wal_checkpoint(TRUNCATE)');
raw.close();
const store = await openStore(file);
const time = async (what: string, f: () => Promise<unknown>) => {
  const ms: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    await f();
    ms.push(performance.now() - t);
  }
  console.log(`${what}: ${ms.sort((a, b) => a - b)[2]!.toFixed(2)} ms`);
};
for (const state of ['QUEUED', 'SCHEDULED', 'RUNNING', 'COMPLETED', 'FAILED', 'RETRYING', 'PAUSED'] as JobState[]) {
  await time(`listJobs state=${state} (50)`, () => store.listJobs({ state }, 50, null));
}
await time('listJobs state=COMPLETED, page 2', () => store.listJobs({ state: 'COMPLETED' }, 50, Math.floor(JOBS / 2)));
await time('listJobs tenant=default state=RUNNING', () => store.listJobs({ state: 'RUNNING', tenant: 'default' }, 50, null));
await time('listJobs dead_letter', () => store.listJobs({ dead_letter: true }, 50, null));
await time('activeJobs', () => store.activeJobs());
await time('queueStats', () => store.queueStats());
await time('countJobs', () => store.countJobs());
await store.close();
rmSync(dir, { recursive: true, force: true });
