/**
 * Regression tests for the races the chaos run found, replayed deterministically on each store.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS, freshDatabase, type TestDatabase } from './helpers/db.ts';
import { openStore, type Store } from '../src/store/store.ts';
import { normalizeJobSpec } from '../src/core/jobSpec.ts';

for (const kind of STORE_KINDS) {
  describe(`fault races on ${kind}`, () => {
    let db: TestDatabase;
    let store: Store;
    before(async () => {
      db = await freshDatabase(kind);
      store = await openStore(db.url);
    });
    after(async () => {
      await store.close();
      await db.drop();
    });

    const t0 = 1_000_000;
    const addWorker = (id: string) =>
      store.registerWorker({ id, name: id, kind: 'process', handlers: [], labels: {}, capacity: { cpu_cores: 4, memory_gb: 4, gpu_count: 0, slots: 4 } }, t0);
    const submit = async (name: string) => (await store.submitJobs([normalizeJobSpec({ command: ['true'], name })], 'user:test', t0))[0]!.job.id;

    test('an assignment computed before the reaper released its worker does not take effect', async () => {
      await addWorker('w-race');
      const jobId = await submit('race');
      // The reaper declares the silent worker lost …
      const first = await store.reapLostWorkers(t0 + 10_000, t0 + 10_000);
      assert.deepEqual(first.workers, ['w-race']);
      // … then a scheduling cycle that read it as online commits its decision: refused, the job stays queued.
      const done = await store.assignJobs([{ job_id: jobId, worker_id: 'w-race', gpu_indices: [] }], t0 + 10_001);
      assert.deepEqual(done, []);
      const job = (await store.getJob(jobId))!;
      assert.equal(job.state, 'QUEUED');
      assert.deepEqual(await store.jobAttempts(jobId), []);
    });

    test('jobs still assigned to an offline worker are requeued by the next reap, not stranded', async () => {
      await addWorker('w-stranded');
      const jobId = await submit('stranded');
      assert.equal((await store.assignJobs([{ job_id: jobId, worker_id: 'w-stranded', gpu_indices: [] }], t0 + 1)).length, 1);
      // The worker goes offline without its jobs being released (the state a lost race used to leave behind).
      await store.setWorkerState('w-stranded', 'offline');
      const reap = await store.reapLostWorkers(t0 + 2, t0 + 2);
      assert.deepEqual(reap.jobs, [jobId]);
      const job = (await store.getJob(jobId))!;
      assert.equal(job.state, 'QUEUED');
      assert.equal(job.worker_id, null);
      assert.deepEqual((await store.jobAttempts(jobId)).map((a) => a.outcome), ['lost']);
    });
  });
}
