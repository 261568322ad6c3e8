/**
 * Direct placement: a lone submitted handler job goes straight to an SDK Worker whose long poll is
 * waiting on this server, inside the submit's own transaction — no scheduling cycle on its way, one
 * commit instead of two. Only where the scheduler's policy could not decide otherwise (the scheduler
 * says when it may: src/scheduler/scheduler.ts, `directPlacement`):
 *   - the job is a handler job for one node without GPUs, QUEUED (no dependency, no delay);
 *   - the worker is online, a handler worker serving that handler, with a free slot (handler workers
 *     count slots only, as the policy's placement does), and no gang member placed anywhere;
 *   - no other job is queued in any queue that worker serves: nothing the policy would weigh against it;
 *   - its tenant is not paused, may use the job's priority, is below its `max_running_jobs` and stays
 *     within its nominal quota on every resource with this job (no borrowing to decide);
 *   - no circuit breaker of its handler or template is other than closed.
 * Of several such workers it takes the one with the most free slots (the policy's choice among handler
 * workers), among those waiting. Otherwise null: the submit commits the job QUEUED and the scheduler
 * places it as before.
 */
import type { Job } from '../../core/types.ts';
import { breakerKeysOf } from '../../core/breakers.ts';
import { effectiveTenant, QUOTA_RESOURCES, type Tier } from '../../core/tiers.ts';
import { idsIn, type SqlExecutor } from '../driver.ts';
import { ACTIVE_STATES_SQL, TENANT_OF_ACTIVE_SQL } from '../rows.ts';
import type { DeliveredJob } from './scheduling.ts';
import { assignOne } from './handOffStep.ts';
import { tenantFromRow } from './tenants.ts';

/** What the scheduler lets a submit do on its own (Scheduler.directPlacement). */
export interface DirectPlacement {
  /** Workers with a long poll waiting on this server with room for a job. */
  workers: readonly string[];
  /** The tier of tenants that have no record (the scheduler's). */
  default_tier: Tier;
  /** Checked inside the transaction, before anything is read: the scheduler still allows it (no cycle has started since). */
  allowed: () => boolean;
}

const EPS = 1e-9;

/**
 * Assigns `job` (just submitted in this transaction) to one of `o.workers` when the rules above allow
 * it; returns the job as the worker's poll hands it out (give it to that poll after commit), else null.
 */
export async function placeSubmitted(tx: SqlExecutor, job: Job, o: DirectPlacement, now: number): Promise<DeliveredJob | null> {
  if (job.kind !== 'handler' || job.handler === null || job.state !== 'QUEUED' || job.nodes > 1 || job.resources.gpu_count > 0) return null;
  if (o.workers.length === 0 || !o.allowed()) return null;
  const ids = idsIn(tx, 'w.id', o.workers);
  const keys = breakerKeysOf({ handler: job.handler, template: job.template ?? null });
  const [workers, [gang], [tenantRow], [load], held] = await Promise.all([
    tx.query(
      `SELECT w.id, w.state, w.kind, w.handlers, w.slots,
         (SELECT COUNT(*) FROM jobs WHERE worker_id = w.id AND ${ACTIVE_STATES_SQL}) AS used
       FROM workers w WHERE ${ids.sql}`,
      [ids.param],
    ),
    tx.query('SELECT 1 AS x FROM job_placements WHERE ended_at IS NULL LIMIT 1'),
    tx.query('SELECT * FROM tenants WHERE id = ?', [job.tenant]),
    // What the tenant holds, walking the jobs on workers (jobs_active), not every job the tenant ever ran
    // (TENANT_OF_ACTIVE_SQL: that was 1.1 ms per submit after a 20,000-job drain).
    tx.query(
      `SELECT COUNT(*) AS n, COALESCE(SUM(cpu_cores * nodes), 0) AS cpu_cores, COALESCE(SUM(memory_gb * nodes), 0) AS memory_gb,
         COALESCE(SUM(gpu_count * nodes), 0) AS gpu_count
       FROM jobs WHERE ${ACTIVE_STATES_SQL} AND worker_id IS NOT NULL AND ${TENANT_OF_ACTIVE_SQL}`,
      [job.tenant],
    ),
    tx.query(`SELECT 1 AS x FROM breakers WHERE ${idsIn(tx, 'key', keys).sql} AND state != 'closed' LIMIT 1`, [JSON.stringify(keys)]),
  ]);
  if (gang || held.length > 0) return null;
  const tenant = effectiveTenant(job.tenant, tenantRow ? tenantFromRow(tenantRow) : null, o.default_tier);
  if (tenant.paused || !tenant.allowed_priorities.includes(job.priority)) return null;
  if (tenant.max_running_jobs !== null && Number(load!.n) + 1 > tenant.max_running_jobs) return null;
  for (const r of QUOTA_RESOURCES) {
    const need = job.resources[r];
    if (need > 0 && Number(load![r]) + need > tenant.nominal_quota[r] + EPS) return null;
  }
  const [best] = workers
    .map((w) => ({ id: String(w.id), free: Number(w.slots) - Number(w.used), handlers: JSON.parse(String(w.handlers)) as string[], ok: w.state === 'online' && w.kind === 'handler' }))
    .filter((w) => w.ok && w.free >= 1 && w.handlers.includes(job.handler!))
    .sort((a, b) => b.free - a.free);
  if (!best) return null;
  const served = idsIn(tx, 'queue_key', best.handlers);
  const [ahead] = await tx.query(`SELECT 1 AS x FROM jobs WHERE state = 'QUEUED' AND ${served.sql} AND id != ? LIMIT 1`, [served.param, job.id]);
  // Another job waits in a queue this worker serves: the policy weighs them (the other workers serve the same queue or more).
  if (ahead) return null;
  return assignOne(tx, job.id, best.id, now);
}
