import type { FastifyInstance } from 'fastify';
import { validationError } from '../../core/errors.ts';
import type { ServerContext } from '../context.ts';
import { clusterYaml, traceLines } from '../traceExport.ts';

const traceQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { since: { type: 'string', maxLength: 40 }, until: { type: 'string', maxLength: 40 } },
} as const;

function time(field: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(t)) throw validationError(field, `'${v}' is not an ISO time or epoch milliseconds`);
  return t;
}

/** Recorded history for the simulator's what-if: `GET /api/v1/trace` (JSONL) and `GET /api/v1/trace/cluster` (YAML). */
export function traceRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Querystring: { since?: string; until?: string } }>(
    '/api/v1/trace',
    { schema: { querystring: traceQuery, summary: 'Finished jobs as a simulator trace (JSONL), optionally within [since, until)' } },
    async (req, reply) => {
      const since = time('since', req.query.since, 0);
      const until = time('until', req.query.until, Number.MAX_SAFE_INTEGER);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      try {
        for await (const line of traceLines(ctx.store, since, until)) {
          if (!res.write(line)) await new Promise((r) => res.once('drain', r));
          if (res.destroyed) break;
        }
      } finally {
        res.end();
      }
    },
  );
  app.get('/api/v1/trace/cluster', { schema: { summary: "The cluster (workers, tenants' quotas) as the simulator's YAML" } }, async (_req, reply) => {
    return reply.type('text/yaml').send(await clusterYaml(ctx.store, ctx.tenants.default_tier));
  });
}
