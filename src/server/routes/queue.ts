import type { FastifyInstance } from 'fastify';
import { PRIORITIES } from '../../core/types.ts';
import { CHANNELS } from '../../store/store.ts';
import { actorOf, type ServerContext } from '../context.ts';
import { SharedRead, SLOW_COUNT_REUSE } from '../sharedRead.ts';
import { humanDuration, jobView } from '../views.ts';
import { decodeCursor, encodeCursor } from './jobs.ts';
import { jobIdParams, reorderSchema, requeueSchema } from '../schemas.ts';

export function queueRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { store } = ctx;
  const status = new SharedRead((now) => store.queueStats(now), SLOW_COUNT_REUSE);

  app.get('/api/v1/queue/status', { schema: { summary: 'Queue length, running and pending jobs, per-priority wait, as counted at `as_of` (see SLOW_COUNT_REUSE)' } }, async () => {
    const { value: s, at: now } = await status.get();
    const queues: Record<string, { length: number; avg_wait_time: string; avg_wait_seconds: number; oldest_wait_seconds: number }> = {};
    for (const p of PRIORITIES) {
      const q = s.per_priority[p];
      const avg = q.length ? q.sum_wait_ms / q.length : 0;
      queues[p] = {
        length: q.length,
        avg_wait_time: humanDuration(avg),
        avg_wait_seconds: Math.round(avg / 100) / 10,
        oldest_wait_seconds: q.oldest_queued_at === null ? 0 : Math.round((now - q.oldest_queued_at) / 100) / 10,
      };
    }
    return {
      queue_length: s.queued + s.retrying,
      running_jobs: s.running + s.scheduled + s.paused,
      pending_jobs: s.queued,
      retrying_jobs: s.retrying,
      paused_jobs: s.paused,
      queues,
      as_of: new Date(now).toISOString(),
    };
  });

  app.post<{ Body: { job_id: string; new_position: number; reason?: string } }>(
    '/api/v1/queue/reorder',
    { schema: { body: reorderSchema, summary: 'Move a queued job to a position within its priority class' } },
    async (req) => {
      const job = await store.reorderJob(req.body.job_id, req.body.new_position, req.body.reason ?? 'no reason given', actorOf(req.principal));
      store.notify(CHANNELS.SCHEDULE);
      return { ...jobView(job), queue_position: await store.queuePosition(job) };
    },
  );

  app.get<{ Querystring: { limit?: number; cursor?: string } }>(
    '/api/v1/dead-letter',
    {
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000 }, cursor: { type: 'string', maxLength: 100 } } },
        summary: 'Jobs that failed for good, with their failure history',
      },
    },
    async (req) => {
      const limit = req.query.limit ?? 50;
      const jobs = await store.listJobs({ dead_letter: true }, limit, req.query.cursor ? decodeCursor(req.query.cursor) : null);
      const out = [];
      for (const j of jobs) out.push(jobView(j, await store.jobAttempts(j.id)));
      const last = jobs[jobs.length - 1];
      return { jobs: out, next_cursor: jobs.length === limit && last ? encodeCursor(last.seq) : null };
    },
  );

  app.post<{ Params: { id: string }; Body: { reason?: string; parameters?: Record<string, unknown> } | undefined }>(
    '/api/v1/dead-letter/:id/requeue',
    { schema: { params: jobIdParams, body: requeueSchema, summary: 'Requeue a dead-lettered job, optionally with new parameters' } },
    async (req) => {
      const job = await store.requeueJob(req.params.id, req.body?.reason ?? 'requeued from dead-letter queue', actorOf(req.principal), req.body?.parameters);
      store.notify(CHANNELS.SCHEDULE);
      return jobView(job);
    },
  );
}
