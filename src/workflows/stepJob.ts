/**
 * How a workflow step becomes a job: a handler or a command directly, or a job template
 * rendered with the step's parameters. The step's retries and timeout apply to every job it
 * creates; its jobs carry labels naming the run and step.
 */
import { normalizeJobSpec, type JobRequest } from '../core/jobSpec.ts';
import { renderTemplate } from '../templates/render.ts';
import { templatesIn } from '../store/ops/templates.ts';
import type { StepJobBuilder } from '../store/ops/advanceWorkflows.ts';
import { renderValue } from './expr.ts';

export const buildStepJob: StepJobBuilder = async (tx, step, parameters, ctx) => {
  const name = `${ctx.workflow_name}.${step.step_id}${ctx.map_index === null ? '' : `[${ctx.map_index}]`}`;
  const labels = { 'gantry.workflow_run': ctx.run_id, 'gantry.step': step.step_id };
  const common: JobRequest = {
    name,
    parameters,
    labels,
    env: {
      ...(renderValue(step.env, ctx.expr) as Record<string, string>),
      // A command step reads its rendered parameters from here (JSON).
      GANTRY_PARAMS: JSON.stringify(parameters),
    },
    retry_policy: { max_attempts: step.retries + 1, retry_delay: step.retry_delay },
    resources: step.resources,
    ...(step.timeout !== null ? { timeout: step.timeout } : {}),
    ...(step.priority !== null ? { priority: step.priority } : {}),
  };
  if (step.handler !== null) return normalizeJobSpec({ ...common, handler: step.handler });
  if (step.command !== null) {
    const argv = (renderValue(step.command, ctx.expr) as unknown[]).map((a) => (typeof a === 'string' ? a : JSON.stringify(a)));
    return normalizeJobSpec({ ...common, command: argv });
  }
  // A template keeps its own retry policy unless the step sets retries.
  const { parameters: _p, retry_policy, ...overrides } = common;
  return renderTemplate(templatesIn(tx), step.job_template!, parameters, { ...overrides, ...(step.retries > 0 ? { retry_policy } : {}) }, `steps.${step.step_id}.`);
};
