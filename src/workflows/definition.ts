/**
 * Workflow definitions: the wire shape (seed 002: workflow_name, description, steps with step_id,
 * job_template, depends_on, parameters) plus Gantry's additions, normalized and checked once —
 * unknown dependencies, duplicate ids, cycles (named), expressions, references to outputs of
 * steps that are not upstream.
 */
import { parse as parseYaml } from 'yaml';
import { GantryError, validationError } from '../core/errors.ts';
import { parsePriority } from '../core/priorities.ts';
import type { Priority, Resources } from '../core/types.ts';
import { checkExpr, exprPaths, parseExpr, templateExprs } from './expr.ts';

/** Airflow's trigger rules: when a step may run, given its upstream steps' states. */
export const TRIGGER_RULES = ['all_success', 'all_failed', 'all_done', 'one_success', 'one_failed', 'none_failed', 'none_skipped', 'always'] as const;
export type TriggerRule = (typeof TRIGGER_RULES)[number];

/** A step's own states (its jobs keep the ten job states). */
export const STEP_STATES = ['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'UPSTREAM_FAILED', 'SKIPPED', 'CANCELLED'] as const;
export type StepState = (typeof STEP_STATES)[number];
export const FINAL_STEP_STATES: ReadonlySet<StepState> = new Set(['SUCCEEDED', 'FAILED', 'UPSTREAM_FAILED', 'SKIPPED', 'CANCELLED']);

export interface StepDef {
  step_id: string;
  /** Exactly one of job_template, handler, command says what the step runs. */
  job_template: string | null;
  handler: string | null;
  command: string[] | null;
  depends_on: string[];
  parameters: Record<string, unknown>;
  trigger_rule: TriggerRule;
  /** A condition; false → the step is SKIPPED. */
  when: string | null;
  /** An expression giving a list: one job per item (`item`, `index` in parameters). */
  map: string | null;
  /** Extra runs after a failure (0 = none). */
  retries: number;
  retry_delay: number;
  /** Seconds per job; null = none. */
  timeout: number | null;
  env: Record<string, string>;
  resources: Partial<Resources>;
  priority: Priority | null;
}

export interface WorkflowDef {
  workflow_name: string;
  description: string;
  /** Defaults for run parameters. */
  parameters: Record<string, unknown>;
  steps: StepDef[];
}

/** What a client sends (the route schema checks the types first). */
export interface WorkflowRequest {
  workflow_name: string;
  description?: string;
  parameters?: Record<string, unknown>;
  steps: StepRequest[];
}
export interface StepRequest {
  step_id: string;
  job_template?: string;
  handler?: string;
  command?: string[];
  depends_on?: string[];
  parameters?: Record<string, unknown>;
  trigger_rule?: string;
  when?: string;
  map?: string;
  retries?: number;
  retry_delay?: number;
  timeout?: number;
  env?: Record<string, string>;
  resources?: Partial<Resources>;
  priority?: string;
}

const ident = { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' } as const;

export const stepSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['step_id'],
  properties: {
    step_id: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z_][A-Za-z0-9_-]*$' },
    job_template: ident,
    handler: ident,
    command: { type: 'array', minItems: 1, maxItems: 4096, items: { type: 'string', maxLength: 131072 } },
    depends_on: { type: 'array', maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 100 } },
    parameters: { type: 'object', maxProperties: 1000 },
    trigger_rule: { type: 'string', enum: [...TRIGGER_RULES] },
    when: { type: 'string', minLength: 1, maxLength: 2000 },
    map: { type: 'string', minLength: 1, maxLength: 2000 },
    retries: { type: 'integer', minimum: 0, maximum: 99 },
    retry_delay: { type: 'number', minimum: 0, maximum: 86400 },
    timeout: { type: 'number', exclusiveMinimum: 0, maximum: 2592000 },
    env: { type: 'object', maxProperties: 1000, additionalProperties: { type: 'string', maxLength: 65536 } },
    resources: {
      type: 'object',
      additionalProperties: false,
      properties: {
        cpu_cores: { type: 'number', minimum: 0, maximum: 4096 },
        memory_gb: { type: 'number', minimum: 0, maximum: 65536 },
        gpu_count: { type: 'integer', minimum: 0, maximum: 256 },
        storage_gb: { type: 'number', minimum: 0, maximum: 1048576 },
      },
    },
    priority: { type: 'string', enum: ['emergency', 'critical', 'high', 'normal', 'low', 'urgent'] },
  },
} as const;

export const workflowRequestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['workflow_name', 'steps'],
  properties: {
    workflow_name: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
    description: { type: 'string', maxLength: 10000 },
    parameters: { type: 'object', maxProperties: 1000 },
    steps: { type: 'array', minItems: 1, maxItems: 1000, items: stepSchema },
  },
} as const;

const ROOTS = new Set(['params', 'steps', 'item', 'index', 'run']);

/** Checks the roots of an expression's paths, and that `steps.X` is an upstream step of `self`. */
function checkRefs(src: string, field: string, self: StepDef, upstream: ReadonlySet<string>, allowItem: boolean): void {
  const e = checkExpr(src, field);
  for (const p of exprPaths(e)) {
    const root = String(p[0]);
    if (!ROOTS.has(root)) throw validationError(field, `'${root}' is not a known name (use params, steps, item, index or run)`);
    if ((root === 'item' || root === 'index') && !allowItem) throw validationError(field, `'${root}' is only defined in the parameters of a step with \`map\``);
    if (root === 'steps') {
      const id = p[1] === undefined ? null : String(p[1]);
      if (id === null) throw validationError(field, 'name a step: steps.<step_id>.outputs…');
      if (id === self.step_id) throw validationError(field, `step ${id} cannot read its own outputs`);
      if (!upstream.has(id)) throw validationError(field, `step ${id} is not upstream of ${self.step_id}; add it to depends_on (directly or through another step)`);
    }
  }
}

/** A cycle in the graph as `a → b → c → a`, or null. */
export function findCycle(steps: readonly Pick<StepDef, 'step_id' | 'depends_on'>[]): string[] | null {
  const deps = new Map(steps.map((s) => [s.step_id, s.depends_on]));
  const color = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (id: string): string[] | null => {
    color.set(id, 1);
    stack.push(id);
    for (const d of deps.get(id) ?? []) {
      if (color.get(d) === 1) return [...stack.slice(stack.indexOf(d)), d];
      if (!color.has(d)) {
        const c = visit(d);
        if (c) return c;
      }
    }
    stack.pop();
    color.set(id, 2);
    return null;
  };
  for (const s of steps) {
    if (color.has(s.step_id)) continue;
    const c = visit(s.step_id);
    // The walk goes from a step to what it depends on; show it in run order.
    if (c) return c.reverse();
  }
  return null;
}

/** Every step upstream of each step (transitively). Steps must be acyclic. */
export function ancestors(steps: readonly Pick<StepDef, 'step_id' | 'depends_on'>[]): Map<string, Set<string>> {
  const deps = new Map(steps.map((s) => [s.step_id, s.depends_on]));
  const memo = new Map<string, Set<string>>();
  const get = (id: string): Set<string> => {
    let a = memo.get(id);
    if (a) return a;
    a = new Set();
    memo.set(id, a);
    for (const d of deps.get(id) ?? []) {
      a.add(d);
      for (const x of get(d)) a.add(x);
    }
    return a;
  };
  for (const s of steps) get(s.step_id);
  return memo;
}

/** Every step downstream of the given ones (transitively), including them. */
export function descendants(steps: readonly Pick<StepDef, 'step_id' | 'depends_on'>[], from: Iterable<string>): Set<string> {
  const out = new Set(from);
  let grew = true;
  while (grew) {
    grew = false;
    for (const s of steps) {
      if (!out.has(s.step_id) && s.depends_on.some((d) => out.has(d))) {
        out.add(s.step_id);
        grew = true;
      }
    }
  }
  return out;
}

function collectTemplates(v: unknown, out: string[]): void {
  if (typeof v === 'string') out.push(...templateExprs(v));
  else if (Array.isArray(v)) for (const x of v) collectTemplates(x, out);
  else if (v !== null && typeof v === 'object') for (const x of Object.values(v)) collectTemplates(x, out);
}

/**
 * Turns a schema-valid request into a WorkflowDef, or throws VALIDATION_FAILED naming the field
 * (`steps[2].depends_on`, …). A cycle is named in the message: `cycle: a → b → a`.
 */
export function normalizeWorkflow(req: WorkflowRequest): WorkflowDef {
  const seen = new Set<string>();
  const steps: StepDef[] = req.steps.map((s, i) => {
    const f = (k: string) => `steps[${i}].${k}`;
    if (seen.has(s.step_id)) throw validationError(f('step_id'), `duplicate step_id '${s.step_id}'`);
    seen.add(s.step_id);
    const what = [s.job_template, s.handler, s.command].filter((x) => x !== undefined).length;
    if (what !== 1) throw validationError(f('job_template'), 'a step needs exactly one of job_template, handler or command');
    let priority: Priority | null = null;
    if (s.priority !== undefined) priority = parsePriority(s.priority);
    return {
      step_id: s.step_id,
      job_template: s.job_template ?? null,
      handler: s.handler ?? null,
      command: s.command ?? null,
      depends_on: [...new Set(s.depends_on ?? [])],
      parameters: s.parameters ?? {},
      trigger_rule: (s.trigger_rule ?? 'all_success') as TriggerRule,
      when: s.when ?? null,
      map: s.map ?? null,
      retries: s.retries ?? 0,
      retry_delay: s.retry_delay ?? 1,
      timeout: s.timeout ?? null,
      env: s.env ?? {},
      resources: s.resources ?? {},
      priority,
    };
  });
  steps.forEach((s, i) => {
    s.depends_on.forEach((d, j) => {
      if (!seen.has(d)) throw validationError(`steps[${i}].depends_on[${j}]`, `unknown step '${d}'`);
      if (d === s.step_id) throw validationError(`steps[${i}].depends_on[${j}]`, `step ${d} depends on itself (cycle: ${d} → ${d})`);
    });
  });
  const cycle = findCycle(steps);
  if (cycle) {
    const i = steps.findIndex((s) => s.step_id === cycle[0]);
    throw new GantryError('VALIDATION_FAILED', `steps[${i}].depends_on: the steps form a cycle: ${cycle.join(' → ')}`, { field: `steps[${i}].depends_on`, cycle });
  }
  const up = ancestors(steps);
  steps.forEach((s, i) => {
    const a = up.get(s.step_id)!;
    if (s.when) checkRefs(s.when, `steps[${i}].when`, s, a, false);
    if (s.map) checkRefs(s.map, `steps[${i}].map`, s, a, false);
    const refs: string[] = [];
    collectTemplates(s.parameters, refs);
    collectTemplates(s.command, refs);
    collectTemplates(s.env, refs);
    for (const r of refs) checkRefs(r, `steps[${i}].parameters`, s, a, s.map !== null);
  });
  // Run-parameter defaults may not contain references (nothing exists yet to refer to).
  return { workflow_name: req.workflow_name, description: req.description ?? '', parameters: req.parameters ?? {}, steps };
}

/** A definition read from YAML (or JSON) text, in the same shape as the API body. */
export function parseWorkflowFile(text: string): WorkflowRequest {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw validationError('file', `not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw validationError('file', 'a workflow file holds one mapping (workflow_name, steps, …)');
  return doc as WorkflowRequest;
}

/** True when `src` parses (used by builders that check early). */
export function isValidExpr(src: string): boolean {
  try {
    parseExpr(src);
    return true;
  } catch {
    return false;
  }
}
