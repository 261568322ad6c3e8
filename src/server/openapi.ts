import type { FastifyInstance, RouteOptions } from 'fastify';
import { ERROR_CODES } from '../core/errors.ts';

/** Collects every route's schema as it is registered and serves them as an OpenAPI 3.1 document. */
export function collectOpenApi(app: FastifyInstance, version: string): () => Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  app.addHook('onRoute', (route: RouteOptions) => {
    if (!route.url.startsWith('/api/') && !['/health', '/ready', '/metrics'].includes(route.url)) return;
    const url = route.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((m) => m !== 'HEAD');
    const schema = (route.schema ?? {}) as Record<string, unknown> & { params?: { properties?: Record<string, unknown> }; querystring?: { properties?: Record<string, unknown> } };
    for (const m of methods) {
      const params: unknown[] = [];
      for (const [name, s] of Object.entries(schema.params?.properties ?? {})) params.push({ name, in: 'path', required: true, schema: s });
      for (const [name, s] of Object.entries(schema.querystring?.properties ?? {})) params.push({ name, in: 'query', required: false, schema: s });
      (paths[url] ??= {})[m.toLowerCase()] = {
        summary: schema.summary,
        parameters: params.length ? params : undefined,
        requestBody: schema.body ? { required: true, content: { 'application/json': { schema: schema.body } } } : undefined,
        security: url === '/health' ? [] : [{ bearer: [] }],
        responses: { default: { description: 'See docs/api.md; errors are {error: {code, message, field?}}' } },
      };
    }
  });
  return () => ({
    openapi: '3.1.0',
    info: { title: 'Gantry API', version },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { ErrorCode: { type: 'string', enum: Object.keys(ERROR_CODES) } },
    },
    paths,
  });
}
