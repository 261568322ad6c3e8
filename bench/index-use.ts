/**
 * Which index each read of `jobs` by state, queue or tenant uses, on both stores:
 * `node bench/index-use.ts [jobs] [postgres-url]`. Seeds `jobs` queued jobs through the real store
 * (migrations included), moves most of them to COMPLETED and some to SCHEDULED/RUNNING/RETRYING,
 * then prints each query's plan (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN after ANALYZE).
 * The SQL is the text the store runs (src/store/ops/*), with literals for its parameters.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openSqliteLikeServer, seedQueuedJobs } from './floorSetup.ts';
import { ACTIVE_STATES_SQL, STATE_SEQ_SQL } from '../src/store/rows.ts';

const JOBS = Number(process.argv[2] ?? 20_000);
const PG_URL = process.argv[3] ?? process.env.GANTRY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ACTIVE = ACTIVE_STATES_SQL;
const SEQ = STATE_SEQ_SQL;

/** [what reads it, SQL]. */
const QUERIES: [string, string][] = [
  ['listJobs state=COMPLETED', `SELECT * FROM jobs WHERE state = 'COMPLETED' AND ${SEQ} ORDER BY seq DESC LIMIT 50`],
  ['listJobs state=QUEUED', `SELECT * FROM jobs WHERE state = 'QUEUED' AND ${SEQ} ORDER BY seq DESC LIMIT 50`],
  ['listJobs state=RUNNING', `SELECT * FROM jobs WHERE state = 'RUNNING' AND ${SEQ} ORDER BY seq DESC LIMIT 50`],
  ['listJobs state=SCHEDULED', `SELECT * FROM jobs WHERE state = 'SCHEDULED' AND ${ACTIVE} ORDER BY +seq DESC LIMIT 50`],
  ['listJobs tenant+state=RUNNING', `SELECT * FROM jobs WHERE state = 'RUNNING' AND ${SEQ} AND tenant = 'default' ORDER BY seq DESC LIMIT 50`],
  ['listJobs state=FAILED, before_seq', `SELECT * FROM jobs WHERE state = 'FAILED' AND ${SEQ} AND seq < 1000 ORDER BY seq DESC LIMIT 50`],
  ['listJobs tenant', `SELECT * FROM jobs WHERE tenant = 'default' ORDER BY seq DESC LIMIT 50`],
  ['listJobs tenant+state=COMPLETED', `SELECT * FROM jobs WHERE state = 'COMPLETED' AND ${SEQ} AND tenant = 'default' ORDER BY seq DESC LIMIT 50`],
  ['listJobs dead_letter', `SELECT * FROM jobs WHERE dead_lettered_at IS NOT NULL AND state IN ('FAILED', 'TIMEOUT') AND ${SEQ} ORDER BY seq DESC LIMIT 50`],
  ['countJobs by state', `SELECT state, COUNT(*) AS n FROM jobs WHERE ${SEQ} GROUP BY state UNION ALL SELECT state, COUNT(*) AS n FROM jobs WHERE state = 'SCHEDULED' AND ${ACTIVE} GROUP BY state`],
  ['countJobs queue_depth', `SELECT queue_key, COUNT(*) AS n FROM jobs WHERE state = 'QUEUED' GROUP BY queue_key`],
  ['countJobs dead', 'SELECT COUNT(*) AS n FROM jobs WHERE dead_lettered_at IS NOT NULL'],
  ['queueStats counts', `SELECT state, COUNT(*) AS n FROM jobs WHERE state IN ('RUNNING', 'PAUSED', 'RETRYING') AND ${SEQ} GROUP BY state UNION ALL SELECT state, COUNT(*) AS n FROM jobs WHERE state = 'SCHEDULED' AND ${ACTIVE} GROUP BY state`],
  ['queueStats per priority', `SELECT priority, COUNT(*) AS n, MIN(queued_at) AS oldest, SUM(5 - queued_at) AS total FROM jobs WHERE state = 'QUEUED' GROUP BY priority`],
  ['activeJobs', `SELECT * FROM jobs WHERE ${ACTIVE}`],
  ['workerUsage / activeJobRows', `SELECT * FROM jobs WHERE ${ACTIVE} AND worker_id IS NOT NULL`],
  ['tenant active count', `SELECT COUNT(*) AS n FROM jobs WHERE tenant = 'default' AND ${ACTIVE}`],
  ['tenant queued count', `SELECT COUNT(*) AS n FROM jobs WHERE state = 'QUEUED' AND tenant = 'default'`],
  ['worker jobs (release)', `SELECT id, state FROM jobs WHERE worker_id = 'w1' AND ${ACTIVE}`],
  ['queuedJobs (queue key)', `SELECT id FROM jobs WHERE state = 'QUEUED' AND queue_key = 'noop' ORDER BY queue_key, priority_rank, sort_key, seq LIMIT 100`],
  ['queuedJobs (all)', `SELECT id FROM jobs WHERE state = 'QUEUED' ORDER BY priority_rank, sort_key, seq LIMIT 100`],
  ['queuePosition', `SELECT COUNT(*) AS n FROM (${['priority_rank < 3', 'priority_rank = 3 AND sort_key < 5', 'priority_rank = 3 AND sort_key = 5 AND seq < 100']
    .map((range) => `SELECT 1 FROM jobs WHERE state = 'QUEUED' AND queue_key = 'noop' AND ${range}`).join(' UNION ALL ')}) AS ahead`],
  ['submit position (row comparison)', `SELECT COUNT(*) AS n FROM jobs WHERE state = 'QUEUED' AND queue_key = 'noop' AND (priority_rank, sort_key, seq) < (3, 5, 100)`],
  ['reorderJob neighbours', `SELECT id FROM jobs WHERE state = 'QUEUED' AND queue_key = 'noop' AND id != 'x' ORDER BY priority_rank, sort_key, seq LIMIT 2 OFFSET 10`],
  ['tenant queue head', `SELECT id FROM jobs WHERE state = 'QUEUED' AND queue_key = 'noop' AND tenant = 'default' ORDER BY priority_rank, sort_key, seq LIMIT 100`],
  ['queued tenants (skip scan step)', `SELECT MIN(tenant) FROM jobs WHERE state = 'QUEUED' AND queue_key = 'noop' AND tenant > 'a'`],
  ['handOffStep other queued', `SELECT 1 AS x FROM jobs WHERE state = 'QUEUED' AND queue_key = 'noop' AND id != 'x' LIMIT 1`],
  ['due retries', `SELECT id FROM jobs WHERE state = 'RETRYING' AND run_after <= 5 ORDER BY run_after LIMIT 1000`],
  ['recentRuns', `SELECT tenant, finished_at - started_at AS d FROM jobs WHERE type = 'noop' AND state = 'COMPLETED' AND started_at IS NOT NULL ORDER BY finished_at DESC LIMIT 50`],
  ['dead-letter requeue selection', `SELECT id FROM jobs WHERE dead_lettered_at IS NOT NULL AND state IN ('FAILED', 'TIMEOUT') AND ${SEQ} ORDER BY seq LIMIT 1000`],
  ['delivery look (pending controls)', `SELECT id FROM jobs WHERE worker_id = 'w1' AND control IS NOT NULL`],
  ['delivery look (new jobs)', `SELECT id FROM jobs WHERE worker_id = 'w1' AND state = 'SCHEDULED' AND ${ACTIVE} AND control IS NULL`],
  ['tenant usage (held)', `SELECT COUNT(*) AS n FROM jobs WHERE ${ACTIVE} AND (worker_id IS NOT NULL OR nodes > 1) AND tenant = 'default'`],
  ['worker slots used (handOffStep)', `SELECT COUNT(*) FROM jobs WHERE worker_id = 'w1' AND ${ACTIVE}`],
];

/** Moves the seeded jobs into a spread of states, as a long-running server would hold them (same UPDATEs on both engines). */
const SPREAD = [
  `UPDATE jobs SET state = 'COMPLETED', started_at = 1, finished_at = seq, updated_at = seq WHERE seq % 10 < 8`,
  `UPDATE jobs SET state = 'FAILED', finished_at = seq, dead_lettered_at = seq WHERE seq % 100 = 80`,
  `UPDATE jobs SET state = 'SCHEDULED', worker_id = 'w' || (seq % 7) WHERE seq % 100 = 81`,
  `UPDATE jobs SET state = 'RUNNING', worker_id = 'w' || (seq % 7) WHERE seq % 100 = 82`,
  `UPDATE jobs SET state = 'RETRYING', run_after = seq WHERE seq % 100 = 83`,
];

const dir = mkdtempSync(join(tmpdir(), 'gantry-index-use-'));
const file = join(dir, 'g.db');
await seedQueuedJobs(file, JOBS);
const lite = openSqliteLikeServer(file);
for (const s of SPREAD) lite.exec(s);
const dbName = `gantry_index_use_${process.pid}`;
const admin = new pg.Client({ connectionString: PG_URL });
await admin.connect();
await admin.query(`CREATE DATABASE ${dbName}`);
const url = new URL(PG_URL);
url.pathname = `/${dbName}`;
try {
  await seedQueuedJobs(url.toString(), JOBS);
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  for (const s of SPREAD) await c.query(s);
  await c.query('VACUUM ANALYZE jobs');
  const used = (plan: string) => [...plan.matchAll(/(?:USING (?:COVERING )?INDEX|using|on) (\w+)/g)].map((m) => m[1]).filter((n) => n !== 'jobs' && n !== 'j').join(', ') || '—';
  console.log('| query | SQLite plan | PostgreSQL plan |\n|---|---|---|');
  for (const [what, sql] of QUERIES) {
    const lp = (lite.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join('; ');
    const pp = (await c.query(`EXPLAIN ${sql}`)).rows.map((r: Record<string, string>) => r['QUERY PLAN']!.trim()).filter((l) => /Scan|Index/.test(l)).join('; ');
    console.log(`| ${what} | ${lp} | ${pp} |`);
    if (process.env.BRIEF === '1') console.error(`${what}: sqlite ${used(lp)} / pg ${used(pp)}`);
  }
  await c.end();
} finally {
  lite.close();
  await admin.query(`DROP DATABASE ${dbName} WITH (FORCE)`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
}
