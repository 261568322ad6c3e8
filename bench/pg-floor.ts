/**
 * What the W1 row writes cost on PostgreSQL: `node bench/pg-floor.ts [jobs]`. Like bench/sqlite-floor.ts:
 * two databases (the schema as migrated, and one with the changes in PG_FLOOR_SQL applied, default
 * none), drained in alternating batches of 500 with the store's own statement shapes, each statement
 * run under EXPLAIN (ANALYZE, WAL) so the WAL records and bytes per job — independent of machine
 * load — are counted along with the time.
 * `npm run bench` calls `pgWriteFloor` (the schema as is, the same writes without EXPLAIN) for its W1
 * PostgreSQL floor row: the database's CPU per job for the writes alone.
 */
import pg from 'pg';
import { fileURLToPath } from 'node:url';
import { explainWal, seedQueuedJobs, type WalCost } from './floorSetup.ts';
import { cpuMs, freshDb } from './gantry.ts';

const BATCH = 500;
/** Runs one statement of the drain, tallied under `key` (the section: assign UPDATE, events, …). */
type Run = (key: string, text: string, values: unknown[]) => Promise<unknown>;

let attemptSeq = 0;
/**
 * One batch as a drain writes it, with the store's statement shapes: the assignment transaction (jobs → SCHEDULED,
 * their events, their attempts), then the report transaction (jobs → COMPLETED, one event row each, attempts ended).
 */
async function drainBatch(c: pg.Client, ids: string[], run: Run): Promise<void> {
  const rs = (cols: string) => `json_to_recordset($3::json) AS v(${cols})`;
  const now = Date.now();
  const w = 'wkr_floor';
  const atts = ids.map(() => `att_${(attemptSeq++).toString(36).padStart(12, '0')}`);
  const ev = (rows: unknown[]) => run('events', `INSERT INTO job_events (job_id, at, from_state, to_state, reason, actor, data, steps) SELECT job_id, at, from_state, to_state, reason, actor, data, steps FROM json_to_recordset($1::json) AS v(job_id text, at int8, from_state text, to_state text, reason text, actor text, data text, steps text)`, [JSON.stringify(rows)]);
  await c.query('BEGIN');
  await run('assign UPDATE', `UPDATE jobs SET state = $1, updated_at = $2, attempt_count = jobs.attempt_count + v.attempt_count, current_attempt_id = v.current_attempt_id, gpu_indices = v.gpu_indices, retry_count = jobs.retry_count + v.retry_count, worker_id = v.worker_id FROM ${rs('id text, from_state text, attempt_count int8, current_attempt_id text, gpu_indices text, retry_count int8, worker_id text')} WHERE jobs.id = v.id AND jobs.state = v.from_state`,
    ['SCHEDULED', now, JSON.stringify(ids.map((id, i) => ({ id, from_state: 'QUEUED', attempt_count: 1, current_attempt_id: atts[i], gpu_indices: '[]', retry_count: 1, worker_id: w })))]);
  await ev(ids.map((id, i) => ({ job_id: id, at: now, from_state: 'QUEUED', to_state: 'SCHEDULED', reason: `assigned to worker ${w}`, actor: 'scheduler', data: JSON.stringify({ worker_id: w, attempt_id: atts[i], gpu_indices: [] }) })));
  await run('attempt INSERT', `INSERT INTO job_attempts (id, job_id, number, worker_id, started_at, outcome) SELECT id, job_id, number, worker_id, started_at, outcome FROM json_to_recordset($1::json) AS v(id text, job_id text, number int8, worker_id text, started_at int8, outcome text)`,
    [JSON.stringify(ids.map((id, i) => ({ id: atts[i], job_id: id, number: 1, worker_id: w, started_at: now, outcome: 'running' })))]);
  await c.query('COMMIT');
  await c.query('BEGIN');
  await run('report UPDATE', `UPDATE jobs SET state = $1, updated_at = $2, control = v.control, error = v.error, exit_code = v.exit_code, finished_at = v.finished_at, gpu_indices = v.gpu_indices, preemption = v.preemption, progress = v.progress, result = v.result, started_at = v.started_at, worker_id = v.worker_id FROM ${rs('id text, from_state text, control text, error text, exit_code int8, finished_at int8, gpu_indices text, preemption text, progress float8, result text, started_at int8, worker_id text')} WHERE jobs.id = v.id AND jobs.state = v.from_state`,
    ['COMPLETED', now, JSON.stringify(ids.map((id) => ({ id, from_state: 'SCHEDULED', control: null, error: null, exit_code: 0, finished_at: now, gpu_indices: '[]', preemption: null, progress: 1, result: 'null', started_at: now, worker_id: null })))]);
  // One event row for SCHEDULED → RUNNING → COMPLETED (migration 0010: the RUNNING step in `steps`).
  const steps = JSON.stringify([{ to: 'RUNNING', reason: 'worker started the job' }]);
  await ev(ids.map((id, i) => ({ job_id: id, at: now, from_state: 'SCHEDULED', to_state: 'COMPLETED', reason: 'completed', actor: `worker:${w}`, data: JSON.stringify({ attempt_id: atts[i], exit_code: null, error: null }), steps })));
  await run('attempt UPDATE', `UPDATE job_attempts SET ended_at = v.ended_at, exit_code = v.exit_code, error = v.error, outcome = v.outcome FROM json_to_recordset($1::json) AS v(id text, ended_at int8, exit_code int8, error text, outcome text) WHERE job_attempts.id = v.id`,
    [JSON.stringify(atts.map((id) => ({ id, ended_at: now, exit_code: 0, error: null, outcome: 'completed' })))]);
  await c.query('COMMIT');
}

const queuedIds = async (c: pg.Client, limit: number): Promise<string[]> =>
  (await c.query(`SELECT id FROM jobs WHERE state = 'QUEUED' AND queue_key = 'noop' ORDER BY priority_rank, sort_key, seq LIMIT ${limit}`)).rows.map((r) => String(r.id));

export interface PgFloorResult {
  /**
   * CPU of the drain's backend per job (µs): the writes and their commits alone. The WAL writer's and checkpointer's
   * share is not in it (the W1 drain's figure counts every `postgres` process), so this floor is if anything low.
   */
  db_cpu_us: number;
  /** This process's CPU per job (µs): building the rows' JSON parameters, sending them, reading the answers — what a server pays at least. */
  client_cpu_us: number;
  /** Wall time of the drain per job (µs), the client's round trips included. */
  us_per_job: number;
}

/**
 * The writes a drained job needs on PostgreSQL, alone: `jobs` no-op jobs submitted through the store, their ids read
 * once, then drained in batches of 500 with the store's statement shapes and no EXPLAIN. What the database's CPU
 * per job is for those statements is a floor under the W1 drain's database CPU (which also counts the scheduling
 * cycle's reads, the worker's looks and the wake-ups).
 */
export async function pgWriteFloor(pgUrl: string, jobs: number): Promise<PgFloorResult> {
  const db = await freshDb('postgres', pgUrl);
  try {
    await seedQueuedJobs(db.url, jobs);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query('CHECKPOINT');
      const ids = await queuedIds(c, jobs);
      const run: Run = (_key, text, values) => c.query({ text, values });
      // The backend's own CPU: what other databases on the machine's PostgreSQL do meanwhile is not counted.
      const backend = Number((await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
      const cpu0 = cpuMs(backend);
      const own0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < ids.length; i += BATCH) await drainBatch(c, ids.slice(i, i + BATCH), run);
      const wall = performance.now() - t0;
      const own = process.cpuUsage(own0);
      return {
        db_cpu_us: ((cpuMs(backend) - cpu0) * 1000) / ids.length,
        client_cpu_us: (own.user + own.system) / ids.length,
        us_per_job: (wall * 1000) / ids.length,
      };
    } finally {
      await c.end();
    }
  } finally {
    await db.drop();
  }
}

/** The script: both variants under EXPLAIN (ANALYZE, WAL), alternating batch by batch; time and WAL per job and section. */
async function explainedFloor(pgUrl: string, jobs: number): Promise<void> {
  const variants = [['as migrated', ''], ['with PG_FLOOR_SQL', process.env.PG_FLOOR_SQL ?? '']] as const;
  const tallies = new Map<string, WalCost>();
  const jobsDone = new Map<string, number>();
  const dbs = [];
  for (const [name, sql] of variants) {
    const db = await freshDb('postgres', pgUrl);
    await seedQueuedJobs(db.url, jobs);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    for (const s of sql.split(';').map((x) => x.trim()).filter(Boolean)) await c.query(s);
    await c.query('CHECKPOINT');
    dbs.push({ name, db, c });
  }
  for (let k = 0; ; k++) {
    const { name, c } = dbs[k % dbs.length]!;
    const ids = await queuedIds(c, BATCH);
    if (ids.length === 0) break;
    await drainBatch(c, ids, async (key, text, values) => {
      const one = await explainWal(c, text, values);
      const t = tallies.get(`${name} | ${key}`) ?? { ms: 0, records: 0, bytes: 0, fpi: 0 };
      t.ms += one.ms;
      t.records += one.records;
      t.bytes += one.bytes;
      t.fpi += one.fpi;
      tallies.set(`${name} | ${key}`, t);
    });
    jobsDone.set(name, (jobsDone.get(name) ?? 0) + ids.length);
  }
  for (const [name] of variants) {
    const done = jobsDone.get(name)!;
    let ms = 0, records = 0, bytes = 0;
    const lines: string[] = [];
    for (const [k, t] of tallies) {
      if (!k.startsWith(`${name} |`)) continue;
      ms += t.ms; records += t.records; bytes += t.bytes;
      lines.push(`    ${k.slice(name.length + 3)}: ${((t.ms * 1000) / done).toFixed(1)} µs, ${(t.records / done).toFixed(1)} WAL records, ${(t.bytes / done).toFixed(0)} WAL bytes, ${(t.fpi / done).toFixed(2)} full pages per job`);
    }
    console.log(`${name}: ${((ms * 1000) / done).toFixed(1)} µs/job in statements, ${(records / done).toFixed(1)} WAL records, ${(bytes / done).toFixed(0)} WAL bytes per job (${done} jobs)`);
    console.log(lines.join('\n'));
  }
  for (const d of dbs) {
    await d.c.end();
    await d.db.drop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const pgUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const jobs = Number(process.argv[2] ?? 10_000);
  await explainedFloor(pgUrl, jobs);
  const f = await pgWriteFloor(pgUrl, jobs);
  console.log(`without EXPLAIN: database CPU ${f.db_cpu_us.toFixed(1)} µs per job (the drain's backend), client CPU ${f.client_cpu_us.toFixed(1)}, wall ${f.us_per_job.toFixed(1)} µs per job`);
}
