/**
 * Direct placement (src/store/ops/placeSubmitted.ts): on SQLite a lone submit places its job itself, in its
 * own transaction, on an SDK Worker whose poll waits — the API answers SCHEDULED and no scheduling cycle
 * runs for it; PostgreSQL (several servers) leaves every job to the scheduler. On both, whatever the policy
 * would hold back stays QUEUED: a paused tenant, a tenant at its running-job limit or its nominal quota, a
 * job queued ahead in the worker's queue, a handler whose circuit breaker is open, a handler no waiting
 * worker serves.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS } from './helpers/db.ts';
import { eventually, startCluster, type TestCluster } from './helpers/cluster.ts';
import { Worker } from '../src/client/index.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const kind of STORE_KINDS) {
  describe(`a lone submit's direct placement (${kind})`, () => {
    let cl: TestCluster;
    let worker: Worker;
    let release: () => void = () => {};
    let gate = Promise.resolve();
    const ran: string[] = [];

    before(async () => {
      cl = await startCluster(kind);
      worker = new Worker({
        server: cl.server.url,
        token: cl.server.admin_token!,
        concurrency: 4,
        handlers: {
          echo: (job) => {
            ran.push(job.id);
            return { ok: true };
          },
          hold: async () => {
            await gate;
            return { ok: true };
          },
          broken: () => {
            throw new Error('always fails');
          },
        },
      });
      await worker.start();
      // One round trip first: the worker's poll then waits for the next job.
      const warm = await cl.client.submit({ handler: 'echo' });
      await eventually(async () => (await cl.client.getJob(warm.job_id)).status === 'COMPLETED');
      await sleep(50);
    });
    after(async () => {
      release();
      await worker?.stop(1000);
      await cl?.close();
    });

    const hold = () => {
      gate = new Promise<void>((r) => (release = r));
    };
    const state = async (id: string) => (await cl.client.getJob(id)).status;
    const completes = (id: string) => eventually(async () => (await state(id)) === 'COMPLETED');
    /** Still QUEUED after the scheduler has had every chance to run it (cycles follow each wake-up within ms). */
    const staysQueued = async (id: string) => {
      await sleep(300);
      assert.equal(await state(id), 'QUEUED');
    };

    it(kind === 'sqlite' ? 'is answered SCHEDULED: placed by the submit, with no scheduling cycle' : 'is placed by the scheduler (answered QUEUED)', async () => {
      const placed = cl.server.scheduler.stats.placed_on_submit;
      const res = await cl.client.submit({ handler: 'echo', parameters: { n: 1 } });
      assert.equal(res.status, kind === 'sqlite' ? 'SCHEDULED' : 'QUEUED');
      // Placed: no queue position to give. Queued: first in line.
      assert.equal(res.queue_position, kind === 'sqlite' ? null : 1);
      await completes(res.job_id);
      assert.ok(ran.includes(res.job_id));
      assert.equal(cl.server.scheduler.stats.placed_on_submit - placed, kind === 'sqlite' ? 1 : 0);
      // Operators see it in the metrics: jobs placed by a cycle and by their submit.
      const metrics = await (await fetch(`${cl.server.url}/metrics`, { headers: { authorization: `Bearer ${cl.server.admin_token}` } })).text();
      const bySubmit = Number(/^gantry_scheduler_placed_jobs\{by="submit"\} (\d+)$/m.exec(metrics)?.[1]);
      const byCycle = Number(/^gantry_scheduler_placed_jobs\{by="cycle"\} (\d+)$/m.exec(metrics)?.[1]);
      assert.equal(bySubmit, cl.server.scheduler.stats.placed_on_submit);
      assert.equal(bySubmit + byCycle, cl.server.scheduler.stats.assigned);
      assert.ok(kind === 'sqlite' ? bySubmit >= 1 : bySubmit === 0 && byCycle >= 2);
      // Its history is a scheduler assignment like any other.
      const { events } = await cl.client.events(res.job_id);
      const assigned = events.find((e) => e.to === 'SCHEDULED');
      assert.match(assigned?.reason ?? '', /^assigned to worker /);
      assert.equal(assigned?.actor, 'scheduler');
    });

    it('a paused tenant keeps its job queued until it is resumed', async () => {
      await cl.client.createTenant({ id: 'paused-co', tier: 'enterprise' });
      await cl.client.pauseTenant('paused-co');
      const res = await cl.client.submit({ handler: 'echo', tenant: 'paused-co' });
      assert.equal(res.status, 'QUEUED');
      await staysQueued(res.job_id);
      await cl.client.resumeTenant('paused-co');
      await completes(res.job_id);
    });

    it("a job queued ahead in the worker's queue is not overtaken by a direct placement", async () => {
      await cl.client.createTenant({ id: 'held-co', tier: 'enterprise' });
      await cl.client.pauseTenant('held-co');
      const first = await cl.client.submit({ handler: 'echo', tenant: 'held-co', priority: 'critical' });
      await sleep(50);
      // Another tenant's job may run (the scheduler decides that), but not by skipping the queue's own check.
      const placed = cl.server.scheduler.stats.placed_on_submit;
      const second = await cl.client.submit({ handler: 'echo', tenant: 'free-runner' });
      assert.equal(second.status, 'QUEUED');
      assert.equal(cl.server.scheduler.stats.placed_on_submit, placed);
      await completes(second.job_id);
      assert.equal(await state(first.job_id), 'QUEUED');
      await cl.client.resumeTenant('held-co');
      await completes(first.job_id);
    });

    it('a tenant at its max_running_jobs waits, with slots free on the worker', async () => {
      // The free tier runs two jobs at once; the worker has four slots.
      await cl.client.createTenant({ id: 'two-co', tier: 'free' });
      hold();
      const a = await cl.client.submit({ handler: 'hold', tenant: 'two-co' });
      const b = await cl.client.submit({ handler: 'hold', tenant: 'two-co' });
      await eventually(async () => (await state(a.job_id)) === 'RUNNING' && (await state(b.job_id)) === 'RUNNING');
      const c = await cl.client.submit({ handler: 'echo', tenant: 'two-co' });
      assert.equal(c.status, 'QUEUED');
      await staysQueued(c.job_id);
      release();
      await completes(c.job_id);
    });

    it('a tenant at its nominal quota waits (the free tier borrows nothing)', async () => {
      // Nominal 4 CPUs: 3 held, 2 more asked for.
      await cl.client.createTenant({ id: 'cpu-co', tier: 'free' });
      hold();
      const big = await cl.client.submit({ handler: 'hold', tenant: 'cpu-co', resources: { cpu_cores: 3 } });
      await eventually(async () => (await state(big.job_id)) === 'RUNNING');
      const more = await cl.client.submit({ handler: 'echo', tenant: 'cpu-co', resources: { cpu_cores: 2 } });
      assert.equal(more.status, 'QUEUED');
      await staysQueued(more.job_id);
      // Within the quota it is placed at once.
      const small = await cl.client.submit({ handler: 'echo', tenant: 'other-co', resources: { cpu_cores: 1 } });
      await completes(small.job_id);
      release();
      await completes(more.job_id);
    });

    it("a handler whose circuit breaker opened keeps its next job queued", async () => {
      // Five failures in a row open the handler's breaker (the server's default threshold; 30 s before a probe).
      for (let i = 0; i < 5; i++) {
        const f = await cl.client.submit({ handler: 'broken', retry_policy: { max_attempts: 1 } });
        await eventually(async () => (await state(f.job_id)) === 'FAILED');
      }
      await eventually(async () => (await cl.client.breakers()).breakers.find((b) => b.key === 'handler:broken')?.state === 'open');
      const res = await cl.client.submit({ handler: 'broken', retry_policy: { max_attempts: 1 } });
      assert.equal(res.status, 'QUEUED');
      await staysQueued(res.job_id);
      await cl.client.cancel(res.job_id);
    });

    it('a handler no waiting worker serves stays queued', async () => {
      const res = await cl.client.submit({ handler: 'nobody-serves-this' });
      assert.equal(res.status, 'QUEUED');
      await staysQueued(res.job_id);
      await cl.client.cancel(res.job_id);
    });
  });
}
