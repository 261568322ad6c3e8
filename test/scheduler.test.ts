/**
 * Scheduler.cycle() against a real store on every backend: what gets placed where, in what order.
 * One fresh database per backend; after each test every worker is taken offline and the queue
 * emptied, so each test sees only its own workers and jobs.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS, freshDatabase, type TestDatabase } from './helpers/db.ts';
import { CHANNELS, openStore, type Store } from '../src/store/store.ts';
import { Scheduler } from '../src/scheduler/scheduler.ts';
import { queueInsight } from '../src/scheduler/estimate.ts';
import { normalizeJobSpec, type JobRequest } from '../src/core/jobSpec.ts';
import type { Job, WorkerInfo } from '../src/core/types.ts';

for (const kind of STORE_KINDS) {
  describe(`scheduler cycle (${kind})`, () => {
    let db: TestDatabase;
    let store: Store;
    let scheduler: Scheduler;
    let clock = Date.now();
    const tick = (ms = 1000) => (clock += ms);
    let workerSeq = 0;

    before(async () => {
      db = await freshDatabase(kind);
      store = await openStore(db.url);
      scheduler = new Scheduler(store);
    });
    after(async () => {
      await scheduler?.stop();
      await store?.close();
      await db?.drop();
    });
    afterEach(async () => {
      for (const w of await store.listWorkers(true)) await store.releaseWorker(w.id, 'test cleanup', 'test', tick());
      for (const state of ['QUEUED', 'RETRYING'] as const) {
        for (const j of await store.listJobs({ state }, 10_000, null)) await store.cancelJob(j.id, 'test cleanup', 'test', tick());
      }
    });

    async function addWorker(
      cap: Partial<WorkerInfo['capacity']> = {},
      extra: { kind?: WorkerInfo['kind']; handlers?: string[] } = {},
    ): Promise<WorkerInfo> {
      const id = `${extra.kind === 'handler' ? 'h' : 'p'}${++workerSeq}`;
      return store.registerWorker(
        {
          id, name: id, kind: extra.kind ?? 'process', handlers: extra.handlers ?? [], labels: {},
          capacity: { cpu_cores: 8, memory_gb: 32, gpu_count: 0, slots: 8, ...cap },
        },
        tick(),
      );
    }
    async function submit(over: JobRequest = {}): Promise<Job> {
      const spec = normalizeJobSpec(over.handler !== undefined ? over : { command: ['sleep', '1'], ...over });
      return (await store.submitJobs([spec], 'user:test', tick()))[0]!.job;
    }
    const get = async (id: string) => (await store.getJob(id))!;
    const states = async (jobs: readonly Job[]) => Promise.all(jobs.map(async (j) => (await get(j.id)).state));
    /** The worker takes its jobs and reports this one completed. */
    async function complete(jobId: string): Promise<void> {
      const j = await get(jobId);
      const out = await store.reportResults(j.worker_id!, [{ job_id: jobId, attempt_id: j.current_attempt_id!, outcome: 'completed' }], tick());
      assert.equal(out[0]!.state, 'COMPLETED');
    }

    it('admits by priority class first and FIFO within a class, and wakes the worker', async () => {
      const w = await addWorker({ slots: 3 });
      const woken: string[] = [];
      const unlisten = store.listen(CHANNELS.WORKER, (id) => woken.push(id));
      try {
        const low = await submit({ name: 'low', priority: 'low' });
        const n1 = await submit({ name: 'n1' });
        const n2 = await submit({ name: 'n2' });
        const high = await submit({ name: 'high', priority: 'high' });
        const crit = await submit({ name: 'crit', priority: 'critical' });

        assert.equal(await scheduler.cycle(tick()), 3);
        assert.deepEqual(await states([crit, high, n1, n2, low]), ['SCHEDULED', 'SCHEDULED', 'SCHEDULED', 'QUEUED', 'QUEUED']);
        assert.equal((await get(crit.id)).worker_id, w.id);
        assert.ok(woken.includes(w.id), 'the worker that got work is woken');
        assert.equal(await scheduler.cycle(tick()), 0, 'no slot left');

        // Room opens: the older normal job goes before the low one.
        await complete(n1.id);
        assert.equal(await scheduler.cycle(tick()), 1);
        assert.deepEqual(await states([n2, low]), ['SCHEDULED', 'QUEUED']);
        await complete(n2.id);
        assert.equal(await scheduler.cycle(tick()), 1);
        assert.equal((await get(low.id)).state, 'SCHEDULED');
      } finally {
        unlisten();
      }
    });

    it('a job bigger than any worker stays QUEUED while smaller jobs behind it are placed', async () => {
      await addWorker({ cpu_cores: 4, memory_gb: 8 });
      const huge = await submit({ name: 'huge', priority: 'emergency', resources: { cpu_cores: 16 } });
      const small1 = await submit({ name: 's1', resources: { cpu_cores: 1 } });
      const small2 = await submit({ name: 's2', resources: { cpu_cores: 2 } });
      assert.equal(await scheduler.cycle(tick()), 2);
      assert.deepEqual(await states([huge, small1, small2]), ['QUEUED', 'SCHEDULED', 'SCHEDULED']);
      const insight = await queueInsight(store, await get(huge.id));
      assert.equal(insight.queue_position, 1);
      assert.equal(insight.pending_reason, 'no worker is large enough: needs cpu_cores 16 (largest worker has 4)');
      assert.equal(insight.estimated_start_time, null);

      // A job that fits later, but not now (1 cpu free), does not hold up one that fits now.
      const waits = await submit({ name: 'waits', priority: 'high', resources: { cpu_cores: 3 } });
      const tiny = await submit({ name: 'tiny', priority: 'low', resources: { cpu_cores: 1 } });
      assert.equal(await scheduler.cycle(tick()), 1);
      assert.deepEqual(await states([huge, waits, tiny]), ['QUEUED', 'QUEUED', 'SCHEDULED']);
      assert.match((await queueInsight(store, await get(waits.id))).pending_reason ?? '', /^waiting for resources: needs 3 cpu/);
    });

    it('GPU jobs get distinct GPU indices, lowest free first, and freed GPUs are reused', async () => {
      const w = await addWorker({ gpu_count: 4, cpu_cores: 16 });
      const a = await submit({ name: 'a', resources: { gpu_count: 1 } });
      const b = await submit({ name: 'b', resources: { gpu_count: 2 } });
      const c = await submit({ name: 'c', resources: { gpu_count: 1 } });
      const d = await submit({ name: 'd', resources: { gpu_count: 1 } });
      assert.equal(await scheduler.cycle(tick()), 3);
      assert.deepEqual((await get(a.id)).gpu_indices, [0]);
      assert.deepEqual((await get(b.id)).gpu_indices, [1, 2]);
      assert.deepEqual((await get(c.id)).gpu_indices, [3]);
      assert.equal((await get(d.id)).state, 'QUEUED', 'all four GPUs are taken');
      assert.deepEqual([...(await store.workerUsage()).get(w.id)!.gpu_indices].sort(), [0, 1, 2, 3]);

      await complete(b.id);
      assert.equal(await scheduler.cycle(tick()), 1);
      assert.deepEqual((await get(d.id)).gpu_indices, [1], 'a freed GPU, the lowest one');
    });

    it('GPU jobs pack onto the fuller GPU machine', async () => {
      const empty = await addWorker({ gpu_count: 4 });
      const busy = await addWorker({ gpu_count: 4 });
      const first = await submit({ resources: { gpu_count: 1 } });
      await store.assignJobs([{ job_id: first.id, worker_id: busy.id, gpu_indices: [0] }], tick());
      const next = await submit({ resources: { gpu_count: 2 } });
      assert.equal(await scheduler.cycle(tick()), 1);
      const placed = await get(next.id);
      assert.equal(placed.worker_id, busy.id);
      assert.deepEqual(placed.gpu_indices, [1, 2]);
      const big = await submit({ resources: { gpu_count: 4 } });
      assert.equal(await scheduler.cycle(tick()), 1);
      assert.equal((await get(big.id)).worker_id, empty.id, 'the whole machine was kept free for it');
    });

    it('handler jobs go only to workers that run that handler; commands only to process workers', async () => {
      const h = await addWorker({ slots: 4 }, { kind: 'handler', handlers: ['resize', 'thumbnail'] });
      const p = await addWorker();
      const resize = await submit({ handler: 'resize' });
      const ocr = await submit({ handler: 'ocr' });
      const cmd = await submit();
      assert.equal(await scheduler.cycle(tick()), 2);
      assert.equal((await get(resize.id)).worker_id, h.id);
      assert.equal((await get(cmd.id)).worker_id, p.id);
      assert.equal((await get(ocr.id)).state, 'QUEUED');
      assert.equal((await queueInsight(store, await get(ocr.id))).pending_reason, "no online worker runs handler 'ocr'");

      const ocrWorker = await addWorker({}, { kind: 'handler', handlers: ['ocr'] });
      assert.equal(await scheduler.cycle(tick()), 1);
      assert.equal((await get(ocr.id)).worker_id, ocrWorker.id);
    });

    it('respects slots: never more jobs on a worker than it has slots', async () => {
      const w = await addWorker({ cpu_cores: 64, slots: 2 });
      const jobs = [];
      for (let i = 0; i < 5; i++) jobs.push(await submit({ name: `j${i}` }));
      assert.equal(await scheduler.cycle(tick()), 2);
      assert.equal(await scheduler.cycle(tick()), 0);
      assert.equal((await store.workerUsage()).get(w.id)?.slots, 2);
      assert.deepEqual(await states(jobs), ['SCHEDULED', 'SCHEDULED', 'QUEUED', 'QUEUED', 'QUEUED']);
      await complete(jobs[0]!.id);
      assert.equal(await scheduler.cycle(tick()), 1);
      assert.deepEqual(await states(jobs), ['COMPLETED', 'SCHEDULED', 'SCHEDULED', 'QUEUED', 'QUEUED']);
      assert.equal((await store.workerUsage()).get(w.id)?.slots, 2, 'SCHEDULED jobs hold their slots');
    });

    it('draining and offline workers get nothing', async () => {
      const draining = await addWorker();
      const gone = await addWorker();
      await store.setWorkerState(draining.id, 'draining');
      await store.setWorkerState(gone.id, 'offline');
      const j = await submit();
      assert.equal(await scheduler.cycle(tick()), 0);
      assert.equal((await get(j.id)).state, 'QUEUED');
      assert.equal((await queueInsight(store, await get(j.id))).pending_reason, 'no online process worker');

      await store.setWorkerState(draining.id, 'online');
      assert.equal(await scheduler.cycle(tick()), 1);
      assert.equal((await get(j.id)).worker_id, draining.id);
    });

    it('a job cancelled while queued is not placed', async () => {
      await addWorker();
      const keep = await submit();
      const drop = await submit();
      await store.cancelJob(drop.id, 'no longer needed', 'user:test', tick());
      assert.equal(await scheduler.cycle(tick()), 1);
      assert.deepEqual(await states([keep, drop]), ['SCHEDULED', 'CANCELLED']);
      assert.equal((await store.jobAttempts(drop.id)).length, 0);
    });
  });
}

// Every store above was closed: no socket or ref'd timer may outlive the tests (the file would hang).
after(async () => {
  const leaked = () => process.getActiveResourcesInfo().filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap');
  for (let i = 0; i < 20 && leaked().length > 0; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(leaked(), [], 'leaked handles');
});
