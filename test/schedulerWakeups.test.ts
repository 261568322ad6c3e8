/**
 * The scheduler between wake-ups, through the real server and a real worker process on each store.
 * On SQLite a cycle woken by a submit or a report reuses the workers, tenants and breakers it read
 * before (src/scheduler/wakeReasons.ts); a pause, a resume or a drain must still be in force for the
 * very next submit — not only after the scheduler's one-second safety cycle.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS } from './helpers/db.ts';
import { startCluster, type TestCluster, type WorkerProc } from './helpers/cluster.ts';

const quick = { interval_ms: 10, timeout_ms: 10_000 };

for (const kind of STORE_KINDS) {
  describe(`scheduler wake-ups on ${kind}`, () => {
    let cl: TestCluster;
    let first: WorkerProc;
    before(async () => {
      cl = await startCluster(kind);
      first = await cl.startWorker({ slots: 4 });
    });
    after(() => cl.close());

    test('a tenant paused between two submits holds the second one while other submits run; resume releases it', async () => {
      await cl.client.createTenant({ id: 'between', tier: 'premium' });
      const warm = await cl.client.submit({ command: ['true'], tenant: 'between' });
      assert.equal((await cl.client.waitFor(warm.job_id, quick)).status, 'COMPLETED');
      await cl.client.pauseTenant('between');
      const held = await cl.client.submit({ command: ['true'], tenant: 'between' });
      // Cycles woken by these submits (and by their reports) run while the paused tenant's job waits.
      for (let i = 0; i < 3; i++) {
        const other = await cl.client.submit({ command: ['true'], tenant: 'bystander' });
        assert.equal((await cl.client.waitFor(other.job_id, quick)).status, 'COMPLETED');
      }
      const j = await cl.client.getJob(held.job_id);
      assert.equal(j.status, 'QUEUED', 'the pause was in force for the next submit');
      await cl.client.resumeTenant('between');
      const t0 = Date.now();
      assert.equal((await cl.client.waitFor(held.job_id, quick)).status, 'COMPLETED');
      assert.ok(Date.now() - t0 < 900, `resume took effect at once, not with the safety cycle (${Date.now() - t0} ms)`);
    });

    test('a worker drained between two submits gets no job from the second one', async () => {
      const second = await cl.startWorker({ slots: 4 });
      const warm = await cl.client.submit({ command: ['true'] });
      assert.equal((await cl.client.waitFor(warm.job_id, quick)).status, 'COMPLETED');
      await cl.client.drainWorker(first.id);
      for (let i = 0; i < 4; i++) {
        const job = await cl.client.submit({ command: ['true'] });
        assert.equal((await cl.client.waitFor(job.job_id, quick)).status, 'COMPLETED');
        const ran = (await cl.client.getJob(job.job_id)).attempts?.map((a) => a.worker_id);
        assert.deepEqual(ran, [second.id], `job ${i} ran on the worker still online`);
      }
    });
  });
}
