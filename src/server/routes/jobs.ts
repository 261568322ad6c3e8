import type { FastifyInstance } from 'fastify';
import type { DependencyType, JobState, Priority } from '../../core/types.ts';
import { GantryError, notFound } from '../../core/errors.ts';
import type { JobRequest } from '../../core/jobSpec.ts';
import { resolveJobRequest } from '../../templates/jobRequest.ts';
import { dependenciesSchema } from '../templateSchemas.ts';
import { parsePriority } from '../../core/priorities.ts';
import { isFinal } from '../../core/states.ts';
import { CHANNELS } from '../../store/store.ts';
import { breakerKeysOf, breakerPendingReason } from '../../core/breakers.ts';
import { jobInsight } from './explain.ts';
import { SubmitCoalescer } from '../submitCoalescer.ts';
import { actorOf, type ServerContext } from '../context.ts';
import { gangView, jobView } from '../views.ts';
import {
  batchRequestSchema, jobIdParams, jobRequestSchema, listJobsQuery, priorityChangeSchema, reasonSchema, requeueSchema,
} from '../schemas.ts';

export function encodeCursor(seq: number): string {
  return Buffer.from(`s:${seq}`).toString('base64url');
}

export function decodeCursor(c: string): number {
  const m = /^s:(\d{1,15})$/.exec(Buffer.from(c, 'base64url').toString('utf8'));
  if (!m) throw new GantryError('INVALID_CURSOR', 'cursor is not one this server issued', { field: 'cursor' });
  return Number(m[1]);
}

type IdParams = { id: string };

export function jobRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { store } = ctx;
  // Single submits that arrive together share one transaction (group commit).
  const submitter = new SubmitCoalescer(store, {
    cycle_behind: () => ctx.scheduler.cycleBehindSubmit(),
    // A lone submit places its job on a worker whose poll waits here, when the scheduler allows it.
    direct: () => ctx.scheduler.directPlacement(() => ctx.waitingWorkers?.() ?? []),
    placed: (n) => ctx.scheduler.placedOnSubmit(n),
  });

  app.post<{ Body: JobRequest }>('/api/v1/jobs', { schema: { body: jobRequestSchema, summary: 'Submit a job (a command, a handler, or a template with parameters)' } }, async (req, reply) => {
    const spec = await resolveJobRequest(store.templates, req.body);
    await ctx.tenants.assertMaySubmit([spec]);
    const res = await submitter.submit(spec, actorOf(req.principal));
    const job = res.job;
    // The same model as GET /jobs/{id} and /explain: the policy's estimate (src/server/routes/explain.ts).
    const insight = job.state === 'QUEUED' ? await jobInsight(ctx, job, { submit: true, position: res.queue_position }) : null;
    const deps = await store.dependencyStatus(job);
    return reply.status(res.created ? 201 : 200).send({
      job_id: job.id,
      status: job.state,
      message: res.created ? 'Job submitted successfully' : 'Job already submitted with this idempotency key',
      queue_position: insight?.queue_position ?? null,
      estimated_start_time: insight?.estimated_start_time ?? null,
      ...(job.template ? { template: job.template, template_version: job.template_version } : {}),
      ...(deps ? { waiting_for: deps.waiting_for, pending_reason: deps.pending_reason ?? (job.state === 'CANCELLED' ? job.error : null) } : {}),
    });
  });

  app.post<{ Body: { jobs: JobRequest[]; execution_mode?: 'parallel' | 'sequential' } }>(
    '/api/v1/jobs/batch',
    { schema: { body: batchRequestSchema, summary: 'Submit many jobs at once (all or nothing)' } },
    async (req, reply) => {
      const mode = req.body.execution_mode ?? 'parallel';
      const specs = [];
      for (const [i, j] of req.body.jobs.entries()) specs.push(await resolveJobRequest(store.templates, j, `jobs[${i}].`));
      // Sequential: each job waits for the one before it (all_complete unless the entry says otherwise).
      if (mode === 'sequential') {
        specs.forEach((s, i) => {
          if (i === 0) return;
          s.depends_on_index = [i - 1];
          s.dependency_type ??= 'all_complete';
        });
      }
      await ctx.tenants.assertMaySubmit(specs, (i) => `jobs[${i}].`);
      const results = await store.submitJobs(specs, actorOf(req.principal), Date.now(), { batch: true });
      store.notify(CHANNELS.SCHEDULE);
      return reply.status(201).send({
        job_ids: results.map((r) => r.job.id),
        jobs: results.map((r) => ({ job_id: r.job.id, status: r.job.state, created: r.created })),
        execution_mode: mode,
        message: `${results.filter((r) => r.created).length} jobs submitted`,
      });
    },
  );

  app.get<{ Querystring: { status?: string; tenant?: string; type?: string; priority?: string; limit?: number; cursor?: string } }>(
    '/api/v1/jobs',
    { schema: { querystring: listJobsQuery, summary: 'List jobs, newest first' } },
    async (req) => {
      const q = req.query;
      const limit = q.limit ?? 50;
      const jobs = await store.listJobs(
        {
          state: q.status ? (q.status.toUpperCase() as JobState) : undefined,
          tenant: q.tenant,
          type: q.type,
          priority: q.priority ? (parsePriority(q.priority) as Priority) : undefined,
        },
        limit,
        q.cursor ? decodeCursor(q.cursor) : null,
      );
      const last = jobs[jobs.length - 1];
      return { jobs: jobs.map((j) => jobView(j)), next_cursor: jobs.length === limit && last ? encodeCursor(last.seq) : null };
    },
  );

  app.get<{ Params: IdParams }>('/api/v1/jobs/:id', { schema: { params: jobIdParams, summary: 'A job with its attempts (and dependencies)' } }, async (req) => {
    const job = await store.getJob(req.params.id);
    if (!job) throw notFound('job', req.params.id);
    const [attempts, saved] = await Promise.all([store.jobAttempts(job.id), store.checkpointsOf([job.id])]);
    const view = jobView(job, attempts);
    const c = saved.get(job.id);
    view.last_checkpoint = c ? { attempt: c.attempt, saved_at: new Date(c.at).toISOString(), size: c.size, file: c.file } : null;
    if (job.nodes > 1) view.gang = gangView(job.nodes, await store.gangMembers(job.id, job.current_attempt_id));
    if (job.state === 'QUEUED') {
      Object.assign(view, await jobInsight(ctx, job));
      // An open circuit breaker is the reason that wins: nothing else will move the job until it closes.
      const keys = new Set(breakerKeysOf(job));
      const held = breakerPendingReason((await store.listBreakers(true)).filter((b) => keys.has(b.key)), Date.now());
      if (held) view.pending_reason = held;
    }
    const deps = await store.dependencyStatus(job);
    if (deps) Object.assign(view, deps);
    return view;
  });

  app.post<{ Params: IdParams; Body: { depends_on: string[]; dependency_type?: DependencyType } }>(
    '/api/v1/jobs/:id/dependencies',
    { schema: { params: jobIdParams, body: dependenciesSchema, summary: 'Make a SUBMITTED or QUEUED job wait for other jobs' } },
    async (req) => {
      const released = await store.addJobDependencies(req.params.id, req.body.depends_on, req.body.dependency_type ?? 'all_complete', actorOf(req.principal));
      if (released.length > 0) store.notify(CHANNELS.SCHEDULE);
      const job = (await store.getJob(req.params.id))!;
      return { ...jobView(job), ...(await store.dependencyStatus(job)), message: `job ${job.id} is ${job.state}` };
    },
  );

  app.get<{ Params: IdParams }>('/api/v1/jobs/:id/events', { schema: { params: jobIdParams, summary: 'Every state transition of a job' } }, async (req) => {
    const job = await store.getJob(req.params.id);
    if (!job) throw notFound('job', req.params.id);
    const events = await store.jobEvents(job.id);
    return {
      job_id: job.id,
      events: events.map((e) => ({ at: new Date(e.at).toISOString(), from: e.from_state, to: e.to_state, reason: e.reason, actor: e.actor, data: e.data })),
    };
  });

  const wake = async (r: { wake_worker: string | null; job: { id: string; nodes: number } }) => {
    if (r.wake_worker) store.notify(CHANNELS.WORKER, r.wake_worker);
    // A gang's members sit on several workers, none on the job row: wake each.
    if (r.job.nodes > 1) for (const w of await store.gangWorkersOf([r.job.id])) store.notify(CHANNELS.WORKER, w);
  };

  app.post<{ Params: IdParams; Body: { reason?: string } | undefined }>(
    '/api/v1/jobs/:id/cancel',
    { schema: { params: jobIdParams, body: reasonSchema, summary: 'Cancel a job (stops it if running)' } },
    async (req, reply) => {
      const r = await store.cancelJob(req.params.id, req.body?.reason ?? 'cancelled by user', actorOf(req.principal));
      await wake(r);
      store.notify(CHANNELS.SCHEDULE);
      return reply.status(r.job.state === 'CANCELLED' ? 200 : 202).send({ ...jobView(r.job), message: r.job.state === 'CANCELLED' ? 'cancelled' : 'cancel requested; the worker is stopping the job' });
    },
  );

  for (const action of ['pause', 'resume'] as const) {
    app.post<{ Params: IdParams; Body: { reason?: string } | undefined }>(
      `/api/v1/jobs/:id/${action}`,
      { schema: { params: jobIdParams, body: reasonSchema, summary: `${action === 'pause' ? 'Pause (SIGSTOP)' : 'Resume (SIGCONT)'} a running job` } },
      async (req, reply) => {
        const r = await store.controlJob(req.params.id, action, actorOf(req.principal));
        await wake(r);
        return reply.status(202).send({ ...jobView(r.job), message: `${action} requested` });
      },
    );
  }

  app.post<{ Params: IdParams; Body: { reason?: string; parameters?: Record<string, unknown> } | undefined }>(
    '/api/v1/jobs/:id/retry',
    { schema: { params: jobIdParams, body: requeueSchema, summary: 'Run a FAILED, TIMEOUT or CANCELLED job again' } },
    async (req) => {
      const job = await store.requeueJob(req.params.id, req.body?.reason ?? 'manual retry', actorOf(req.principal), req.body?.parameters);
      store.notify(CHANNELS.SCHEDULE);
      return jobView(job);
    },
  );

  app.put<{ Params: IdParams; Body: { priority: string; reason?: string } }>(
    '/api/v1/jobs/:id/priority',
    { schema: { params: jobIdParams, body: priorityChangeSchema, summary: 'Change a job priority' } },
    async (req) => {
      const current = await store.getJob(req.params.id);
      if (current) await ctx.tenants.assertMaySubmit([{ ...current, priority: parsePriority(req.body.priority)! }]);
      const job = await store.setPriority(req.params.id, parsePriority(req.body.priority)!, req.body.reason ?? 'no reason given', actorOf(req.principal));
      store.notify(CHANNELS.SCHEDULE);
      return jobView(job);
    },
  );

  app.get<{ Params: IdParams; Querystring: { follow?: boolean; after?: number } }>(
    '/api/v1/jobs/:id/logs',
    {
      schema: {
        params: jobIdParams,
        querystring: { type: 'object', additionalProperties: false, properties: { follow: { type: 'boolean' }, after: { type: 'integer', minimum: 0 } } },
        summary: 'stdout/stderr of a job; follow=true streams NDJSON until the job ends',
      },
    },
    async (req, reply) => {
      const job = await store.getJob(req.params.id);
      if (!job) throw notFound('job', req.params.id);
      let after = req.query.after ?? 0;
      if (!req.query.follow) {
        const chunks = await store.readLogs(job.id, after, 10000);
        return { job_id: job.id, logs: chunks, next_after: chunks.length ? chunks[chunks.length - 1]!.seq : after };
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      let closed = false;
      res.on('close', () => (closed = true));
      let wakeUp: (() => void) | null = null;
      const unlisten = store.listen(CHANNELS.JOB, (id) => {
        if (id === job.id) wakeUp?.();
      });
      try {
        while (!closed) {
          const chunks = await store.readLogs(job.id, after, 1000);
          for (const c of chunks) res.write(JSON.stringify(c) + '\n');
          if (chunks.length) after = chunks[chunks.length - 1]!.seq;
          if (chunks.length === 1000) continue;
          const now = await store.getJob(job.id);
          if (!now || (isFinal(now.state) && !(await store.readLogs(job.id, after, 1)).length)) {
            res.write(JSON.stringify({ end: true, status: now?.state ?? null, exit_code: now?.exit_code ?? null }) + '\n');
            break;
          }
          // Wake on this job's reports; a slow timer covers reports that land on another server.
          await new Promise<void>((r) => {
            const t = setTimeout(r, 1000);
            wakeUp = () => (clearTimeout(t), r());
          });
          wakeUp = null;
        }
      } finally {
        unlisten();
        res.end();
      }
    },
  );
}
