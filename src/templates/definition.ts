/**
 * Job templates (seed 002): a named, versioned recipe for jobs — declared parameters (validated
 * when a job is submitted), default parameters, resource requirements, execution steps, and the
 * command/env/image to run with `{{ name }}` placeholders filled from the parameters.
 *
 * - `compileTemplate` checks a create/update request and resolves inheritance: a template with
 *   `base_template` starts from the base's latest version (pinned as `base_version`) and overrides
 *   it field by field; `custom_parameters` are extra default parameters (declared if new).
 * - The resolved definition is stored per version, so a job that ran version N can always be
 *   explained by it; PUT makes version N+1 and re-resolves the base.
 */
import type { Resources, RetryPolicy } from '../core/types.ts';
import { validationError } from '../core/errors.ts';
import { placeholders } from './placeholders.ts';

export const PARAMETER_TYPES = ['string', 'integer', 'number', 'boolean', 'object', 'array', 'any'] as const;
export type ParameterType = (typeof PARAMETER_TYPES)[number];
const TYPE_ALIASES: Readonly<Record<string, ParameterType>> = {
  str: 'string', int: 'integer', float: 'number', double: 'number', bool: 'boolean', dict: 'object', map: 'object', list: 'array',
};

export interface ParameterSpec {
  name: string;
  type: ParameterType;
  required: boolean;
  /** Allowed values (for an array parameter: allowed items). */
  options?: unknown[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
}

export interface TemplateStep {
  step: string;
  /** Seconds for this step; null = only the job's timeout. */
  timeout: number | null;
  /** argv with placeholders; absent = the template's command, with `{{ step }}` = this step's name. */
  command?: string[];
}

/** A resolved template version (inheritance already applied). */
export interface TemplateDefinition {
  id: string;
  version: number;
  name: string;
  description: string;
  category: string;
  parameters: ParameterSpec[];
  default_parameters: Record<string, unknown>;
  /** Accept parameters the template does not declare (default false: unknown names are refused). */
  additional_parameters: boolean;
  resource_requirements: Partial<Resources>;
  execution_steps: TemplateStep[];
  command: string[] | null;
  handler: string | null;
  /** A container image reference, recorded on the job as label `image` (the process executor runs commands, not images). */
  image: string | null;
  env: Record<string, string>;
  working_dir: string | null;
  /** Job type of the jobs it makes (default: the template id). */
  type: string | null;
  priority: string | null;
  timeout: number | null;
  retry_policy: Partial<RetryPolicy>;
  labels: Record<string, string>;
  expected_duration: number | null;
  base_template: string | null;
  base_version: number | null;
  /** Ancestors, nearest first (refuses inheritance cycles). */
  lineage: string[];
}

/** What POST/PUT /templates take (seed 002 shapes; all optional on PUT). */
export interface TemplateRequest {
  id?: string;
  name?: string;
  description?: string;
  category?: string;
  parameters?: (Omit<ParameterSpec, 'type' | 'required'> & { type?: string; required?: boolean })[];
  default_parameters?: Record<string, unknown>;
  additional_parameters?: boolean;
  resource_requirements?: Partial<Resources>;
  execution_steps?: { step?: string; name?: string; timeout?: number | null; command?: string[] }[];
  command?: string[];
  handler?: string;
  image?: string;
  env?: Record<string, string>;
  working_dir?: string;
  type?: string;
  priority?: string;
  timeout?: number;
  retry_policy?: Partial<RetryPolicy>;
  labels?: Record<string, string>;
  expected_duration?: number;
  base_template?: string;
  custom_parameters?: Record<string, unknown>;
}

/** Names a placeholder may use besides the parameters. */
export const BUILTIN_VARIABLES: ReadonlySet<string> = new Set(['step', 'tenant', 'template', 'template_version', 'templates_dir', 'job_name', 'priority']);

/** `My Template!` → `my_template`: the id of a template created with only a display name. */
export function templateIdFrom(name: string): string {
  return name.trim().toLowerCase().replace(/[^a-z0-9_.-]+/g, '_').replace(/^[^a-z0-9]+|_+$/g, '') || 'template';
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

export function normalizeType(t: string | undefined, field: string): ParameterType {
  if (t === undefined) return 'any';
  const k = TYPE_ALIASES[t] ?? t;
  if (!(PARAMETER_TYPES as readonly string[]).includes(k)) throw validationError(field, `unknown parameter type '${t}' (${PARAMETER_TYPES.join(', ')})`);
  return k as ParameterType;
}

function inferType(v: unknown): ParameterType {
  const t = typeOf(v);
  return t === 'string' || t === 'number' || t === 'boolean' || t === 'object' || t === 'array' ? t : 'any';
}

/** Why `value` does not fit `spec`, or null when it does. */
export function parameterProblem(spec: ParameterSpec, value: unknown): string | null {
  const show = (v: unknown) => (typeof v === 'string' ? `'${v}'` : JSON.stringify(v));
  const t = typeOf(value);
  const ok =
    spec.type === 'any' ||
    (spec.type === 'integer' ? Number.isInteger(value) : spec.type === 'number' ? t === 'number' && Number.isFinite(value as number) : t === spec.type);
  if (!ok) return `expected ${spec.type}, got ${t} ${show(value)}`;
  if (typeof value === 'number') {
    if (spec.minimum !== undefined && value < spec.minimum) return `${value} is below the minimum ${spec.minimum}`;
    if (spec.maximum !== undefined && value > spec.maximum) return `${value} is above the maximum ${spec.maximum}`;
  }
  if (spec.options && spec.options.length > 0) {
    const allowed = (v: unknown) => spec.options!.some((o) => JSON.stringify(o) === JSON.stringify(v));
    const list = spec.options.map((o) => (typeof o === 'string' ? o : JSON.stringify(o))).join(', ');
    if (spec.type === 'array' && Array.isArray(value)) {
      const bad = value.find((v) => !allowed(v));
      if (bad !== undefined) return `item ${show(bad)} is not one of ${list}`;
    } else if (!allowed(value)) return `${show(value)} is not one of ${list}`;
  }
  return null;
}

function compileParameters(req: TemplateRequest['parameters']): ParameterSpec[] {
  const out: ParameterSpec[] = [];
  const seen = new Set<string>();
  (req ?? []).forEach((p, i) => {
    const f = `parameters[${i}]`;
    if (seen.has(p.name)) throw validationError(`${f}.name`, `parameter '${p.name}' is declared twice`);
    seen.add(p.name);
    const spec: ParameterSpec = { name: p.name, type: normalizeType(p.type, `${f}.type`), required: p.required ?? false };
    if (p.options !== undefined) spec.options = p.options;
    if (p.description !== undefined) spec.description = p.description;
    if (p.minimum !== undefined) spec.minimum = p.minimum;
    if (p.maximum !== undefined) spec.maximum = p.maximum;
    if (spec.options) {
      for (const o of spec.options) {
        const probe: ParameterSpec = { ...spec, options: undefined };
        const itemType = spec.type === 'array' ? null : parameterProblem(probe, o);
        if (itemType) throw validationError(`${f}.options`, `option ${JSON.stringify(o)}: ${itemType}`);
      }
    }
    if (p.default !== undefined) {
      spec.default = p.default;
      const bad = parameterProblem(spec, p.default);
      if (bad) throw validationError(`${f}.default`, bad);
    }
    out.push(spec);
  });
  return out;
}

/** Base parameters overridden by name, new ones appended. */
function mergeParameters(base: readonly ParameterSpec[], own: readonly ParameterSpec[]): ParameterSpec[] {
  const byName = new Map(base.map((p) => [p.name, p]));
  for (const p of own) byName.set(p.name, p);
  return [...byName.values()];
}

const EMPTY: Omit<TemplateDefinition, 'id' | 'version' | 'name'> = {
  description: '', category: 'general', parameters: [], default_parameters: {}, additional_parameters: false,
  resource_requirements: {}, execution_steps: [], command: null, handler: null, image: null, env: {}, working_dir: null,
  type: null, priority: null, timeout: null, retry_policy: {}, labels: {}, expected_duration: null,
  base_template: null, base_version: null, lineage: [],
};

/**
 * Checks a template request and resolves it against its base (already loaded, or null).
 * `id`/`version` are decided by the caller. Throws VALIDATION_FAILED naming the field.
 */
export function compileTemplate(req: TemplateRequest, id: string, version: number, base: TemplateDefinition | null): TemplateDefinition {
  if (base && (base.id === id || base.lineage.includes(id))) {
    throw validationError('base_template', `template ${id} cannot inherit from ${base.id}, which inherits from ${id}`);
  }
  const from: Omit<TemplateDefinition, 'id' | 'version' | 'name'> = base ? { ...base } : { ...EMPTY };
  const own = compileParameters(req.parameters);
  let parameters = mergeParameters(from.parameters, own);
  const default_parameters = { ...from.default_parameters, ...req.default_parameters, ...req.custom_parameters };
  // custom_parameters not declared anywhere become optional parameters of their value's type.
  for (const [k, v] of Object.entries(req.custom_parameters ?? {})) {
    if (!parameters.some((p) => p.name === k)) parameters = [...parameters, { name: k, type: inferType(v), required: false }];
  }
  for (const [k, v] of Object.entries(default_parameters)) {
    const spec = parameters.find((p) => p.name === k);
    const bad = spec ? parameterProblem(spec, v) : null;
    if (bad) throw validationError(`default_parameters.${k}`, bad);
  }
  const steps: TemplateStep[] | undefined = req.execution_steps?.map((s, i) => {
    const name = s.step ?? s.name;
    if (!name) throw validationError(`execution_steps[${i}].step`, 'is required (the step name)');
    const step: TemplateStep = { step: name, timeout: s.timeout ?? null };
    if (s.command) step.command = s.command;
    return step;
  });
  const def: TemplateDefinition = {
    ...from,
    id,
    version,
    name: req.name ?? id,
    description: req.description ?? (base ? from.description : ''),
    category: req.category ?? from.category,
    parameters,
    default_parameters,
    additional_parameters: req.additional_parameters ?? from.additional_parameters,
    resource_requirements: { ...from.resource_requirements, ...req.resource_requirements },
    execution_steps: steps ?? from.execution_steps,
    command: req.command ?? (req.handler ? null : from.command),
    handler: req.handler ?? (req.command ? null : from.handler),
    image: req.image ?? from.image,
    env: { ...from.env, ...req.env },
    working_dir: req.working_dir ?? from.working_dir,
    type: req.type ?? from.type,
    priority: req.priority ?? from.priority,
    timeout: req.timeout ?? from.timeout,
    retry_policy: { ...from.retry_policy, ...req.retry_policy },
    labels: { ...from.labels, ...req.labels },
    expected_duration: req.expected_duration ?? from.expected_duration,
    base_template: base ? base.id : null,
    base_version: base ? base.version : null,
    lineage: base ? [base.id, ...base.lineage] : [],
  };
  if (def.handler && def.execution_steps.length > 0) {
    throw validationError('execution_steps', 'a handler template runs one call; execution steps need a command');
  }
  checkPlaceholders(def);
  return def;
}

/** Every `{{ name }}` must be a parameter, a default parameter or a built-in variable. */
function checkPlaceholders(def: TemplateDefinition): void {
  const known = new Set([...def.parameters.map((p) => p.name), ...Object.keys(def.default_parameters), ...BUILTIN_VARIABLES]);
  const check = (field: string, text: string) => {
    for (const name of placeholders(text)) {
      const root = name.split('.')[0]!;
      if (!known.has(root) && !def.additional_parameters) {
        throw validationError(field, `placeholder {{ ${name} }} names no parameter of template ${def.id}`);
      }
    }
  };
  def.command?.forEach((a, i) => check(`command[${i}]`, a));
  def.execution_steps.forEach((s, i) => s.command?.forEach((a, j) => check(`execution_steps[${i}].command[${j}]`, a)));
  for (const [k, v] of Object.entries(def.env)) check(`env.${k}`, v);
  for (const [k, v] of Object.entries(def.labels)) check(`labels.${k}`, v);
  if (def.image) check('image', def.image);
  if (def.working_dir) check('working_dir', def.working_dir);
}
