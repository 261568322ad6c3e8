/**
 * Invariants of the store, read straight from the database (no Gantry code in the way):
 * every job final, every COMPLETED job ran (marker) and was completed exactly once, no active
 * job without a live lease, attempts and events consistent with src/core/states.ts.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { readFileSync, existsSync } from 'node:fs';
import { canTransition, FINAL_STATES, ACTIVE_STATES } from '../../src/core/states.ts';
import type { JobState } from '../../src/core/types.ts';
import { eventsFromRow } from '../../src/store/rows.ts';
import { isPostgresUrl } from '../../src/store/driver.ts';

export interface RawDb {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

/** A plain connection to a Gantry database (`postgres://…` or `sqlite:PATH`). */
export async function rawDb(url: string): Promise<RawDb> {
  if (isPostgresUrl(url)) {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    await c.connect();
    return {
      query: async <T,>(sql: string, params: unknown[] = []) => {
        let n = 0;
        return (await c.query(sql.replace(/\?/g, () => `$${++n}`), params)).rows as T[];
      },
      close: () => c.end().catch(() => {}),
    };
  }
  const db = new Database(url.replace(/^sqlite:/, ''), { timeout: 10_000 });
  return {
    query: async <T,>(sql: string, params: unknown[] = []) => db.prepare(sql).all(...(params as never[])) as T[],
    close: async () => void db.close(),
  };
}

/** Job ids (with attempt numbers) that the handler/process recorded in the marker files. */
export function readMarkers(files: readonly string[]): Map<string, number[]> {
  const ran = new Map<string, number[]>();
  for (const f of files) {
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      const [id, attempt] = line.trim().split(' ');
      if (!id) continue;
      const list = ran.get(id) ?? [];
      list.push(Number(attempt));
      ran.set(id, list);
    }
  }
  return ran;
}

export interface InvariantReport {
  jobs: number;
  by_state: Record<string, number>;
  attempts: number;
  events: number;
  lost_attempts: number;
  late_reports: number;
  /** Every broken invariant, in words (empty = all hold). */
  violations: string[];
}

/** Active jobs whose worker is not online with a heartbeat newer than `cutoff` (ms). */
export async function activeWithoutLease(db: RawDb, cutoff: number): Promise<string[]> {
  const rows = await db.query<{ id: string; state: string; worker_id: string | null; wstate: string | null; hb: number | null }>(
    `SELECT j.id, j.state, j.worker_id, w.state AS wstate, w.last_heartbeat AS hb FROM jobs j LEFT JOIN workers w ON w.id = j.worker_id
     WHERE j.state IN ('SCHEDULED', 'RUNNING', 'PAUSED')`,
  );
  return rows.filter((r) => r.wstate !== 'online' || r.hb === null || Number(r.hb) < cutoff).map((r) => `${r.id} ${r.state} on ${r.worker_id ?? 'no worker'} (${r.wstate ?? 'unknown'})`);
}

/**
 * Checks every invariant. `markers`: what the jobs wrote when they ran (null = do not check);
 * `expectFinal`: all jobs must be in a final state; `leaseCutoff`: active jobs need a heartbeat newer than this.
 */
export async function checkInvariants(
  db: RawDb,
  opts: { markers: Map<string, number[]> | null; expectFinal: boolean; leaseCutoff?: number; expectJobs?: number },
): Promise<InvariantReport> {
  const v: string[] = [];
  const add = (msg: string) => {
    if (v.length < 50) v.push(msg);
    else if (v.length === 50) v.push('… more');
  };
  const jobs = await db.query<{ id: string; state: JobState; attempt_count: number; worker_id: string | null; current_attempt_id: string | null }>(
    'SELECT id, state, attempt_count, worker_id, current_attempt_id FROM jobs',
  );
  const attempts = await db.query<{ id: string; job_id: string; number: number; outcome: string; ended_at: number | null }>(
    'SELECT id, job_id, number, outcome, ended_at FROM job_attempts',
  );
  // One row may hold several steps (migration 0010): read back one event per step, as the API does.
  const events = (await db.query('SELECT * FROM job_events ORDER BY id')).flatMap(eventsFromRow);
  const by_state: Record<string, number> = {};
  for (const j of jobs) by_state[j.state] = (by_state[j.state] ?? 0) + 1;
  if (opts.expectJobs !== undefined && jobs.length !== opts.expectJobs) add(`expected ${opts.expectJobs} jobs in the store, found ${jobs.length}`);

  const attemptsByJob = new Map<string, typeof attempts>();
  for (const a of attempts) {
    const l = attemptsByJob.get(a.job_id) ?? [];
    l.push(a);
    attemptsByJob.set(a.job_id, l);
  }
  const eventsByJob = new Map<string, typeof events>();
  for (const e of events) {
    const l = eventsByJob.get(e.job_id) ?? [];
    l.push(e);
    eventsByJob.set(e.job_id, l);
  }
  let late = 0;
  for (const e of events) if (e.from_state === e.to_state && /^late report/.test(e.reason)) late++;

  for (const j of jobs) {
    const evs = eventsByJob.get(j.id) ?? [];
    const atts = (attemptsByJob.get(j.id) ?? []).sort((a, b) => Number(a.number) - Number(b.number));
    if (opts.expectFinal && !FINAL_STATES.has(j.state)) add(`${j.id} is ${j.state}, not final`);
    // The event chain: starts at SUBMITTED, each step allowed by the table, ends at the job's state.
    let at: string | null = null;
    let scheduled = 0;
    let completed = 0;
    for (const e of evs) {
      if (e.from_state === e.to_state) continue; // a note (late report, priority change, reorder): no move
      if (at === null) {
        if (e.from_state !== null || e.to_state !== 'SUBMITTED') add(`${j.id}: first event ${e.from_state}→${e.to_state}`);
      } else {
        if (e.from_state !== at) add(`${j.id}: event ${e.id} starts at ${e.from_state} but the job was ${at}`);
        if (!canTransition(e.from_state as JobState, e.to_state as JobState)) add(`${j.id}: event ${e.id} ${e.from_state}→${e.to_state} is not in the transition table`);
      }
      at = e.to_state;
      if (e.to_state === 'SCHEDULED') scheduled++;
      if (e.to_state === 'COMPLETED') completed++;
    }
    if (at !== j.state) add(`${j.id}: state ${j.state} but last event says ${at}`);
    if (j.state === 'COMPLETED' && completed !== 1) add(`${j.id}: COMPLETED with ${completed} COMPLETED events`);
    // Attempts: one per assignment, numbered 1..n, each with an outcome once the job has left it.
    if (atts.length !== Number(j.attempt_count)) add(`${j.id}: attempt_count ${j.attempt_count} but ${atts.length} attempt rows`);
    if (atts.length !== scheduled) add(`${j.id}: ${atts.length} attempts but ${scheduled} SCHEDULED events`);
    atts.forEach((a, i) => {
      if (Number(a.number) !== i + 1) add(`${j.id}: attempt numbers ${atts.map((x) => x.number).join(',')}`);
      const current = ACTIVE_STATES.has(j.state) && a.id === j.current_attempt_id;
      if (!current && (a.outcome === 'running' || a.ended_at === null)) add(`${j.id}: attempt ${a.number} (${a.id}) has no outcome (${a.outcome}) while the job is ${j.state}`);
      if (current && a.outcome !== 'running') add(`${j.id}: its current attempt is already ${a.outcome}`);
    });
    const completedAttempts = atts.filter((a) => a.outcome === 'completed').length;
    if (j.state === 'COMPLETED' && completedAttempts !== 1) add(`${j.id}: COMPLETED with ${completedAttempts} completed attempts`);
    if (j.state === 'COMPLETED' && opts.markers && !(opts.markers.get(j.id)?.length)) add(`${j.id}: COMPLETED but its handler/process never ran (no marker)`);
    if (ACTIVE_STATES.has(j.state) && (!j.worker_id || !j.current_attempt_id)) add(`${j.id}: ${j.state} without a worker or attempt`);
  }
  if (opts.leaseCutoff !== undefined) for (const s of await activeWithoutLease(db, opts.leaseCutoff)) add(`active without a live lease: ${s}`);
  return {
    jobs: jobs.length,
    by_state,
    attempts: attempts.length,
    events: events.length,
    lost_attempts: attempts.filter((a) => a.outcome === 'lost').length,
    late_reports: late,
    violations: v,
  };
}
