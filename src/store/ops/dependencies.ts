/**
 * Job dependencies (`depends_on`, seed 002's POST /jobs/{id}/dependencies). A job with
 * dependencies stays SUBMITTED until `decideDependencies` (src/core/dependencies.ts) lets it
 * run; then it goes QUEUED in the same transaction as the upstream's final transition (the
 * `dependencies` final-state hook, src/store/finalHooks.ts). One that can never run is CANCELLED
 * with the reason. Edges live in `job_dependencies (job_id → depends_on)`; upstream jobs are
 * watched so their end runs the hook.
 */
import type { DependencyType, Job, JobState } from '../../core/types.ts';
import { GantryError, notFound, validationError } from '../../core/errors.ts';
import { decideDependencies, type Upstream } from '../../core/dependencies.ts';
import { idsIn, type SqlExecutor } from '../driver.ts';
import { watchJobs, type FinalHook } from '../finalHooks.ts';
import { applyTransitions, type Transition } from './applyTransitions.ts';

export interface NewDependencies {
  job_id: string;
  depends_on: readonly string[];
  dependency_type: DependencyType;
  /** Names the request field in errors (`depends_on`, `jobs[2].depends_on`). */
  field: string;
}

/**
 * Adds dependency edges and settles each job at once: released (SUBMITTED → QUEUED), held
 * (QUEUED → SUBMITTED), cancelled (can never run), or left waiting. Unknown upstream ids are a
 * VALIDATION_FAILED naming the entry; an edge that closes a cycle is DEPENDENCY_CYCLE naming it.
 * Params: tx — open transaction; list — per job, its new upstream ids and type (replaces the type).
 * Returns the ids of jobs that went to QUEUED.
 */
export async function addDependencies(
  tx: SqlExecutor, list: readonly NewDependencies[], now: number, actor: string, opts: { existing_jobs: boolean },
): Promise<string[]> {
  const all = [...new Set(list.flatMap((d) => d.depends_on))];
  const states = await watchJobs(tx, all);
  for (const d of list) {
    d.depends_on.forEach((up, k) => {
      if (!states.has(up)) throw validationError(`${d.field}[${k}]`, `unknown job ${up}`);
    });
    // A job created in this transaction has no dependents yet, so only its own id could close a cycle.
    const cycle = opts.existing_jobs ? await findCycle(tx, d.job_id, [...new Set(d.depends_on)]) : null;
    if (cycle) {
      throw new GantryError('DEPENDENCY_CYCLE', `${d.field}: dependency cycle ${cycle.join(' → ')} (each job waits for the next)`, {
        field: d.field, cycle,
      });
    }
  }
  const jobIds = [...new Set(list.map((d) => d.job_id))];
  const existing = new Set<string>();
  {
    const sel = idsIn(tx, 'job_id', jobIds);
    for (const r of await tx.query(`SELECT job_id, depends_on FROM job_dependencies WHERE ${sel.sql}`, [sel.param])) {
      existing.add(`${String(r.job_id)}>${String(r.depends_on)}`);
    }
  }
  const edges: [string, string][] = [];
  for (const d of list) {
    for (const up of new Set(d.depends_on)) {
      const k = `${d.job_id}>${up}`;
      if (existing.has(k)) continue;
      existing.add(k);
      edges.push([d.job_id, up]);
    }
  }
  if (opts.existing_jobs) {
    await tx.run(
      `UPDATE jobs SET dependency_type = v.dependency_type FROM ${tx.recordset([['id', 'text'], ['dependency_type', 'text']])} WHERE jobs.id = v.id`,
      [JSON.stringify(list.map((d) => ({ id: d.job_id, dependency_type: d.dependency_type })))],
    );
  }
  await tx.insertMany('job_dependencies', ['job_id', 'depends_on'], edges);
  return settleJobs(tx, jobIds, now, actor);
}

/**
 * Follows `depends_on` edges from `upstream`; if they lead back to `jobId`, returns the cycle
 * as ids (`[jobId, …, jobId]`), else null. One query per level of the graph.
 */
async function findCycle(tx: SqlExecutor, jobId: string, upstream: readonly string[]): Promise<string[] | null> {
  // parent.get(x) = the job that depends on x on the path we walked from `jobId`.
  const parent = new Map<string, string>(upstream.map((u) => [u, jobId]));
  let frontier = [...upstream];
  while (frontier.length > 0) {
    if (frontier.includes(jobId)) {
      const path = [jobId];
      for (let at = parent.get(jobId)!; at !== jobId; at = parent.get(at)!) path.push(at);
      return [jobId, ...path.slice(1).reverse(), jobId];
    }
    const sel = idsIn(tx, 'job_id', frontier);
    const next: string[] = [];
    for (const r of await tx.query(`SELECT job_id, depends_on FROM job_dependencies WHERE ${sel.sql}`, [sel.param])) {
      const up = String(r.depends_on);
      if (parent.has(up)) continue;
      parent.set(up, String(r.job_id));
      next.push(up);
    }
    frontier = next;
  }
  return null;
}

/** Each job's upstream jobs with their current states, and the job's own state and type. */
async function readDependencies(tx: SqlExecutor, jobIds: readonly string[]): Promise<Map<string, { state: JobState; type: DependencyType; upstream: Upstream[] }>> {
  const out = new Map<string, { state: JobState; type: DependencyType; upstream: Upstream[] }>();
  if (jobIds.length === 0) return out;
  const sel = idsIn(tx, 'd.job_id', jobIds);
  const rows = await tx.query(
    `SELECT d.job_id, d.depends_on, u.state AS up_state, j.state AS job_state, j.dependency_type
     FROM job_dependencies d JOIN jobs j ON j.id = d.job_id JOIN jobs u ON u.id = d.depends_on
     WHERE ${sel.sql} ORDER BY d.job_id, u.seq`,
    [sel.param],
  );
  for (const r of rows) {
    const id = String(r.job_id);
    let e = out.get(id);
    if (!e) out.set(id, (e = { state: r.job_state as JobState, type: (r.dependency_type ?? 'all_complete') as DependencyType, upstream: [] }));
    e.upstream.push({ id: String(r.depends_on), state: r.up_state as JobState });
  }
  return out;
}

/** Moves each still-pending job to where its dependencies put it. Returns the ids released to QUEUED. */
async function settleJobs(tx: SqlExecutor, jobIds: readonly string[], now: number, actor: string): Promise<string[]> {
  const deps = await readDependencies(tx, jobIds);
  const changes: Transition[] = [];
  for (const [id, d] of deps) {
    if (d.state !== 'SUBMITTED' && d.state !== 'QUEUED') continue;
    const v = decideDependencies(d.type, d.upstream);
    if (v.verdict === 'run' && d.state === 'SUBMITTED') {
      changes.push({ job_id: id, from: 'SUBMITTED', to: 'QUEUED', reason: `dependencies met: ${v.reason}`, actor, patch: { queued_at: now, sort_key: now } });
    } else if (v.verdict === 'wait' && d.state === 'QUEUED') {
      changes.push({ job_id: id, from: 'QUEUED', to: 'SUBMITTED', reason: v.reason, actor, patch: { queued_at: null } });
    } else if (v.verdict === 'never') {
      changes.push({ job_id: id, from: d.state, to: 'CANCELLED', reason: `can never run: ${v.reason}`, actor, patch: { finished_at: now, error: `can never run: ${v.reason}` } });
    }
  }
  const applied = await applyTransitions(tx, changes, now);
  return changes.filter((c, i) => applied[i] && c.to === 'QUEUED').map((c) => c.job_id);
}

/** The final-state hook: jobs waiting on the ones that just ended are released or cancelled. */
export const releaseDependents: FinalHook = async (tx, finished, ctx) => {
  const sel = idsIn(tx, 'd.depends_on', finished.map((f) => f.id));
  const rows = await tx.query(
    `SELECT DISTINCT d.job_id FROM job_dependencies d JOIN jobs j ON j.id = d.job_id WHERE ${sel.sql} AND j.state = 'SUBMITTED'`,
    [sel.param],
  );
  if (rows.length === 0) return;
  // Two upstreams of one job can end in two transactions at once (PostgreSQL), each seeing the
  // other still running. Lock each waiting job first, in id order (so two transactions never wait
  // on each other in a circle): the second waits, then reads the first one's committed state.
  const locked: string[] = [];
  for (const id of rows.map((r) => String(r.job_id)).sort()) {
    const got = await tx.query(`UPDATE jobs SET watched = watched WHERE id = ? AND state = 'SUBMITTED' RETURNING id`, [id]);
    if (got.length > 0) locked.push(id);
  }
  const released = await settleJobs(tx, locked, ctx.now, 'dependencies');
  if (released.length > 0) ctx.wakeScheduler();
};

/** What GET /jobs/{id} shows of a job's dependencies. Null when it has none. */
export async function dependencyStatus(
  db: SqlExecutor,
  job: Pick<Job, 'id' | 'state' | 'dependency_type'>,
): Promise<{ depends_on: Upstream[]; dependency_type: DependencyType; waiting_for: string[]; pending_reason: string | null } | null> {
  if (!job.dependency_type) return null;
  const d = (await readDependencies(db, [job.id])).get(job.id);
  if (!d) return null;
  const v = decideDependencies(d.type, d.upstream);
  return { depends_on: d.upstream, dependency_type: d.type, waiting_for: v.waiting_for, pending_reason: job.state === 'SUBMITTED' ? v.reason : null };
}

/**
 * POST /jobs/{id}/dependencies: only a job not yet on a worker (SUBMITTED or QUEUED) can gain
 * dependencies. Returns the ids released to QUEUED (for a scheduler wake-up).
 */
export async function addJobDependencies(
  tx: SqlExecutor, id: string, dependsOn: readonly string[], type: DependencyType, actor: string, now: number,
): Promise<string[]> {
  const row = (await tx.query('SELECT state FROM jobs WHERE id = ?', [id]))[0];
  if (!row) throw notFound('job', id);
  const state = row.state as JobState;
  if (state !== 'SUBMITTED' && state !== 'QUEUED') {
    throw new GantryError('CONFLICT', `job ${id} is ${state}; dependencies can be added only before it is scheduled (SUBMITTED or QUEUED)`, {
      field: 'depends_on', job_id: id, state,
    });
  }
  return addDependencies(tx, [{ job_id: id, depends_on: dependsOn, dependency_type: type, field: 'depends_on' }], now, actor, { existing_jobs: true });
}
