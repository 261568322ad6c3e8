/**
 * What the W1 row writes cost on SQLite, in one process so the variants see the same machine load:
 * `node bench/sqlite-floor.ts [jobs]`. Submits `jobs` handler jobs through the store (real schema),
 * then drains them with raw statements in batches of 500, alternating variants batch by batch, and
 * prints µs per job for each variant. Used to choose between statement shapes and to show the floor.
 * `npm run bench` calls `sqliteWriteFloor` (the schema as is, the store's statement shapes) for its W1 floor row.
 */
import type Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSqliteLikeServer, SectionTimer, seedQueuedJobs } from './floorSetup.ts';

const BATCH = 500;
export interface FloorResult {
  variant: string;
  /** Wall time of the writes per job (µs) and the process's CPU per job (µs). */
  us_per_job: number;
  cpu_us_per_job: number;
  /** µs per job by statement kind (assign UPDATE, events, attempts, commits, report UPDATE). */
  sections: Record<string, number>;
}

/**
 * Seeds `jobs` queued jobs per schema variant and drains them with the writes the store makes per job; with `print`,
 * a report per variant. `env` as the script's (DROP, FLOOR_SQL, SHAPES); `npm run bench` passes none: the schema as is.
 */
export async function sqliteWriteFloor(JOBS: number, env: Record<string, string | undefined> = {}, print = false): Promise<FloorResult[]> {
  /**
   * Schema variants, each its own database: `DROP=a,b;c` → a database without a and b, one without c, and one as is;
   * `FLOOR_SQL='stmt; stmt|stmt'` → one more database per `|`-separated part, with its statements run (e.g. an earlier
   * index definition).
   */
  const schemas: [name: string, sql: string][] = [
    ['schema as is', ''],
    ...(env.DROP ?? '').split(';').filter(Boolean).map((d): [string, string] => [`without ${d}`, d.split(',').map((ix) => `DROP INDEX ${ix}`).join(';')]),
    ...(env.FLOOR_SQL ?? '').split('|').filter(Boolean).map((sql, i): [string, string] => [`with FLOOR_SQL part ${i + 1}`, sql]),
  ];
  const dir = mkdtempSync(join(tmpdir(), 'gantry-floor-'));

  interface Db {
    file: string;
    name: string;
    db: Database.Database;
    assign1: Database.Statement; assignJson: Database.Statement; done1: Database.Statement;
    ev1: Database.Statement; ev64: Database.Statement; att1: Database.Statement; attEnd: Database.Statement; queued: Database.Statement;
  }
  const ev = (n: number) => `INSERT INTO job_events (job_id, at, from_state, to_state, reason, actor, data, steps) VALUES ${Array(n).fill('(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`;
  const dbs: Db[] = [];
  for (const [k, [name, sql]] of schemas.entries()) {
    const file = join(dir, `g${k}.db`);
    await seedQueuedJobs(file, JOBS);
    const db = openSqliteLikeServer(file);
    if (sql) db.exec(sql);
    db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    dbs.push({
      file, name, db,
      ev1: db.prepare(ev(1)), ev64: db.prepare(ev(64)),
      att1: db.prepare('INSERT INTO job_attempts (id, job_id, number, worker_id, started_at, outcome) VALUES (?, ?, ?, ?, ?, ?)'),
      attEnd: db.prepare('UPDATE job_attempts SET ended_at = ?, exit_code = ?, error = ?, outcome = ? WHERE id = ?'),
      assign1: db.prepare(`UPDATE jobs SET state = ?, updated_at = ?, attempt_count = attempt_count + ?, current_attempt_id = ?, gpu_indices = ?, retry_count = retry_count + ?, worker_id = ? WHERE id = ? AND state = ? RETURNING jobs.id, jobs.attempt_count, jobs.retry_count, jobs.watched`),
      assignJson: db.prepare(`UPDATE jobs SET state = ?, updated_at = ?, attempt_count = jobs.attempt_count + v.attempt_count, current_attempt_id = v.current_attempt_id, gpu_indices = v.gpu_indices, retry_count = jobs.retry_count + v.retry_count, worker_id = v.worker_id FROM (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.from_state') AS from_state, json_extract(value, '$.attempt_count') AS attempt_count, json_extract(value, '$.current_attempt_id') AS current_attempt_id, json_extract(value, '$.gpu_indices') AS gpu_indices, json_extract(value, '$.retry_count') AS retry_count, json_extract(value, '$.worker_id') AS worker_id FROM json_each(?)) AS v WHERE jobs.id = v.id AND jobs.state = v.from_state RETURNING jobs.id, jobs.attempt_count, jobs.retry_count, jobs.watched`),
      done1: db.prepare(`UPDATE jobs SET state = ?, updated_at = ?, control = ?, error = ?, exit_code = ?, finished_at = ?, gpu_indices = ?, preemption = ?, progress = ?, result = ?, started_at = ?, worker_id = ? WHERE id = ? AND state = ? RETURNING jobs.id, jobs.attempt_count, jobs.retry_count, jobs.watched`),
      queued: db.prepare(`SELECT id FROM jobs WHERE state = 'QUEUED' AND queue_key = 'noop' ORDER BY priority_rank, sort_key, seq LIMIT ?`).pluck(),
    });
  }

  let n = 0;
  const timer = new SectionTimer();
  const lap = (section: string) => timer.lap(section);
  const insertEvents = (d: Db, rows: unknown[][], multi: boolean) => {
    let i = 0;
    if (multi) for (; i + 64 <= rows.length; i += 64) d.ev64.run(...rows.slice(i, i + 64).flat());
    for (; i < rows.length; i++) d.ev1.run(...rows[i]!);
  };

  /** One batch as a drain writes it: the assignment transaction, then the report transaction. */
  const drainBatch = (d: Db, ids: string[], now: number, json: boolean, multi: boolean) => {
    const w = 'wkr_floor';
    d.db.exec('BEGIN IMMEDIATE');
    const atts = ids.map(() => `att_${(n++).toString(36).padStart(12, '0')}`);
    if (json) {
      d.assignJson.all('SCHEDULED', now, JSON.stringify(ids.map((id, i) => ({ id, from_state: 'QUEUED', attempt_count: 1, current_attempt_id: atts[i], gpu_indices: '[]', retry_count: 1, worker_id: w }))));
    } else {
      ids.forEach((id, i) => d.assign1.all('SCHEDULED', now, 1, atts[i], '[]', 1, w, id, 'QUEUED'));
    }
    lap('assign UPDATE');
    insertEvents(d, ids.map((id, i) => [id, now, 'QUEUED', 'SCHEDULED', `assigned to worker ${w}`, 'scheduler', JSON.stringify({ worker_id: w, attempt_id: atts[i], gpu_indices: [] }), null]), multi);
    lap('1 event');
    ids.forEach((id, i) => d.att1.run(atts[i], id, 1, w, now, 'running'));
    lap('attempt INSERT');
    d.db.exec('COMMIT');
    d.db.exec('BEGIN IMMEDIATE');
    lap('COMMIT+BEGIN');
    ids.forEach((id) => d.done1.all('COMPLETED', now, null, null, 0, now, '[]', null, 1, 'null', now, null, id, 'SCHEDULED'));
    lap('report UPDATE');
    // One event row for SCHEDULED → RUNNING → COMPLETED (migration 0010: the RUNNING step in `steps`).
    const steps = JSON.stringify([{ to: 'RUNNING', reason: 'worker started the job' }]);
    insertEvents(d, ids.map((id, i) => [id, now, 'SCHEDULED', 'COMPLETED', 'completed', `worker:${w}`, JSON.stringify({ attempt_id: atts[i], exit_code: null, error: null }), steps]), multi);
    lap('1 event (2 steps)');
    ids.forEach((_, i) => d.attEnd.run(now, null, null, 'completed', atts[i]));
    lap('attempt UPDATE');
    d.db.exec('COMMIT');
    lap('COMMIT');
  };
  const shapes: [string, boolean, boolean][] = env.SHAPES === '1'
    ? [['per-row UPDATE, 64-row INSERT', false, true], ['json_each UPDATE, 64-row INSERT', true, true], ['per-row UPDATE, per-row INSERT', false, false]]
    : [['per-row UPDATE, 64-row INSERT', false, true]];
  /** Per variant: wall ms, jobs, process CPU µs (user + system: what the writes cost, whatever else runs on the machine). */
  const spent = new Map<string, [number, number, number]>();
  for (let k = 0; ; k++) {
    const d = dbs[k % dbs.length]!;
    const shape = shapes[Math.floor(k / dbs.length) % shapes.length]!;
    const ids = d.queued.all(BATCH) as string[];
    if (ids.length === 0) break;
    const variant = `${d.name}; ${shape[0]}`;
    timer.start(variant);
    const t = performance.now();
    const cpu = process.cpuUsage();
    drainBatch(d, ids, Date.now(), shape[1], shape[2]);
    const used = process.cpuUsage(cpu);
    const e = spent.get(variant) ?? [0, 0, 0];
    spent.set(variant, [e[0] + performance.now() - t, e[1] + ids.length, e[2] + used.user + used.system]);
  }
  const out: FloorResult[] = [];
  for (const [name, [ms, jobs, cpuUs]] of spent) {
    const d = dbs.find((x) => name.startsWith(`${x.name};`))!;
    const bySection = timer.perJob(name, jobs);
    out.push({ variant: name, us_per_job: (ms * 1000) / jobs, cpu_us_per_job: cpuUs / jobs, sections: bySection });
    if (!print) continue;
    // Every batch is committed to the WAL and nothing is checkpointed: its size is what the drain wrote.
    const walPerJob = statSync(`${d.file}-wal`).size / (JOBS);
    console.log(`${name}: ${((ms * 1000) / jobs).toFixed(1)} µs/job (CPU ${(cpuUs / jobs).toFixed(1)}) (${jobs} jobs); WAL written by this database's drain: ${(walPerJob / 1024).toFixed(2)} KiB per job`);
    for (const [k, v] of Object.entries(bySection)) console.log(`    ${k}: ${v.toFixed(1)} µs/job`);
  }
  for (const d of dbs) d.db.close();
  rmSync(dir, { recursive: true, force: true });
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await sqliteWriteFloor(Number(process.argv[2] ?? 20_000), process.env, true);
