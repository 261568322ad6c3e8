/**
 * JSON Schemas for the REST API v1, compiled once by Fastify (ajv) and published as OpenAPI 3.1.
 * Unknown fields are refused (`additionalProperties: false`), never silently dropped.
 */
import { MAX_GANG_NODES } from '../core/jobSpec.ts';

const name = { type: 'string', minLength: 1, maxLength: 200 } as const;
const ident = { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' } as const;
const stringMap = (max: number) =>
  ({ type: 'object', maxProperties: max, additionalProperties: { type: 'string', maxLength: 65536 } }) as const;

export const prioritySchema = { type: 'string', enum: ['emergency', 'critical', 'high', 'normal', 'low', 'urgent'] } as const;

export const resourcesSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    cpu_cores: { type: 'number', minimum: 0, maximum: 4096 },
    memory_gb: { type: 'number', minimum: 0, maximum: 65536 },
    gpu_count: { type: 'integer', minimum: 0, maximum: 256 },
    storage_gb: { type: 'number', minimum: 0, maximum: 1048576 },
  },
} as const;

/** A policy name (checked against the named policies when the job is normalised), or an inline policy. */
export const retryPolicySchema = {
  type: ['string', 'object'],
  minLength: 1,
  maxLength: 100,
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100 },
    non_retryable_exit_code: { type: ['integer', 'null'], minimum: 0, maximum: 255 },
    max_attempts: { type: 'integer', minimum: 1, maximum: 100 },
    retry_delay: { type: 'number', minimum: 0, maximum: 86400 },
    backoff: { type: 'string', enum: ['fixed', 'exponential'] },
    max_delay: { type: 'number', minimum: 0, maximum: 604800 },
    jitter: { type: 'number', minimum: 0, maximum: 1 },
  },
} as const;

export const jobRequestSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name,
    type: ident,
    tenant: { type: 'string', minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
    priority: prioritySchema,
    resources: resourcesSchema,
    command: { type: 'array', minItems: 1, maxItems: 4096, items: { type: 'string', maxLength: 131072 } },
    handler: ident,
    env: stringMap(1000),
    working_dir: { type: 'string', minLength: 1, maxLength: 4096 },
    timeout: { type: 'number', exclusiveMinimum: 0, maximum: 2592000 },
    retry_policy: retryPolicySchema,
    labels: stringMap(100),
    parameters: { type: 'object', maxProperties: 1000 },
    idempotency_key: { type: 'string', minLength: 1, maxLength: 200 },
    expected_duration: { type: 'number', exclusiveMinimum: 0, maximum: 31536000 },
    // Issue 5: a template to render (src/templates/render.ts) and jobs to wait for (src/store/ops/dependencies.ts).
    template: ident,
    template_version: { type: 'integer', minimum: 1 },
    depends_on: { type: 'array', maxItems: 10000, items: { type: 'string', minLength: 1, maxLength: 100 } },
    dependencies: { type: 'array', maxItems: 10000, items: { type: 'string', minLength: 1, maxLength: 100 } },
    dependency_type: { type: 'string', enum: ['all_complete', 'any_complete', 'all_done', 'any_failed'] },
    preemptible: { type: 'boolean' },
    grace_period: { type: 'number', minimum: 0, maximum: 86400 },
    nodes: { type: 'integer', minimum: 1, maximum: MAX_GANG_NODES },
  },
} as const;

export const batchRequestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['jobs'],
  properties: {
    jobs: { type: 'array', minItems: 1, maxItems: 10000, items: jobRequestSchema },
    execution_mode: { type: 'string', enum: ['parallel', 'sequential'] },
  },
} as const;

export const priorityChangeSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['priority'],
  properties: { priority: prioritySchema, reason: { type: 'string', maxLength: 1000 } },
} as const;

export const reorderSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['job_id', 'new_position'],
  properties: {
    job_id: { type: 'string', minLength: 1, maxLength: 100 },
    new_position: { type: 'integer', minimum: 1, maximum: 1e9 },
    reason: { type: 'string', maxLength: 1000 },
  },
} as const;

export const reasonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', maxLength: 1000 } },
} as const;

export const requeueSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', maxLength: 1000 }, parameters: { type: 'object', maxProperties: 1000 } },
} as const;

export const jobIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 100 } },
} as const;

export const listJobsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: { type: 'string', enum: ['SUBMITTED', 'QUEUED', 'SCHEDULED', 'RUNNING', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'RETRYING',
      'submitted', 'queued', 'scheduled', 'running', 'paused', 'completed', 'failed', 'cancelled', 'timeout', 'retrying'] },
    tenant: { type: 'string', maxLength: 63 },
    type: { type: 'string', maxLength: 100 },
    priority: prioritySchema,
    limit: { type: 'integer', minimum: 1, maximum: 1000 },
    cursor: { type: 'string', maxLength: 100 },
  },
} as const;

export const workerRegisterSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'kind', 'capacity'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.:-]+$' },
    name,
    kind: { type: 'string', enum: ['process', 'handler'] },
    handlers: { type: 'array', maxItems: 1000, items: ident },
    capacity: {
      type: 'object',
      additionalProperties: false,
      required: ['slots'],
      properties: {
        cpu_cores: { type: 'number', minimum: 0, maximum: 4096 },
        memory_gb: { type: 'number', minimum: 0, maximum: 65536 },
        gpu_count: { type: 'integer', minimum: 0, maximum: 256 },
        slots: { type: 'integer', minimum: 1, maximum: 100000 },
      },
    },
    labels: stringMap(100),
  },
} as const;

/** The reports and logs of a worker's batch (POST /report, and riding along with a poll). */
const reportFields = {
  reports: {
    type: 'array',
    maxItems: 10000,
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['job_id', 'attempt_id', 'outcome'],
      properties: {
        job_id: { type: 'string', maxLength: 100 },
        attempt_id: { type: 'string', maxLength: 100 },
        outcome: { type: 'string', enum: ['started', 'completed', 'failed', 'timeout', 'cancelled', 'preempted', 'paused', 'resumed', 'progress', 'checkpoint'] },
        exit_code: { type: ['integer', 'null'] },
        error: { type: ['string', 'null'], maxLength: 65536 },
        result: {},
        progress: { type: ['number', 'null'], minimum: 0, maximum: 1 },
        non_retryable: { type: 'boolean' },
        checkpoint: {
          type: 'object',
          additionalProperties: false,
          properties: { data: {}, file: { type: ['string', 'null'], maxLength: 4096 } },
        },
      },
    },
  },
  logs: {
    type: 'array',
    maxItems: 10000,
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['job_id', 'attempt', 'stream', 'data'],
      properties: {
        job_id: { type: 'string', maxLength: 100 },
        attempt: { type: 'integer', minimum: 0 },
        stream: { type: 'string', enum: ['stdout', 'stderr'] },
        data: { type: 'string', maxLength: 1048576 },
        at: { type: 'integer' },
      },
    },
  },
} as const;

export const pollSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    max_jobs: { type: 'integer', minimum: 0, maximum: 10000 },
    wait_ms: { type: 'integer', minimum: 0, maximum: 60000 },
    /** Attempt ids the worker already runs (not handed out again). */
    held: { type: 'array', maxItems: 100000, items: { type: 'string', maxLength: 100 } },
    // Reports and logs riding along, as in POST /report: applied before the poll looks.
    ...reportFields,
  },
} as const;

export const reportSchema = {
  type: 'object',
  additionalProperties: false,
  properties: reportFields,
} as const;

/** A checkpoint from outside the worker protocol; the size limit (64 KB of JSON) is checked when it is stored. */
export const checkpointSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['attempt_id'],
  properties: {
    attempt_id: { type: 'string', minLength: 1, maxLength: 100 },
    data: {},
    file: { type: 'string', minLength: 1, maxLength: 4096 },
  },
} as const;

export const dlqListQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 1000 },
    cursor: { type: 'string', maxLength: 100 },
    type: { type: 'string', maxLength: 100 },
    tenant: { type: 'string', maxLength: 63 },
  },
} as const;

/** Which dead-lettered jobs (ids or a filter) and what to change on each. */
export const dlqRequeueSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    job_ids: { type: 'array', minItems: 1, maxItems: 10000, items: { type: 'string', minLength: 1, maxLength: 100 } },
    filter: {
      type: 'object',
      additionalProperties: false,
      properties: {
        type: { type: 'string', maxLength: 100 },
        tenant: { type: 'string', maxLength: 63 },
        name: { type: 'string', maxLength: 200 },
        error_contains: { type: 'string', minLength: 1, maxLength: 1000 },
      },
    },
    limit: { type: 'integer', minimum: 1, maximum: 10000 },
    parameters: { type: 'object', maxProperties: 1000 },
    env: stringMap(1000),
    command: { type: 'array', minItems: 1, maxItems: 4096, items: { type: 'string', maxLength: 131072 } },
    reason: { type: 'string', maxLength: 1000 },
  },
} as const;
