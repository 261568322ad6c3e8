/**
 * Request schemas of the template and dependency routes (seed 002 shapes). Cross-field rules
 * (placeholders, defaults against parameter types, inheritance) are in src/templates/definition.ts.
 */
import { prioritySchema, resourcesSchema, retryPolicySchema } from './schemas.ts';

const ident = { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' } as const;
const argv = { type: 'array', minItems: 1, maxItems: 4096, items: { type: 'string', maxLength: 131072 } } as const;
const stringMap = { type: 'object', maxProperties: 1000, additionalProperties: { type: 'string', maxLength: 65536 } } as const;

const parameterSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
    type: { type: 'string', maxLength: 20 },
    required: { type: 'boolean' },
    options: { type: 'array', maxItems: 1000 },
    default: {},
    description: { type: 'string', maxLength: 2000 },
    minimum: { type: 'number' },
    maximum: { type: 'number' },
  },
} as const;

const templateProperties = {
  id: ident,
  name: { type: 'string', minLength: 1, maxLength: 200 },
  description: { type: 'string', maxLength: 10000 },
  category: { type: 'string', maxLength: 100 },
  parameters: { type: 'array', maxItems: 200, items: parameterSchema },
  default_parameters: { type: 'object', maxProperties: 1000 },
  custom_parameters: { type: 'object', maxProperties: 1000 },
  additional_parameters: { type: 'boolean' },
  resource_requirements: resourcesSchema,
  execution_steps: {
    type: 'array',
    maxItems: 100,
    items: {
      type: 'object',
      additionalProperties: false,
      properties: {
        step: { type: 'string', minLength: 1, maxLength: 100 },
        name: { type: 'string', minLength: 1, maxLength: 100 },
        timeout: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 2592000 },
        command: argv,
      },
    },
  },
  command: argv,
  handler: ident,
  image: { type: 'string', maxLength: 1000 },
  env: stringMap,
  working_dir: { type: 'string', minLength: 1, maxLength: 4096 },
  type: ident,
  priority: prioritySchema,
  timeout: { type: 'number', exclusiveMinimum: 0, maximum: 2592000 },
  retry_policy: retryPolicySchema,
  labels: stringMap,
  expected_duration: { type: 'number', exclusiveMinimum: 0, maximum: 31536000 },
  base_template: ident,
} as const;

export const templateBodySchema = { type: 'object', additionalProperties: false, properties: templateProperties } as const;

/** POST/PUT body: the template itself, or seed 002's `{"job_template": {...}}` wrapper around it. */
export const templateRequestSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { ...templateProperties, job_template: templateBodySchema },
} as const;

export const dependenciesSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['depends_on'],
  properties: {
    depends_on: { type: 'array', minItems: 1, maxItems: 10000, items: { type: 'string', minLength: 1, maxLength: 100 } },
    dependency_type: { type: 'string', enum: ['all_complete', 'any_complete', 'all_done', 'any_failed'] },
  },
} as const;
