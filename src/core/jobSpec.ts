import type { JobSpec, Priority, Resources, RetryPolicy } from './types.ts';
import { DEFAULT_RETRY_POLICY } from './retry.ts';
import { parsePriority } from './priorities.ts';
import { validationError } from './errors.ts';

/** What a client may send to create a job (wire shape, snake_case). Types are checked by the route schema first. */
export interface JobRequest {
  name?: string;
  type?: string;
  tenant?: string;
  priority?: string;
  resources?: Partial<Resources>;
  command?: string[];
  handler?: string;
  env?: Record<string, string>;
  working_dir?: string;
  timeout?: number;
  retry_policy?: Partial<RetryPolicy>;
  labels?: Record<string, string>;
  parameters?: Record<string, unknown>;
  idempotency_key?: string;
  expected_duration?: number;
  preemptible?: boolean;
  grace_period?: number;
  nodes?: number;
}

export const DEFAULT_RESOURCES: Resources = { cpu_cores: 1, memory_gb: 0.25, gpu_count: 0, storage_gb: 0 };

/**
 * Turns a schema-valid request into a full JobSpec: defaults filled, cross-field rules checked.
 * `prefix` names the request in errors (e.g. `jobs[3].` in a batch).
 */
export function normalizeJobSpec(req: JobRequest, prefix = ''): JobSpec {
  const hasCommand = req.command !== undefined;
  const hasHandler = req.handler !== undefined;
  if (hasCommand === hasHandler) {
    throw validationError(`${prefix}command`, 'a job needs exactly one of `command` (argv array) or `handler` (name)');
  }
  let priority: Priority = 'normal';
  if (req.priority !== undefined) {
    const p = parsePriority(req.priority);
    if (!p) throw validationError(`${prefix}priority`, `unknown priority '${req.priority}' (emergency, critical, high, normal, low, urgent)`);
    priority = p;
  }
  const retry: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...req.retry_policy };
  if (retry.max_delay < retry.retry_delay) retry.max_delay = retry.retry_delay;
  const kind = hasCommand ? 'command' : 'handler';
  const type = req.type ?? (hasHandler ? req.handler! : 'command');
  const name = req.name ?? (hasCommand ? req.command![0]!.split('/').pop()! : req.handler!);
  return {
    name,
    type,
    tenant: req.tenant ?? 'default',
    priority,
    resources: { ...DEFAULT_RESOURCES, ...req.resources },
    kind,
    command: req.command ?? null,
    handler: req.handler ?? null,
    env: req.env ?? {},
    working_dir: req.working_dir ?? null,
    timeout: req.timeout ?? null,
    retry_policy: retry,
    labels: req.labels ?? {},
    parameters: req.parameters ?? {},
    idempotency_key: req.idempotency_key ?? null,
    expected_duration: req.expected_duration ?? null,
    preemptible: req.preemptible ?? true,
    grace_period: req.grace_period ?? null,
    nodes: req.nodes ?? 1,
  };
}
