/**
 * Would a narrow "hot" table pay off on PostgreSQL? `node bench/pg-hot-floor.ts [jobs]` — the
 * PostgreSQL twin of bench/sqlite-hot-floor.ts, with bench/pg-floor.ts's method: every statement under
 * EXPLAIN (ANALYZE, WAL), so WAL records and bytes per job are counted whatever the machine load.
 * One database (real schema, `jobs` jobs submitted through the store) gets a copy of what changes per
 * job in `job_hot` (state, worker, attempt, counters and the queue keys its partial indexes need); the
 * jobs are drained in batches of 500, alternating between the two shapes on disjoint halves:
 *   - `as is`: both state changes UPDATE the wide `jobs` row (non-HOT: a new entry in every index);
 *   - `hot`: both UPDATE `job_hot`, and the finish columns travel on the attempt row (no `jobs` write).
 * Events and the attempt INSERT are the same in both and left out.
 */
import pg from 'pg';
import { explainWal, seedQueuedJobs } from './floorSetup.ts';
import { freshDb } from './gantry.ts';

const JOBS = Number(process.argv[2] ?? 10_000);
const BATCH = 500;
const pgUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const db = await freshDb('postgres', pgUrl);
await seedQueuedJobs(db.url, JOBS);
const c = new pg.Client({ connectionString: db.url });
await c.connect();
await c.query(`CREATE TABLE job_hot (seq BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, state TEXT NOT NULL, queue_key TEXT NOT NULL, tenant TEXT NOT NULL,
  priority_rank INTEGER NOT NULL, sort_key DOUBLE PRECISION NOT NULL, worker_id TEXT, current_attempt_id TEXT, attempt_count INTEGER NOT NULL,
  retry_count INTEGER NOT NULL, control TEXT, updated_at BIGINT NOT NULL)`);
await c.query(`INSERT INTO job_hot SELECT seq, id, state, queue_key, tenant, priority_rank, sort_key, worker_id, current_attempt_id, attempt_count, retry_count, control, updated_at FROM jobs`);
for (const s of [
  `CREATE INDEX job_hot_state_seq ON job_hot (state, seq)`,
  `CREATE INDEX job_hot_queue_by_key ON job_hot (queue_key, priority_rank, sort_key, seq) WHERE state = 'QUEUED'`,
  `CREATE INDEX job_hot_queue_by_tenant ON job_hot (queue_key, tenant, priority_rank, sort_key, seq) WHERE state = 'QUEUED'`,
  `CREATE INDEX job_hot_active ON job_hot (worker_id) WHERE state IN ('SCHEDULED', 'RUNNING', 'PAUSED')`,
  `CREATE INDEX job_hot_control ON job_hot (worker_id) WHERE control IS NOT NULL`,
  `ALTER TABLE job_attempts ADD COLUMN result TEXT`,
  `ALTER TABLE job_attempts ADD COLUMN running_at BIGINT`,
  'VACUUM ANALYZE',
  'CHECKPOINT',
]) await c.query(s);

interface Tally { ms: number; records: number; bytes: number; jobs: number }
const tallies = new Map<string, Tally>();
async function explain(key: string, jobs: number, text: string, values: unknown[]): Promise<void> {
  const one = await explainWal(c, text, values);
  const t = tallies.get(key) ?? { ms: 0, records: 0, bytes: 0, jobs: 0 };
  t.ms += one.ms;
  t.records += one.records;
  t.bytes += one.bytes;
  t.jobs += jobs;
  tallies.set(key, t);
}
const rs = (n: number, cols: string) => `json_to_recordset($${n}::json) AS v(${cols})`;
const w = 'wkr_floor';
let n = 0;
const { rows: all } = await c.query(`SELECT id FROM jobs WHERE state = 'QUEUED' ORDER BY seq`);
const ids = all.map((r) => String(r.id));
for (let k = 0; k * BATCH < ids.length; k++) {
  const batch = ids.slice(k * BATCH, (k + 1) * BATCH);
  const hot = k % 2 === 1;
  const now = Date.now();
  const atts = batch.map(() => `att_${(n++).toString(36).padStart(12, '0')}`);
  const assignRows = JSON.stringify(batch.map((id, i) => ({ id, from_state: 'QUEUED', current_attempt_id: atts[i] })));
  const doneRows = JSON.stringify(batch.map((id) => ({ id, from_state: 'SCHEDULED' })));
  await c.query('BEGIN');
  if (hot) {
    await explain('hot | assign UPDATE job_hot', batch.length, `UPDATE job_hot SET state = $1, updated_at = $2, attempt_count = job_hot.attempt_count + 1, retry_count = job_hot.retry_count + 1, worker_id = $4, current_attempt_id = v.current_attempt_id FROM ${rs(3, 'id text, from_state text, current_attempt_id text')} WHERE job_hot.id = v.id AND job_hot.state = v.from_state`, ['SCHEDULED', now, assignRows, w]);
  } else {
    await explain('as is | assign UPDATE jobs', batch.length, `UPDATE jobs SET state = $1, updated_at = $2, attempt_count = jobs.attempt_count + 1, retry_count = jobs.retry_count + 1, gpu_indices = '[]', worker_id = $4, current_attempt_id = v.current_attempt_id FROM ${rs(3, 'id text, from_state text, current_attempt_id text')} WHERE jobs.id = v.id AND jobs.state = v.from_state`, ['SCHEDULED', now, assignRows, w]);
  }
  await c.query(`INSERT INTO job_attempts (id, job_id, number, worker_id, started_at, outcome) SELECT id, job_id, 1, $2, $3, 'running' FROM json_to_recordset($1::json) AS v(id text, job_id text)`, [JSON.stringify(batch.map((id, i) => ({ id: atts[i], job_id: id }))), w, now]);
  await c.query('COMMIT');
  await c.query('BEGIN');
  if (hot) {
    await explain('hot | report UPDATE job_hot', batch.length, `UPDATE job_hot SET state = $1, updated_at = $2, worker_id = NULL, control = NULL FROM ${rs(3, 'id text, from_state text')} WHERE job_hot.id = v.id AND job_hot.state = v.from_state`, ['COMPLETED', now, doneRows]);
    await explain('hot | attempt UPDATE (+ result, start)', batch.length, `UPDATE job_attempts SET ended_at = $1, exit_code = 0, error = NULL, outcome = 'completed', result = 'null', running_at = $1 FROM json_to_recordset($2::json) AS v(id text) WHERE job_attempts.id = v.id`, [now, JSON.stringify(atts.map((id) => ({ id })))]);
  } else {
    await explain('as is | report UPDATE jobs', batch.length, `UPDATE jobs SET state = $1, updated_at = $2, control = NULL, error = NULL, exit_code = 0, finished_at = $2, gpu_indices = '[]', preemption = NULL, progress = 1, result = 'null', started_at = $2, worker_id = NULL FROM ${rs(3, 'id text, from_state text')} WHERE jobs.id = v.id AND jobs.state = v.from_state`, ['COMPLETED', now, doneRows]);
    await explain('as is | attempt UPDATE', batch.length, `UPDATE job_attempts SET ended_at = $1, exit_code = 0, error = NULL, outcome = 'completed' FROM json_to_recordset($2::json) AS v(id text) WHERE job_attempts.id = v.id`, [now, JSON.stringify(atts.map((id) => ({ id })))]);
  }
  await c.query('COMMIT');
}
for (const variant of ['as is', 'hot']) {
  let ms = 0, records = 0, bytes = 0, jobs = 0;
  const lines: string[] = [];
  for (const [k, t] of tallies) {
    if (!k.startsWith(`${variant} |`)) continue;
    ms += t.ms; records += t.records; bytes += t.bytes; jobs = t.jobs;
    lines.push(`    ${k.slice(variant.length + 3)}: ${((t.ms * 1000) / t.jobs).toFixed(1)} µs, ${(t.records / t.jobs).toFixed(1)} WAL records, ${(t.bytes / t.jobs).toFixed(0)} WAL bytes per job`);
  }
  console.log(`${variant}: ${((ms * 1000) / jobs).toFixed(1)} µs/job, ${(records / jobs).toFixed(1)} WAL records, ${(bytes / jobs).toFixed(0)} WAL bytes per job (${jobs} jobs)`);
  console.log(lines.join('\n'));
}
await c.end();
await db.drop();
