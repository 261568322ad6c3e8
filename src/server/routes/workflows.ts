import type { FastifyInstance } from 'fastify';
import { GantryError, notFound } from '../../core/errors.ts';
import { normalizeWorkflow, workflowRequestSchema, type WorkflowRequest } from '../../workflows/definition.ts';
import type { StoredWorkflow, WorkflowRun } from '../../store/store.ts';
import type { RunStep } from '../../store/ops/advanceWorkflows.ts';
import { actorOf, type ServerContext } from '../context.ts';

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 200 } } } as const;
const runBody = {
  type: 'object',
  additionalProperties: false,
  properties: { parameters: { type: 'object', maxProperties: 1000 }, reason: { type: 'string', maxLength: 1000 } },
} as const;

export function workflowView(w: StoredWorkflow, versions?: number): Record<string, unknown> {
  return {
    workflow_id: w.id,
    workflow_name: w.name,
    version: w.version,
    ...(versions !== undefined ? { versions } : {}),
    description: w.description,
    parameters: w.definition.parameters,
    steps: w.definition.steps,
    created_at: iso(w.created_at),
    created_by: w.created_by,
  };
}

function runView(r: WorkflowRun, steps?: RunStep[], wf?: StoredWorkflow): Record<string, unknown> {
  const defs = new Map(wf?.definition.steps.map((s) => [s.step_id, s]) ?? []);
  return {
    run_id: r.id,
    workflow_id: r.workflow_id,
    workflow_name: r.workflow_name,
    version: r.version,
    status: r.state,
    parameters: r.parameters,
    trigger: r.trigger,
    rerun_of: r.rerun_of,
    created_at: iso(r.created_at),
    finished_at: iso(r.finished_at),
    duration_ms: r.finished_at === null ? null : r.finished_at - r.created_at,
    ...(steps
      ? {
          steps: steps.map((s) => ({
            step_id: s.step_id,
            status: s.state,
            depends_on: defs.get(s.step_id)?.depends_on ?? [],
            trigger_rule: defs.get(s.step_id)?.trigger_rule ?? 'all_success',
            outputs: s.outputs,
            error: s.error,
            map_total: s.map_total,
            started_at: iso(s.started_at),
            finished_at: iso(s.finished_at),
            reused_from: s.reused_from,
            jobs: s.jobs.map((j) => ({ job_id: j.job_id, map_index: j.map_index, status: j.state })),
          })),
        }
      : {}),
  };
}

/**
 * Workflows: versioned definitions (seed 002's body), runs with each step's state and outputs,
 * cancel, and re-run from the failed steps.
 */
export function workflowRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { store } = ctx;
  const find = async (ref: string) => {
    const wf = await store.findWorkflow(ref);
    if (!wf) throw notFound('workflow', ref);
    return wf;
  };

  const create = async (body: WorkflowRequest, actor: string) => {
    const def = normalizeWorkflow(body);
    for (const [i, s] of def.steps.entries()) {
      if (s.job_template !== null && !(await store.getTemplate(s.job_template))) {
        throw new GantryError('VALIDATION_FAILED', `steps[${i}].job_template: unknown template '${s.job_template}'`, { field: `steps[${i}].job_template` });
      }
    }
    const wf = await store.createWorkflow(def, actor);
    return {
      workflow_id: wf.id,
      workflow_name: wf.name,
      version: wf.version,
      status: 'created',
      message: wf.version === 1 ? 'Workflow created successfully' : `Workflow updated: version ${wf.version}`,
      steps: def.steps.map((s) => s.step_id),
      created_at: iso(wf.created_at),
    };
  };

  app.post<{ Body: WorkflowRequest }>('/api/v1/workflows', { schema: { body: workflowRequestSchema, summary: 'Create a workflow (or a new version of one)' } }, async (req, reply) => {
    return reply.status(201).send(await create(req.body, actorOf(req.principal)));
  });

  app.put<{ Params: { id: string }; Body: WorkflowRequest }>(
    '/api/v1/workflows/:id',
    { schema: { params: idParams, body: workflowRequestSchema, summary: 'Store a new version of a workflow' } },
    async (req, reply) => {
      const cur = await find(req.params.id);
      if (req.body.workflow_name !== cur.name) {
        throw new GantryError('VALIDATION_FAILED', `workflow_name: is '${req.body.workflow_name}', but this workflow is '${cur.name}'`, { field: 'workflow_name' });
      }
      return reply.status(201).send(await create(req.body, actorOf(req.principal)));
    },
  );

  app.get('/api/v1/workflows', { schema: { summary: 'Workflows (latest version of each)' } }, async () => ({
    workflows: (await store.listWorkflows()).map((w) => workflowView(w, w.versions)),
  }));

  app.get<{ Params: { id: string } }>('/api/v1/workflows/:id', { schema: { params: idParams, summary: 'A workflow: by id, by name (latest version) or name@version' } }, async (req) =>
    workflowView(await find(req.params.id)),
  );

  app.post<{ Params: { id: string }; Body: { parameters?: Record<string, unknown> } | undefined }>(
    '/api/v1/workflows/:id/runs',
    { schema: { params: idParams, body: runBody, summary: 'Start a run of a workflow (the version is pinned)' } },
    async (req, reply) => {
      const wf = await find(req.params.id);
      const runId = await store.startWorkflowRun(wf, req.body?.parameters ?? {}, actorOf(req.principal));
      const r = await store.getWorkflowRun(runId);
      return reply.status(201).send({ ...runView(r.run, r.steps, r.workflow), message: 'Workflow run started' });
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit?: number } }>(
    '/api/v1/workflows/:id/runs',
    {
      schema: {
        params: idParams,
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000 } } },
        summary: 'Runs of a workflow (all versions), newest first',
      },
    },
    async (req) => {
      const wf = await find(req.params.id);
      return { workflow_name: wf.name, runs: (await store.listWorkflowRuns(wf.name, req.query.limit ?? 50)).map((r) => runView(r)) };
    },
  );

  const getRun = async (id: string) => {
    try {
      return await store.getWorkflowRun(id);
    } catch (err) {
      if (err instanceof GantryError && err.code === 'NOT_FOUND') throw notFound('workflow run', id);
      throw err;
    }
  };

  app.get<{ Params: { id: string } }>('/api/v1/workflow-runs/:id', { schema: { params: idParams, summary: 'A workflow run with each step\'s state, jobs and outputs' } }, async (req) => {
    const r = await getRun(req.params.id);
    return runView(r.run, r.steps, r.workflow);
  });

  app.post<{ Params: { id: string }; Body: { reason?: string } | undefined }>(
    '/api/v1/workflow-runs/:id/cancel',
    { schema: { params: idParams, body: runBody, summary: 'Cancel a workflow run (its running jobs are stopped)' } },
    async (req) => {
      await getRun(req.params.id);
      await store.cancelWorkflowRun(req.params.id, req.body?.reason ?? 'cancelled by user', actorOf(req.principal));
      const r = await getRun(req.params.id);
      return { ...runView(r.run, r.steps, r.workflow), message: 'Workflow run cancelled' };
    },
  );

  app.post<{ Params: { id: string }; Body: { parameters?: Record<string, unknown> } | undefined }>(
    '/api/v1/workflow-runs/:id/rerun',
    { schema: { params: idParams, body: runBody, summary: 'Re-run a failed run from its failed steps, optionally with edited parameters' } },
    async (req, reply) => {
      await getRun(req.params.id);
      const { run_id, reused } = await store.rerunWorkflowRun(req.params.id, req.body?.parameters ?? {}, actorOf(req.principal));
      const r = await getRun(run_id);
      return reply.status(201).send({ ...runView(r.run, r.steps, r.workflow), reused_steps: reused, message: `Re-run of ${req.params.id} started` });
    },
  );
}
