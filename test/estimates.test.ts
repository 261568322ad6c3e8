/**
 * Runtime estimates and estimated start times: one estimator (the user's expected_duration, else
 * the p90 of the template/type/tenant history) used by the scheduling policy and the queue
 * insight alike, and a submit answer that agrees with GET /jobs/{id} — on every store.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS, freshDatabase, type TestDatabase } from './helpers/db.ts';
import { startCluster, eventually, type TestCluster } from './helpers/cluster.ts';
import { openStore, type Store } from '../src/store/store.ts';
import { Scheduler } from '../src/scheduler/scheduler.ts';
import { runtimeEstimatesFor } from '../src/scheduler/runtimeEstimates.ts';
import { buildSnapshot } from '../src/scheduler/snapshot.ts';
import { queueInsight } from '../src/scheduler/estimate.ts';
import { normalizeJobSpec, type JobRequest } from '../src/core/jobSpec.ts';

for (const kind of STORE_KINDS) {
  describe(`one runtime estimator (${kind})`, () => {
    let db: TestDatabase;
    let store: Store;
    let clock = Date.now() - 3_600_000;

    before(async () => {
      db = await freshDatabase(kind);
      store = await openStore(db.url);
    });
    after(async () => {
      await store?.close();
      await db?.drop();
    });

    /** Runs one job on `worker` from `start` for `seconds` (real store path: assign, started, completed). */
    async function run(worker: string, req: JobRequest, seconds: number | null, template: string | null = null): Promise<string> {
      const spec = { ...normalizeJobSpec({ command: ['true'], ...req }), template };
      const job = (await store.submitJobs([spec], 'user:test', clock))[0]!.job;
      await store.assignJobs([{ job_id: job.id, worker_id: worker, gpu_indices: [] }], clock);
      const attempt = (await store.getJob(job.id))!.current_attempt_id!;
      await store.reportResults(worker, [{ job_id: job.id, attempt_id: attempt, outcome: 'started' }], clock);
      if (seconds !== null) {
        await store.reportResults(worker, [{ job_id: job.id, attempt_id: attempt, outcome: 'completed' }], clock + seconds * 1000);
        clock += seconds * 1000 + 1;
      }
      return job.id;
    }

    test('expected_duration, else p90 of the same template and tenant, then the tenant\'s runs of the type, then the type across tenants; the policy snapshot and the queue insight use it', async () => {
      await store.registerWorker({ id: 'big', name: 'big', kind: 'process', handlers: [], labels: {}, capacity: { cpu_cores: 64, memory_gb: 64, gpu_count: 0, slots: 64 } }, clock);
      for (let s = 10; s <= 100; s += 10) await run('big', { type: 'train', tenant: 'acme' }, s);
      for (let i = 0; i < 4; i++) await run('big', { type: 'train', tenant: 'beta' }, 1000);
      for (let i = 0; i < 3; i++) await run('big', { type: 'train', tenant: 'delta' }, 7, 'finetune');
      await run('big', { type: 'train', tenant: 'delta' }, 500);
      await store.releaseWorker('big', 'history written', 'test', clock);

      const est = runtimeEstimatesFor(store);
      const key = (tenant: string, expected_duration: number | null = null) => ({ type: 'train', template: null, tenant, expected_duration });
      assert.equal(await est.estimateMs(key('acme'), clock), 90_000, "p90 of acme's own 10 runs (10…100 s), not the median (50 s)");
      assert.equal(await est.estimateMs(key('beta'), clock), 1_000_000, "beta's own runs");
      assert.equal(await est.estimateMs(key('gamma'), clock), 1_000_000, 'no history of its own: p90 of the type across tenants (18 runs)');
      assert.equal(await est.estimateMs({ ...key('delta'), template: 'finetune' }, clock), 7000, "delta's runs of the same template");
      assert.equal(await est.estimateMs(key('delta'), clock), 500_000, "delta's runs of the type");
      assert.equal(await est.estimateMs(key('acme', 5), clock), 5000, 'the user\'s expected_duration wins');
      assert.equal(await est.estimateMs({ ...key('acme'), type: 'never-ran' }, clock), null);
      assert.equal(new Scheduler(store).policyContext.estimates, est, 'the scheduler uses the store\'s one estimator');

      // A running acme 'train' job on a small worker: the policy's expected end and the queue insight's estimated start both say start + 90 s.
      await store.registerWorker({ id: 'small', name: 'small', kind: 'process', handlers: [], labels: {}, capacity: { cpu_cores: 2, memory_gb: 4, gpu_count: 0, slots: 2 } }, clock);
      const started = clock;
      const running = await run('small', { type: 'train', tenant: 'acme', resources: { cpu_cores: 2 } }, null);
      clock += 1000;
      const built = await buildSnapshot(store, { now: clock, default_tier: 'enterprise', scan_limit: 100, usage: new Map(), estimates: est });
      assert.equal(built.snapshot.running.find((r) => r.id === running)?.expected_end, started + 90_000);
      const waiting = (await store.submitJobs([normalizeJobSpec({ command: ['true'], resources: { cpu_cores: 2 } })], 'user:test', clock))[0]!.job;
      const insight = await queueInsight(store, waiting, clock);
      assert.equal(insight.estimated_start_time, new Date(started + 90_000).toISOString());
    });
  });

  describe(`estimated start on submit (${kind})`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind);
    });
    after(() => cl.close());

    test('the submit answer and GET /jobs/{id} give the same estimated start, from the policy, for a job that waits for a running job to end', async () => {
      await cl.startWorker({ cpu: 2, slots: 6 });
      // History of type 'build': four short runs and one of ~5 s — median ≈ 0.1 s, p90 ≈ 5 s. They carry their own
      // expected_duration, so nothing learns the type's history (cached for 10 s) before all five have ended.
      const history = await Promise.all([0.1, 0.1, 0.1, 0.1, 5].map((s) => cl.client.submit({
        type: 'build', command: ['sleep', String(s)], resources: { cpu_cores: 0.3 }, expected_duration: s,
      })));
      for (const h of history) assert.equal((await cl.client.waitFor(h.job_id, { interval_ms: 25, timeout_ms: 20_000 })).status, 'COMPLETED');
      const runs = await Promise.all(history.map((h) => cl.client.getJob(h.job_id)));
      const longest = Math.max(...runs.map((r) => Date.parse(r.finished_at!) - Date.parse(r.started_at!)));

      const blocker = await cl.client.submit({ type: 'build', command: ['sleep', '30'], resources: { cpu_cores: 2 } });
      const running = await eventually(async () => {
        const j = await cl.client.getJob(blocker.job_id);
        return j.status === 'RUNNING' ? j : null;
      });
      // Explanations share a cluster view for 250 ms: let the one from the blocker's own submit expire.
      await new Promise((r) => setTimeout(r, 300));
      const sub = await cl.client.submit({ command: ['true'], resources: { cpu_cores: 2 } });
      assert.equal(sub.status, 'QUEUED');
      const got = await cl.client.getJob(sub.job_id);
      const why = await cl.client.explain(sub.job_id);
      assert.ok(sub.estimated_start_time, 'the submit answer has an estimate');
      assert.equal(sub.estimated_start_time, got.estimated_start_time, 'submit and GET agree');
      assert.equal(sub.estimated_start_time, why.estimated_start_time, 'and /explain');
      // It is the blocker's start plus the p90 of its type's history, not the median.
      const expected = Date.parse(running.started_at!) + longest;
      assert.ok(Math.abs(Date.parse(sub.estimated_start_time) - expected) < 50, `${sub.estimated_start_time} vs ${new Date(expected).toISOString()}`);
      await cl.client.cancel(blocker.job_id);
      await cl.client.cancel(sub.job_id);
    });

    test('a job placed on a worker by the cycle its submit woke is answered with its placement as its start, first in its queue', async () => {
      // The test above has just cancelled a running job, which the cluster view shared by submit answers
      // (up to 250 ms old) still shows running — estimating from it put this start ~5 s out. On SQLite
      // the cycle places the job before its answer is built, and the answer is the placement; on
      // PostgreSQL the cycle's round trips end after it, so the view must expire first.
      await eventually(async () => (await cl.client.queueStatus()).running_jobs === 0);
      if (kind === 'postgres') await new Promise((r) => setTimeout(r, 300));
      const before = Date.now();
      const sub = await cl.client.submit({ command: ['sleep', '0.2'], resources: { cpu_cores: 0.5 } });
      const after = Date.now();
      assert.equal(sub.status, 'QUEUED');
      assert.equal(sub.queue_position, 1);
      const start = Date.parse(sub.estimated_start_time!);
      assert.ok(start >= before - 1 && start <= after, `estimated start ${sub.estimated_start_time} is not within the submit (${new Date(before).toISOString()} … ${new Date(after).toISOString()})`);
      const job = await cl.client.waitFor(sub.job_id, { interval_ms: 20, timeout_ms: 10_000 });
      assert.equal(job.status, 'COMPLETED');
      assert.ok(Date.parse(job.started_at!) >= start, 'it started at or after the placement the answer gave');
    });
  });
}
