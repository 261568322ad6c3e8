import type { FastifyInstance } from 'fastify';
import { GantryError, notFound, validationError } from '../../core/errors.ts';
import { normalizeJobSpec, type JobRequest } from '../../core/jobSpec.ts';
import { jobRequestSchema } from '../schemas.ts';
import { CronSchedule } from '../../schedules/cron.ts';
import { CATCHUP_POLICIES, OVERLAP_POLICIES, type Schedule, type ScheduleInput, type ScheduleTarget } from '../../store/ops/schedules.ts';
import type { ServerContext } from '../context.ts';

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 200 } } } as const;

interface ScheduleBody {
  name: string;
  cron: string;
  timezone?: string;
  job?: JobRequest;
  workflow?: { workflow: string; parameters?: Record<string, unknown> };
  catchup?: Schedule['catchup'];
  catchup_window?: number;
  overlap?: Schedule['overlap'];
  enabled?: boolean;
}

const scheduleSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'cron'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
    cron: { type: 'string', minLength: 1, maxLength: 200 },
    timezone: { type: 'string', minLength: 1, maxLength: 100 },
    job: jobRequestSchema,
    workflow: {
      type: 'object',
      additionalProperties: false,
      required: ['workflow'],
      properties: { workflow: { type: 'string', minLength: 1, maxLength: 200 }, parameters: { type: 'object', maxProperties: 1000 } },
    },
    catchup: { type: 'string', enum: [...CATCHUP_POLICIES] },
    catchup_window: { type: 'integer', minimum: 1, maximum: 31_536_000 },
    overlap: { type: 'string', enum: [...OVERLAP_POLICIES] },
    enabled: { type: 'boolean' },
  },
} as const;

const backfillSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['start', 'end'],
  properties: { start: { type: 'string', minLength: 1 }, end: { type: 'string', minLength: 1 } },
} as const;

export function scheduleView(s: Schedule, next: number | null): Record<string, unknown> {
  return {
    schedule_id: s.id,
    name: s.name,
    cron: s.cron,
    timezone: s.timezone,
    target: s.target,
    catchup: s.catchup,
    catchup_window: s.catchup_window,
    overlap: s.overlap,
    enabled: s.enabled,
    next_fire_time: s.enabled ? iso(next) : null,
    last_target_id: s.last_target_id,
    buffered_fire_time: iso(s.buffered_fire),
    created_at: iso(s.created_at),
    updated_at: iso(s.updated_at),
  };
}

/** Checks a body into a schedule: the cron and zone parse, the target is one job or workflow that exists. */
async function toInput(ctx: ServerContext, b: ScheduleBody): Promise<ScheduleInput> {
  const timezone = b.timezone ?? 'UTC';
  new CronSchedule(b.cron, timezone);
  if ((b.job === undefined) === (b.workflow === undefined)) throw validationError('job', 'a schedule starts exactly one of `job` (a job request) or `workflow` ({workflow, parameters})');
  let target: ScheduleTarget;
  if (b.job) {
    normalizeJobSpec(b.job, 'job.');
    target = { kind: 'job', job: b.job as Record<string, unknown> };
  } else {
    if (!(await ctx.store.findWorkflow(b.workflow!.workflow))) throw validationError('workflow.workflow', `no workflow '${b.workflow!.workflow}'`);
    target = { kind: 'workflow', workflow: b.workflow!.workflow, parameters: b.workflow!.parameters ?? {} };
  }
  return {
    name: b.name, cron: b.cron, timezone, target, catchup: b.catchup ?? 'none', catchup_window: b.catchup_window ?? 86_400,
    overlap: b.overlap ?? 'skip', enabled: b.enabled ?? true,
  };
}

const nextOf = (s: Schedule, now = Date.now()) => new CronSchedule(s.cron, s.timezone).next(Math.max(now, s.cursor_at));

/** Cron schedules for jobs and workflows: CRUD, fire history, backfill. Fired by the leader's ScheduleRunner. */
export function scheduleRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { store } = ctx;
  const find = async (ref: string) => {
    const s = await store.getSchedule(ref);
    if (!s) throw notFound('schedule', ref);
    return s;
  };

  app.post<{ Body: ScheduleBody }>('/api/v1/schedules', { schema: { body: scheduleSchema, summary: 'Create a cron schedule for a job or a workflow' } }, async (req, reply) => {
    const s = await store.createSchedule(await toInput(ctx, req.body));
    ctx.schedules?.wake();
    return reply.status(201).send(scheduleView(s, nextOf(s)));
  });

  app.get('/api/v1/schedules', { schema: { summary: 'Schedules' } }, async () => ({
    schedules: (await store.listSchedules()).map((s) => scheduleView(s, nextOf(s))),
  }));

  app.get<{ Params: { id: string } }>('/api/v1/schedules/:id', { schema: { params: idParams, summary: 'A schedule with its recent fires' } }, async (req) => {
    const s = await find(req.params.id);
    const fires = await store.scheduleFires(s.id, 50);
    return {
      ...scheduleView(s, nextOf(s)),
      fires: fires.map((f) => ({ fire_time: iso(f.fire_time), kind: f.kind, outcome: f.outcome, target_id: f.target_id, at: iso(f.created_at) })),
    };
  });

  app.put<{ Params: { id: string }; Body: ScheduleBody }>(
    '/api/v1/schedules/:id',
    { schema: { params: idParams, body: scheduleSchema, summary: 'Replace a schedule\'s settings' } },
    async (req) => {
      await find(req.params.id);
      const s = await store.updateSchedule(req.params.id, await toInput(ctx, req.body));
      ctx.schedules?.wake();
      return scheduleView(s, nextOf(s));
    },
  );

  app.delete<{ Params: { id: string } }>('/api/v1/schedules/:id', { schema: { params: idParams, summary: 'Delete a schedule' } }, async (req) => {
    const s = await store.deleteSchedule(req.params.id);
    return { schedule_id: s.id, name: s.name, deleted: true };
  });

  app.post<{ Params: { id: string }; Body: { start: string; end: string } }>(
    '/api/v1/schedules/:id/backfill',
    { schema: { params: idParams, body: backfillSchema, summary: 'Fire a schedule for every cron time in a past interval (each at most once)' } },
    async (req) => {
      const s = await find(req.params.id);
      const start = Date.parse(req.body.start);
      const end = Date.parse(req.body.end);
      if (Number.isNaN(start)) throw validationError('start', `not an ISO 8601 time: '${req.body.start}'`);
      if (Number.isNaN(end)) throw validationError('end', `not an ISO 8601 time: '${req.body.end}'`);
      if (end < start) throw validationError('end', 'is before start');
      if (end > Date.now()) throw validationError('end', 'is in the future; backfill covers past intervals only');
      if (!ctx.schedules) throw new GantryError('NOT_LEADER', 'this server runs no schedule runner');
      const fires = await ctx.schedules.backfill(s.id, start, end);
      return {
        schedule_id: s.id,
        fires: fires.map((f) => ({ fire_time: iso(f.fire_time), outcome: f.outcome, target_id: f.target_id })),
        message: `${fires.filter((f) => f.outcome === 'started').length} fires started, ${fires.filter((f) => f.outcome === 'duplicate').length} had fired before`,
      };
    },
  );
}
