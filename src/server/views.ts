import type { Attempt, Job } from '../core/types.ts';
import type { Breaker } from '../core/breakers.ts';
import type { StoredCheckpoint } from '../store/store.ts';
import type { GangMemberView } from '../store/ops/gangs.ts';

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/** A job on the wire: snake_case, ISO times, `status` as in seed 002. */
export function jobView(j: Job, attempts?: Attempt[]): Record<string, unknown> {
  return {
    job_id: j.id,
    name: j.name,
    type: j.type,
    tenant: j.tenant,
    priority: j.priority,
    status: j.state,
    kind: j.kind,
    command: j.command,
    handler: j.handler,
    env: j.env,
    working_dir: j.working_dir,
    timeout: j.timeout,
    retry_policy: j.retry_policy,
    labels: j.labels,
    parameters: j.parameters,
    idempotency_key: j.idempotency_key,
    expected_duration: j.expected_duration,
    preemptible: j.preemptible,
    grace_period: j.grace_period,
    nodes: j.nodes,
    preemption: j.preemption ? { by_job: j.preemption.by_job, by_tenant: j.preemption.by_tenant, reason: j.preemption.reason, at: iso(j.preemption.at) } : null,
    resources: j.resources,
    worker_id: j.worker_id,
    gpu_indices: j.gpu_indices,
    attempt_count: j.attempt_count,
    retries_used: j.retry_count,
    cancel_requested: j.cancel_requested,
    result: j.result,
    error: j.error,
    exit_code: j.exit_code,
    progress: j.progress,
    dead_lettered: j.dead_lettered_at !== null,
    created_at: iso(j.created_at),
    updated_at: iso(j.updated_at),
    queued_at: iso(j.queued_at),
    started_at: iso(j.started_at),
    finished_at: iso(j.finished_at),
    run_after: iso(j.run_after),
    template: j.template ?? null,
    template_version: j.template_version ?? null,
    steps: j.steps ?? null,
    dependency_type: j.dependency_type ?? null,
    ...(attempts ? { attempts: attempts.map(attemptView) } : {}),
  };
}

/** A gang job's members (its current attempt, else the last one): which worker runs which rank. */
export function gangView(size: number, members: readonly GangMemberView[]): Record<string, unknown> {
  return {
    size,
    members: members.map((m) => ({
      rank: m.rank, worker_id: m.worker_id, gpu_indices: m.gpu_indices, state: m.state, started_at: iso(m.started_at), ended_at: iso(m.ended_at),
      exit_code: m.exit_code, error: m.error,
    })),
  };
}

export function attemptView(a: Attempt): Record<string, unknown> {
  return {
    attempt_id: a.id,
    number: a.number,
    worker_id: a.worker_id,
    outcome: a.outcome,
    started_at: iso(a.started_at),
    ended_at: iso(a.ended_at),
    exit_code: a.exit_code,
    error: a.error,
  };
}

export { humanDuration } from '../core/time.ts';

export { iso };

/** A checkpoint as handed to the next attempt and shown on a job. */
export function checkpointWire(c: StoredCheckpoint | undefined): { data: unknown; file: string | null; attempt: number; saved_at: string } | null {
  return c ? { data: c.data, file: c.file, attempt: c.attempt, saved_at: iso(c.at)! } : null;
}

export function breakerView(b: Breaker): Record<string, unknown> {
  return {
    key: b.key,
    state: b.state,
    consecutive_failures: b.consecutive_failures,
    opened_at: iso(b.opened_at),
    probe_at: iso(b.probe_at),
    probe_job_id: b.probe_job_id,
    last_error: b.last_error,
    last_failure_at: iso(b.last_failure_at),
    updated_at: iso(b.updated_at),
  };
}
