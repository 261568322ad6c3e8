/**
 * The scheduler's tenant state against a real store on every backend: a new leader rebuilds
 * decayed usage from the store, and fair share orders tenants by it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS, freshDatabase, type TestDatabase } from './helpers/db.ts';
import { openStore, type Store } from '../src/store/store.ts';
import { Scheduler } from '../src/scheduler/scheduler.ts';
import { normalizeJobSpec, type JobRequest } from '../src/core/jobSpec.ts';
import type { Job } from '../src/core/types.ts';

for (const kind of STORE_KINDS) {
  describe(`tenant usage and fair share (${kind})`, () => {
    let db: TestDatabase;
    let store: Store;
    let clock = Date.now();
    const tick = (ms = 1000) => (clock += ms);

    before(async () => {
      db = await freshDatabase(kind);
      store = await openStore(db.url);
    });
    after(async () => {
      await store?.close();
      await db?.drop();
    });

    async function submit(over: JobRequest): Promise<Job> {
      return (await store.submitJobs([normalizeJobSpec({ command: ['sleep', '1'], ...over })], 'user:test', tick()))[0]!.job;
    }
    const get = async (id: string) => (await store.getJob(id))!;

    it('a new leader rebuilds decayed usage from the store: the tenant that used more waits behind one that used less', async () => {
      const w = await store.registerWorker({ id: 'w1', name: 'w1', kind: 'process', handlers: [], labels: {}, capacity: { cpu_cores: 8, memory_gb: 32, gpu_count: 0, slots: 1 } }, tick());
      const old = new Scheduler(store);
      const first = await submit({ tenant: 'heavy', resources: { cpu_cores: 8 } });
      assert.equal(await old.cycle(tick()), 1);
      const j = await get(first.id);
      await store.reportResults(w.id, [{ job_id: j.id, attempt_id: j.current_attempt_id!, outcome: 'started' }], tick());
      await store.reportResults(w.id, [{ job_id: j.id, attempt_id: j.current_attempt_id!, outcome: 'completed' }], tick(30 * 60_000));
      await old.stop();

      // The heavy tenant's job is older, so FIFO alone would run it first.
      const heavy = await submit({ tenant: 'heavy', resources: { cpu_cores: 1 } });
      const light = await submit({ tenant: 'light', resources: { cpu_cores: 1 } });
      const leader = new Scheduler(store);
      try {
        assert.equal(await leader.cycle(tick()), 1);
        assert.equal((await get(light.id)).state, 'SCHEDULED', 'the light tenant goes first');
        assert.equal((await get(heavy.id)).state, 'QUEUED');
        const usage = await leader.usage(clock);
        assert.ok((usage.get('heavy')?.value.cpu_cores ?? 0) > 8 * 20 * 60_000, 'about 30 min × 8 cpus, decayed');
        assert.equal(usage.get('light')?.value.cpu_cores ?? 0, 0);
      } finally {
        await leader.stop();
      }
    });
  });
}
