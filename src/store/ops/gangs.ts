import type { Job, JobControl, JobState } from '../../core/types.ts';
import { newId } from '../../core/ids.ts';
import { ACTIVE_STATES } from '../../core/states.ts';
import { idsIn, PLAIN_TEXT, type Row, type SqlExecutor, type SqlValue } from '../driver.ts';
import { afterCommitOf } from '../finalHooks.ts';
import { jobFromRow, toJson } from '../rows.ts';
import { applyTransitions, recordEvents, type Transition } from './applyTransitions.ts';
import { encodeCheckpoint, upsertCheckpoint } from './checkpoints.ts';
import type { ActiveRow } from './readSchedulingState.ts';
import { attemptOutcome, stepsFor, type AttemptReport, type ReportOutcome } from './reportResults.ts';
import { lockOnlineWorkers, type Assignment, type Delivery } from './scheduling.ts';
import type { Priority } from '../../core/types.ts';

/**
 * Gang jobs (`nodes: N > 1`): one attempt runs on N distinct workers at once, all or nothing.
 *
 * The job row of a gang holds no worker (`worker_id` NULL); each member is a row of
 * `job_placements` (attempt, rank, worker, GPUs, member state). A member's fencing token is
 * `<attempt id>.<rank>` — a plain attempt id never contains a dot, so a worker's report batch is
 * split without a read and single-node jobs never reach this file. Room on a worker is held by a
 * member until it has ended, even after the job moved on (a member still being stopped keeps its
 * room). The job: RUNNING once every member started, COMPLETED when all completed; the first
 * member to fail, time out, be preempted or lost ends the attempt for all, and the others are
 * told to stop (a `cancel` control to a member whose job is no longer on its attempt).
 *
 * Start barrier: a member's worker receives it but does not start it. Member states:
 * `assigned` (waiting for its worker) → `claimed` (its worker's next poll lists the token in
 * `held`: it sits on the worker, ready) → `released` (every member of the attempt was claimed;
 * the worker got the `start` control — again on each of its polls that still holds the member
 * unstarted, so a lost answer does not leave it at the barrier) → `running` (its `started` report)
 * → an end state. The poll
 * that completes the set wakes the other members' workers, so every member gets `start` within
 * one poll round trip of the last claim, whatever delayed that one (a busy or slow worker, an
 * older member of the job still stopping there). If some member is still unclaimed
 * `gang_start_timeout_ms` after the assignment, `expireGangStarts` requeues the gang (attempt
 * `interrupted`, retry budget untouched) and the claimed members are cancelled unstarted.
 */

/** What a member's worker is told about its gang (the poll's `gang`, env GANTRY_GANG_*, `job.gang`). */
export interface GangInfo {
  rank: number;
  size: number;
  /** Every member in rank order: worker id and name (the name is the worker's host name for `gantry worker`). */
  workers: { rank: number; worker_id: string; name: string }[];
}

/** A member as shown on GET /jobs/{id}. */
export interface GangMemberView {
  rank: number;
  worker_id: string;
  gpu_indices: number[];
  state: string;
  started_at: number | null;
  ended_at: number | null;
  exit_code: number | null;
  error: string | null;
}

export const memberToken = (attemptId: string, rank: number): string => `${attemptId}.${rank}`;

/** The attempt and rank of a member token, or null for a plain (single-node) attempt id. */
export function parseMemberToken(token: string): { attempt_id: string; rank: number } | null {
  const dot = token.lastIndexOf('.');
  if (dot < 0) return null;
  const rank = Number(token.slice(dot + 1));
  return Number.isInteger(rank) && rank >= 0 ? { attempt_id: token.slice(0, dot), rank } : null;
}

export const isMemberReport = (r: { attempt_id: string }): boolean => r.attempt_id.includes('.');

/**
 * Admits gangs in the scheduling cycle's transaction: QUEUED → SCHEDULED with one attempt and a
 * placement row per member. A gang with any worker gone offline or draining meanwhile is skipped whole (all
 * or nothing). Returns the admissions that took effect.
 */
export async function assignGangs(tx: SqlExecutor, proposed: readonly Assignment[], now: number): Promise<Assignment[]> {
  const live = await lockOnlineWorkers(tx, proposed.flatMap((a) => (a.members ?? []).map((m) => m.worker_id)));
  const gangs = proposed.filter((a) => a.members && a.members.length > 1 && a.members.every((m) => live.has(m.worker_id)));
  if (gangs.length === 0) return [];
  const attemptIds = gangs.map(() => newId('att'));
  const changes: Transition[] = gangs.map((a, i) => {
    const workers = a.members!.map((m) => m.worker_id);
    return {
      job_id: a.job_id, from: 'QUEUED', to: 'SCHEDULED', actor: 'scheduler',
      reason: `assigned as a gang of ${workers.length} to workers ${workers.join(', ')}`,
      patch: { current_attempt_id: attemptIds[i]!, attempt_count: { add: 1 }, retry_count: { add: 1 } },
      data: { attempt_id: attemptIds[i]!, workers, gpu_indices: a.members!.map((m) => m.gpu_indices) },
    };
  });
  const applied = await applyTransitions(tx, changes, now);
  const done: Assignment[] = [];
  const attempts: SqlValue[][] = [];
  const members: SqlValue[][] = [];
  gangs.forEach((a, i) => {
    const row = applied[i];
    if (!row) return;
    done.push(a);
    attempts.push([attemptIds[i]!, a.job_id, Number(row.attempt_count), a.members![0]!.worker_id, now, 'running']);
    a.members!.forEach((m, rank) => members.push([attemptIds[i]!, rank, a.job_id, m.worker_id, JSON.stringify(m.gpu_indices), 'assigned']));
  });
  await tx.insertMany('job_attempts', ['id', 'job_id', 'number', 'worker_id', 'started_at', 'outcome'], attempts);
  await tx.insertMany('job_placements', ['attempt_id', 'rank', 'job_id', 'worker_id', 'gpu_indices', 'state'], members);
  return done;
}

interface MemberRow {
  attempt_id: string;
  rank: number;
  job_id: string;
  member_state: string;
  control_sent: string | null;
  gpu_indices: string;
  job_state: JobState;
  current_attempt_id: string | null;
  control: string | null;
}

/** The open gang placements on a worker, for deliverGangWork (the caller may start this read alongside its own). */
export function gangMemberRows(db: SqlExecutor, workerId: string): Promise<Row[]> {
  return db.query(
    `SELECT p.attempt_id, p.rank, p.job_id, p.state AS member_state, p.control_sent, p.gpu_indices, j.state AS job_state, j.current_attempt_id, j.control
     FROM job_placements p JOIN jobs j ON j.id = p.job_id WHERE p.worker_id = ${PLAIN_TEXT} AND p.ended_at IS NULL`,
    [workerId],
  );
}

/**
 * Gang members waiting for worker `workerId` (`held` = the tokens it runs), and controls for the
 * members it runs: the job's own control (cancel, pause, resume, preempt), each handed over once;
 * `cancel` for a member whose job left its attempt (another member failed, the job was cancelled
 * or requeued). A member of a finished attempt that its worker never took is dropped here (it
 * holds no process anywhere). A new member waits while an older member of the same job on this
 * worker is still stopping (a worker runs one attempt of a job at a time).
 */
export async function deliverGangWork(
  db: SqlExecutor, workerId: string, max: number, held: ReadonlySet<string>, out: Delivery, read: Promise<Row[]> = gangMemberRows(db, workerId),
): Promise<string[]> {
  const rows = (await read).map((r): MemberRow => ({
    attempt_id: String(r.attempt_id), rank: Number(r.rank), job_id: String(r.job_id), member_state: String(r.member_state),
    control_sent: r.control_sent == null ? null : String(r.control_sent), gpu_indices: String(r.gpu_indices),
    job_state: r.job_state as JobState, current_attempt_id: r.current_attempt_id == null ? null : String(r.current_attempt_id),
    control: r.control == null ? null : String(r.control),
  }));
  if (rows.length === 0) return [];
  const fresh: MemberRow[] = [];
  const ready: MemberRow[] = [];
  let room = max - out.jobs.length;
  for (const r of rows) {
    const token = memberToken(r.attempt_id, r.rank);
    const current = r.current_attempt_id === r.attempt_id && ACTIVE_STATES.has(r.job_state);
    const holds = held.has(token);
    let control: string | null = null;
    if (current) {
      if (holds && r.member_state === 'assigned') {
        // The worker has it (its poll lists the token): claimed, waiting at the start barrier.
        await db.run(`UPDATE job_placements SET state = 'claimed' WHERE attempt_id = ? AND rank = ? AND state = 'assigned'`, [r.attempt_id, r.rank]);
        r.member_state = 'claimed';
      }
      if (holds && r.member_state === 'claimed' && r.control !== 'cancel' && r.control !== 'preempt') ready.push(r);
      // Released, still held and not started: the answer that carried its `start` may have been lost (a
      // poll cut short by a switch of server, a server gone after its commit). `start` again; a worker
      // that has started the member ignores it, and its `started` report ends the resending.
      if (holds && r.member_state === 'released' && r.control !== 'cancel' && r.control !== 'preempt') {
        out.controls.push({ job_id: r.job_id, attempt_id: token, control: 'start' });
      }
      if (holds && r.control !== null && r.control !== r.control_sent) control = r.control;
      else if (!holds && r.member_state === 'assigned' && room > 0 && !rows.some((o) => o.job_id === r.job_id && o.attempt_id !== r.attempt_id)) {
        fresh.push(r);
        room--;
      }
    } else if (holds) {
      if (r.control_sent !== 'cancel' && r.control_sent !== 'preempt') control = 'cancel';
    } else {
      await db.run(
        `UPDATE job_placements SET state = 'dropped', ended_at = ?, error = ? WHERE attempt_id = ? AND rank = ? AND ended_at IS NULL`,
        [Date.now(), 'never started: the gang attempt ended first', r.attempt_id, r.rank],
      );
    }
    if (control !== null) {
      const n = await db.run(
        `UPDATE job_placements SET control_sent = ? WHERE attempt_id = ? AND rank = ? AND (control_sent IS NULL OR control_sent != ?)`,
        [control, r.attempt_id, r.rank, control],
      );
      if (n === 1) out.controls.push({ job_id: r.job_id, attempt_id: token, control: control as JobControl });
    }
  }
  const wake = await releaseClaimed(db, ready, workerId, out);
  if (fresh.length === 0) return wake;
  const ids = idsIn(db, 'id', fresh.map((r) => r.job_id));
  const jobs = new Map((await db.query(`SELECT * FROM jobs WHERE ${ids.sql}`, [ids.param])).map((r) => [String(r.id), jobFromRow(r)]));
  const att = idsIn(db, 'attempt_id', fresh.map((r) => r.attempt_id));
  const all = await db.query(
    `SELECT p.attempt_id, p.rank, p.worker_id, w.name FROM job_placements p LEFT JOIN workers w ON w.id = p.worker_id WHERE ${att.sql} ORDER BY p.attempt_id, p.rank`,
    [att.param],
  );
  for (const r of fresh) {
    const job = jobs.get(r.job_id);
    if (!job) continue;
    const workers = all.filter((m) => String(m.attempt_id) === r.attempt_id)
      .map((m) => ({ rank: Number(m.rank), worker_id: String(m.worker_id), name: m.name == null ? String(m.worker_id) : String(m.name) }));
    out.jobs.push({
      ...job, current_attempt_id: memberToken(r.attempt_id, r.rank), worker_id: workerId,
      gpu_indices: JSON.parse(r.gpu_indices) as number[], gang: { rank: r.rank, size: workers.length, workers },
    });
  }
  return wake;
}

/**
 * The start barrier: each claimed member whose whole gang is claimed is released (the `start`
 * control, once). Returns the workers of members still waiting for their `start`, to be woken.
 */
async function releaseClaimed(db: SqlExecutor, ready: readonly MemberRow[], workerId: string, out: Delivery): Promise<string[]> {
  const wake = new Set<string>();
  for (const r of ready) {
    const members = await db.query(`SELECT rank, worker_id, state FROM job_placements WHERE attempt_id = ?`, [r.attempt_id]);
    if (members.some((m) => String(m.state) === 'assigned')) continue;
    const n = await db.run(`UPDATE job_placements SET state = 'released' WHERE attempt_id = ? AND rank = ? AND state = 'claimed'`, [r.attempt_id, r.rank]);
    if (n !== 1) continue;
    out.controls.push({ job_id: r.job_id, attempt_id: memberToken(r.attempt_id, r.rank), control: 'start' });
    for (const m of members) if (String(m.state) === 'claimed' && Number(m.rank) !== r.rank && String(m.worker_id) !== workerId) wake.add(String(m.worker_id));
  }
  return [...wake];
}

/**
 * Gangs whose current attempt is still SCHEDULED with a member not yet taken by its worker,
 * assigned before `cutoff`: back to the queue at their old position (attempt `interrupted`, the
 * retry budget untouched), or CANCELLED if a cancel was pending. The members' workers are
 * woken: claimed members are cancelled unstarted, untaken ones dropped. Returns the requeued job
 * ids and the workers to wake.
 */
export async function expireGangStarts(tx: SqlExecutor, cutoff: number, now: number, timeoutMs: number): Promise<{ jobs: string[]; workers: string[] }> {
  const rows = await tx.query(
    `SELECT p.attempt_id, p.rank, p.worker_id, j.id, j.cancel_requested
     FROM job_placements p JOIN jobs j ON j.id = p.job_id JOIN job_attempts a ON a.id = p.attempt_id
     WHERE p.ended_at IS NULL AND p.state = 'assigned' AND j.current_attempt_id = p.attempt_id AND j.state = 'SCHEDULED' AND a.started_at < ?
     ORDER BY j.id, p.rank`,
    [cutoff],
  );
  const jobs: string[] = [];
  const workers = new Set<string>();
  const seen = new Set<string>();
  for (const r of rows) {
    const jobId = String(r.id);
    if (seen.has(jobId)) continue;
    seen.add(jobId);
    const attemptId = String(r.attempt_id);
    const cancel = Number(r.cancel_requested) === 1;
    const why = `gang start timed out: member ${Number(r.rank)} on worker ${String(r.worker_id)} was not taken within ${Math.round(timeoutMs / 1000)} s`;
    const [applied] = await applyTransitions(tx, [{
      job_id: jobId, from: 'SCHEDULED', to: cancel ? 'CANCELLED' : 'QUEUED', actor: 'scheduler',
      reason: `${why}${cancel ? '; cancel was pending' : '; the whole gang requeued'}`,
      data: { attempt_id: attemptId, rank: Number(r.rank), worker_id: String(r.worker_id) },
      patch: cancel ? { control: null, preemption: null, finished_at: now } : { control: null, preemption: null, current_attempt_id: null },
    }], now);
    if (!applied) continue;
    await tx.run(`UPDATE job_attempts SET ended_at = ?, outcome = ?, error = ? WHERE id = ?`, [now, 'interrupted', why, attemptId]);
    if (!cancel) {
      await tx.run('UPDATE jobs SET retry_count = CASE WHEN retry_count > 0 THEN retry_count - 1 ELSE 0 END WHERE id = ?', [jobId]);
      jobs.push(jobId);
    }
    for (const w of await otherMemberWorkers(tx, attemptId, null)) workers.add(w);
  }
  return { jobs, workers: [...workers] };
}

/** What reporting needs of a gang job and the member that reports. */
interface MemberState {
  job: Parameters<typeof stepsFor>[0] & { nodes: number };
  member_state: string;
  member_worker: string;
  ended: boolean;
}

const FINAL = new Set<AttemptReport['outcome']>(['completed', 'failed', 'timeout', 'cancelled', 'preempted']);

/**
 * Applies a worker's reports about gang members (tokens `<attempt>.<rank>`), in the report's
 * transaction. Fencing: the member must be on this worker and not ended. A member's end always
 * ends its placement (its room frees); it moves the job only while the job is still on that attempt.
 */
export async function reportGangResults(
  tx: SqlExecutor, workerId: string, reports: readonly AttemptReport[], now: number, random: () => number = Math.random,
): Promise<ReportOutcome[]> {
  const out: ReportOutcome[] = new Array(reports.length);
  const wake = afterCommitOf(tx);
  // Members of one gang report from different workers at once: each report that may move the job
  // first locks the job row (PostgreSQL), so the last member to start or end sees every other one.
  // Jobs in id order, so two batches never wait on each other in a cycle.
  const order = reports.map((_, i) => i).sort((x, y) => (reports[x]!.job_id < reports[y]!.job_id ? -1 : reports[x]!.job_id > reports[y]!.job_id ? 1 : x - y));
  const locked = new Set<string>();
  for (const i of order) {
    const r = reports[i]!;
    out[i] = await reportMember(tx, workerId, r, now, random, wake, locked);
  }
  return out;
}

async function reportMember(
  tx: SqlExecutor, workerId: string, r: AttemptReport, now: number, random: () => number, wake: ReturnType<typeof afterCommitOf>, locked: Set<string>,
): Promise<ReportOutcome> {
  {
    const t = parseMemberToken(r.attempt_id);
    if (t && (r.outcome === 'started' || FINAL.has(r.outcome)) && !locked.has(r.job_id)) {
      locked.add(r.job_id);
      await tx.run('UPDATE jobs SET state = state WHERE id = ?', [r.job_id]);
    }
    const rows = t
      ? await tx.query(
        `SELECT p.worker_id AS member_worker, p.state AS member_state, p.ended_at, j.id, j.state, j.current_attempt_id, j.retry_policy, j.retry_count,
           j.timeout, j.cancel_requested, j.preemption, j.nodes
         FROM job_placements p JOIN jobs j ON j.id = p.job_id WHERE p.attempt_id = ? AND p.rank = ? AND p.job_id = ?`,
        [t.attempt_id, t.rank, r.job_id],
      )
      : [];
    const row = rows[0];
    if (!t || !row) {
      return { job_id: r.job_id, status: 'stale', state: 'CANCELLED' };
    }
    const m: MemberState = {
      member_worker: String(row.member_worker), member_state: String(row.member_state), ended: row.ended_at != null,
      job: {
        id: String(row.id), state: row.state as JobState, worker_id: null,
        current_attempt_id: row.current_attempt_id == null ? null : String(row.current_attempt_id),
        retry_policy: JSON.parse(String(row.retry_policy)) as Job['retry_policy'], retry_count: Number(row.retry_count),
        timeout: row.timeout == null ? null : Number(row.timeout), cancel_requested: Number(row.cancel_requested) === 1,
        preemption: row.preemption == null ? null : (JSON.parse(String(row.preemption)) as Job['preemption']), nodes: Number(row.nodes),
      },
    };
    const actor = `worker:${workerId}`;
    if (m.member_worker !== workerId || m.ended) {
      await recordEvents(tx, [{ job_id: r.job_id, state: m.job.state, reason: `late report '${r.outcome}' ignored: gang member ${t.rank} no longer owned`, actor, data: { attempt_id: r.attempt_id } }], now);
      return { job_id: r.job_id, status: 'stale', state: m.job.state };
    }
    const current = m.job.current_attempt_id === t.attempt_id && ACTIVE_STATES.has(m.job.state);
    const key = [t.attempt_id, t.rank] as const;
    if (r.outcome === 'started') {
      await tx.run(`UPDATE job_placements SET state = 'running', started_at = ? WHERE attempt_id = ? AND rank = ? AND state IN ('assigned', 'claimed', 'released')`, [now, ...key]);
      if (current && m.job.state === 'SCHEDULED') {
        const waiting = await tx.query(`SELECT rank FROM job_placements WHERE attempt_id = ? AND state IN ('assigned', 'claimed', 'released')`, [t.attempt_id]);
        if (waiting.length === 0) {
          await applyTransitions(tx, [{
            job_id: m.job.id, from: 'SCHEDULED', to: 'RUNNING', actor, reason: `all ${m.job.nodes} gang members started`,
            patch: { started_at: now }, data: { attempt_id: t.attempt_id },
          }], now);
          m.job.state = 'RUNNING';
        }
      }
      return { job_id: r.job_id, status: current ? 'applied' : 'stale', state: m.job.state };
    }
    if (!FINAL.has(r.outcome)) {
      if (current) await memberSignal(tx, m, t.rank, r, actor, now);
      return { job_id: r.job_id, status: current ? 'applied' : 'stale', state: m.job.state };
    }
    await tx.run(
      `UPDATE job_placements SET state = ?, ended_at = ?, exit_code = ?, error = ?, result = ? WHERE attempt_id = ? AND rank = ?`,
      [r.outcome, now, r.exit_code ?? null, r.error ?? null, toJson(r.result), ...key],
    );
    if (!current) {
      return { job_id: r.job_id, status: 'stale', state: m.job.state };
    }
    let effective: AttemptReport = { ...r, attempt_id: t.attempt_id };
    if (r.outcome === 'completed') {
      const rest = await tx.query(`SELECT rank, state, result FROM job_placements WHERE attempt_id = ? ORDER BY rank`, [t.attempt_id]);
      const left = rest.filter((x) => String(x.state) !== 'completed').length;
      if (left > 0) {
        await recordEvents(tx, [{ job_id: m.job.id, state: m.job.state, reason: `gang member ${t.rank} completed; ${left} still running`, actor, data: { attempt_id: t.attempt_id, rank: t.rank } }], now);
        return { job_id: r.job_id, status: 'applied', state: m.job.state };
      }
      // The gang's result is rank 0's.
      const first = rest[0]?.result;
      effective = { ...effective, exit_code: 0, result: first == null ? null : JSON.parse(String(first)) };
    } else if (r.outcome === 'cancelled' && !m.job.cancel_requested) {
      effective = { ...effective, outcome: 'failed', error: 'stopped on its worker' };
    }
    if (effective.outcome === 'failed') {
      effective = { ...effective, error: `gang member ${t.rank} on worker ${workerId}: ${r.error ?? `exited with code ${r.exit_code}`}` };
    }
    const { steps, patch } = stepsFor(m.job, effective, now, random);
    const last = steps[steps.length - 1];
    if (!last) {
      return { job_id: r.job_id, status: 'applied', state: m.job.state };
    }
    const [applied] = await applyTransitions(tx, [{
      job_id: m.job.id, from: m.job.state, via: steps.slice(0, -1), to: last.to, reason: last.reason, actor,
      data: { ...last.data, rank: t.rank, attempt_id: t.attempt_id }, patch,
    }], now);
    if (!applied) {
      return { job_id: r.job_id, status: 'stale', state: m.job.state };
    }
    await tx.run(
      `UPDATE job_attempts SET ended_at = ?, exit_code = ?, error = ?, outcome = ? WHERE id = ?`,
      [now, effective.exit_code ?? null, effective.error ?? null, attemptOutcome(effective.outcome), t.attempt_id],
    );
    // The other members are told to stop on their workers' next poll: wake them now.
    for (const w of await otherMemberWorkers(tx, t.attempt_id, workerId)) wake?.workers.add(w);
    return { job_id: r.job_id, status: 'applied', state: last.to };
  }
}

/** progress, checkpoint, paused, resumed from a member of the current attempt. Progress and checkpoints count from rank 0 only. */
async function memberSignal(tx: SqlExecutor, m: MemberState, rank: number, r: AttemptReport, actor: string, now: number): Promise<void> {
  if (r.outcome === 'progress' && rank === 0) {
    await tx.run('UPDATE jobs SET progress = ?, updated_at = ? WHERE id = ?', [r.progress ?? null, now, m.job.id]);
  } else if (r.outcome === 'checkpoint' && rank === 0) {
    try {
      await upsertCheckpoint(tx, m.job.id, m.job.current_attempt_id!, encodeCheckpoint(r.checkpoint ?? { data: null, file: null }), now);
    } catch (err) {
      await recordEvents(tx, [{ job_id: m.job.id, state: m.job.state, reason: `checkpoint refused: ${(err as Error).message}`, actor }], now);
    }
  } else if (r.outcome === 'paused' && m.job.state === 'RUNNING') {
    await applyTransitions(tx, [{ job_id: m.job.id, from: 'RUNNING', to: 'PAUSED', reason: `paused (SIGSTOP; gang member ${rank})`, actor }], now);
    m.job.state = 'PAUSED';
  } else if (r.outcome === 'resumed' && m.job.state === 'PAUSED') {
    await applyTransitions(tx, [{ job_id: m.job.id, from: 'PAUSED', to: 'RUNNING', reason: `resumed (SIGCONT; gang member ${rank})`, actor }], now);
    m.job.state = 'RUNNING';
  }
}

async function otherMemberWorkers(tx: SqlExecutor, attemptId: string, except: string | null): Promise<string[]> {
  const rows = await tx.query(`SELECT worker_id FROM job_placements WHERE attempt_id = ? AND ended_at IS NULL`, [attemptId]);
  return rows.map((r) => String(r.worker_id)).filter((w) => w !== except);
}

/**
 * A worker is lost or leaves: its gang members end (`lost` / `interrupted`), and every gang that
 * was running a member there goes back to the queue at its old position (retry budget untouched),
 * or to CANCELLED if a cancel was pending; the other members are told to stop. Returns the requeued job ids.
 */
export async function releaseGangMembers(
  tx: SqlExecutor, wid: string, why: string, actor: string, now: number, outcome: 'lost' | 'interrupted',
): Promise<string[]> {
  const rows = await tx.query(
    `SELECT p.attempt_id, p.rank, j.id, j.state, j.current_attempt_id, j.cancel_requested
     FROM job_placements p JOIN jobs j ON j.id = p.job_id WHERE p.worker_id = ? AND p.ended_at IS NULL`,
    [wid],
  );
  if (rows.length === 0) return [];
  await tx.run(`UPDATE job_placements SET state = ?, ended_at = ?, error = ? WHERE worker_id = ? AND ended_at IS NULL`, [outcome, now, why, wid]);
  const requeued: string[] = [];
  const wake = afterCommitOf(tx);
  for (const r of rows) {
    const attemptId = String(r.attempt_id);
    if (String(r.current_attempt_id) !== attemptId || !ACTIVE_STATES.has(r.state as JobState)) continue;
    const cancel = Number(r.cancel_requested) === 1;
    const [applied] = await applyTransitions(tx, [{
      job_id: String(r.id), from: r.state as JobState, to: cancel ? 'CANCELLED' : 'QUEUED', actor,
      reason: `${why} (gang member ${Number(r.rank)})${cancel ? '; cancel was pending' : '; the whole gang requeued'}`,
      data: { worker_id: wid, attempt_id: attemptId, rank: Number(r.rank) },
      patch: cancel
        ? { control: null, preemption: null, finished_at: now }
        : { control: null, preemption: null, queued_at: now, current_attempt_id: null },
    }], now);
    if (!applied) continue;
    await tx.run(`UPDATE job_attempts SET ended_at = ?, outcome = ?, error = ? WHERE id = ?`, [now, outcome, why, attemptId]);
    if (!cancel) {
      await tx.run('UPDATE jobs SET retry_count = CASE WHEN retry_count > 0 THEN retry_count - 1 ELSE 0 END WHERE id = ?', [String(r.id)]);
      requeued.push(String(r.id));
    }
    for (const w of await otherMemberWorkers(tx, attemptId, wid)) wake?.workers.add(w);
  }
  return requeued;
}

/** Offline workers that still hold gang members (an assignment raced the release): the lease reaper releases them. */
export async function strandedGangWorkers(tx: SqlExecutor): Promise<string[]> {
  const rows = await tx.query(
    `SELECT DISTINCT p.worker_id FROM job_placements p JOIN workers w ON w.id = p.worker_id WHERE p.ended_at IS NULL AND w.state = 'offline'`,
  );
  return rows.map((r) => String(r.worker_id));
}

/**
 * Gang members holding room, as the scheduler's snapshot reads running jobs: one row per member
 * (same job id, one worker each). A member still stopping after its job moved on is its own
 * terminating entry (`<job id>#<rank>`), so its room counts but nobody preempts it.
 */
export async function gangActiveRows(db: SqlExecutor): Promise<ActiveRow[]> {
  const rows = await db.query(
    `SELECT p.attempt_id, p.rank, p.worker_id, p.gpu_indices, p.started_at AS member_started, j.id, j.tenant, j.priority, j.state, j.type,
       j.cpu_cores, j.memory_gb, j.gpu_count, j.started_at, j.updated_at, j.expected_duration, j.template, j.timeout, j.preemptible, j.preemption, j.current_attempt_id, j.sort_key
     FROM job_placements p JOIN jobs j ON j.id = p.job_id WHERE p.ended_at IS NULL ORDER BY j.id, p.rank`,
  );
  return rows.map((r): ActiveRow => {
    const current = String(r.current_attempt_id) === String(r.attempt_id) && ACTIVE_STATES.has(r.state as JobState);
    return {
      id: current ? String(r.id) : `${String(r.id)}#${Number(r.rank)}`, tenant: String(r.tenant), priority: r.priority as Priority,
      state: current ? String(r.state) : 'RUNNING', type: String(r.type), cpu_cores: Number(r.cpu_cores), memory_gb: Number(r.memory_gb),
      gpu_count: Number(r.gpu_count), worker_id: String(r.worker_id),
      gpu_indices: Number(r.gpu_count) > 0 ? (JSON.parse(String(r.gpu_indices)) as number[]) : [],
      started_at: r.started_at != null ? Number(r.started_at) : r.member_started != null ? Number(r.member_started) : null,
      updated_at: Number(r.updated_at),
      expected_duration: r.expected_duration == null ? null : Number(r.expected_duration), timeout: r.timeout == null ? null : Number(r.timeout),
      template: r.template == null ? null : String(r.template), preemptible: Number(r.preemptible) === 1, terminating: !current || r.preemption != null,
      sort_key: Number(r.sort_key),
    };
  });
}

/** The members of each job's current (or last) gang attempt, for GET /jobs/{id} and `gantry status`. */
export async function gangMembers(db: SqlExecutor, jobId: string, attemptId: string | null): Promise<GangMemberView[]> {
  const rows = attemptId
    ? await db.query(`SELECT * FROM job_placements WHERE attempt_id = ? ORDER BY rank`, [attemptId])
    : await db.query(
      `SELECT * FROM job_placements WHERE job_id = ? AND attempt_id = (SELECT MAX(attempt_id) FROM job_placements WHERE job_id = ?) ORDER BY rank`,
      [jobId, jobId],
    );
  return rows.map((r) => ({
    rank: Number(r.rank), worker_id: String(r.worker_id), gpu_indices: JSON.parse(String(r.gpu_indices)) as number[], state: String(r.state),
    started_at: r.started_at == null ? null : Number(r.started_at), ended_at: r.ended_at == null ? null : Number(r.ended_at),
    exit_code: r.exit_code == null ? null : Number(r.exit_code), error: r.error == null ? null : String(r.error),
  }));
}

/** Workers running members of these jobs' current attempts (to wake them for a cancel or preempt control). */
export async function gangWorkersOf(db: SqlExecutor, jobIds: readonly string[]): Promise<string[]> {
  if (jobIds.length === 0) return [];
  const sel = idsIn(db, 'p.job_id', jobIds);
  const rows = await db.query(`SELECT DISTINCT p.worker_id FROM job_placements p WHERE ${sel.sql} AND p.ended_at IS NULL`, [sel.param]);
  return rows.map((r) => String(r.worker_id));
}
