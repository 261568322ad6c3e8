/**
 * Job dependencies over the REST API on each store. Upstream jobs are handler jobs run by a
 * worker speaking the real protocol from this test (register, poll, report), so each test decides
 * exactly when and how an upstream ends; dependents wait on a handler no worker serves, so the
 * state they reach is the one the dependency release gave them.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS } from './helpers/db.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import type { AttemptReport, JobView } from '../src/client/http.ts';

for (const kind of STORE_KINDS) {
  describe(`job dependencies on ${kind}`, () => {
    let cl: TestCluster;
    let auth: Record<string, string>;
    let worker: string;
    let beat: NodeJS.Timeout;
    const attempts = new Map<string, string>();
    before(async () => {
      cl = await startCluster(kind);
      auth = { authorization: `Bearer ${cl.server.admin_token}` };
      worker = (await cl.client.registerWorker({ name: 'test-upstream', kind: 'handler', handlers: ['up'], capacity: { slots: 1000 } })).worker_id;
      beat = setInterval(() => void cl.client.heartbeat(worker).catch(() => {}), 500);
    });
    after(async () => {
      clearInterval(beat);
      await cl.close();
    });

    const api = async (method: 'GET' | 'POST', url: string, body?: unknown) => {
      const res = await cl.server.app.inject({
        method, url, headers: { ...auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        payload: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.statusCode, body: res.json() as Record<string, any> };
    };
    const job = async (id: string) => (await api('GET', `/api/v1/jobs/${id}`)).body as JobView & { waiting_for?: string[]; pending_reason?: string | null };
    /** An upstream job, run by this test's worker. */
    const upstream = async () => (await cl.client.submit({ handler: 'up', retry_policy: { max_attempts: 1 } })).job_id;
    /** A job waiting on `deps`; nothing serves its handler, so once released it stays QUEUED. */
    const dependent = async (deps: string[], type?: string) => {
      const res = await api('POST', '/api/v1/jobs', { handler: 'down', depends_on: deps, ...(type ? { dependency_type: type } : {}) });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    /** Ends an upstream job with `outcome` through the worker protocol. */
    const end = async (id: string, outcome: AttemptReport['outcome']) => {
      const deadline = Date.now() + 10_000;
      while (!attempts.has(id)) {
        if (Date.now() > deadline) throw new Error(`job ${id} was never assigned to the test worker`);
        const got = await cl.client.poll(worker, 2000, [...attempts.values()]);
        for (const j of got.jobs) attempts.set(j.job_id, j.attempt_id);
      }
      const res = await cl.client.report(worker, [{ job_id: id, attempt_id: attempts.get(id)!, outcome, ...(outcome === 'failed' ? { error: 'boom' } : {}) }]);
      assert.equal(res.results[0]!.status, 'applied');
    };

    test('seed 002 body verbatim names the unknown jobs; with real ids a queued job goes back to waiting', async () => {
      const target = (await cl.client.submit({ handler: 'down' })).job_id;
      const seed = await api('POST', `/api/v1/jobs/${target}/dependencies`, { depends_on: ['job_123', 'job_456'], dependency_type: 'all_complete' });
      assert.equal(seed.status, 400);
      assert.equal(seed.body.error.code, 'VALIDATION_FAILED');
      assert.equal(seed.body.error.field, 'depends_on[0]');
      assert.match(seed.body.error.message, /unknown job job_123/);
      assert.equal((await job(target)).status, 'QUEUED', 'nothing changed');
      const [a, b] = [await upstream(), await upstream()];
      const res = await api('POST', `/api/v1/jobs/${target}/dependencies`, { depends_on: [a, b], dependency_type: 'all_complete' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'SUBMITTED');
      assert.deepEqual(res.body.waiting_for, [a, b]);
      await end(a, 'completed');
      await end(b, 'completed');
      assert.equal((await job(target)).status, 'QUEUED');
    });

    test('all_complete: waits showing what for, released in the transaction that completes the last upstream', async () => {
      const [a, b] = [await upstream(), await upstream()];
      const c = await dependent([a, b]);
      assert.equal(c.status, 'SUBMITTED');
      assert.deepEqual(c.waiting_for, [a, b]);
      let view = await job(c.job_id);
      assert.equal(view.status, 'SUBMITTED');
      assert.equal(view.dependency_type, 'all_complete');
      assert.deepEqual(view.waiting_for, [a, b]);
      assert.match(view.pending_reason ?? '', /waiting for 2 of 2 dependencies \(all_complete\)/);
      await end(a, 'completed');
      view = await job(c.job_id);
      assert.equal(view.status, 'SUBMITTED');
      assert.deepEqual(view.waiting_for, [b]);
      await end(b, 'completed');
      // No polling: the report that completed b already queued c.
      view = await job(c.job_id);
      assert.equal(view.status, 'QUEUED');
      assert.deepEqual(view.waiting_for, []);
      const cEvents = (await cl.client.events(c.job_id)).events;
      const bEvents = (await cl.client.events(b)).events;
      const released = cEvents.find((e) => e.from === 'SUBMITTED' && e.to === 'QUEUED')!;
      assert.match(released.reason, /dependencies met: all 2 dependencies COMPLETED/);
      assert.equal(released.at, bEvents.find((e) => e.to === 'COMPLETED')!.at, 'same transaction, same timestamp');
    });

    test('a failure that can never be made good cancels dependents with the reason, down the chain; all_done runs anyway', async () => {
      const [a, b] = [await upstream(), await upstream()];
      const c = await dependent([a, b]);
      const d = await dependent([c.job_id]);
      const e = await dependent([c.job_id], 'all_done');
      await end(a, 'failed');
      const cv = await job(c.job_id);
      assert.equal(cv.status, 'CANCELLED');
      assert.match(cv.error ?? '', new RegExp(`can never run: dependency ${a} ended FAILED; all_complete needs every dependency COMPLETED`));
      const dv = await job(d.job_id);
      assert.equal(dv.status, 'CANCELLED');
      assert.match(dv.error ?? '', new RegExp(`dependency ${c.job_id} ended CANCELLED`));
      assert.equal((await job(e.job_id)).status, 'QUEUED', 'all_done runs whatever the outcome');
      assert.equal((await job(b)).status !== 'CANCELLED', true, 'upstream b is not touched');
    });

    test('any_complete: one success is enough; none at all cancels', async () => {
      const [a, b] = [await upstream(), await upstream()];
      const c = await dependent([a, b], 'any_complete');
      await end(a, 'failed');
      assert.equal((await job(c.job_id)).status, 'SUBMITTED');
      await end(b, 'completed');
      assert.equal((await job(c.job_id)).status, 'QUEUED');
      const [x, y] = [await upstream(), await upstream()];
      const z = await dependent([x, y], 'any_complete');
      await end(x, 'failed');
      await api('POST', `/api/v1/jobs/${y}/cancel`, {});
      const zv = await job(z.job_id);
      assert.equal(zv.status, 'CANCELLED');
      assert.match(zv.error ?? '', /no dependency COMPLETED .*any_complete needs one/);
    });

    test('all_done runs after every upstream ended, whatever the outcomes', async () => {
      const [a, b] = [await upstream(), await upstream()];
      const c = await dependent([a, b], 'all_done');
      await end(a, 'failed');
      assert.equal((await job(c.job_id)).status, 'SUBMITTED');
      await end(b, 'timeout');
      assert.equal((await job(c.job_id)).status, 'QUEUED');
    });

    test('any_failed runs only after a failure (FAILED or TIMEOUT); all succeeding cancels it', async () => {
      const [a, b] = [await upstream(), await upstream()];
      const c = await dependent([a, b], 'any_failed');
      await end(a, 'completed');
      assert.equal((await job(c.job_id)).status, 'SUBMITTED');
      await end(b, 'timeout');
      assert.equal((await job(c.job_id)).status, 'QUEUED');
      const [x, y] = [await upstream(), await upstream()];
      const z = await dependent([x, y], 'any_failed');
      await end(x, 'completed');
      await end(y, 'completed');
      const zv = await job(z.job_id);
      assert.equal(zv.status, 'CANCELLED');
      assert.match(zv.error ?? '', /any_failed runs only after a failure/);
    });

    test('a user cancelling the upstream cancels an all_complete dependent', async () => {
      const a = await upstream();
      const c = await dependent([a]);
      const cancel = await api('POST', `/api/v1/jobs/${a}/cancel`, { reason: 'not needed' });
      assert.equal(cancel.body.status, 'CANCELLED', JSON.stringify(cancel.body));
      const cv = await job(c.job_id);
      assert.equal(cv.status, 'CANCELLED');
      assert.match(cv.error ?? '', new RegExp(`dependency ${a} ended CANCELLED`));
    });

    test('the lease reaper ending an upstream (cancel pending on a lost worker) cancels its dependent too', async () => {
      const lost = (await cl.client.registerWorker({ name: 'doomed', kind: 'handler', handlers: ['doomed'], capacity: { slots: 1 } })).worker_id;
      const a = (await cl.client.submit({ handler: 'doomed' })).job_id;
      const c = await dependent([a]);
      let attempt: string | undefined;
      while (!attempt) attempt = (await cl.client.poll(lost, 2000)).jobs.find((j) => j.job_id === a)?.attempt_id;
      await cl.client.report(lost, [{ job_id: a, attempt_id: attempt, outcome: 'started' }]);
      await api('POST', `/api/v1/jobs/${a}/cancel`, {});
      assert.equal((await job(a)).status, 'RUNNING', 'cancel requested, worker never confirms');
      // What the lease reaper does to each worker silent past its lease (reapLostWorkers → releaseWorker).
      await cl.server.store.releaseWorker(lost, `worker ${lost} lost (test)`, 'lease-reaper');
      assert.equal((await job(a)).status, 'CANCELLED');
      const cv = await job(c.job_id);
      assert.equal(cv.status, 'CANCELLED');
      assert.match(cv.error ?? '', new RegExp(`dependency ${a} ended CANCELLED`));
    });

    test('cycles are refused with the cycle named', async () => {
      const a = (await cl.client.submit({ handler: 'down' })).job_id;
      const b = await dependent([a]);
      const c = await dependent([b.job_id]);
      const self = await api('POST', `/api/v1/jobs/${a}/dependencies`, { depends_on: [a] });
      assert.equal(self.status, 400);
      assert.equal(self.body.error.code, 'DEPENDENCY_CYCLE');
      assert.deepEqual(self.body.error.cycle, [a, a]);
      const two = await api('POST', `/api/v1/jobs/${a}/dependencies`, { depends_on: [b.job_id] });
      assert.equal(two.status, 400);
      assert.equal(two.body.error.code, 'DEPENDENCY_CYCLE');
      assert.deepEqual(two.body.error.cycle, [a, b.job_id, a]);
      assert.match(two.body.error.message, new RegExp(`${a} → ${b.job_id} → ${a}`));
      const three = await api('POST', `/api/v1/jobs/${a}/dependencies`, { depends_on: [c.job_id] });
      assert.deepEqual(three.body.error.cycle, [a, c.job_id, b.job_id, a]);
      const av = await job(a);
      assert.equal(av.status, 'QUEUED', 'nothing changed');
      assert.equal(av.dependency_type, null);
    });

    test('bad dependencies on submit are refused whole; seed 002 `dependencies` list works; a done upstream releases at once', async () => {
      const before = (await api('GET', '/api/v1/jobs?limit=1000')).body.jobs.length;
      const bad = await api('POST', '/api/v1/jobs', { handler: 'down', depends_on: ['job_nope'] });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.field, 'depends_on[0]');
      const both = await api('POST', '/api/v1/jobs', { handler: 'down', depends_on: [], dependencies: [] });
      assert.equal(both.status, 400);
      assert.equal(both.body.error.field, 'dependencies');
      assert.equal((await api('GET', '/api/v1/jobs?limit=1000')).body.jobs.length, before);
      const a = await upstream();
      await end(a, 'completed');
      const c = await api('POST', '/api/v1/jobs', { handler: 'down', dependencies: [a] });
      assert.equal(c.body.status, 'QUEUED');
      const none = await api('POST', '/api/v1/jobs', { handler: 'down', dependencies: [] });
      assert.equal(none.body.status, 'QUEUED');
    });

    test('upstreams ending in two transactions at once still release the dependent', async () => {
      for (let round = 0; round < 15; round++) {
        const [a, b] = [await upstream(), await upstream()];
        const c = await dependent([a, b]);
        while (!attempts.has(a) || !attempts.has(b)) {
          for (const j of (await cl.client.poll(worker, 2000, [...attempts.values()])).jobs) attempts.set(j.job_id, j.attempt_id);
        }
        // Two report requests in flight together: two transactions, each seeing the other's upstream still running.
        await Promise.all([a, b].map((id) => cl.client.report(worker, [{ job_id: id, attempt_id: attempts.get(id)!, outcome: 'completed' }])));
        assert.equal((await job(c.job_id)).status, 'QUEUED', `round ${round}`);
      }
    });

    test('only a job not yet on a worker can gain dependencies', async () => {
      const a = await upstream();
      const running = await upstream();
      await end(running, 'started');
      const res = await api('POST', `/api/v1/jobs/${running}/dependencies`, { depends_on: [a] });
      assert.equal(res.status, 409);
      assert.equal(res.body.error.code, 'CONFLICT');
      assert.match(res.body.error.message, /is RUNNING/);
    });
  });
}
