/**
 * The scheduling cycle a lone submit starts (src/server/submitCoalescer.ts, `cycle_behind`): on
 * PostgreSQL it starts as the submit's write is issued and its reads follow the write on one
 * connection; on every store, a submit to an idle scheduler is placed by that one cycle, at once —
 * not left to the safety-net cycle (an hour here), not followed by a second cycle for the same job.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS, freshDatabase, type TestDatabase } from './helpers/db.ts';
import { openStore, type Store } from '../src/store/store.ts';
import { Scheduler } from '../src/scheduler/scheduler.ts';
import { SubmitCoalescer } from '../src/server/submitCoalescer.ts';
import { normalizeJobSpec } from '../src/core/jobSpec.ts';

const HOUR = 3_600_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const kind of STORE_KINDS) {
  describe(`a submit's scheduling cycle (${kind})`, () => {
    let db: TestDatabase;
    let store: Store;
    let scheduler: Scheduler;
    let submitter: SubmitCoalescer;
    before(async () => {
      db = await freshDatabase(kind);
      store = await openStore(db.url);
      // The worker is there before the scheduler's first cycle reads the workers.
      await store.registerWorker(
        { id: 'w1', name: 'w1', kind: 'process', handlers: [], labels: {}, capacity: { cpu_cores: 64, memory_gb: 256, gpu_count: 0, slots: 64 } },
        Date.now(),
      );
      scheduler = new Scheduler(store, { idle_cycle_ms: HOUR });
      await scheduler.start();
      submitter = new SubmitCoalescer(store, { cycle_behind: () => scheduler.cycleBehindSubmit() });
      await sleep(100);
    });
    after(async () => {
      await scheduler?.stop();
      await store?.close();
      await db?.drop();
    });

    const placed = async (id: string) => {
      for (let t0 = Date.now(); Date.now() - t0 < 5000; await sleep(5)) {
        const j = await store.getJob(id);
        if (j && j.state !== 'QUEUED') return j;
      }
      assert.fail(`job ${id} still queued after 5 s`);
    };

    it('each lone submit is placed by exactly the one cycle it starts', async () => {
      const spec = normalizeJobSpec({ command: ['true'] });
      for (let i = 0; i < 6; i++) {
        const cycles = scheduler.stats.cycles;
        const assigned = scheduler.stats.assigned;
        const res = await submitter.submit(spec, 'user:test');
        assert.equal((await placed(res.job.id)).worker_id, 'w1');
        // Time for a second cycle, if one were coming.
        await sleep(50);
        assert.equal(scheduler.stats.cycles - cycles, 1, `submit ${i}: cycles run`);
        assert.equal(scheduler.stats.assigned - assigned, 1);
      }
    });

    it('a submit that commits in a transaction of its own (an idempotency key) is placed by one cycle too', async () => {
      for (const key of ['k1', 'k2']) {
        const cycles = scheduler.stats.cycles;
        const res = await submitter.submit(normalizeJobSpec({ command: ['true'], idempotency_key: key }), 'user:test');
        assert.equal((await placed(res.job.id)).worker_id, 'w1');
        await sleep(50);
        assert.equal(scheduler.stats.cycles - cycles, 1, `submit ${key}: cycles run`);
      }
    });
  });
}
