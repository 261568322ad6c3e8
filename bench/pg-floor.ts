/**
 * What the W1 row writes cost on PostgreSQL: `node bench/pg-floor.ts [jobs]`. Like bench/sqlite-floor.ts:
 * two databases (the schema as migrated, and one with the changes in PG_FLOOR_SQL applied, default
 * none), drained in alternating batches of 500 with the store's own statement shapes, each statement
 * run under EXPLAIN (ANALYZE, WAL) so the WAL records and bytes per job — independent of machine
 * load — are counted along with the time.
 */
import pg from 'pg';
import { explainWal, seedQueuedJobs, type WalCost } from './floorSetup.ts';
import { freshDb } from './gantry.ts';

const JOBS = Number(process.argv[2] ?? 10_000);
const BATCH = 500;
const pgUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const variants = [['as migrated', ''], ['with PG_FLOOR_SQL', process.env.PG_FLOOR_SQL ?? '']] as const;

const tallies = new Map<string, WalCost>();
const jobsDone = new Map<string, number>();

async function explain(c: pg.Client, key: string, text: string, values: unknown[]): Promise<void> {
  const one = await explainWal(c, text, values);
  const t = tallies.get(key) ?? { ms: 0, records: 0, bytes: 0, fpi: 0 };
  t.ms += one.ms;
  t.records += one.records;
  t.bytes += one.bytes;
  t.fpi += one.fpi;
  tallies.set(key, t);
}

const dbs = [];
for (const [name, sql] of variants) {
  const db = await freshDb('postgres', pgUrl);
  await seedQueuedJobs(db.url, JOBS);
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  for (const s of sql.split(';').map((x) => x.trim()).filter(Boolean)) await c.query(s);
  await c.query('CHECKPOINT');
  dbs.push({ name, db, c });
}
const rs = (cols: string) => `json_to_recordset($3::json) AS v(${cols})`;
let n = 0;
for (let k = 0; ; k++) {
  const { name, c } = dbs[k % dbs.length]!;
  const ids = (await c.query(`SELECT id FROM jobs WHERE state = 'QUEUED' AND queue_key = 'noop' ORDER BY priority_rank, sort_key, seq LIMIT ${BATCH}`)).rows.map((r) => String(r.id));
  if (ids.length === 0) break;
  const now = Date.now();
  const w = 'wkr_floor';
  const atts = ids.map(() => `att_${(n++).toString(36).padStart(12, '0')}`);
  const ev = (rows: unknown[]) => explain(c, `${name} | events`, `INSERT INTO job_events (job_id, at, from_state, to_state, reason, actor, data, steps) SELECT job_id, at, from_state, to_state, reason, actor, data, steps FROM json_to_recordset($1::json) AS v(job_id text, at int8, from_state text, to_state text, reason text, actor text, data text, steps text)`, [JSON.stringify(rows)]);
  await c.query('BEGIN');
  await explain(c, `${name} | assign UPDATE`, `UPDATE jobs SET state = $1, updated_at = $2, attempt_count = jobs.attempt_count + v.attempt_count, current_attempt_id = v.current_attempt_id, gpu_indices = v.gpu_indices, retry_count = jobs.retry_count + v.retry_count, worker_id = v.worker_id FROM ${rs('id text, from_state text, attempt_count int8, current_attempt_id text, gpu_indices text, retry_count int8, worker_id text')} WHERE jobs.id = v.id AND jobs.state = v.from_state`,
    ['SCHEDULED', now, JSON.stringify(ids.map((id, i) => ({ id, from_state: 'QUEUED', attempt_count: 1, current_attempt_id: atts[i], gpu_indices: '[]', retry_count: 1, worker_id: w })))]);
  await ev(ids.map((id, i) => ({ job_id: id, at: now, from_state: 'QUEUED', to_state: 'SCHEDULED', reason: `assigned to worker ${w}`, actor: 'scheduler', data: JSON.stringify({ worker_id: w, attempt_id: atts[i], gpu_indices: [] }) })));
  await explain(c, `${name} | attempt INSERT`, `INSERT INTO job_attempts (id, job_id, number, worker_id, started_at, outcome) SELECT id, job_id, number, worker_id, started_at, outcome FROM json_to_recordset($1::json) AS v(id text, job_id text, number int8, worker_id text, started_at int8, outcome text)`,
    [JSON.stringify(ids.map((id, i) => ({ id: atts[i], job_id: id, number: 1, worker_id: w, started_at: now, outcome: 'running' })))]);
  await c.query('COMMIT');
  await c.query('BEGIN');
  await explain(c, `${name} | report UPDATE`, `UPDATE jobs SET state = $1, updated_at = $2, control = v.control, error = v.error, exit_code = v.exit_code, finished_at = v.finished_at, gpu_indices = v.gpu_indices, preemption = v.preemption, progress = v.progress, result = v.result, started_at = v.started_at, worker_id = v.worker_id FROM ${rs('id text, from_state text, control text, error text, exit_code int8, finished_at int8, gpu_indices text, preemption text, progress float8, result text, started_at int8, worker_id text')} WHERE jobs.id = v.id AND jobs.state = v.from_state`,
    ['COMPLETED', now, JSON.stringify(ids.map((id) => ({ id, from_state: 'SCHEDULED', control: null, error: null, exit_code: 0, finished_at: now, gpu_indices: '[]', preemption: null, progress: 1, result: 'null', started_at: now, worker_id: null })))]);
  // One event row for SCHEDULED → RUNNING → COMPLETED (migration 0010: the RUNNING step in `steps`).
  const steps = JSON.stringify([{ to: 'RUNNING', reason: 'worker started the job' }]);
  await ev(ids.map((id, i) => ({ job_id: id, at: now, from_state: 'SCHEDULED', to_state: 'COMPLETED', reason: 'completed', actor: `worker:${w}`, data: JSON.stringify({ attempt_id: atts[i], exit_code: null, error: null }), steps })));
  await explain(c, `${name} | attempt UPDATE`, `UPDATE job_attempts SET ended_at = v.ended_at, exit_code = v.exit_code, error = v.error, outcome = v.outcome FROM json_to_recordset($1::json) AS v(id text, ended_at int8, exit_code int8, error text, outcome text) WHERE job_attempts.id = v.id`,
    [JSON.stringify(atts.map((id) => ({ id, ended_at: now, exit_code: 0, error: null, outcome: 'completed' })))]);
  await c.query('COMMIT');
  jobsDone.set(name, (jobsDone.get(name) ?? 0) + ids.length);
}
for (const [name] of variants) {
  const jobs = jobsDone.get(name)!;
  let ms = 0, records = 0, bytes = 0;
  const lines: string[] = [];
  for (const [k, t] of tallies) {
    if (!k.startsWith(`${name} |`)) continue;
    ms += t.ms; records += t.records; bytes += t.bytes;
    lines.push(`    ${k.slice(name.length + 3)}: ${((t.ms * 1000) / jobs).toFixed(1)} µs, ${(t.records / jobs).toFixed(1)} WAL records, ${(t.bytes / jobs).toFixed(0)} WAL bytes, ${(t.fpi / jobs).toFixed(2)} full pages per job`);
  }
  console.log(`${name}: ${((ms * 1000) / jobs).toFixed(1)} µs/job in statements, ${(records / jobs).toFixed(1)} WAL records, ${(bytes / jobs).toFixed(0)} WAL bytes per job (${jobs} jobs)`);
  console.log(lines.join('\n'));
}
for (const d of dbs) {
  await d.c.end();
  await d.db.drop();
}
