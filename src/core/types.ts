/**
 * Gantry's domain types. Glossary:
 *
 * - **Job**: one unit of work — a command (argv run as a child process group) or a call
 *   to a named handler inside an SDK `Worker`. Owned by a **tenant**, ordered by **priority**.
 * - **Attempt**: one run of a job on one worker. A job has 0..n attempts; the attempt id is the
 *   fencing token a worker must present when it reports, so a worker whose lease lapsed cannot
 *   complete a job someone else now owns.
 * - **Worker**: a process that registered its capacity (cpu, memory, GPUs, slots) and heartbeats.
 *   Its heartbeat is the lease on every job assigned to it.
 * - **Event**: an append-only record of one state transition (time, from, to, reason, actor).
 * - **Dead-letter queue (DLQ)**: jobs that failed for good (attempts used up, or non-retryable).
 *
 * Wire format and storage use snake_case, as in seed 002.
 */

export const PRIORITIES = ['emergency', 'critical', 'high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

export const JOB_STATES = [
  'SUBMITTED',
  'QUEUED',
  'SCHEDULED',
  'RUNNING',
  'PAUSED',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'RETRYING',
] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface Resources {
  cpu_cores: number;
  memory_gb: number;
  gpu_count: number;
  storage_gb: number;
}

export const BACKOFFS = ['fixed', 'exponential'] as const;
export type Backoff = (typeof BACKOFFS)[number];

export interface RetryPolicy {
  /** Total runs allowed, including the first. */
  max_attempts: number;
  /** Seconds before the first retry. */
  retry_delay: number;
  backoff: Backoff;
  /** Upper bound in seconds for exponential backoff. */
  max_delay: number;
  /** Fraction 0..1 of the delay randomised (full jitter at 1). */
  jitter: number;
  /** The named policy this one started from (`network_error`, …), if any. */
  name?: string;
  /** A process exiting with this code fails for good, whatever attempts are left. */
  non_retryable_exit_code?: number | null;
}

export type JobKind = 'command' | 'handler';

/**
 * How a job's dependencies gate it: all_complete (every one COMPLETED), any_complete (one
 * COMPLETED), all_done (every one final, whatever the outcome), any_failed (one FAILED or TIMEOUT).
 */
export const DEPENDENCY_TYPES = ['all_complete', 'any_complete', 'all_done', 'any_failed'] as const;
export type DependencyType = (typeof DEPENDENCY_TYPES)[number];

/** One step of a multi-step job (a template's execution_steps): run in order, each with its own timeout. */
export interface ExecutionStep {
  name: string;
  command: string[];
  /** Seconds; null = only the job's timeout applies. */
  timeout: number | null;
}

/** What a client sends to create a job, after validation and defaults. */
export interface JobSpec {
  name: string;
  type: string;
  tenant: string;
  priority: Priority;
  resources: Resources;
  kind: JobKind;
  command: string[] | null;
  handler: string | null;
  env: Record<string, string>;
  working_dir: string | null;
  /** Seconds; null = no timeout. */
  timeout: number | null;
  retry_policy: RetryPolicy;
  labels: Record<string, string>;
  parameters: Record<string, unknown>;
  idempotency_key: string | null;
  /** Seconds, a user's runtime estimate; null = learn from history. */
  expected_duration: number | null;
  /** The template (id, version) the job was rendered from; null when none. */
  template?: string | null;
  template_version?: number | null;
  /** Run in order as one job (from a template's execution_steps); null = run `command` once. */
  steps?: ExecutionStep[] | null;
  /** Ids of jobs this one waits for (it stays SUBMITTED until they allow it). */
  depends_on?: string[];
  /** Indexes of earlier jobs in the same submit call this one waits for (sequential batches, DAGs). */
  depends_on_index?: number[];
  /** How the dependencies gate the job; null when it has none. */
  dependency_type?: DependencyType | null;
  /** May the scheduler stop this job to make room for more urgent work? (`emergency` work preempts it anyway.) */
  preemptible: boolean;
  /** Seconds between SIGTERM and SIGKILL when stopped (preemption, cancel, timeout); null = the worker's default. */
  grace_period: number | null;
  /** Machines the job spans; > 1 = gang placement (all or nothing, started together). */
  nodes: number;
}

/** A preemption asked of a running job, kept until its worker confirms the stop. */
export interface PreemptionRequest {
  /** The job that needs the room (null when a tenant reclaims quota as a whole). */
  by_job: string | null;
  by_tenant: string | null;
  reason: string;
  at: number;
}

export interface Job extends JobSpec {
  id: string;
  seq: number;
  state: JobState;
  created_at: number;
  updated_at: number;
  queued_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  /** Position key within a priority class: smaller runs first (FIFO by queue time, reorder edits it). */
  sort_key: number;
  /** RETRYING: when the job goes back to the queue (epoch ms). */
  run_after: number | null;
  worker_id: string | null;
  gpu_indices: number[];
  /** Runs started so far, over the job's whole life. */
  attempt_count: number;
  /** Runs that count against retry_policy.max_attempts (reset by a manual retry/requeue). */
  retry_count: number;
  current_attempt_id: string | null;
  /** A command for the worker that runs the job, not yet delivered. */
  control: JobControl | null;
  cancel_requested: boolean;
  result: unknown;
  error: string | null;
  exit_code: number | null;
  progress: number | null;
  dead_lettered_at: number | null;
  /** A pending preemption (the worker was told to stop the job), or null. */
  preemption: PreemptionRequest | null;
}

export type JobControl = 'cancel' | 'pause' | 'resume' | 'preempt';

/** `interrupted`: the worker shut down gracefully and returned the job (not counted against the retry budget). */
export type AttemptOutcome = 'running' | 'completed' | 'failed' | 'timeout' | 'cancelled' | 'lost' | 'preempted' | 'interrupted';

export interface Attempt {
  id: string;
  job_id: string;
  number: number;
  worker_id: string;
  started_at: number;
  ended_at: number | null;
  exit_code: number | null;
  error: string | null;
  outcome: AttemptOutcome;
}

export interface JobEvent {
  id: number;
  job_id: string;
  at: number;
  from_state: JobState | null;
  to_state: JobState;
  reason: string;
  actor: string;
  data: Record<string, unknown> | null;
}

export interface WorkerCapacity {
  cpu_cores: number;
  memory_gb: number;
  gpu_count: number;
  /** Jobs it runs at once. */
  slots: number;
}

export interface WorkerInfo {
  id: string;
  name: string;
  /** 'process' runs commands; 'handler' is an SDK Worker that runs the named handlers. */
  kind: 'process' | 'handler';
  handlers: string[];
  capacity: WorkerCapacity;
  labels: Record<string, string>;
  state: 'online' | 'draining' | 'offline';
  registered_at: number;
  last_heartbeat: number;
}

export interface WorkerUsage {
  cpu_cores: number;
  memory_gb: number;
  gpu_count: number;
  slots: number;
  gpu_indices: number[];
}

export interface LogChunk {
  job_id: string;
  attempt: number;
  stream: 'stdout' | 'stderr';
  data: string;
  at: number;
}

export interface StoredLogChunk extends LogChunk {
  seq: number;
}
