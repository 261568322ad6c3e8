import type { FastifyInstance } from 'fastify';
import type { Job } from '../../core/types.ts';
import { notFound } from '../../core/errors.ts';
import { queueInsight, type QueueInsight } from '../../scheduler/estimate.ts';
import { explainJob } from '../../scheduler/jobExplanation.ts';
import type { ServerContext } from '../context.ts';
import { iso } from '../views.ts';
import { jobIdParams } from '../schemas.ts';

/**
 * Queue position, estimated start and pending reason of a QUEUED job for the submit answer and
 * GET /jobs/{id}, from the scheduling model: the policy's explanation and estimate. Facts about
 * the cluster's shape (no worker serves the queue, no worker is large enough) keep their
 * established wording. `submit`: the answer to a submit — the cluster view may be up to 250 ms
 * old and jobs of one shape submitted together share one policy run, and a job the scheduler has
 * already placed is answered with its placement; `position`: the queue position when already known
 * (read with the submit's write).
 */
export async function jobInsight(ctx: ServerContext, job: Job, opts: { submit?: boolean; position?: number } = {}): Promise<QueueInsight> {
  const now = Date.now();
  // The cycle a submit wakes runs before its answer is built (SubmitCoalescer): a job it has already
  // placed starts now. Its placement is the answer; the policy's estimate from a cluster view up to
  // 250 ms old could still see a job that has just ended and put the start seconds later.
  const placed = opts.submit ? ctx.store.placedAt(job.id) : null;
  if (placed !== null) {
    return { queue_position: opts.position ?? (await ctx.store.queuePosition(job)), estimated_start_time: iso(placed), pending_reason: null };
  }
  // A submit's answer counts its position on the store's connection, right after its write; other reads off the event loop.
  const base = await queueInsight(ctx.store, job, now, { allow_stale: opts.submit, position: opts.position, long_read: !opts.submit });
  const shape = base.pending_reason !== null && /^no (online|worker is large enough)/.test(base.pending_reason);
  if (shape) return base;
  const e = await explainJob(ctx.store, ctx.scheduler, job, now, { shared: opts.submit });
  return {
    queue_position: base.queue_position,
    estimated_start_time: e.estimated_start !== null ? iso(e.estimated_start) : base.estimated_start_time,
    pending_reason: e.admissible ? null : (e.summary ?? base.pending_reason),
  };
}

export function explainRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { id: string } }>(
    '/api/v1/jobs/:id/explain',
    { schema: { params: jobIdParams, summary: 'Why a job is pending: plain words and structured reasons, with its estimated start' } },
    async (req) => {
      const job = await ctx.store.getJob(req.params.id);
      if (!job) throw notFound('job', req.params.id);
      const e = await explainJob(ctx.store, ctx.scheduler, job);
      const queued = job.state === 'QUEUED';
      const base = queued ? await queueInsight(ctx.store, job) : null;
      return {
        job_id: job.id,
        status: job.state,
        summary: e.admissible ? 'nothing holds it back: it starts on the next scheduling cycle' : e.summary,
        reasons: e.reasons,
        estimated_start_time: e.estimated_start !== null ? iso(e.estimated_start) : (base?.estimated_start_time ?? null),
        queue_position: base?.queue_position ?? null,
        tenant: e.tenant,
      };
    },
  );
}
