import type { FastifyInstance } from 'fastify';
import type { Priority } from '../../core/types.ts';
import { GantryError, notFound, validationError } from '../../core/errors.ts';
import { parsePriority } from '../../core/priorities.ts';
import { effectiveTenant, isTier, TIERS, type ResourceAmounts, type TenantRecord } from '../../core/tiers.ts';
import { CHANNELS, type TenantChanges, type TenantLoad } from '../../store/store.ts';
import { actorOf, type ServerContext } from '../context.ts';
import { SharedRead, SLOW_COUNT_REUSE } from '../sharedRead.ts';
import { iso } from '../views.ts';
import { prioritySchema } from '../schemas.ts';

const amounts = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    cpu_cores: { type: 'number', minimum: 0, maximum: 1e7 },
    memory_gb: { type: 'number', minimum: 0, maximum: 1e9 },
    gpu_count: { type: 'integer', minimum: 0, maximum: 1e6 },
  },
} as const;

const tenantId = { type: 'string', minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' } as const;

const settings = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  tier: { type: 'string', maxLength: 50 },
  cohort: tenantId,
  quota: amounts,
  borrowing_limit: amounts,
  lending_limit: amounts,
  max_running_jobs: { type: ['integer', 'null'], minimum: 0, maximum: 1e7 },
  fair_share_weight: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 1e6 },
  allowed_priorities: { type: ['array', 'null'], maxItems: 6, items: prioritySchema },
  paused: { type: 'boolean' },
} as const;

export const tenantCreateSchema = { type: 'object', additionalProperties: false, required: ['id'], properties: { id: tenantId, ...settings } } as const;
export const tenantUpdateSchema = { type: 'object', additionalProperties: false, properties: settings } as const;
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 63 } } } as const;

/** The wire body of a tenant create/update (`quota` = nominal quota overrides). */
interface TenantBody {
  id?: string;
  name?: string;
  tier?: string;
  cohort?: string;
  quota?: ResourceAmounts | null;
  borrowing_limit?: ResourceAmounts | null;
  lending_limit?: ResourceAmounts | null;
  max_running_jobs?: number | null;
  fair_share_weight?: number | null;
  allowed_priorities?: string[] | null;
  paused?: boolean;
}

function changesFrom(b: TenantBody): TenantChanges {
  const c: TenantChanges = {};
  if (b.tier !== undefined) {
    if (!isTier(b.tier)) throw validationError('tier', `unknown tier '${b.tier}' (${TIERS.join(', ')})`);
    c.tier = b.tier;
  }
  if (b.name !== undefined) c.name = b.name;
  if (b.cohort !== undefined) c.cohort = b.cohort;
  if (b.quota !== undefined) c.nominal_quota = b.quota;
  if (b.borrowing_limit !== undefined) c.borrowing_limit = b.borrowing_limit;
  if (b.lending_limit !== undefined) c.lending_limit = b.lending_limit;
  if (b.max_running_jobs !== undefined) c.max_running_jobs = b.max_running_jobs;
  if (b.fair_share_weight !== undefined) c.fair_share_weight = b.fair_share_weight;
  if (b.allowed_priorities !== undefined) {
    c.allowed_priorities = b.allowed_priorities === null ? null : [...new Set(b.allowed_priorities.map((p) => parsePriority(p) as Priority))];
  }
  if (b.paused !== undefined) c.paused = b.paused;
  return c;
}

/** A tenant on the wire: what it overrides, and what is in force (tier defaults + overrides). */
export function tenantView(t: TenantRecord, ctx: ServerContext): Record<string, unknown> {
  const e = effectiveTenant(t.id, t, ctx.tenants.default_tier);
  return {
    tenant_id: t.id,
    name: t.name,
    tier: t.tier,
    cohort: t.cohort,
    paused: t.paused,
    overrides: {
      quota: t.nominal_quota, borrowing_limit: t.borrowing_limit, lending_limit: t.lending_limit,
      max_running_jobs: t.max_running_jobs, fair_share_weight: t.fair_share_weight, allowed_priorities: t.allowed_priorities,
    },
    effective: {
      quota: e.nominal_quota, borrowing_limit: e.borrowing_limit, lending_limit: e.lending_limit,
      max_running_jobs: e.max_running_jobs, fair_share_weight: e.fair_share_weight, allowed_priorities: e.allowed_priorities,
    },
    created_at: iso(t.created_at),
    updated_at: iso(t.updated_at),
  };
}

/**
 * Tenants: CRUD, and pause/resume of a tenant's queue. Every write wakes the scheduler, whose
 * next cycle reads the table afresh — a quota change applies without a restart.
 */
export function tenantRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { store } = ctx;
  const changed = () => {
    ctx.tenants.invalidate();
    store.notify(CHANNELS.SCHEDULE);
  };
  const adminOnly = (p: { role: string } | null) => {
    if (p && p.role !== 'admin') throw new GantryError('FORBIDDEN', 'only an admin token may change tenants');
  };

  app.get('/api/v1/tenants', { schema: { summary: 'Tenants with their tier, overrides and effective settings' } }, async () => ({
    tenants: (await store.listTenants()).map((t) => tenantView(t, ctx)),
    default_tier: ctx.tenants.default_tier,
  }));

  app.post<{ Body: TenantBody & { id: string } }>('/api/v1/tenants', { schema: { body: tenantCreateSchema, summary: 'Create a tenant' } }, async (req, reply) => {
    adminOnly(req.principal);
    const c = changesFrom(req.body);
    const t = await store.createTenant(req.body.id, { ...c, tier: c.tier ?? 'basic' });
    changed();
    return reply.status(201).send(tenantView(t, ctx));
  });

  // Per tenant, its queued jobs are counted like the queue status's (SLOW_COUNT_REUSE).
  const loads = new Map<string, SharedRead<TenantLoad>>();
  app.get<{ Params: { id: string } }>('/api/v1/tenants/:id', { schema: { params: idParams, summary: 'A tenant, with what its jobs hold now (`load`, as counted at `load.as_of`)' } }, async (req) => {
    const t = await store.getTenant(req.params.id);
    if (!t) throw notFound('tenant', req.params.id);
    let load = loads.get(t.id);
    if (!load) loads.set(t.id, (load = new SharedRead(() => store.tenantLoad(t.id), SLOW_COUNT_REUSE)));
    const { value, at } = await load.get();
    return { ...tenantView(t, ctx), load: { ...value, as_of: iso(at) } };
  });

  for (const method of ['put', 'patch'] as const) {
    app[method]<{ Params: { id: string }; Body: TenantBody }>(
      '/api/v1/tenants/:id',
      { schema: { params: idParams, body: tenantUpdateSchema, summary: method === 'put' ? 'Replace a tenant (unset settings go back to tier defaults)' : 'Change some settings of a tenant' } },
      async (req) => {
        adminOnly(req.principal);
        const t = await store.updateTenant(req.params.id, changesFrom(req.body), method === 'put');
        changed();
        return tenantView(t, ctx);
      },
    );
  }

  app.delete<{ Params: { id: string } }>('/api/v1/tenants/:id', { schema: { params: idParams, summary: 'Delete a tenant (its jobs fall back to the default tier)' } }, async (req) => {
    adminOnly(req.principal);
    await store.deleteTenant(req.params.id);
    loads.delete(req.params.id);
    changed();
    return { tenant_id: req.params.id, deleted: true };
  });

  for (const action of ['pause', 'resume'] as const) {
    app.post<{ Params: { id: string } }>(
      `/api/v1/tenants/:id/${action}`,
      { schema: { params: idParams, summary: action === 'pause' ? "Hold a tenant's queued jobs (running ones go on)" : "Release a tenant's queue" } },
      async (req) => {
        adminOnly(req.principal);
        const t = await store.updateTenant(req.params.id, { paused: action === 'pause' }, false);
        changed();
        req.log.info({ tenant: t.id, actor: actorOf(req.principal) }, `tenant queue ${action}d`);
        return tenantView(t, ctx);
      },
    );
  }
}
