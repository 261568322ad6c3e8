import type { PreemptionRequest } from '../../core/types.ts';
import type { SqlExecutor } from '../driver.ts';
import { recordEvents } from './applyTransitions.ts';

export interface PreemptionOrder extends PreemptionRequest {
  victim_id: string;
}

/**
 * Asks the workers of running jobs to stop them for more urgent work: the `preempt` control is
 * stored on the job (delivered with its worker's next poll, like cancel) together with who needs
 * the room and why, and an event records the request. The job stays RUNNING through its grace
 * period; the worker's `preempted` report requeues it (see reportResults). Only RUNNING and PAUSED
 * jobs without a pending cancel or preemption are asked; others are skipped (a SCHEDULED job is
 * asked on a later cycle, once started). Returns the preempted job ids and the workers to wake.
 */
export async function preemptJobs(tx: SqlExecutor, orders: readonly PreemptionOrder[], now: number): Promise<{ job_ids: string[]; workers: string[] }> {
  const jobIds: string[] = [];
  const workers = new Set<string>();
  const events: Parameters<typeof recordEvents>[1][number][] = [];
  for (const o of orders) {
    const req: PreemptionRequest = { by_job: o.by_job, by_tenant: o.by_tenant, reason: o.reason, at: now };
    const rows = await tx.query(
      `UPDATE jobs SET control = 'preempt', preemption = ?, updated_at = ?
       WHERE id = ? AND state IN ('RUNNING', 'PAUSED') AND preemption IS NULL AND cancel_requested = 0
       RETURNING id, state, worker_id`,
      [JSON.stringify(req), now, o.victim_id],
    );
    const r = rows[0];
    if (!r) continue;
    jobIds.push(o.victim_id);
    if (r.worker_id !== null) workers.add(String(r.worker_id));
    events.push({
      job_id: o.victim_id, state: r.state as 'RUNNING' | 'PAUSED', reason: `preemption requested: ${o.reason}`, actor: 'scheduler',
      data: { preempted_by_job: o.by_job, preempted_by_tenant: o.by_tenant },
    });
  }
  if (events.length > 0) await recordEvents(tx, events, now);
  return { job_ids: jobIds, workers: [...workers] };
}
