import type { FastifyInstance } from 'fastify';
import type { WorkerInfo } from '../../core/types.ts';
import { GantryError, notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { CHANNELS, type AttemptReport, type DeliveredJob, type Delivery, type ReportOutcome } from '../../store/store.ts';
import type { LogChunk } from '../../core/types.ts';
import type { ServerContext } from '../context.ts';
import { checkpointWire, iso } from '../views.ts';
import { WAKE } from '../../scheduler/wakeReasons.ts';
import { isMemberReport } from '../../store/ops/gangs.ts';
import { pollSchema, reportSchema, workerRegisterSchema } from '../schemas.ts';

/** Job states in which a job still runs on (or waits for) the attempt a worker holds. */
const HOLDING = new Set<ReportOutcome['state']>(['SCHEDULED', 'RUNNING', 'PAUSED']);

/**
 * Drops from `held` the attempts whose carried reports were applied and left their job out of SCHEDULED,
 * RUNNING and PAUSED: attempt ids are never reused, so no look can hand them out again, and each look would
 * otherwise exclude them one by one (a W1 poll carries and holds 500). `results` are in `reports`'
 * order. A gang member's token stays: its job runs on while other members do.
 */
function forgetEnded(held: Set<string>, reports: readonly AttemptReport[], results: readonly ReportOutcome[]): void {
  for (let i = 0; i < reports.length; i++) {
    const r = reports[i]!, res = results[i];
    if (res?.status === 'applied' && res.job_id === r.job_id && !HOLDING.has(res.state) && !isMemberReport(r)) held.delete(r.attempt_id);
  }
}

type RegisterBody = {
  id?: string;
  name: string;
  kind: WorkerInfo['kind'];
  handlers?: string[];
  capacity: { cpu_cores?: number; memory_gb?: number; gpu_count?: number; slots: number };
  labels?: Record<string, string>;
};

type ReportBatch = { reports?: AttemptReport[]; logs?: (Omit<LogChunk, 'at'> & { at?: number })[] };

/** A long poll waiting for its worker's jobs and controls. */
interface Waiter {
  /** The server's mark when the poll came in (Store.mark): it may take a hand-off of jobs written after it. */
  since: number;
  /** Room for new jobs (the poll's max_jobs). */
  room: number;
  /** Jobs handed to this poll with a wake-up since its last look (HandOff). */
  handed: DeliveredJob[] | null;
  /** Woken without a hand-off since its last look (a control, gang work, another server's assignment): it must look. */
  look: boolean;
  /** Its worker went away (the connection closed, e.g. it moved to another server): what it is handed reaches nobody. */
  gone: boolean;
  wake: () => void;
}

/** Waiting workers a lone submit's direct placement weighs at most (it reads each one's row). */
const MAX_DIRECT_CANDIDATES = 16;

const workerParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } as const;

/**
 * The worker protocol: register → heartbeat (the lease) → long-poll for assignments and
 * controls → report results and logs in batches.
 */
export function workerRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { store } = ctx;
  const waiters = new Map<string, Set<Waiter>>();
  // True when a poll here took every job of the hand-off for its worker: then no other server's poll needs the wake-up
  // (Store.wakeWorker). Not when that poll's worker went away: its next poll may be waiting on another server.
  const unlisten = store.listen(CHANNELS.WORKER, (id, handOff) => {
    const set = waiters.get(id);
    if (!set) return false;
    let given = false;
    let all = false;
    for (const w of set) {
      // The jobs a cycle here just assigned go to one poll, which answers with them instead of looking —
      // one that came in before they were written: its worker can neither hold them nor have ended them
      // (its held and carried reports predate them). Any other wake-up, or a second one, means a look.
      if (handOff && !given && handOff.sent > w.since && w.room > 0 && w.handed === null && !w.look) {
        w.handed = handOff.jobs;
        given = true;
        all = handOff.jobs.length <= w.room && !w.gone;
      } else {
        w.look = true;
      }
      w.wake();
    }
    return all;
  });
  ctx.waitingWorkers = () => {
    const ids: string[] = [];
    for (const [id, set] of waiters) {
      for (const w of set) {
        if (w.room > 0 && w.handed === null && !w.look && !w.gone) {
          ids.push(id);
          break;
        }
      }
      if (ids.length >= MAX_DIRECT_CANDIDATES) break;
    }
    return ids;
  };
  // Closing: every long-poll answers now (with whatever is there), so it does not hold the close up.
  let closing = false;
  const wakeAll = () => {
    for (const set of waiters.values()) {
      for (const w of set) {
        w.look = true;
        w.wake();
      }
    }
  };
  app.addHook('preClose', async () => {
    closing = true;
    wakeAll();
  });
  app.addHook('onClose', async () => {
    unlisten();
    wakeAll();
  });

  app.post<{ Body: RegisterBody }>('/api/v1/workers', { schema: { body: workerRegisterSchema, summary: 'Register a worker and its capacity' } }, async (req, reply) => {
    const b = req.body;
    const w = await store.registerWorker({
      id: b.id ?? newId('wkr'),
      name: b.name,
      kind: b.kind,
      handlers: b.handlers ?? [],
      capacity: { cpu_cores: b.capacity.cpu_cores ?? 0, memory_gb: b.capacity.memory_gb ?? 0, gpu_count: b.capacity.gpu_count ?? 0, slots: b.capacity.slots },
      labels: b.labels ?? {},
    });
    store.notify(CHANNELS.SCHEDULE);
    return reply.status(201).send({ worker_id: w.id, heartbeat_interval_ms: ctx.heartbeat_interval_ms ?? 1000, state: w.state });
  });

  app.get('/api/v1/workers', { schema: { summary: 'Workers with capacity, usage and state' } }, async () => {
    const [workers, usage] = await Promise.all([store.listWorkers(true), store.workerUsage()]);
    return {
      workers: workers.map((w) => {
        const u = usage.get(w.id);
        return {
          worker_id: w.id, name: w.name, kind: w.kind, handlers: w.handlers, state: w.state, capacity: w.capacity, labels: w.labels,
          used: { cpu_cores: u?.cpu_cores ?? 0, memory_gb: u?.memory_gb ?? 0, gpu_count: u?.gpu_count ?? 0, slots: u?.slots ?? 0, gpu_indices: u?.gpu_indices ?? [] },
          registered_at: iso(w.registered_at), last_heartbeat: iso(w.last_heartbeat),
        };
      }),
    };
  });

  app.post<{ Params: { id: string } }>('/api/v1/workers/:id/heartbeat', { schema: { params: workerParams, summary: 'Renew a worker lease' } }, async (req) => {
    if (!(await store.heartbeat(req.params.id))) {
      throw new GantryError('NOT_FOUND', `worker ${req.params.id} is unknown or was declared lost; register again`, { id: req.params.id });
    }
    return { ok: true };
  });

  app.post<{ Params: { id: string } }>('/api/v1/workers/:id/drain', { schema: { params: workerParams, summary: 'Stop giving a worker new work' } }, async (req) => {
    if (!(await store.setWorkerState(req.params.id, 'draining'))) throw notFound('worker', req.params.id);
    return { worker_id: req.params.id, state: 'draining' };
  });

  app.post<{ Params: { id: string } }>('/api/v1/workers/:id/deregister', { schema: { params: workerParams, summary: 'A worker leaving cleanly' } }, async (req) => {
    if (!(await store.getWorker(req.params.id))) throw notFound('worker', req.params.id);
    // A worker that leaves cleanly stopped what it still ran: those attempts were interrupted, not lost.
    const requeued = await store.releaseWorker(req.params.id, `worker ${req.params.id} shut down; job returned to the queue`, `worker:${req.params.id}`, Date.now(), 'interrupted');
    store.notify(CHANNELS.SCHEDULE);
    return { worker_id: req.params.id, state: 'offline', requeued_jobs: requeued };
  });

  /**
   * A worker's batch of reports and log chunks (POST /report, or riding along with a poll):
   * logs first, then the reports; wakes the scheduler when an attempt's end freed room or
   * requeued a job, and whoever follows the jobs touched.
   */
  async function applyBatch(workerId: string, batch: ReportBatch): Promise<ReportOutcome[]> {
    const now = Date.now();
    const logs = (batch.logs ?? []) as (LogChunk & { at?: number })[];
    if (logs.length) await store.appendLogs(logs.map((l) => ({ ...l, at: l.at ?? now })));
    const reports = batch.reports ?? [];
    const results = reports.length ? await store.reportResults(workerId, reports, now, ctx.breakers) : [];
    if (results.some((r) => r.status === 'applied')) {
      // What the scheduler may keep (a failure may open a circuit breaker), and whether it must look at the queue at all.
      const failed = reports.some((r) => r.outcome === 'failed' || r.outcome === 'timeout');
      const requeued = results.some((r) => r.status === 'applied' && r.state === 'QUEUED');
      store.notify(CHANNELS.SCHEDULE, results.some((r) => r.state === 'RETRYING') ? WAKE.RETRY : failed ? WAKE.FAILURE : requeued ? WAKE.REQUEUE : WAKE.REPORT);
    }
    const touched = new Set<string>();
    for (let i = 0; i < logs.length; i++) touched.add(logs[i]!.job_id);
    for (let i = 0; i < results.length; i++) touched.add(results[i]!.job_id);
    touched.forEach((j) => store.notify(CHANNELS.JOB, j));
    return results;
  }

  app.post<{ Params: { id: string }; Body: ({ max_jobs?: number; wait_ms?: number; held?: string[] } & ReportBatch) | undefined }>(
    '/api/v1/workers/:id/poll',
    { schema: { params: workerParams, body: pollSchema, summary: 'Long-poll for assigned jobs and controls (reports may ride along)' } },
    async (req, reply) => {
      const id = req.params.id;
      const since = store.mark();
      const max = req.body?.max_jobs ?? 100_000;
      const held = new Set(req.body?.held ?? []);
      const deadline = Date.now() + (req.body?.wait_ms ?? 20000);
      // Registered before the first look and kept until the answer, so no wake-up is lost between a look and the wait.
      const waiter: Waiter = { since, room: max, handed: null, look: false, gone: false, wake: () => {} };
      // The response closing before we answer means the worker went away (a request's own 'close' fires once its body is read).
      reply.raw.once('close', () => (waiter.gone = true));
      let set = waiters.get(id);
      if (!set) waiters.set(id, (set = new Set()));
      set.add(waiter);
      try {
        let woke = new Promise<void>((r) => (waiter.wake = r));
        // A worker whose last jobs ended before it polled again sends their reports with the poll:
        // one request instead of two. The answer carries their results.
        const batch = req.body?.reports || req.body?.logs ? req.body : null;
        const reports = batch?.reports ?? [];
        let carried: ReportOutcome[] | null = null;
        let first: Delivery | null = null;
        if (batch && store.capabilities.roundTrips && !reports.some(isMemberReport)) {
          // Where a round trip costs (PostgreSQL) the first look goes out with the reports, in the same
          // write, instead of after them: the attempts they end are held for that look, so it cannot
          // hand one out again if it overtakes its report. Not with a gang member's report: the look
          // claims members by the tokens held.
          [carried, first] = await Promise.all([
            applyBatch(id, batch),
            store.deliverToWorker(id, max, reports.length > 0 ? new Set([...held, ...reports.map((r) => r.attempt_id)]) : held),
          ]);
        } else if (batch) {
          carried = await applyBatch(id, batch);
        }
        if (carried) forgetEnded(held, reports, carried);
        for (;;) {
          let d: Delivery;
          if (first) {
            d = first;
            first = null;
          } else {
            // Handed jobs, unless a wake-up since asked for a look. They stay SCHEDULED on the worker as with a
            // look's answer: an answer that never arrives leaves them to the next look, or to the lease.
            const handed = waiter.handed && !waiter.look ? waiter.handed.filter((j) => !held.has(j.current_attempt_id!)).slice(0, max) : [];
            waiter.handed = null;
            if (handed.length > 0) {
              d = { jobs: handed, controls: [] };
            } else {
              waiter.look = false;
              d = await store.deliverToWorker(id, max, held);
            }
          }
          if (d.jobs.length || d.controls.length || Date.now() >= deadline || waiter.gone || closing) {
            // Only a job that ran before can have a checkpoint: first attempts cost no lookup.
            const saved = await store.checkpointsOf(d.jobs.filter((j) => j.attempt_count > 1).map((j) => j.id));
            return {
              ...(carried ? { results: carried } : {}),
              jobs: d.jobs.map((j) => ({
                job_id: j.id, attempt_id: j.current_attempt_id, attempt: j.attempt_count, name: j.name, type: j.type, tenant: j.tenant,
                kind: j.kind, command: j.command, handler: j.handler, env: j.env, working_dir: j.working_dir, timeout: j.timeout,
                parameters: j.parameters, resources: j.resources, gpu_indices: j.gpu_indices, labels: j.labels, grace_period: j.grace_period,
                checkpoint: checkpointWire(saved.get(j.id)),
                ...(j.steps ? { steps: j.steps } : {}),
                ...(j.gang ? { gang: j.gang } : {}),
              })),
              controls: d.controls,
            };
          }
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([woke, new Promise<void>((r) => (timer = setTimeout(r, deadline - Date.now())))]);
          clearTimeout(timer);
          woke = new Promise<void>((r) => (waiter.wake = r));
        }
      } finally {
        set.delete(waiter);
        if (set.size === 0) waiters.delete(id);
      }
    },
  );

  app.post<{ Params: { id: string }; Body: ReportBatch }>(
    '/api/v1/workers/:id/report',
    { schema: { params: workerParams, body: reportSchema, summary: 'Report attempt results, progress and log chunks (batched)' } },
    async (req) => ({ results: await applyBatch(req.params.id, req.body) }),
  );
}
