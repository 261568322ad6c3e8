/**
 * Turning a template into a job: `renderTemplate(source, name, parameters, overrides)` is THE
 * function for it — the jobs API, the CLI's create-* commands and the workflow engine all call it.
 * It validates the parameters (missing required, wrong type, not in options, unknown name — each
 * error names `parameters.<name>`), fills `{{ name }}` placeholders in command, steps, env, image and
 * working dir, takes resources from the template's defaults overridden by the request, and returns
 * a normal JobSpec that records the template id and version.
 */
import { fileURLToPath } from 'node:url';
import type { ExecutionStep, JobSpec } from '../core/types.ts';
import { validationError } from '../core/errors.ts';
import { normalizeJobSpec, type JobRequest } from '../core/jobSpec.ts';
import { parameterProblem, type TemplateDefinition } from './definition.ts';
import { fill } from './placeholders.ts';

/** Where templates come from: the Store, or a transaction (`templatesIn(tx)`, src/store/ops/templates.ts). */
export interface TemplateSource {
  /** The latest live version, or the given version (even of a deleted template: jobs pinned it). */
  getTemplate(id: string, version?: number): Promise<TemplateDefinition | null>;
}

/** What a request may set on top of a template (everything but what to run). */
export type TemplateOverrides = Omit<JobRequest, 'command' | 'handler' | 'parameters'> & { template_version?: number };

/** The built-in templates' folder (`{{ templates_dir }}` in their commands). */
export const TEMPLATES_DIR = fileURLToPath(new URL('../../templates/', import.meta.url)).replace(/\/$/, '');

/**
 * The template's parameters after defaults (a parameter's `default`, then `default_parameters`,
 * then the request), validated. `field` prefixes error fields (`parameters`, `jobs[2].parameters`).
 */
export function resolveParameters(def: TemplateDefinition, given: Readonly<Record<string, unknown>>, field = 'parameters'): Record<string, unknown> {
  const where = `template ${def.id} v${def.version}`;
  const out: Record<string, unknown> = {};
  for (const p of def.parameters) if (p.default !== undefined) out[p.name] = p.default;
  Object.assign(out, def.default_parameters, given);
  const declared = new Set(def.parameters.map((p) => p.name));
  if (!def.additional_parameters) {
    for (const k of Object.keys(given)) {
      if (!declared.has(k) && !Object.hasOwn(def.default_parameters, k)) {
        throw validationError(`${field}.${k}`, `unknown parameter; ${where} takes ${[...declared].join(', ') || 'no parameters'}`);
      }
    }
  }
  for (const p of def.parameters) {
    const v = out[p.name];
    if (v === undefined || v === null) {
      if (p.required) throw validationError(`${field}.${p.name}`, `is required by ${where}${p.description ? ` (${p.description})` : ''}`);
      continue;
    }
    const bad = parameterProblem(p, v);
    if (bad) throw validationError(`${field}.${p.name}`, `${bad} (${where})`);
  }
  return out;
}

/**
 * Renders template `name` (latest version, or `overrides.template_version`) with `parameters`
 * into a JobSpec. `prefix` names the request in errors (`jobs[3].` in a batch).
 */
export async function renderTemplate(
  source: TemplateSource, name: string, parameters: Readonly<Record<string, unknown>> = {}, overrides: TemplateOverrides = {}, prefix = '',
): Promise<JobSpec> {
  const def = await source.getTemplate(name, overrides.template_version);
  if (!def) {
    const v = overrides.template_version;
    throw validationError(v === undefined ? `${prefix}template` : `${prefix}template_version`, v === undefined ? `unknown template '${name}'` : `template '${name}' has no version ${v}`);
  }
  return renderDefinition(def, parameters, overrides, prefix);
}

/** renderTemplate for a definition already in hand. */
export function renderDefinition(def: TemplateDefinition, parameters: Readonly<Record<string, unknown>>, overrides: TemplateOverrides = {}, prefix = ''): JobSpec {
  const params = resolveParameters(def, parameters, `${prefix}parameters`);
  const vars: Record<string, unknown> = {
    ...params, tenant: overrides.tenant ?? 'default', template: def.id, template_version: def.version, templates_dir: TEMPLATES_DIR,
    job_name: overrides.name ?? def.id, priority: overrides.priority ?? def.priority ?? 'normal', step: '',
  };
  const argv = (a: readonly string[], v: Record<string, unknown>) => a.map((x) => fill(x, v));
  let steps: ExecutionStep[] | null = null;
  if (def.execution_steps.length > 0) {
    steps = def.execution_steps.map((s, i) => {
      const cmd = s.command ?? def.command;
      if (!cmd) throw validationError(`${prefix}template`, `template ${def.id} v${def.version}: step ${i + 1} (${s.step}) has no command and the template none to fall back on`);
      return { name: s.step, command: argv(cmd, { ...vars, step: s.step }), timeout: s.timeout };
    });
  }
  const command = def.command ? argv(def.command, vars) : (steps?.[0]?.command ?? null);
  if (!command && !def.handler) {
    throw validationError(`${prefix}template`, `template ${def.id} v${def.version} defines no command or handler; use it as a base_template`);
  }
  if (command && !command[0]) throw validationError(`${prefix}template`, `template ${def.id} v${def.version}: the command renders to an empty program name`);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(def.env)) env[k] = fill(v, vars);
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(def.labels)) labels[k] = fill(v, vars);
  if (def.image) labels.image = fill(def.image, vars);
  const { template_version: _pin, ...o } = overrides;
  const req: JobRequest = {
    ...o,
    name: o.name ?? def.id,
    type: o.type ?? def.type ?? def.id,
    priority: o.priority ?? def.priority ?? undefined,
    resources: { ...def.resource_requirements, ...o.resources },
    ...(command ? { command } : { handler: def.handler! }),
    env: { ...env, GANTRY_TEMPLATE: `${def.id}@${def.version}`, GANTRY_PARAMETERS: JSON.stringify(params), ...o.env },
    working_dir: o.working_dir ?? (def.working_dir ? fill(def.working_dir, vars) : undefined),
    timeout: o.timeout ?? def.timeout ?? undefined,
    // A named policy on the request replaces the template's; an object refines it field by field.
    retry_policy: typeof o.retry_policy === 'string' ? o.retry_policy : { ...def.retry_policy, ...o.retry_policy },
    labels: { ...labels, ...o.labels },
    parameters: params,
    expected_duration: o.expected_duration ?? def.expected_duration ?? undefined,
  };
  for (const k of Object.keys(req) as (keyof JobRequest)[]) if (req[k] === undefined) delete req[k];
  return { ...normalizeJobSpec(req, prefix), template: def.id, template_version: def.version, steps };
}
