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

    test('a job assigned to a worker just after the reaper released it is requeued by the next reap, not stranded', async () => {
      const t0 = 1_000_000;
      await store.registerWorker({ id: 'w-race', name: 'w-race', kind: 'process', handlers: [], labels: {}, capacity: { cpu_cores: 4, memory_gb: 4, gpu_count: 0, slots: 4 } }, t0);
      const [r] = await store.submitJobs([normalizeJobSpec({ command: ['true'], name: 'race' })], 'user:test', t0);
      const jobId = r!.job.id;
      // The reaper declares the silent worker lost …
      const first = await store.reapLostWorkers(t0 + 10_000, t0 + 10_000);
      assert.deepEqual(first.workers, ['w-race']);
      // … while a scheduling cycle that read it as online commits its assignment afterwards.
      const done = await store.assignJobs([{ job_id: jobId, worker_id: 'w-race', gpu_indices: [] }], t0 + 10_001);
      assert.equal(done.length, 1);
      assert.equal((await store.getJob(jobId))!.state, 'SCHEDULED');
      // The next reap must return the job to the queue: its worker is offline and will never report.
      const second = await store.reapLostWorkers(t0 + 11_000, t0 + 11_000);
      assert.deepEqual(second.jobs, [jobId]);
      const job = (await store.getJob(jobId))!;
      assert.equal(job.state, 'QUEUED');
      assert.equal(job.worker_id, null);
      const attempts = await store.jobAttempts(jobId);
      assert.deepEqual(attempts.map((a) => a.outcome), ['lost']);
    });
  });
}
