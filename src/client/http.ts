import { httpRequest, TransportError, type HttpResult } from './transport.ts';
import { isServerDown, neverSent, parseServerList, ServerList } from './servers.ts';
/**
 * The typed REST client for Gantry's API v1 (`gantry/client`). One method per route.
 * Errors from the server become `GantryApiError` with the stable code, HTTP status and field.
 */
export interface ClientOptions {
  /**
   * Base URL, e.g. http://127.0.0.1:8084, or several servers on one database (an array or a
   * comma-separated string): the client moves to the next when its current one is unreachable
   * or answers 503 (see `GantryClient.request` for which requests are then re-sent).
   */
  server: string | readonly string[];
  token: string;
  /** Per-request timeout in ms (long-polls add their wait). Default 30 s. */
  timeout_ms?: number;
  /** Called once each time the client moves to another server. */
  onFailover?: (from: string, to: string, reason: string) => void;
}

export class GantryApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  readonly body: unknown;
  constructor(status: number, code: string, message: string, field: string | undefined, body: unknown) {
    super(message);
    this.name = 'GantryApiError';
    this.status = status;
    this.code = code;
    this.field = field;
    this.body = body;
  }
}

export type Priority = 'emergency' | 'critical' | 'high' | 'normal' | 'low' | 'urgent';
export type JobStatus = 'SUBMITTED' | 'QUEUED' | 'SCHEDULED' | 'RUNNING' | 'PAUSED' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'TIMEOUT' | 'RETRYING';
export const FINAL_STATUSES: ReadonlySet<string> = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT']);

export interface JobRequest {
  name?: string;
  type?: string;
  tenant?: string;
  priority?: Priority;
  resources?: { cpu_cores?: number; memory_gb?: number; gpu_count?: number; storage_gb?: number };
  command?: string[];
  handler?: string;
  env?: Record<string, string>;
  working_dir?: string;
  timeout?: number;
  /** A named policy (`network_error`, `resource_exhausted`, `temporary_failure`, `critical_job`) or an inline one, optionally starting from a name. */
  retry_policy?: string | { name?: string; max_attempts?: number; retry_delay?: number; backoff?: 'fixed' | 'exponential'; max_delay?: number; jitter?: number; non_retryable_exit_code?: number | null };
  labels?: Record<string, string>;
  parameters?: Record<string, unknown>;
  idempotency_key?: string;
  expected_duration?: number;
  /** Render this job template instead of giving command/handler (latest version, or template_version). */
  template?: string;
  template_version?: number;
  /** Jobs to wait for; `dependencies` is seed 002's spelling of the same list. */
  depends_on?: string[];
  dependencies?: string[];
  dependency_type?: DependencyType;
  /** May be stopped for more urgent work (default true; `emergency` work preempts it anyway). */
  preemptible?: boolean;
  /** Seconds between SIGTERM and SIGKILL when stopped (default: the worker's). */
  grace_period?: number;
  /** Machines the job spans: > 1 runs it as a gang (one member per worker, all or nothing, started together; resources are per node). */
  nodes?: number;
}

export type DependencyType = 'all_complete' | 'any_complete' | 'all_done' | 'any_failed';

/** A job template as the API shows it (resolved: inheritance applied). */
export interface TemplateView {
  id: string;
  version: number;
  versions: number[];
  name: string;
  description: string;
  category: string;
  parameters: { name: string; type: string; required: boolean; options?: unknown[]; default?: unknown; description?: string; minimum?: number; maximum?: number }[];
  default_parameters: Record<string, unknown>;
  resource_requirements: { cpu_cores?: number; memory_gb?: number; gpu_count?: number; storage_gb?: number };
  execution_steps: { step: string; timeout: number | null; command?: string[] }[];
  command: string[] | null;
  handler: string | null;
  priority: string | null;
  timeout: number | null;
  retry_policy: Record<string, unknown>;
  base_template: string | null;
  base_version: number | null;
  builtin: boolean;
  created_at: string;
  created_by: string;
  [k: string]: unknown;
}

export interface SubmitResponse {
  job_id: string;
  status: JobStatus;
  message: string;
  queue_position: number | null;
  estimated_start_time: string | null;
  template?: string;
  template_version?: number;
  waiting_for?: string[];
  pending_reason?: string | null;
}

export interface AttemptView {
  attempt_id: string;
  number: number;
  worker_id: string;
  outcome: string;
  started_at: string;
  ended_at: string | null;
  exit_code: number | null;
  error: string | null;
}

export interface JobView extends Required<Omit<JobRequest, 'command' | 'handler' | 'working_dir' | 'timeout' | 'idempotency_key' | 'expected_duration' | 'resources' | 'retry_policy' | 'template' | 'template_version' | 'depends_on' | 'dependencies' | 'dependency_type' | 'grace_period'>> {
  grace_period: number | null;
  /** A pending preemption: the worker was told to stop the job for more urgent work. */
  preemption: { by_job: string | null; by_tenant: string | null; reason: string; at: string } | null;
  resources: { cpu_cores: number; memory_gb: number; gpu_count: number; storage_gb: number };
  retry_policy: { name?: string; max_attempts: number; retry_delay: number; backoff: 'fixed' | 'exponential'; max_delay: number; jitter: number; non_retryable_exit_code?: number | null };
  job_id: string;
  status: JobStatus;
  kind: 'command' | 'handler';
  command: string[] | null;
  handler: string | null;
  working_dir: string | null;
  timeout: number | null;
  idempotency_key: string | null;
  expected_duration: number | null;
  worker_id: string | null;
  gpu_indices: number[];
  attempt_count: number;
  retries_used: number;
  cancel_requested: boolean;
  result: unknown;
  error: string | null;
  exit_code: number | null;
  progress: number | null;
  dead_lettered: boolean;
  created_at: string;
  updated_at: string;
  queued_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  run_after: string | null;
  attempts?: AttemptView[];
  template: string | null;
  template_version: number | null;
  steps: { name: string; command: string[]; timeout: number | null }[] | null;
  dependency_type: DependencyType | null;
  depends_on?: { id: string; state: JobStatus }[];
  waiting_for?: string[];
  queue_position?: number;
  estimated_start_time?: string | null;
  pending_reason?: string | null;
  /** GET /jobs/{id}: the last checkpoint saved (time, attempt, size, file reference), or null. */
  last_checkpoint?: { attempt: number; saved_at: string; size: number; file: string | null } | null;
  /** GET /jobs/{id} of a gang job (nodes > 1): its members — current attempt, else the last one. */
  gang?: { size: number; members: GangMemberView[] };
}

export interface GangMemberView {
  rank: number;
  worker_id: string;
  gpu_indices: number[];
  /** assigned, running, completed, failed, timeout, cancelled, preempted, lost, interrupted, dropped */
  state: string;
  started_at: string | null;
  ended_at: string | null;
  exit_code: number | null;
  error: string | null;
}

/** A gang member's place in its gang, as its worker receives it (`job.gang` for handlers, GANTRY_GANG_* for commands). */
export interface GangInfo {
  /** 0 … size−1; rank 0's result is the job's result, and only its progress and checkpoints count. */
  rank: number;
  size: number;
  /** Every member in rank order (the name is the worker's name — the host name for `gantry worker`). */
  workers: { rank: number; worker_id: string; name: string }[];
}

export interface JobEventView {
  at: string;
  from: JobStatus | null;
  to: JobStatus;
  reason: string;
  actor: string;
  data: Record<string, unknown> | null;
}

export interface LogChunkView {
  seq: number;
  job_id: string;
  attempt: number;
  stream: 'stdout' | 'stderr';
  data: string;
  at: number;
}

export interface QueueStatus {
  queue_length: number;
  running_jobs: number;
  pending_jobs: number;
  retrying_jobs: number;
  paused_jobs: number;
  queues: Record<string, { length: number; avg_wait_time: string; avg_wait_seconds: number; oldest_wait_seconds: number }>;
  /** When these numbers were counted (ISO): with a big backlog up to a few seconds before the answer (1 s, or ten times the count's duration), else at the call. */
  as_of: string;
}

export interface WorkerView {
  worker_id: string;
  name: string;
  kind: 'process' | 'handler';
  handlers: string[];
  state: 'online' | 'draining' | 'offline';
  capacity: { cpu_cores: number; memory_gb: number; gpu_count: number; slots: number };
  used: { cpu_cores: number; memory_gb: number; gpu_count: number; slots: number; gpu_indices: number[] };
  labels: Record<string, string>;
  registered_at: string;
  last_heartbeat: string;
}

export interface ListJobsQuery {
  status?: string;
  tenant?: string;
  type?: string;
  priority?: string;
  limit?: number;
  cursor?: string;
}

export type ResourceAmounts = { cpu_cores?: number; memory_gb?: number; gpu_count?: number };
/** A tenant create/update body; null resets a setting to the tier default. */
export interface TenantRequest {
  name?: string;
  tier?: 'enterprise_plus' | 'enterprise' | 'premium' | 'basic' | 'free' | (string & {});
  cohort?: string;
  quota?: ResourceAmounts | null;
  borrowing_limit?: ResourceAmounts | null;
  lending_limit?: ResourceAmounts | null;
  max_running_jobs?: number | null;
  fair_share_weight?: number | null;
  allowed_priorities?: Priority[] | null;
  paused?: boolean;
}
interface TenantSettings {
  quota: ResourceAmounts;
  borrowing_limit: ResourceAmounts;
  lending_limit: ResourceAmounts;
  max_running_jobs: number | null;
  fair_share_weight: number | null;
  allowed_priorities: Priority[] | null;
}
export interface TenantView {
  tenant_id: string;
  name: string;
  tier: string;
  cohort: string;
  paused: boolean;
  overrides: TenantSettings;
  effective: TenantSettings & { quota: Required<ResourceAmounts>; fair_share_weight: number; allowed_priorities: Priority[] };
  created_at: string;
  updated_at: string;
  /** GET /tenants/{id} only: its jobs on workers, what they hold, and its queued jobs. */
  /** What the tenant's jobs hold and have queued, as counted at `as_of` (ISO; with a big backlog up to a few seconds before the answer). */
  load?: { running_jobs: number; queued_jobs: number; held: Required<ResourceAmounts>; as_of: string };
}
export interface JobExplanation {
  job_id: string;
  status: JobStatus;
  /** Plain words; null when the job is not waiting. */
  summary: string | null;
  reasons: { kind: string; text: string; [k: string]: unknown }[];
  estimated_start_time: string | null;
  queue_position: number | null;
  tenant: { id: string; tier: string; cohort: string; paused: boolean; registered: boolean };
}

export interface BreakerView {
  key: string;
  state: 'closed' | 'open' | 'half_open';
  consecutive_failures: number;
  opened_at: string | null;
  probe_at: string | null;
  probe_job_id: string | null;
  last_error: string | null;
  last_failure_at: string | null;
  updated_at: string;
}

export interface DlqRequeueRequest {
  job_ids?: string[];
  filter?: { type?: string; tenant?: string; name?: string; error_contains?: string };
  limit?: number;
  parameters?: Record<string, unknown>;
  env?: Record<string, string>;
  command?: string[];
  reason?: string;
}

/** Wire shapes of the worker protocol. */
export interface Assignment {
  job_id: string;
  attempt_id: string;
  attempt: number;
  name: string;
  type: string;
  tenant: string;
  kind: 'command' | 'handler';
  command: string[] | null;
  handler: string | null;
  env: Record<string, string>;
  working_dir: string | null;
  timeout: number | null;
  parameters: Record<string, unknown>;
  resources: { cpu_cores: number; memory_gb: number; gpu_count: number; storage_gb: number };
  gpu_indices: number[];
  labels: Record<string, string>;
  /** The last checkpoint an earlier attempt saved, or null. */
  checkpoint?: SavedCheckpoint | null;
  /** Execution steps run in order as this one job, each with its own timeout (seconds); absent/null = run `command`. */
  steps?: { name: string; command: string[]; timeout: number | null }[] | null;
  /** Seconds between SIGTERM and SIGKILL when the job is stopped; null = the worker's default. */
  grace_period?: number | null;
  /** Set for a member of a gang job (nodes > 1); `attempt_id` is then the member's own token. */
  gang?: GangInfo;
}
/** A checkpoint: a small JSON value and/or a reference to a file the job wrote. */
export interface CheckpointData {
  data?: unknown;
  file?: string | null;
}
export interface SavedCheckpoint {
  data: unknown;
  file: string | null;
  /** The attempt number that saved it. */
  attempt: number;
  saved_at: string;
}
export interface Control {
  job_id: string;
  attempt_id: string;
  /**
   * `preempt`: stop the job (SIGTERM, grace period, SIGKILL) and report `preempted`; the server requeues it.
   * `start`: a gang member (held, not started, since it arrived) may start: every member of its gang is on its worker.
   */
  control: 'cancel' | 'pause' | 'resume' | 'preempt' | 'start';
}
export interface AttemptReport {
  job_id: string;
  attempt_id: string;
  outcome: 'started' | 'completed' | 'failed' | 'timeout' | 'cancelled' | 'preempted' | 'paused' | 'resumed' | 'progress' | 'checkpoint';
  exit_code?: number | null;
  error?: string | null;
  result?: unknown;
  progress?: number | null;
  non_retryable?: boolean;
  checkpoint?: CheckpointData;
}
/** What the server did with one report: `stale` = the attempt is no longer current there (ignored). */
export interface ReportResult {
  job_id: string;
  status: 'applied' | 'stale';
  state: JobStatus;
}

export interface LogUpload {
  job_id: string;
  attempt: number;
  stream: 'stdout' | 'stderr';
  data: string;
  at?: number;
}

function unreachable(server: string, err: unknown): GantryApiError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = err instanceof TransportError ? err.code : (cause?.code ?? cause?.message ?? (err as Error).message);
  return new GantryApiError(0, 'UNREACHABLE', `cannot reach Gantry at ${server}: ${why}`, undefined, null);
}

function queryString(q: object): string {
  const pairs = Object.entries(q)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]): [string, string] => [k, String(v)]);
  const qs = new URLSearchParams(pairs).toString();
  return qs ? `?${qs}` : '';
}

function parseResponse<T>(res: HttpResult): T {
  let parsed: unknown = null;
  try {
    parsed = res.text ? JSON.parse(res.text) : null;
  } catch {
    parsed = res.text;
  }
  if (res.status >= 400) {
    const e = (parsed as { error?: { code?: string; message?: string; field?: string } } | null)?.error;
    throw new GantryApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? `HTTP ${res.status}`, e?.field, parsed);
  }
  return parsed as T;
}

/** A text body `request` parsed as JSON when it happened to be one JSON value (a one-line JSONL) back to its text. */
function asText(v: unknown): string {
  return typeof v === 'string' ? v : v === null ? '' : JSON.stringify(v) + '\n';
}

/** Worker-protocol calls a worker may repeat on any server (see `GantryClient.request`). */
const WORKER_PROTOCOL = /^\/api\/v1\/workers\/[^/]+\/(heartbeat|poll|report|drain|deregister)$/;

/**
 * Whether a request that may have reached a server can be sent again to another one without
 * risk of applying it twice. These are re-sent after a connection error or a 503:
 * - GET and HEAD (reads);
 * - a submit (`POST /api/v1/jobs`) carrying an `idempotency_key`: the same key returns the same job;
 * - the worker protocol: heartbeat, poll (a poll re-delivers SCHEDULED jobs the worker does not
 *   hold yet), report (each report carries its attempt id as fencing token: a duplicate is
 *   recorded stale, never applied twice), drain and deregister (idempotent), and registering
 *   with a known worker id (an upsert).
 * Everything else (cancel, retry, pause, a submit without key, …) is re-sent only when the
 * connection was refused, i.e. nothing was written; otherwise the error is thrown and the
 * next call goes to the next server.
 */
function resendable(method: string, path: string, body: unknown): boolean {
  if (method === 'GET' || method === 'HEAD') return true;
  if (method !== 'POST') return false;
  const b = body as { idempotency_key?: unknown; id?: unknown } | null | undefined;
  if (path === '/api/v1/jobs') return typeof b?.idempotency_key === 'string' && b.idempotency_key !== '';
  if (path === '/api/v1/workers') return typeof b?.id === 'string' && b.id !== '';
  return WORKER_PROTOCOL.test(path);
}

export class GantryClient {
  readonly #servers: ServerList;
  readonly #token: string;
  readonly #timeout: number;
  readonly #failoverListeners = new Set<(from: string, to: string, reason: string) => void>();

  constructor(opts: ClientOptions) {
    this.#servers = new ServerList(parseServerList(opts.server));
    this.#token = opts.token;
    this.#timeout = opts.timeout_ms ?? 30_000;
    if (opts.onFailover) this.#failoverListeners.add(opts.onFailover);
  }

  /** The server requests go to now (the first of `servers` until it fails). */
  get server(): string {
    return this.#servers.current;
  }

  /** Calls `listener` once each time the client moves to another server; returns the unsubscribe. */
  onFailover(listener: (from: string, to: string, reason: string) => void): () => void {
    this.#failoverListeners.add(listener);
    return () => this.#failoverListeners.delete(listener);
  }

  /** Every server this client knows, in the order it tries them. */
  get servers(): readonly string[] {
    return this.#servers.urls;
  }

  /**
   * Low-level call; returns the parsed JSON body or throws GantryApiError. On a connection
   * error or a 503 the client moves to its next server; the request itself is re-sent there
   * only when that is safe (`resendable`, or the connection was refused), each server once.
   */
  async request<T>(method: string, path: string, body?: unknown, extraTimeoutMs = 0, signal?: AbortSignal): Promise<T> {
    const safe = resendable(method, path, body);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    for (let tried = 1; ; tried++) {
      const base = this.#servers.current;
      const headers: Record<string, string> = { authorization: `Bearer ${this.#token}` };
      if (body !== undefined) headers['content-type'] = 'application/json';
      let res: HttpResult | null = null;
      let failure: unknown = null;
      try {
        res = await httpRequest(new URL(base + path), method, headers, payload, this.#timeout + extraTimeoutMs, signal);
      } catch (err) {
        if (err instanceof TransportError && err.code === 'ABORTED') throw new GantryApiError(0, 'ABORTED', 'request aborted', undefined, null);
        failure = err;
      }
      if (failure !== null ? isServerDown(failure) : res!.status === 503) {
        const next = this.#servers.failedOver(base);
        const why = failure !== null ? (failure instanceof TransportError ? failure.code : String(failure)) : 'HTTP 503';
        if (next) for (const f of this.#failoverListeners) f(base, next, why);
        if (this.#servers.current !== base && tried < this.#servers.urls.length && (safe || neverSent(failure))) continue;
      }
      if (failure !== null) {
        if (failure instanceof TransportError && failure.code === 'TIMEOUT') throw new GantryApiError(0, 'TIMEOUT', `${method} ${path}: ${failure.message}`, undefined, null);
        throw unreachable(base, failure);
      }
      return parseResponse<T>(res!);
    }
  }

  submit(job: JobRequest): Promise<SubmitResponse> {
    return this.request('POST', '/api/v1/jobs', job);
  }
  addDependencies(id: string, depends_on: string[], dependency_type?: DependencyType): Promise<JobView & { message: string }> {
    return this.request('POST', `/api/v1/jobs/${encodeURIComponent(id)}/dependencies`, { depends_on, ...(dependency_type ? { dependency_type } : {}) });
  }
  listTemplates(category?: string): Promise<{ templates: TemplateView[] }> {
    return this.request('GET', `/api/v1/templates${queryString({ category })}`);
  }
  getTemplate(id: string, version?: number): Promise<TemplateView> {
    return this.request('GET', `/api/v1/templates/${encodeURIComponent(id)}${queryString({ version })}`);
  }
  createTemplate(body: Record<string, unknown>): Promise<TemplateView & { message: string }> {
    return this.request('POST', '/api/v1/templates', body);
  }
  updateTemplate(id: string, body: Record<string, unknown>): Promise<TemplateView & { message: string }> {
    return this.request('PUT', `/api/v1/templates/${encodeURIComponent(id)}`, body);
  }
  deleteTemplate(id: string): Promise<{ id: string; deleted: boolean }> {
    return this.request('DELETE', `/api/v1/templates/${encodeURIComponent(id)}`);
  }
  submitBatch(jobs: JobRequest[], execution_mode: 'parallel' | 'sequential' = 'parallel') {
    return this.request<{ job_ids: string[]; jobs: { job_id: string; status: JobStatus; created: boolean }[]; message: string }>(
      'POST', '/api/v1/jobs/batch', { jobs, execution_mode },
    );
  }
  getJob(id: string): Promise<JobView> {
    return this.request('GET', `/api/v1/jobs/${encodeURIComponent(id)}`);
  }
  listJobs(q: ListJobsQuery = {}): Promise<{ jobs: JobView[]; next_cursor: string | null }> {
    return this.request('GET', `/api/v1/jobs${queryString(q)}`);
  }
  events(id: string): Promise<{ job_id: string; events: JobEventView[] }> {
    return this.request('GET', `/api/v1/jobs/${encodeURIComponent(id)}/events`);
  }
  cancel(id: string, reason?: string): Promise<JobView & { message: string }> {
    return this.request('POST', `/api/v1/jobs/${encodeURIComponent(id)}/cancel`, reason ? { reason } : {});
  }
  pause(id: string): Promise<JobView> {
    return this.request('POST', `/api/v1/jobs/${encodeURIComponent(id)}/pause`, {});
  }
  resume(id: string): Promise<JobView> {
    return this.request('POST', `/api/v1/jobs/${encodeURIComponent(id)}/resume`, {});
  }
  retry(id: string, parameters?: Record<string, unknown>): Promise<JobView> {
    return this.request('POST', `/api/v1/jobs/${encodeURIComponent(id)}/retry`, parameters ? { parameters } : {});
  }
  setPriority(id: string, priority: Priority, reason?: string): Promise<JobView> {
    return this.request('PUT', `/api/v1/jobs/${encodeURIComponent(id)}/priority`, { priority, ...(reason ? { reason } : {}) });
  }
  logs(id: string, after = 0): Promise<{ job_id: string; logs: LogChunkView[]; next_after: number }> {
    return this.request('GET', `/api/v1/jobs/${encodeURIComponent(id)}/logs?after=${after}`);
  }
  /** Streams log chunks as they arrive until the job ends; yields the final status last. */
  async *followLogs(id: string, after = 0, signal?: AbortSignal): AsyncGenerator<LogChunkView | { end: true; status: JobStatus | null; exit_code: number | null }> {
    let res: Response;
    try {
      res = await fetch(`${this.server}/api/v1/jobs/${encodeURIComponent(id)}/logs?follow=true&after=${after}`, {
        headers: { authorization: `Bearer ${this.#token}` },
        signal,
      });
    } catch (err) {
      throw unreachable(this.server, err);
    }
    if (!res.ok || !res.body) {
      const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
      throw new GantryApiError(res.status, body?.error?.code ?? `HTTP_${res.status}`, body?.error?.message ?? 'log stream failed', undefined, body);
    }
    const decoder = new TextDecoder();
    let buf = '';
    for await (const part of res.body) {
      buf += decoder.decode(part as Uint8Array, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) yield JSON.parse(line);
      }
    }
  }
  queueStatus(): Promise<QueueStatus> {
    return this.request('GET', '/api/v1/queue/status');
  }
  reorder(job_id: string, new_position: number, reason?: string): Promise<JobView & { queue_position: number }> {
    return this.request('POST', '/api/v1/queue/reorder', { job_id, new_position, ...(reason ? { reason } : {}) });
  }
  deadLetter(q: { limit?: number; cursor?: string } = {}): Promise<{ jobs: JobView[]; next_cursor: string | null }> {
    return this.request('GET', `/api/v1/dead-letter${queryString(q)}`);
  }
  requeueDead(id: string, parameters?: Record<string, unknown>): Promise<JobView> {
    return this.request('POST', `/api/v1/dead-letter/${encodeURIComponent(id)}/requeue`, parameters ? { parameters } : {});
  }
  /** Dead-lettered jobs with every attempt (the failure history). */
  dlq(q: { limit?: number; cursor?: string; type?: string; tenant?: string } = {}): Promise<{ jobs: JobView[]; next_cursor: string | null }> {
    return this.request('GET', `/api/v1/dlq${queryString(q)}`);
  }
  /** One dead-lettered job with its attempts and events. */
  dlqJob(id: string): Promise<JobView & { dead_lettered_at: string; events: JobEventView[] }> {
    return this.request('GET', `/api/v1/dlq/${encodeURIComponent(id)}`);
  }
  /** Requeues dead-lettered jobs by id or filter (all or nothing); `parameters`/`env` merge over each job's, `command` replaces it. */
  requeueDeadLetters(body: DlqRequeueRequest): Promise<{ requeued: number; job_ids: string[] }> {
    return this.request('POST', '/api/v1/dlq/requeue', body);
  }
  breakers(): Promise<{ threshold: number; open_seconds: number; breakers: BreakerView[] }> {
    return this.request('GET', '/api/v1/breakers');
  }
  resetBreaker(key: string): Promise<BreakerView> {
    return this.request('POST', `/api/v1/breakers/${encodeURIComponent(key)}/reset`, {});
  }
  /** Saves a checkpoint for a running job; `attempt_id` must be its current attempt. */
  checkpoint(jobId: string, body: { attempt_id: string; data?: unknown; file?: string }): Promise<{ job_id: string; checkpoint: SavedCheckpoint }> {
    return this.request('POST', `/api/v1/jobs/${encodeURIComponent(jobId)}/checkpoint`, body);
  }
  workers(): Promise<{ workers: WorkerView[] }> {
    return this.request('GET', '/api/v1/workers');
  }
  drainWorker(id: string): Promise<{ worker_id: string; state: string }> {
    return this.request('POST', `/api/v1/workers/${encodeURIComponent(id)}/drain`, {});
  }

  // Tenants
  listTenants(): Promise<{ tenants: TenantView[]; default_tier: string }> {
    return this.request('GET', '/api/v1/tenants');
  }
  createTenant(t: TenantRequest & { id: string }): Promise<TenantView> {
    return this.request('POST', '/api/v1/tenants', t);
  }
  getTenant(id: string): Promise<TenantView> {
    return this.request('GET', `/api/v1/tenants/${encodeURIComponent(id)}`);
  }
  /** `replace`: PUT (settings not given go back to tier defaults); otherwise PATCH. */
  updateTenant(id: string, t: TenantRequest, replace = false): Promise<TenantView> {
    return this.request(replace ? 'PUT' : 'PATCH', `/api/v1/tenants/${encodeURIComponent(id)}`, t);
  }
  deleteTenant(id: string): Promise<{ tenant_id: string; deleted: boolean }> {
    return this.request('DELETE', `/api/v1/tenants/${encodeURIComponent(id)}`);
  }
  pauseTenant(id: string): Promise<TenantView> {
    return this.request('POST', `/api/v1/tenants/${encodeURIComponent(id)}/pause`, {});
  }
  resumeTenant(id: string): Promise<TenantView> {
    return this.request('POST', `/api/v1/tenants/${encodeURIComponent(id)}/resume`, {});
  }
  /** The recorded history as a simulator trace (JSONL text), jobs created in [since, until). */
  async exportTrace(q: { since?: string; until?: string } = {}): Promise<string> {
    return asText(await this.request<unknown>('GET', `/api/v1/trace${queryString(q)}`, undefined, 600_000));
  }
  /** The cluster (workers, tenants) as the simulator's YAML. */
  async exportCluster(): Promise<string> {
    return asText(await this.request<unknown>('GET', '/api/v1/trace/cluster'));
  }
  /** Why a job is pending, in words and as data. */
  explain(id: string): Promise<JobExplanation> {
    return this.request('GET', `/api/v1/jobs/${encodeURIComponent(id)}/explain`);
  }
  health(): Promise<{ status: string; version: string }> {
    return this.request('GET', '/health');
  }

  /** Polls until the job reaches a final state (or `timeout_ms` passes). */
  async waitFor(id: string, opts: { timeout_ms?: number; interval_ms?: number; onUpdate?: (j: JobView) => void } = {}): Promise<JobView> {
    const deadline = Date.now() + (opts.timeout_ms ?? 3_600_000);
    let last = '';
    for (;;) {
      const j = await this.getJob(id);
      if (j.status !== last) {
        last = j.status;
        opts.onUpdate?.(j);
      }
      if (FINAL_STATUSES.has(j.status)) return j;
      if (Date.now() > deadline) throw new GantryApiError(0, 'WAIT_TIMEOUT', `job ${id} still ${j.status} after waiting`, undefined, j);
      await new Promise((r) => setTimeout(r, opts.interval_ms ?? 200));
    }
  }

  // Worker protocol (used by Worker and the gantry worker agent).
  registerWorker(body: { id?: string; name: string; kind: 'process' | 'handler'; handlers?: string[]; capacity: { cpu_cores?: number; memory_gb?: number; gpu_count?: number; slots: number }; labels?: Record<string, string> }) {
    return this.request<{ worker_id: string; heartbeat_interval_ms: number; state: string }>('POST', '/api/v1/workers', body);
  }
  /** Renews the worker's lease; `timeout_ms` overrides the client's request timeout for this call. */
  heartbeat(workerId: string, timeout_ms = this.#timeout): Promise<{ ok: boolean }> {
    return this.request('POST', `/api/v1/workers/${encodeURIComponent(workerId)}/heartbeat`, {}, timeout_ms - this.#timeout);
  }
  /**
   * Long-poll for new assignments and controls; `held` = attempt ids this worker already runs.
   * `carry`: reports and logs to apply first (as `report` would); their results come back with the poll.
   */
  poll(
    workerId: string, wait_ms: number, held: string[] = [], signal?: AbortSignal, carry?: { reports: AttemptReport[]; logs: LogUpload[] },
  ): Promise<{ jobs: Assignment[]; controls: Control[]; results?: ReportResult[] }> {
    const body = carry ? { wait_ms, held, reports: carry.reports, logs: carry.logs } : { wait_ms, held };
    return this.request('POST', `/api/v1/workers/${encodeURIComponent(workerId)}/poll`, body, wait_ms, signal);
  }
  report(workerId: string, reports: AttemptReport[], logs: LogUpload[] = []) {
    return this.request<{ results: ReportResult[] }>(
      'POST', `/api/v1/workers/${encodeURIComponent(workerId)}/report`, { reports, logs },
    );
  }
  deregister(workerId: string) {
    return this.request('POST', `/api/v1/workers/${encodeURIComponent(workerId)}/deregister`, {});
  }
}
