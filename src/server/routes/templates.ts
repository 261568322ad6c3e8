import type { FastifyInstance } from 'fastify';
import { notFound, validationError } from '../../core/errors.ts';
import type { StoredTemplate } from '../../store/store.ts';
import type { TemplateRequest } from '../../templates/definition.ts';
import { actorOf, type ServerContext } from '../context.ts';
import { iso } from '../views.ts';
import { templateRequestSchema } from '../templateSchemas.ts';

type Body = TemplateRequest & { job_template?: TemplateRequest };
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } as const;

/** A template on the wire: the resolved definition (seed 002 list shape) plus version facts. */
export function templateView(t: StoredTemplate): Record<string, unknown> {
  const d = t.definition;
  return {
    ...d,
    id: d.id,
    version: d.version,
    versions: t.versions ?? [d.version],
    builtin: t.builtin,
    created_at: iso(t.created_at),
    created_by: t.created_by,
  };
}

/** Seed 002 also shows a template wrapped as `{"job_template": {...}}`; both shapes are accepted. */
function unwrap(body: Body): TemplateRequest {
  const { job_template, ...rest } = body;
  if (!job_template) return rest;
  if (Object.keys(rest).length > 0) throw validationError('job_template', 'give the template either wrapped in job_template or at the top level, not both');
  return job_template;
}

/** GET/POST /api/v1/templates, GET/PUT/DELETE /api/v1/templates/{id} (PUT = a new version). */
export function templateRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { store } = ctx;

  app.get<{ Querystring: { category?: string } }>(
    '/api/v1/templates',
    { schema: { querystring: { type: 'object', additionalProperties: false, properties: { category: { type: 'string', maxLength: 100 } } }, summary: 'List job templates (latest version of each)' } },
    async (req) => ({ templates: (await store.listTemplates(req.query.category)).map(templateView) }),
  );

  app.post<{ Body: Body }>('/api/v1/templates', { schema: { body: templateRequestSchema, summary: 'Create a job template (version 1)' } }, async (req, reply) => {
    const t = await store.createTemplate(unwrap(req.body), actorOf(req.principal));
    return reply.status(201).send({ ...templateView(t), message: `template ${t.definition.id} created (version ${t.definition.version})` });
  });

  app.get<{ Params: { id: string }; Querystring: { version?: number } }>(
    '/api/v1/templates/:id',
    {
      schema: {
        params: idParams,
        querystring: { type: 'object', additionalProperties: false, properties: { version: { type: 'integer', minimum: 1 } } },
        summary: 'A job template (latest version, or ?version=N)',
      },
    },
    async (req) => {
      const t = await store.getTemplate(req.params.id, req.query.version);
      if (!t) throw notFound(req.query.version ? `template version ${req.query.version} of` : 'template', req.params.id);
      return templateView(t);
    },
  );

  app.put<{ Params: { id: string }; Body: Body }>(
    '/api/v1/templates/:id',
    { schema: { params: idParams, body: templateRequestSchema, summary: 'Update a job template: a new version (fields left out are kept)' } },
    async (req) => {
      const t = await store.updateTemplate(req.params.id, unwrap(req.body), actorOf(req.principal));
      return { ...templateView(t), message: `template ${t.definition.id} is now version ${t.definition.version}` };
    },
  );

  app.delete<{ Params: { id: string } }>('/api/v1/templates/:id', { schema: { params: idParams, summary: 'Delete a job template (jobs keep the version they ran)' } }, async (req) => {
    await store.deleteTemplate(req.params.id);
    return { id: req.params.id, deleted: true };
  });
}
