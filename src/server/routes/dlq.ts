import type { FastifyInstance } from 'fastify';
import { notFound, validationError } from '../../core/errors.ts';
import { CHANNELS, type DeadLetterSelection, type RequeueEdits } from '../../store/store.ts';
import { actorOf, type ServerContext } from '../context.ts';
import { jobView } from '../views.ts';
import { decodeCursor, encodeCursor } from './jobs.ts';
import { dlqListQuery, dlqRequeueSchema, jobIdParams } from '../schemas.ts';

type RequeueBody = DeadLetterSelection & RequeueEdits & { reason?: string };

/**
 * The dead-letter queue with each job's full failure history: `GET /dlq` lists (every attempt's
 * outcome, exit code, error and times), `GET /dlq/{id}` adds the events, and `POST /dlq/requeue`
 * requeues one or many (ids or a filter) with edited parameters, env or command, all or nothing.
 */
export function dlqRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { store } = ctx;

  app.get<{ Querystring: { limit?: number; cursor?: string; type?: string; tenant?: string } }>(
    '/api/v1/dlq',
    { schema: { querystring: dlqListQuery, summary: 'Dead-lettered jobs, newest first, each with every attempt' } },
    async (req) => {
      const limit = req.query.limit ?? 50;
      const jobs = await store.listJobs({ dead_letter: true, type: req.query.type, tenant: req.query.tenant }, limit, req.query.cursor ? decodeCursor(req.query.cursor) : null);
      const out = [];
      for (const j of jobs) out.push(jobView(j, await store.jobAttempts(j.id)));
      const last = jobs[jobs.length - 1];
      return { jobs: out, next_cursor: jobs.length === limit && last ? encodeCursor(last.seq) : null };
    },
  );

  app.get<{ Params: { id: string } }>('/api/v1/dlq/:id', { schema: { params: jobIdParams, summary: 'A dead-lettered job with its attempts and events' } }, async (req) => {
    const job = await store.getJob(req.params.id);
    if (!job || job.dead_lettered_at === null) throw notFound('dead-lettered job', req.params.id);
    const [attempts, events] = await Promise.all([store.jobAttempts(job.id), store.jobEvents(job.id)]);
    return {
      ...jobView(job, attempts),
      dead_lettered_at: new Date(job.dead_lettered_at).toISOString(),
      events: events.map((e) => ({ at: new Date(e.at).toISOString(), from: e.from_state, to: e.to_state, reason: e.reason, actor: e.actor, data: e.data })),
    };
  });

  app.post<{ Body: RequeueBody }>(
    '/api/v1/dlq/requeue',
    { schema: { body: dlqRequeueSchema, summary: 'Requeue dead-lettered jobs (ids or a filter) with edited parameters, env or command' } },
    async (req) => {
      const b = req.body;
      if ((b.job_ids === undefined) === (b.filter === undefined)) throw validationError('job_ids', 'give exactly one of `job_ids` or `filter`');
      const ids = await store.requeueDeadLetters(
        { job_ids: b.job_ids, filter: b.filter, limit: b.limit },
        { parameters: b.parameters, env: b.env, command: b.command },
        b.reason ?? 'requeued from dead-letter queue',
        actorOf(req.principal),
      );
      if (ids.length > 0) store.notify(CHANNELS.SCHEDULE);
      return { requeued: ids.length, job_ids: ids };
    },
  );
}
