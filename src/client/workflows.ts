/**
 * Workflows and schedules from TypeScript: typed calls over GantryClient, and a small builder
 * that produces the same definition the API and YAML files take.
 *
 * ```ts
 * const wf = workflow('nightly_train', 'Train and evaluate')
 *   .param('dataset', 'iris')
 *   .step('prepare', { handler: 'prepare', parameters: { dataset: '{{ params.dataset }}' } })
 *   .step('train', { handler: 'train', depends_on: ['prepare'], retries: 2, timeout: 600 })
 *   .step('report', { handler: 'report', depends_on: ['train'], trigger_rule: 'all_done' });
 * await workflows(client).create(wf.build());
 * ```
 */
import type { GantryClient } from './http.ts';

export type TriggerRule = 'all_success' | 'all_failed' | 'all_done' | 'one_success' | 'one_failed' | 'none_failed' | 'none_skipped' | 'always';
export type StepStatus = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'UPSTREAM_FAILED' | 'SKIPPED' | 'CANCELLED';
export type RunStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

export interface StepOptions {
  job_template?: string;
  handler?: string;
  command?: string[];
  depends_on?: string[];
  parameters?: Record<string, unknown>;
  trigger_rule?: TriggerRule;
  /** A condition in the expression language; false → SKIPPED. */
  when?: string;
  /** An expression giving a list: one job per item. */
  map?: string;
  retries?: number;
  retry_delay?: number;
  timeout?: number;
  env?: Record<string, string>;
  resources?: { cpu_cores?: number; memory_gb?: number; gpu_count?: number; storage_gb?: number };
  priority?: string;
}

export interface WorkflowDefinition {
  workflow_name: string;
  description?: string;
  parameters?: Record<string, unknown>;
  steps: (StepOptions & { step_id: string })[];
}

export interface WorkflowCreated {
  workflow_id: string;
  workflow_name: string;
  version: number;
  status: 'created';
  message: string;
  steps: string[];
  created_at: string;
}

export interface RunStepView {
  step_id: string;
  status: StepStatus;
  depends_on: string[];
  trigger_rule: TriggerRule;
  outputs: unknown;
  error: string | null;
  map_total: number | null;
  started_at: string | null;
  finished_at: string | null;
  reused_from: string | null;
  jobs: { job_id: string; map_index: number; status: string }[];
}

export interface RunView {
  run_id: string;
  workflow_id: string;
  workflow_name: string;
  version: number;
  status: RunStatus;
  parameters: Record<string, unknown>;
  trigger: Record<string, unknown>;
  rerun_of: string | null;
  created_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  steps?: RunStepView[];
  reused_steps?: string[];
}

/** Builds a workflow definition step by step; `build()` returns the API body. */
export class WorkflowBuilder {
  readonly #def: WorkflowDefinition;
  constructor(name: string, description = '') {
    this.#def = { workflow_name: name, description, parameters: {}, steps: [] };
  }
  /** A run parameter with its default. */
  param(name: string, defaultValue: unknown): this {
    this.#def.parameters![name] = defaultValue;
    return this;
  }
  step(id: string, opts: StepOptions): this {
    if (this.#def.steps.some((s) => s.step_id === id)) throw new Error(`step ${id} is defined twice`);
    this.#def.steps.push({ step_id: id, ...opts });
    return this;
  }
  build(): WorkflowDefinition {
    return structuredClone(this.#def);
  }
}

export function workflow(name: string, description = ''): WorkflowBuilder {
  return new WorkflowBuilder(name, description);
}

const enc = encodeURIComponent;

/** Typed calls for workflows, runs and schedules. */
export function workflows(client: GantryClient) {
  return {
    create: (def: WorkflowDefinition | WorkflowBuilder) =>
      client.request<WorkflowCreated>('POST', '/api/v1/workflows', def instanceof WorkflowBuilder ? def.build() : def),
    list: () => client.request<{ workflows: (WorkflowDefinition & { workflow_id: string; version: number; versions: number })[] }>('GET', '/api/v1/workflows'),
    get: (ref: string) => client.request<WorkflowDefinition & { workflow_id: string; version: number }>('GET', `/api/v1/workflows/${enc(ref)}`),
    run: (ref: string, parameters: Record<string, unknown> = {}) => client.request<RunView>('POST', `/api/v1/workflows/${enc(ref)}/runs`, { parameters }),
    runs: (ref: string, limit = 50) => client.request<{ workflow_name: string; runs: RunView[] }>('GET', `/api/v1/workflows/${enc(ref)}/runs?limit=${limit}`),
    getRun: (runId: string) => client.request<RunView>('GET', `/api/v1/workflow-runs/${enc(runId)}`),
    cancelRun: (runId: string, reason?: string) => client.request<RunView>('POST', `/api/v1/workflow-runs/${enc(runId)}/cancel`, reason ? { reason } : {}),
    rerun: (runId: string, parameters: Record<string, unknown> = {}) => client.request<RunView>('POST', `/api/v1/workflow-runs/${enc(runId)}/rerun`, { parameters }),
    /** Polls a run until it is no longer RUNNING. */
    async waitForRun(runId: string, opts: { timeout_ms?: number; interval_ms?: number } = {}): Promise<RunView> {
      const deadline = Date.now() + (opts.timeout_ms ?? 60_000);
      for (;;) {
        const r = await client.request<RunView>('GET', `/api/v1/workflow-runs/${enc(runId)}`);
        if (r.status !== 'RUNNING') return r;
        if (Date.now() > deadline) throw new Error(`workflow run ${runId} still RUNNING after ${opts.timeout_ms ?? 60_000} ms`);
        await new Promise((res) => setTimeout(res, opts.interval_ms ?? 100));
      }
    },
  };
}

export interface ScheduleRequest {
  name: string;
  cron: string;
  timezone?: string;
  job?: Record<string, unknown>;
  workflow?: { workflow: string; parameters?: Record<string, unknown> };
  catchup?: 'none' | 'last' | 'all';
  catchup_window?: number;
  overlap?: 'skip' | 'buffer_one' | 'allow' | 'cancel_other';
  enabled?: boolean;
}

export function schedules(client: GantryClient) {
  return {
    create: (s: ScheduleRequest) => client.request<Record<string, unknown> & { schedule_id: string }>('POST', '/api/v1/schedules', s),
    list: () => client.request<{ schedules: (Record<string, unknown> & { schedule_id: string; name: string })[] }>('GET', '/api/v1/schedules'),
    get: (ref: string) => client.request<Record<string, unknown> & { fires: { fire_time: string; kind: string; outcome: string; target_id: string | null }[] }>('GET', `/api/v1/schedules/${enc(ref)}`),
    update: (ref: string, s: ScheduleRequest) => client.request<Record<string, unknown>>('PUT', `/api/v1/schedules/${enc(ref)}`, s),
    delete: (ref: string) => client.request<Record<string, unknown>>('DELETE', `/api/v1/schedules/${enc(ref)}`),
    backfill: (ref: string, start: string, end: string) =>
      client.request<{ fires: { fire_time: string; outcome: string; target_id: string | null }[]; message: string }>('POST', `/api/v1/schedules/${enc(ref)}/backfill`, { start, end }),
  };
}
