import type { FastifyInstance } from 'fastify';
import { notFound } from '../../core/errors.ts';
import { CHANNELS } from '../../store/store.ts';
import type { ServerContext } from '../context.ts';
import { breakerView } from '../views.ts';

/** Circuit breakers (src/core/breakers.ts): list, and close one by hand. */
export function breakerRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { store } = ctx;

  app.get('/api/v1/breakers', { schema: { summary: 'Circuit breakers per executor queue and template' } }, async () => ({
    threshold: ctx.breakers?.threshold ?? 0,
    open_seconds: (ctx.breakers?.open_ms ?? 0) / 1000,
    breakers: (await store.listBreakers()).map(breakerView),
  }));

  app.post<{ Params: { key: string } }>(
    '/api/v1/breakers/:key/reset',
    { schema: { params: { type: 'object', required: ['key'], properties: { key: { type: 'string', minLength: 1, maxLength: 300 } } }, summary: 'Close a circuit breaker now' } },
    async (req) => {
      const b = await store.resetBreaker(req.params.key);
      if (!b) throw notFound('breaker', req.params.key);
      store.notify(CHANNELS.SCHEDULE);
      return breakerView(b);
    },
  );
}
