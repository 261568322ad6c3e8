import type { LogChunk, StoredLogChunk } from '../../core/types.ts';
import type { SqlExecutor } from '../driver.ts';

/** Appends a batch of log chunks (from any number of jobs) in one statement per chunk of rows. */
export async function appendLogs(tx: SqlExecutor, chunks: readonly LogChunk[]): Promise<void> {
  await tx.insertMany('job_logs', ['job_id', 'attempt', 'stream', 'data', 'at'], chunks.map((c) => [c.job_id, c.attempt, c.stream, c.data, c.at]));
}

/** A job's log chunks after `afterSeq`, oldest first. */
export async function readLogs(db: SqlExecutor, jobId: string, afterSeq: number, limit: number): Promise<StoredLogChunk[]> {
  const rows = await db.query('SELECT * FROM job_logs WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?', [jobId, afterSeq, limit]);
  return rows.map((r) => ({
    seq: Number(r.seq), job_id: String(r.job_id), attempt: Number(r.attempt), stream: r.stream as LogChunk['stream'],
    data: String(r.data), at: Number(r.at),
  }));
}
