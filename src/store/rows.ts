import type { Attempt, Job, JobEvent, JobState, WorkerInfo, Priority, JobKind, JobControl, DependencyType } from '../core/types.ts';
import type { Row, SqlValue } from './driver.ts';

function json<T>(v: unknown, fallback: T): T {
  if (v === null || v === undefined) return fallback;
  return JSON.parse(String(v)) as T;
}
const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export function jobFromRow(r: Row): Job {
  return {
    id: String(r.id),
    seq: num(r.seq),
    name: String(r.name),
    type: String(r.type),
    tenant: String(r.tenant),
    priority: r.priority as Priority,
    state: r.state as JobState,
    kind: r.kind as JobKind,
    command: json<string[] | null>(r.command, null),
    handler: strOrNull(r.handler),
    env: json(r.env, {}),
    working_dir: strOrNull(r.working_dir),
    timeout: numOrNull(r.timeout),
    retry_policy: json(r.retry_policy, null as never),
    labels: json(r.labels, {}),
    parameters: json(r.parameters, {}),
    idempotency_key: strOrNull(r.idempotency_key),
    expected_duration: numOrNull(r.expected_duration),
    resources: {
      cpu_cores: num(r.cpu_cores),
      memory_gb: num(r.memory_gb),
      gpu_count: num(r.gpu_count),
      storage_gb: num(r.storage_gb),
    },
    created_at: num(r.created_at),
    updated_at: num(r.updated_at),
    queued_at: numOrNull(r.queued_at),
    started_at: numOrNull(r.started_at),
    finished_at: numOrNull(r.finished_at),
    sort_key: num(r.sort_key),
    run_after: numOrNull(r.run_after),
    worker_id: strOrNull(r.worker_id),
    gpu_indices: json(r.gpu_indices, []),
    attempt_count: num(r.attempt_count),
    retry_count: num(r.retry_count),
    current_attempt_id: strOrNull(r.current_attempt_id),
    control: strOrNull(r.control) as JobControl | null,
    cancel_requested: Number(r.cancel_requested) === 1,
    result: json(r.result, null),
    error: strOrNull(r.error),
    exit_code: numOrNull(r.exit_code),
    progress: numOrNull(r.progress),
    dead_lettered_at: numOrNull(r.dead_lettered_at),
    template: strOrNull(r.template),
    template_version: numOrNull(r.template_version),
    steps: json(r.steps, null),
    dependency_type: strOrNull(r.dependency_type) as DependencyType | null,
    preemptible: r.preemptible === undefined ? true : Number(r.preemptible) === 1,
    grace_period: numOrNull(r.grace_period),
    nodes: r.nodes === undefined ? 1 : num(r.nodes),
    preemption: json(r.preemption, null),
  };
}

/**
 * The conditions of two partial indexes on `jobs` (migration 0011). jobs_state_seq (state, seq) holds
 * every job but the SCHEDULED ones (placed, not yet started: few, and the state every job passes
 * through on its way to a worker), which are read through jobs_active (the jobs on workers). A read by
 * state names the matching condition word for word — SQLite uses a partial index only for a query
 * whose WHERE contains the index's condition, and PostgreSQL cannot prove it from a `state = $1`
 * parameter in a generic plan. Written as comparisons, not `IN (…)` lists: SQLite evaluates a
 * partial index's condition for the old and the new row of every UPDATE that sets `state`, and an IN
 * list of three costs ~4 µs per evaluation there (bench/sqlite-floor.ts, docs/notes/issue3l.md).
 */
export const ACTIVE_STATES_SQL = "(state = 'SCHEDULED' OR state = 'RUNNING' OR state = 'PAUSED')";
export const STATE_SEQ_SQL = "state <> 'SCHEDULED'";
/**
 * One tenant's jobs among the active ones (with ACTIVE_STATES_SQL; the parameter is the tenant): written
 * `tenant || ''` so that no planner takes the tenant's index (jobs_tenant_seq) for it — SQLite did, and
 * walked every job the tenant ever ran (130 ms for a tenant with 270,000 finished jobs) instead of the
 * few on workers through jobs_active (0.2 ms).
 */
export const TENANT_OF_ACTIVE_SQL = "tenant || '' = ?";

/** Columns written when a job is created, in order, and the row for a job. */
export const JOB_INSERT_COLUMNS = [
  'id', 'name', 'type', 'tenant', 'priority', 'priority_rank', 'state', 'kind', 'command', 'handler', 'env',
  'working_dir', 'timeout', 'retry_policy', 'labels', 'parameters', 'idempotency_key', 'expected_duration',
  'cpu_cores', 'memory_gb', 'gpu_count', 'storage_gb', 'created_at', 'updated_at', 'queued_at', 'sort_key', 'queue_key',
  'template', 'template_version', 'steps', 'dependency_type',
  'preemptible', 'grace_period', 'nodes',
] as const;

/** Column types of `jobs`, for batch updates that pass values through a recordset. */
export const JOB_COLUMN_TYPES: Readonly<Record<string, 'text' | 'real' | 'int'>> = {
  id: 'text', name: 'text', type: 'text', tenant: 'text', priority: 'text', priority_rank: 'int', state: 'text', kind: 'text',
  command: 'text', handler: 'text', env: 'text', working_dir: 'text', timeout: 'real', retry_policy: 'text', labels: 'text',
  parameters: 'text', idempotency_key: 'text', expected_duration: 'real', cpu_cores: 'real', memory_gb: 'real', gpu_count: 'int',
  storage_gb: 'real', created_at: 'int', updated_at: 'int', queued_at: 'int', started_at: 'int', finished_at: 'int',
  sort_key: 'real', run_after: 'int', worker_id: 'text', gpu_indices: 'text', attempt_count: 'int', retry_count: 'int',
  current_attempt_id: 'text', control: 'text', cancel_requested: 'int', result: 'text', error: 'text', exit_code: 'int',
  progress: 'real', dead_lettered_at: 'int', queue_key: 'text',
  watched: 'int', template: 'text', template_version: 'int', steps: 'text', dependency_type: 'text',
  preemptible: 'int', grace_period: 'real', nodes: 'int', preemption: 'text',
};

export function attemptFromRow(r: Row): Attempt {
  return {
    id: String(r.id),
    job_id: String(r.job_id),
    number: num(r.number),
    worker_id: String(r.worker_id),
    started_at: num(r.started_at),
    ended_at: numOrNull(r.ended_at),
    exit_code: numOrNull(r.exit_code),
    error: strOrNull(r.error),
    outcome: r.outcome as Attempt['outcome'],
  };
}

/** A step recorded inside an event row before its last one (column `steps`, migration 0010). */
export interface EventStep {
  to: JobState;
  reason: string;
  /** Omitted when it is the row's actor. */
  actor?: string;
  data?: Record<string, unknown>;
}

/**
 * The events one `job_events` row stands for, in order: one per step of `steps` (states passed
 * through in the same change), then the row's last step. They share the row's id and time.
 */
export function eventsFromRow(r: Row): JobEvent[] {
  const last: JobEvent = {
    id: num(r.id),
    job_id: String(r.job_id),
    at: num(r.at),
    from_state: (r.from_state ?? null) as JobState | null,
    to_state: r.to_state as JobState,
    reason: String(r.reason),
    actor: String(r.actor),
    data: json(r.data, null),
  };
  if (r.steps === null || r.steps === undefined) return [last];
  const out: JobEvent[] = [];
  let from = last.from_state;
  for (const s of JSON.parse(String(r.steps)) as EventStep[]) {
    out.push({ ...last, from_state: from, to_state: s.to, reason: s.reason, actor: s.actor ?? last.actor, data: s.data ?? null });
    from = s.to;
  }
  out.push({ ...last, from_state: from });
  return out;
}

export function workerFromRow(r: Row): WorkerInfo {
  return {
    id: String(r.id),
    name: String(r.name),
    kind: r.kind as WorkerInfo['kind'],
    handlers: json(r.handlers, []),
    capacity: { cpu_cores: num(r.cpu_cores), memory_gb: num(r.memory_gb), gpu_count: num(r.gpu_count), slots: num(r.slots) },
    labels: json(r.labels, {}),
    state: r.state as WorkerInfo['state'],
    registered_at: num(r.registered_at),
    last_heartbeat: num(r.last_heartbeat),
  };
}

export function toJson(v: unknown): SqlValue {
  return v === undefined || v === null ? null : JSON.stringify(v);
}
