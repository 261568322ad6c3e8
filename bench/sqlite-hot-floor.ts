/**
 * Would a narrow "hot" table pay off on SQLite? `node bench/sqlite-hot-floor.ts [jobs]`.
 * The W1 row writes of a drained job as raw prepared statements (like bench/sqlite-floor.ts, after
 * migration 0010: one event row per change), on three databases drained in alternating batches of 500
 * in one process (so machine load hits each alike):
 *   - `as is`: the real schema — both state changes rewrite the wide `jobs` row and its state indexes;
 *   - `hot + wide`: what changes per job (state, worker, attempt, counters, the queue keys the partial
 *     indexes need) lives in a narrow table `job_hot` with the state-bearing indexes; `jobs` keeps the
 *     spec and gets only the finish columns (result, exit code, times) at the end, no index touched;
 *   - `hot + attempt`: as above, but the finish columns travel on the attempt row (updated anyway), so
 *     the wide row is not written at all after submit.
 * Prints µs per job per variant and section, and WAL bytes per job. No reads are timed (a real split
 * also makes every read of a job's state a join) — this is the write floor only.
 */
import type Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteLikeServer, SectionTimer, seedQueuedJobs } from './floorSetup.ts';

const JOBS = Number(process.argv[2] ?? 20_000);
const BATCH = 500;
type Variant = 'as is' | 'hot + wide' | 'hot + attempt';
const variants: Variant[] = ['as is', 'hot + wide', 'hot + attempt'];
const dir = mkdtempSync(join(tmpdir(), 'gantry-hot-floor-'));
const ev = (n: number) => `INSERT INTO job_events (job_id, at, from_state, to_state, reason, actor, data, steps) VALUES ${Array(n).fill('(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`;

interface Db {
  variant: Variant;
  file: string;
  db: Database.Database;
  queued: Database.Statement;
  assign: Database.Statement;
  done: Database.Statement;
  finish: Database.Statement | null;
  ev1: Database.Statement;
  ev64: Database.Statement;
  att: Database.Statement;
  attEnd: Database.Statement;
}

const dbs: Db[] = [];
for (const [k, variant] of variants.entries()) {
  const file = join(dir, `h${k}.db`);
  await seedQueuedJobs(file, JOBS);
  const db = openSqliteLikeServer(file);
  if (variant !== 'as is') {
    db.exec(`CREATE TABLE job_hot (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, state TEXT NOT NULL, queue_key TEXT NOT NULL, tenant TEXT NOT NULL,
      priority_rank INTEGER NOT NULL, sort_key REAL NOT NULL, worker_id TEXT, current_attempt_id TEXT, attempt_count INTEGER NOT NULL,
      retry_count INTEGER NOT NULL, control TEXT, updated_at INTEGER NOT NULL)`);
    db.exec(`INSERT INTO job_hot SELECT seq, id, state, queue_key, tenant, priority_rank, sort_key, worker_id, current_attempt_id, attempt_count, retry_count, control, updated_at FROM jobs`);
    for (const ix of ['jobs_state_seq', 'jobs_queue_by_key', 'jobs_queue_by_tenant', 'jobs_active', 'jobs_control', 'jobs_retry', 'jobs_type_finished']) db.exec(`DROP INDEX ${ix}`);
    db.exec(`CREATE UNIQUE INDEX job_hot_id ON job_hot (id);
      CREATE INDEX job_hot_state_seq ON job_hot (state, seq);
      CREATE INDEX job_hot_queue_by_key ON job_hot (queue_key, priority_rank, sort_key, seq) WHERE state = 'QUEUED';
      CREATE INDEX job_hot_queue_by_tenant ON job_hot (queue_key, tenant, priority_rank, sort_key, seq) WHERE state = 'QUEUED';
      CREATE INDEX job_hot_active ON job_hot (worker_id) WHERE state IN ('SCHEDULED', 'RUNNING', 'PAUSED');
      CREATE INDEX job_hot_control ON job_hot (worker_id) WHERE control IS NOT NULL`);
    if (variant === 'hot + attempt') db.exec('ALTER TABLE job_attempts ADD COLUMN result TEXT; ALTER TABLE job_attempts ADD COLUMN running_at INTEGER');
  }
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  const hot = variant !== 'as is';
  dbs.push({
    variant, file, db,
    queued: db.prepare(`SELECT id FROM ${hot ? 'job_hot' : 'jobs'} WHERE state = 'QUEUED' AND queue_key = 'noop' ORDER BY priority_rank, sort_key, seq LIMIT ?`).pluck(),
    assign: hot
      ? db.prepare(`UPDATE job_hot SET state = ?, updated_at = ?, attempt_count = attempt_count + 1, current_attempt_id = ?, retry_count = retry_count + 1, worker_id = ? WHERE id = ? AND state = ? RETURNING id, attempt_count, retry_count`)
      : db.prepare(`UPDATE jobs SET state = ?, updated_at = ?, attempt_count = attempt_count + 1, current_attempt_id = ?, gpu_indices = '[]', retry_count = retry_count + 1, worker_id = ? WHERE id = ? AND state = ? RETURNING id, attempt_count, retry_count, watched`),
    done: hot
      ? db.prepare(`UPDATE job_hot SET state = ?, updated_at = ?, worker_id = NULL, control = NULL WHERE id = ? AND state = ? RETURNING id`)
      : db.prepare(`UPDATE jobs SET state = ?, updated_at = ?, control = NULL, error = NULL, exit_code = ?, finished_at = ?, gpu_indices = '[]', preemption = NULL, progress = 1, result = ?, started_at = ?, worker_id = NULL WHERE id = ? AND state = ? RETURNING id, watched`),
    finish: variant === 'hot + wide'
      ? db.prepare(`UPDATE jobs SET exit_code = ?, finished_at = ?, progress = 1, result = ?, started_at = ? WHERE id = ?`)
      : null,
    ev1: db.prepare(ev(1)), ev64: db.prepare(ev(64)),
    att: db.prepare('INSERT INTO job_attempts (id, job_id, number, worker_id, started_at, outcome) VALUES (?, ?, ?, ?, ?, ?)'),
    attEnd: variant === 'hot + attempt'
      ? db.prepare('UPDATE job_attempts SET ended_at = ?, exit_code = ?, error = ?, outcome = ?, result = ?, running_at = ? WHERE id = ?')
      : db.prepare('UPDATE job_attempts SET ended_at = ?, exit_code = ?, error = ?, outcome = ? WHERE id = ?'),
  });
}

const timer = new SectionTimer();
const lap = (section: string) => timer.lap(section);
const events = (d: Db, rows: unknown[][]) => {
  let i = 0;
  for (; i + 64 <= rows.length; i += 64) d.ev64.run(...rows.slice(i, i + 64).flat());
  for (; i < rows.length; i++) d.ev1.run(...rows[i]!);
};
let n = 0;
const w = 'wkr_floor';
const drainBatch = (d: Db, ids: string[], now: number) => {
  timer.start(d.variant);
  d.db.exec('BEGIN IMMEDIATE');
  const atts = ids.map(() => `att_${(n++).toString(36).padStart(12, '0')}`);
  ids.forEach((id, i) => d.assign.all('SCHEDULED', now, atts[i], w, id, 'QUEUED'));
  lap('assign UPDATE');
  events(d, ids.map((id, i) => [id, now, 'QUEUED', 'SCHEDULED', `assigned to worker ${w}`, 'scheduler', JSON.stringify({ worker_id: w, attempt_id: atts[i], gpu_indices: [] }), null]));
  ids.forEach((id, i) => d.att.run(atts[i], id, 1, w, now, 'running'));
  lap('event + attempt INSERT');
  d.db.exec('COMMIT');
  d.db.exec('BEGIN IMMEDIATE');
  lap('COMMIT+BEGIN');
  if (d.variant === 'as is') ids.forEach((id) => d.done.all('COMPLETED', now, 0, now, 'null', now, id, 'SCHEDULED'));
  else ids.forEach((id) => d.done.all('COMPLETED', now, id, 'SCHEDULED'));
  lap('report UPDATE');
  if (d.finish) ids.forEach((id) => d.finish!.run(0, now, 'null', now, id));
  lap('wide-row finish UPDATE');
  const steps = JSON.stringify([{ to: 'RUNNING', reason: 'worker started the job' }]);
  events(d, ids.map((id, i) => [id, now, 'SCHEDULED', 'COMPLETED', 'completed', `worker:${w}`, JSON.stringify({ attempt_id: atts[i], exit_code: null, error: null }), steps]));
  lap('event');
  if (d.variant === 'hot + attempt') ids.forEach((_, i) => d.attEnd.run(now, 0, null, 'completed', 'null', now, atts[i]));
  else ids.forEach((_, i) => d.attEnd.run(now, 0, null, 'completed', atts[i]));
  lap('attempt UPDATE');
  d.db.exec('COMMIT');
  lap('COMMIT');
};

const spent = new Map<Variant, [number, number]>();
for (let k = 0; ; k++) {
  const d = dbs[k % dbs.length]!;
  const ids = d.queued.all(BATCH) as string[];
  if (ids.length === 0) {
    if (dbs.every((x) => (x.queued.all(1) as string[]).length === 0)) break;
    continue;
  }
  const t = performance.now();
  drainBatch(d, ids, Date.now());
  const e = spent.get(d.variant) ?? [0, 0];
  spent.set(d.variant, [e[0] + performance.now() - t, e[1] + ids.length]);
}
for (const d of dbs) {
  const [ms, jobs] = spent.get(d.variant)!;
  console.log(`${d.variant}: ${((ms * 1000) / jobs).toFixed(1)} µs/job (${jobs} jobs); WAL ${(statSync(`${d.file}-wal`).size / JOBS / 1024).toFixed(2)} KiB per job`);
  for (const [k, v] of Object.entries(timer.perJob(d.variant, jobs))) console.log(`    ${k}: ${v.toFixed(1)} µs/job`);
  d.db.close();
}
rmSync(dir, { recursive: true, force: true });
