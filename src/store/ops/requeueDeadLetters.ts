import { GantryError, validationError } from '../../core/errors.ts';
import type { SqlExecutor, SqlValue } from '../driver.ts';
import { STATE_SEQ_SQL } from '../rows.ts';
import { loadJob, requeueJob } from './jobActions.ts';

/** Which dead-lettered jobs: these ids, or every one matching the filter (oldest first, up to `limit`). */
export interface DeadLetterSelection {
  job_ids?: readonly string[];
  filter?: { type?: string; tenant?: string; name?: string; error_contains?: string };
  limit?: number;
}

/** Changes applied to every requeued job: `parameters` and `env` are merged over the job's own; `command` replaces it (command jobs only). */
export interface RequeueEdits {
  parameters?: Record<string, unknown>;
  env?: Record<string, string>;
  command?: string[];
}

/**
 * Requeues many dead-lettered jobs with a fresh retry budget and the same edits, in one
 * transaction: a job that is not in the dead-letter queue (or an edit that does not fit it)
 * fails the whole request and nothing changes. Returns the requeued job ids.
 */
export async function requeueDeadLetters(
  tx: SqlExecutor, sel: DeadLetterSelection, edits: RequeueEdits, reason: string, actor: string, now: number,
): Promise<string[]> {
  let ids: string[];
  if (sel.job_ids) {
    ids = [...new Set(sel.job_ids)];
  } else {
    const where = ["dead_lettered_at IS NOT NULL", "state IN ('FAILED', 'TIMEOUT')", STATE_SEQ_SQL];
    const params: SqlValue[] = [];
    const f = sel.filter ?? {};
    if (f.type !== undefined) (where.push('type = ?'), params.push(f.type));
    if (f.tenant !== undefined) (where.push('tenant = ?'), params.push(f.tenant));
    if (f.name !== undefined) (where.push('name = ?'), params.push(f.name));
    // Case-insensitive substring on both engines; the user's text is escaped so % and _ match themselves.
    if (f.error_contains !== undefined) (where.push("LOWER(COALESCE(error, '')) LIKE ? ESCAPE '!'"), params.push(`%${f.error_contains.toLowerCase().replace(/[!%_]/g, '!$&')}%`));
    params.push(sel.limit ?? 1000);
    ids = (await tx.query(`SELECT id FROM jobs WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`, params)).map((r) => String(r.id));
  }
  for (const id of ids) {
    const job = await loadJob(tx, id);
    if (job.dead_lettered_at === null) {
      throw new GantryError('INVALID_TRANSITION', `job ${id} is ${job.state} and not in the dead-letter queue; nothing was requeued`, { job_id: id, from: job.state, to: 'QUEUED', field: 'job_ids' });
    }
    if (edits.command && job.kind !== 'command') throw validationError('command', `job ${id} runs handler '${job.handler}'; only command jobs take a new command`);
    await requeueJob(tx, id, reason, actor, now, edits.parameters ? { ...job.parameters, ...edits.parameters } : undefined);
    if (edits.env || edits.command) {
      await tx.run('UPDATE jobs SET env = ?, command = ? WHERE id = ?', [
        JSON.stringify({ ...job.env, ...edits.env }), JSON.stringify(edits.command ?? job.command), id,
      ]);
    }
  }
  return ids;
}
