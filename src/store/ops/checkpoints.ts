import { GantryError, notFound } from '../../core/errors.ts';
import { idsIn, type SqlExecutor } from '../driver.ts';

/** What a job saves: a small JSON value, or a reference to a file it wrote elsewhere (either or both). */
export interface Checkpoint {
  data: unknown;
  file: string | null;
}

export interface StoredCheckpoint extends Checkpoint {
  attempt_id: string;
  /** The attempt number that saved it. */
  attempt: number;
  at: number;
  size: number;
}

/** Largest checkpoint, as JSON text (bytes). Bigger state belongs in a file the checkpoint points to. */
export const MAX_CHECKPOINT_BYTES = 64 * 1024;

/** The checkpoint as stored (JSON text), or a PAYLOAD_TOO_LARGE error naming the field. */
export function encodeCheckpoint(c: Checkpoint): string {
  const text = JSON.stringify({ data: c.data ?? null, file: c.file ?? null });
  const size = Buffer.byteLength(text);
  if (size > MAX_CHECKPOINT_BYTES) {
    throw new GantryError('PAYLOAD_TOO_LARGE', `data: checkpoint is ${size} bytes, over the ${MAX_CHECKPOINT_BYTES}-byte limit; save a file and send its reference as \`file\``, { field: 'data' });
  }
  return text;
}

/**
 * Stores a job's checkpoint, replacing the previous one (upsert), numbered by the job's current
 * attempt. Callers have checked the attempt (fencing). Params: text — from encodeCheckpoint.
 */
export async function upsertCheckpoint(tx: SqlExecutor, jobId: string, attemptId: string, text: string, now: number): Promise<void> {
  await tx.run(
    `INSERT INTO job_checkpoints (job_id, attempt_id, attempt, data, size, at)
     SELECT id, ?, attempt_count, ?, ?, ? FROM jobs WHERE id = ?
     ON CONFLICT (job_id) DO UPDATE SET attempt_id = excluded.attempt_id, attempt = excluded.attempt, data = excluded.data, size = excluded.size, at = excluded.at`,
    [attemptId, text, Buffer.byteLength(text), now, jobId],
  );
}

/**
 * A checkpoint from outside the worker protocol (REST): applies only while `attemptId` is the
 * job's current attempt and the job is on a worker; otherwise STALE_ATTEMPT (409).
 */
export async function saveCheckpoint(tx: SqlExecutor, jobId: string, attemptId: string, c: Checkpoint, now: number): Promise<StoredCheckpoint> {
  const row = (await tx.query('SELECT state, current_attempt_id FROM jobs WHERE id = ?', [jobId]))[0];
  if (!row) throw notFound('job', jobId);
  if (String(row.current_attempt_id) !== attemptId || !['SCHEDULED', 'RUNNING', 'PAUSED'].includes(String(row.state))) {
    throw new GantryError('STALE_ATTEMPT', `attempt ${attemptId} is not the running attempt of job ${jobId}; checkpoint not saved`, { field: 'attempt_id', job_id: jobId });
  }
  await upsertCheckpoint(tx, jobId, attemptId, encodeCheckpoint(c), now);
  return (await checkpointsOf(tx, [jobId])).get(jobId)!;
}

/** The last checkpoint of each of these jobs that has one. */
export async function checkpointsOf(db: SqlExecutor, jobIds: readonly string[]): Promise<Map<string, StoredCheckpoint>> {
  const out = new Map<string, StoredCheckpoint>();
  if (jobIds.length === 0) return out;
  const sel = idsIn(db, 'job_id', jobIds);
  for (const r of await db.query(`SELECT job_id, attempt_id, attempt, data, size, at FROM job_checkpoints WHERE ${sel.sql}`, [sel.param])) {
    const c = JSON.parse(String(r.data)) as Checkpoint;
    out.set(String(r.job_id), { data: c.data, file: c.file, attempt_id: String(r.attempt_id), attempt: Number(r.attempt), at: Number(r.at), size: Number(r.size) });
  }
  return out;
}
