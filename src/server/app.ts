import Fastify, { type FastifyInstance } from 'fastify';
import { Ajv } from 'ajv';
import { GantryError } from '../core/errors.ts';
import type { ServerContext } from './context.ts';
import { errorHandler } from './errors.ts';
import { collectOpenApi } from './openapi.ts';
import { jobRoutes } from './routes/jobs.ts';
import { queueRoutes } from './routes/queue.ts';
import { workerRoutes } from './routes/workers.ts';
import { breakerRoutes } from './routes/breakers.ts';
import { checkpointRoutes } from './routes/checkpoints.ts';
import { dlqRoutes } from './routes/dlq.ts';
import { metricsRoute } from './metrics.ts';
import { finishInFlightOnClose } from './shutdown.ts';
import { workflowRoutes } from './routes/workflows.ts';
import { scheduleRoutes } from './routes/schedules.ts';
import { templateRoutes } from './routes/templates.ts';
import { tenantRoutes } from './routes/tenants.ts';
import { explainRoutes } from './routes/explain.ts';
import { traceRoutes } from './routes/trace.ts';
import type { TokenInfo } from '../store/store.ts';

export const VERSION = '0.1.0';
const INTERNAL: TokenInfo = { id: 'internal', name: 'embedded-worker', role: 'worker', tenant: null };

export interface AppOptions {
  /** pino logger options, or false for silence (tests). */
  logger?: boolean | Record<string, unknown>;
}

/**
 * The Fastify app: REST API v1 with bearer-token auth on every route but /health.
 * Validation uses the route schemas, compiled once; unknown fields are refused.
 */
export async function buildApp(ctx: ServerContext, opts: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: ctx.body_limit,
    forceCloseConnections: true,
    // Errors Fastify raises before routing (a malformed URL) get the same {error: {code, message}} shape.
    frameworkErrors: (err, req, reply) => errorHandler(err, req, reply),
  });
  // Bodies are JSON and must have the right types; query strings arrive as text and are coerced.
  const bodyAjv = new Ajv({ removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false, strict: false });
  const queryAjv = new Ajv({ removeAdditional: false, coerceTypes: true, useDefaults: false, allErrors: false, strict: false });
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'querystring' || httpPart === 'params' ? queryAjv.compile(schema) : bodyAjv.compile(schema),
  );

  app.decorateRequest('principal', null);
  const inFlight = finishInFlightOnClose(app);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send(new GantryError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`).toJSON());
  });

  const tokenCache = new Map<string, { info: TokenInfo; at: number }>();
  app.addHook('onRequest', async (req) => {
    const path = req.url.split('?')[0];
    if (path === '/health') return;
    const h = req.headers.authorization;
    const m = h ? /^Bearer\s+(\S+)$/i.exec(h) : null;
    if (!m) throw new GantryError('UNAUTHORIZED', 'missing bearer token (Authorization: Bearer <token>)');
    const token = m[1]!;
    if (ctx.internal_token && token === ctx.internal_token) {
      req.principal = INTERNAL;
      return;
    }
    const hit = tokenCache.get(token);
    if (hit && Date.now() - hit.at < 60_000) {
      req.principal = hit.info;
      return;
    }
    const info = await ctx.store.findToken(token);
    if (!info) throw new GantryError('UNAUTHORIZED', 'unknown token');
    if (tokenCache.size > 10_000) tokenCache.clear();
    tokenCache.set(token, { info, at: Date.now() });
    req.principal = info;
  });

  const openapi = collectOpenApi(app, VERSION);
  app.get('/health', { schema: { summary: 'Liveness (no auth)' } }, async () => ({ status: 'ok', version: VERSION }));
  app.get('/ready', { schema: { summary: 'Readiness: the database answers' } }, async (_req, reply) => {
    try {
      // A read of one row, not the queue's counts: a probe every few seconds must cost the same with a million jobs queued.
      await ctx.store.ping();
      return { status: 'ready', store: ctx.store.dialect, scheduler_leader: ctx.scheduler.isLeader };
    } catch (err) {
      return reply.status(503).send(new GantryError('STORE_UNAVAILABLE', `database unavailable: ${(err as Error).message}`).toJSON());
    }
  });
  app.get('/api/v1/openapi.json', { schema: { summary: 'This API as OpenAPI 3.1' } }, async () => openapi());

  jobRoutes(app, ctx);
  queueRoutes(app, ctx);
  workerRoutes(app, ctx);
  breakerRoutes(app, ctx);
  checkpointRoutes(app, ctx);
  dlqRoutes(app, ctx);
  metricsRoute(app, ctx);
  inFlight.waitOnClose();
  workflowRoutes(app, ctx);
  scheduleRoutes(app, ctx);
  templateRoutes(app, ctx);
  tenantRoutes(app, ctx);
  explainRoutes(app, ctx);
  traceRoutes(app, ctx);
  return app;
}
