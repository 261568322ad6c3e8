/** Plain words for a pending job's explanation data (for `gantry why`, the explain endpoint, the simulator). */
import type { Explanation, PendingReasonData } from './types.ts';

const num = (n: number): string => (Number.isInteger(n) ? String(n) : String(Math.round(n * 100) / 100));
const time = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');

export function renderReason(r: PendingReasonData): string {
  switch (r.kind) {
    case 'tenant_paused':
      return `tenant ${r.tenant}'s queue is paused`;
    case 'priority_not_allowed':
      return `tenant ${r.tenant} may not use priority ${r.priority}`;
    case 'no_worker_for_queue':
      return r.queue_key === '' ? 'no online process worker' : `no online worker runs handler '${r.queue_key}'`;
    case 'too_big':
      return r.resource === 'nodes'
        ? `needs ${r.need} workers at once but only ${r.largest} can hold one node`
        : `too big for any worker: needs ${r.resource} ${num(r.need)}, the largest worker has ${num(r.largest)}`;
    case 'quota':
      return (
        `tenant ${r.tenant} at quota for ${r.resource} (${num(r.used)}/${num(r.limit)}, needs ${num(r.need)} more; nominal ${num(r.nominal)})` +
        (r.cohort === null ? '' : `; cohort ${r.cohort} has ${num(r.cohort_idle)} idle ${r.resource}`)
      );
    case 'max_running':
      return `tenant ${r.tenant} runs ${r.running} jobs, its limit is ${r.limit}`;
    case 'no_room':
      return `waiting for room: needs ${num(r.need.cpu_cores)} cpu, ${num(r.need.memory_gb)} GB, ${r.need.gpu_count} GPUs${r.nodes > 1 ? ` on each of ${r.nodes} workers` : ''}` +
        (r.nodes_with_room !== undefined ? ` (${r.nodes_with_room} ${r.nodes_with_room === 1 ? 'has' : 'have'} room now)` : '');
    case 'higher_ahead':
      return `${r.count} higher-priority job${r.count === 1 ? '' : 's'} ahead`;
    case 'reservation':
      return `holds a reservation: estimated start ${time(r.start_at)}`;
    case 'blocked_by_reservation':
      return `room is reserved for job ${r.job_id} from ${time(r.start_at)} and this job would not end before then`;
    case 'preempting':
    {
      const where = r.workers && r.workers.length > 1 ? ` on workers ${r.workers.join(', ')}` : '';
      return r.victims.length === 0 ? `room is coming free${where}: preempted jobs are stopping` : `preempting ${r.victims.join(', ')} to make room${where}`;
    }
    case 'cycle_limit':
      return 'not reached in the last cycle (cycle limit); it is next in line';
    case 'not_considered':
      return 'not reached in the last cycle: a job ahead of it in a strict FIFO queue is blocked';
  }
}

/** One line: every reason, then the estimated start when known. */
export function renderExplanation(e: Explanation): string {
  const parts = e.reasons.map(renderReason);
  if (e.estimated_start !== null && !e.reasons.some((r) => r.kind === 'reservation')) parts.push(`estimated start ${time(e.estimated_start)}`);
  return parts.join('; ');
}
