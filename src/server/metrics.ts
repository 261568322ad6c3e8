import type { FastifyInstance } from 'fastify';
import { Gauge, Registry } from 'prom-client';
import type { BreakerState } from '../core/breakers.ts';
import type { ServerContext } from './context.ts';
import { SharedRead } from './sharedRead.ts';

/**
 * A scrape reads the store at most every 2 s, or ten times what the last read took if longer (its
 * counts walk every job and attempt); scrapes in between, or during a read, get the last numbers.
 */
const REUSE = { slow_ms: 0, min_age_ms: 2000, age_factor: 10 } as const;
const BREAKER_LEVEL: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/**
 * `GET /metrics` in the Prometheus text format (prom-client), read from the store at scrape time
 * so every server reports the same cluster-wide numbers: jobs by state, queue depth per queue,
 * attempts by outcome, dead-lettered jobs, workers by state, and each circuit breaker's state
 * (0 closed, 1 half-open, 2 open) and consecutive failures; and, of this server alone, the jobs its
 * scheduler placed by cycle and by direct placement. Needs a bearer token like the API.
 */
export function metricsRoute(app: FastifyInstance, ctx: ServerContext): void {
  const { store } = ctx;
  const registry = new Registry();
  const jobs = new Gauge({ name: 'gantry_jobs', help: 'Jobs by state', labelNames: ['state'], registers: [registry] });
  const depth = new Gauge({ name: 'gantry_queue_depth', help: 'QUEUED jobs per executor queue (command, or handler name)', labelNames: ['queue'], registers: [registry] });
  const attempts = new Gauge({ name: 'gantry_attempts', help: 'Attempts by outcome', labelNames: ['outcome'], registers: [registry] });
  const dead = new Gauge({ name: 'gantry_dead_letter_jobs', help: 'Jobs in the dead-letter queue', registers: [registry] });
  const workers = new Gauge({ name: 'gantry_workers', help: 'Workers by state', labelNames: ['state'], registers: [registry] });
  const breakerState = new Gauge({ name: 'gantry_breaker_state', help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open', labelNames: ['key'], registers: [registry] });
  const breakerFailures = new Gauge({ name: 'gantry_breaker_consecutive_failures', help: 'Consecutive failures seen by a circuit breaker', labelNames: ['key'], registers: [registry] });
  const leader = new Gauge({ name: 'gantry_scheduler_leader', help: '1 if this server runs the scheduler', registers: [registry] });
  const placedBy = new Gauge({
    name: 'gantry_scheduler_placed_jobs', labelNames: ['by'], registers: [registry],
    help: "Jobs this server has placed since it started: by a scheduling cycle, or by their own submit (direct placement, SQLite)",
  });
  const scrape = new SharedRead(() => collect(), REUSE);

  async function collect(): Promise<string> {
    const [counts, ws, breakers] = await Promise.all([store.countJobs(), store.listWorkers(true), store.listBreakers()]);
    registry.resetMetrics();
    for (const [state, n] of Object.entries(counts.by_state)) jobs.set({ state }, n);
    for (const [queue, n] of Object.entries(counts.queue_depth)) depth.set({ queue: queue === '' ? 'command' : queue }, n);
    for (const [outcome, n] of Object.entries(counts.attempts_by_outcome)) attempts.set({ outcome }, n);
    dead.set(counts.dead_lettered);
    for (const state of ['online', 'draining', 'offline']) workers.set({ state }, ws.filter((w) => w.state === state).length);
    for (const b of breakers) {
      breakerState.set({ key: b.key }, BREAKER_LEVEL[b.state]);
      breakerFailures.set({ key: b.key }, b.consecutive_failures);
    }
    leader.set(ctx.scheduler.isLeader ? 1 : 0);
    const { assigned, placed_on_submit } = ctx.scheduler.stats;
    placedBy.set({ by: 'cycle' }, assigned - placed_on_submit);
    placedBy.set({ by: 'submit' }, placed_on_submit);
    return registry.metrics();
  }

  app.get('/metrics', { schema: { summary: 'Prometheus metrics (jobs, queues, workers, circuit breakers)' } }, async (_req, reply) => {
    return reply.type(registry.contentType).send((await scrape.get()).value);
  });
}
