import type { Job, JobSpec } from '../../core/types.ts';
import { newId } from '../../core/ids.ts';
import { priorityRank } from '../../core/priorities.ts';
import { idsIn, type SqlDriver, type SqlExecutor, type SqlValue } from '../driver.ts';
import { JOB_INSERT_COLUMNS, jobFromRow, toJson } from '../rows.ts';
import { addDependencies } from './dependencies.ts';
import { stepsJson } from './applyTransitions.ts';
import { NEAR_POSITIONS, queuedAhead } from './jobActions.ts';

/** The `steps` of a submitted-and-queued job's one event row, per submitter (the same text for a whole batch). */
const submittedStep = (actor: string): string => stepsJson([{ to: 'SUBMITTED', reason: 'submitted', actor }], 'system')!;

const EVENT_COLUMNS = ['job_id', 'at', 'from_state', 'to_state', 'reason', 'actor', 'data', 'steps'];

export interface SubmitResult {
  job: Job;
  /** false when an idempotency key matched an existing job, which is returned instead. */
  created: boolean;
  /** The job's place in its queue as it was written (1 = next), when asked for and read with the write (submitJobsAtOnce). */
  queue_position?: number;
}

/**
 * Creates jobs in one transaction: each is written SUBMITTED→QUEUED with both events (one event row) — or, when
 * it has dependencies, SUBMITTED only, and ops/dependencies.ts decides at once whether it waits,
 * is released to QUEUED, or can never run (CANCELLED).
 * A spec whose (tenant, idempotency_key) already exists returns the original job.
 * Params: specs — validated; now — epoch ms; actor — who submitted; batch — errors name `jobs[i].` fields.
 */
export async function submitJobs(tx: SqlExecutor, specs: readonly JobSpec[], now: number, actor: string, batch = false): Promise<SubmitResult[]> {
  const out: (SubmitResult | null)[] = new Array(specs.length).fill(null);
  const rows: SqlValue[][] = [];
  const events: SqlValue[][] = [];
  const newIds: { index: number; id: string }[] = [];
  const seenKeys = new Map<string, number>();
  const waiting: { index: number; id: string }[] = [];
  for (let i = 0; i < specs.length; i++) {
    const s = specs[i]!;
    if (s.idempotency_key !== null) {
      const k = `${s.tenant}\u0000${s.idempotency_key}`;
      const dup = seenKeys.get(k);
      if (dup !== undefined) {
        newIds.push({ index: i, id: newIds.find((n) => n.index === dup)!.id });
        continue;
      }
      const existing = await tx.query('SELECT * FROM jobs WHERE tenant = ? AND idempotency_key = ?', [s.tenant, s.idempotency_key]);
      if (existing[0]) {
        out[i] = { job: jobFromRow(existing[0]), created: false };
        continue;
      }
      seenKeys.set(k, i);
    }
    const id = newId('job');
    newIds.push({ index: i, id });
    const waits = (s.depends_on?.length ?? 0) + (s.depends_on_index?.length ?? 0) > 0;
    if (waits) waiting.push({ index: i, id });
    rows.push(jobRow(s, id, now, waits));
    events.push(...submitEvents(id, now, actor, waits));
  }
  await tx.insertMany('jobs', JOB_INSERT_COLUMNS, rows);
  await tx.insertMany('job_events', EVENT_COLUMNS, events);
  if (waiting.length > 0) {
    const idAt = new Map(newIds.map((n) => [n.index, n.id]));
    for (let i = 0; i < specs.length; i++) if (out[i]) idAt.set(i, out[i]!.job.id);
    await addDependencies(tx, waiting.map((w) => {
      const s = specs[w.index]!;
      const upstream = [...(s.depends_on ?? []), ...(s.depends_on_index ?? []).map((k) => idAt.get(k)!)];
      return { job_id: w.id, depends_on: upstream, dependency_type: s.dependency_type ?? 'all_complete', field: `${batch ? `jobs[${w.index}].` : ''}depends_on` };
    }), now, actor, { existing_jobs: false });
  }
  // Read back the created rows (seq is assigned by the database).
  const byId = new Map<string, Job>();
  const ids = [...new Set(newIds.map((n) => n.id))];
  if (ids.length > 0) {
    const sel = idsIn(tx, 'id', ids);
    for (const r of await tx.query(`SELECT * FROM jobs WHERE ${sel.sql}`, [sel.param])) byId.set(String(r.id), jobFromRow(r));
  }
  const firstIndexOf = new Map<string, number>();
  for (const n of newIds) {
    const created = !firstIndexOf.has(n.id);
    if (created) firstIndexOf.set(n.id, n.index);
    out[n.index] = { job: byId.get(n.id)!, created };
  }
  return out as SubmitResult[];
}

/** A new job's row (JOB_INSERT_COLUMNS): QUEUED, or SUBMITTED while it `waits` for dependencies. */
function jobRow(s: JobSpec, id: string, now: number, waits: boolean): SqlValue[] {
  // Position within the priority class = queue time; jobs of one batch keep their order by seq.
  const sortKey = now;
  return [
    id, s.name, s.type, s.tenant, s.priority, priorityRank(s.priority), waits ? 'SUBMITTED' : 'QUEUED', s.kind, toJson(s.command), s.handler,
    JSON.stringify(s.env), s.working_dir, s.timeout, JSON.stringify(s.retry_policy), JSON.stringify(s.labels),
    JSON.stringify(s.parameters), s.idempotency_key, s.expected_duration, s.resources.cpu_cores, s.resources.memory_gb,
    s.resources.gpu_count, s.resources.storage_gb, now, now, waits ? null : now, sortKey, s.handler ?? '',
    s.template ?? null, s.template_version ?? null, toJson(s.steps ?? null), waits ? (s.dependency_type ?? 'all_complete') : null,
    s.preemptible ? 1 : 0, s.grace_period, s.nodes,
  ];
}

/** One event row: → SUBMITTED, and for a job that waits for nothing → QUEUED in the same row (its `steps`). */
function submitEvents(id: string, now: number, actor: string, waits: boolean): SqlValue[][] {
  return [waits ? [id, now, null, 'SUBMITTED', 'submitted', actor, null, null] : [id, now, null, 'QUEUED', 'validated and queued', 'system', null, submittedStep(actor)]];
}

/** Submits with no idempotency key and no dependency: nothing to look up first, nothing to decide after the insert. */
export function plainSubmits(specs: readonly JobSpec[]): boolean {
  return specs.every((s) => s.idempotency_key === null && (s.depends_on?.length ?? 0) + (s.depends_on_index?.length ?? 0) === 0);
}

/**
 * plainSubmits as ONE statement where the engine allows it (`db.insertSql`: PostgreSQL): the jobs, their
 * events and the rows read back in a data-modifying `WITH`, which is its own transaction — one round trip
 * on a submit's way to the scheduler instead of five (BEGIN, two INSERTs, the read-back, COMMIT).
 * The same rows and events as submitJobs writes for such specs. With `positions`, each queued job's
 * place in its queue (queuePosition's count) comes back with it, so the submit route need not read it
 * after: the queued jobs ahead of it in the statement's snapshot, plus those of this batch ahead of it.
 */
export async function submitJobsAtOnce(
  db: SqlDriver & Required<Pick<SqlDriver, 'insertSql'>>, specs: readonly JobSpec[], now: number, actor: string, positions = false,
): Promise<SubmitResult[]> {
  const ids = specs.map(() => newId('job'));
  const jobs = await db.insertSql('jobs', JOB_INSERT_COLUMNS, specs.map((s, i) => jobRow(s, ids[i]!, now, false)));
  const events = await db.insertSql('job_events', EVENT_COLUMNS, ids.flatMap((id) => submitEvents(id, now, actor, false)));
  // The count of the queued jobs ahead stops at NEAR_POSITIONS: a deeper one is left to the caller
  // (Store.queuePosition, off this statement), so a submit into a deep queue does not hold its
  // write — and the submits behind it in the coalescer — for the ~0.1–1 s a million-job count takes.
  // It walks jobs_queue_by_key with an index(-only) scan, which marks the entries of jobs gone from the
  // queue as dead on its first visit. The queue key is the inserted row's, unknown when the statement is
  // planned: with the table analysed while a million jobs waited in one queue, the planner took an
  // unbounded count for a third of the table and read it with a bitmap scan — which never marks an entry —
  // so every submit to a small queue visited the heap pages of every job that had passed through it since
  // the last VACUUM (W4 after ANALYZE: 20,000 entries, 1,040 pages, ~4.5 ms per submit; issue 3s). Rows in
  // the index's order under a small LIMIT price the ordered walk far below a bitmap scan that must read and
  // sort every row before its first. The ORDER BY is what keeps the walk: with the LIMIT alone the planner,
  // promised a third of the table by the statistics, took a sequential scan "stopping after 1,000 rows" —
  // which read all million rows when the small queue had none (W4 after ANALYZE: 200 ms per submit).
  // test/store.test.ts checks the plan is an index walk.
  const position = positions
    ? `, (SELECT COUNT(*) FROM (SELECT 1 FROM jobs q WHERE ${queuedAhead('q.', ['j.queue_key', 'j.priority_rank', 'j.sort_key', 'j.seq'])}
           ORDER BY q.queue_key, q.priority_rank, q.sort_key, q.seq LIMIT ${NEAR_POSITIONS}) a) AS queued_ahead,
       COUNT(*) OVER (PARTITION BY j.state, j.queue_key ORDER BY j.priority_rank, j.sort_key, j.seq) AS batch_place`
    : '';
  const rows = await db.query(`WITH j AS (${jobs.sql} RETURNING *), e AS (${events.sql}) SELECT *${position} FROM j`, [...jobs.params, ...events.params]);
  const byId = new Map(rows.map((r) => [String(r.id), r]));
  return ids.map((id) => {
    const r = byId.get(id)!;
    const ahead = positions ? Number(r.queued_ahead) : NEAR_POSITIONS;
    return ahead < NEAR_POSITIONS ? { job: jobFromRow(r), created: true, queue_position: ahead + Number(r.batch_place) } : { job: jobFromRow(r), created: true };
  });
}
