import type { DependencyType, JobSpec, Priority, Resources, RetryPolicy } from './types.ts';
import { DEFAULT_RETRY_POLICY, NAMED_RETRY_POLICIES, namedRetryPolicy } from './retry.ts';
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
  /** A policy name (`network_error`, …) or an object, optionally starting from a named one (`name`). */
  retry_policy?: string | Partial<RetryPolicy>;
  labels?: Record<string, string>;
  parameters?: Record<string, unknown>;
  idempotency_key?: string;
  expected_duration?: number;
  /** Render this template (src/templates/render.ts) instead of giving command/handler. */
  template?: string;
  template_version?: number;
  /** Jobs to wait for (`dependencies` is seed 002's spelling of the same list). */
  depends_on?: string[];
  dependencies?: string[];
  dependency_type?: DependencyType;
  preemptible?: boolean;
  grace_period?: number;
  nodes?: number;
}

/** Most workers one gang job may span (`nodes`). */
export const MAX_GANG_NODES = 64;

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
  const retry = retryPolicyOf(req.retry_policy, prefix);
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

/** The full policy a request asks for: defaults, then the named policy, then inline overrides. */
function retryPolicyOf(req: string | Partial<RetryPolicy> | undefined, prefix: string): RetryPolicy {
  const inline = typeof req === 'string' ? { name: req } : (req ?? {});
  let base = DEFAULT_RETRY_POLICY;
  if (inline.name !== undefined) {
    const named = namedRetryPolicy(inline.name);
    if (!named) {
      const field = typeof req === 'string' ? `${prefix}retry_policy` : `${prefix}retry_policy.name`;
      throw validationError(field, `unknown retry policy '${inline.name}' (${Object.keys(NAMED_RETRY_POLICIES).join(', ')})`);
    }
    base = named;
  }
  const retry: RetryPolicy = { ...base, ...inline };
  if (retry.max_delay < retry.retry_delay) retry.max_delay = retry.retry_delay;
  return retry;
}
