/**
 * Preemption, placement limits and queue control end to end on each store: real server, real
 * worker processes, real shell jobs.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STORE_KINDS } from './helpers/db.ts';
import { runGantry } from './helpers/cli.ts';
import { startCluster, eventually, type TestCluster } from './helpers/cluster.ts';
import { Worker } from '../src/client/worker.ts';

for (const kind of STORE_KINDS) {
  describe(`preemption on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind);
    });
    after(() => cl.close());

    test('an emergency job preempts a running low-priority job: SIGTERM, grace period, checkpoint, requeued with the reason, completes later', async () => {
      const w = await cl.startWorker({ cpu: 2, slots: 1 });
      const dir = cl.db.dir;
      // Traps TERM, writes a checkpoint within its grace period and exits; the next attempt resumes from it.
      const script = `
        if [ -f "${dir}/ckpt" ]; then echo "resumed from $(cat "${dir}/ckpt")"; exit 0; fi
        trap 'echo "step-$GANTRY_ATTEMPT" > "${dir}/ckpt"; echo got TERM; exit 143' TERM
        echo started; while true; do sleep 0.1; done`;
      const victim = await cl.client.submit({
        name: 'victim', command: ['sh', '-c', script], priority: 'low', grace_period: 5, resources: { cpu_cores: 2 },
        retry_policy: { max_attempts: 1 },
      });
      await eventually(async () => /started/.test((await cl.client.logs(victim.job_id)).logs.map((l) => l.data).join('')));
      const urgent = await cl.client.submit({ name: 'urgent', command: ['sh', '-c', 'echo urgent done'], priority: 'emergency', resources: { cpu_cores: 2 } });

      assert.equal((await cl.client.waitFor(urgent.job_id, { interval_ms: 25, timeout_ms: 15_000 })).status, 'COMPLETED');
      const done = await cl.client.waitFor(victim.job_id, { interval_ms: 25, timeout_ms: 15_000 });
      assert.equal(done.status, 'COMPLETED', 'the victim ran again and completed');
      assert.ok(existsSync(join(dir, 'ckpt')), 'the victim wrote its checkpoint in its grace period');
      assert.equal(readFileSync(join(dir, 'ckpt'), 'utf8').trim(), 'step-1');
      const logs = (await cl.client.logs(victim.job_id)).logs.map((l) => l.data).join('');
      assert.match(logs, /got TERM/);
      assert.match(logs, /resumed from step-1/);

      assert.deepEqual(done.attempts?.map((a) => a.outcome), ['preempted', 'completed']);
      assert.equal(done.retries_used, 1, 'the preempted attempt does not count against the retry budget (max_attempts 1)');
      assert.equal(done.worker_id === null || done.worker_id === w.id, true);
      const events = (await cl.client.events(victim.job_id)).events;
      const asked = events.find((e) => /^preemption requested/.test(e.reason));
      assert.ok(asked, 'the request is recorded');
      assert.equal(asked.actor, 'scheduler');
      assert.equal(asked.data?.preempted_by_job, urgent.job_id);
      const requeued = events.find((e) => e.from === 'RUNNING' && e.to === 'QUEUED');
      assert.ok(requeued, JSON.stringify(events.map((e) => [e.from, e.to, e.reason])));
      assert.match(requeued.reason, /^preempted: .*; requeued$/);
      assert.equal(requeued.data?.preempted_by_job, urgent.job_id);
      // The urgent job started only after the victim had stopped.
      const urgentJob = await cl.client.getJob(urgent.job_id);
      assert.ok(Date.parse(urgentJob.started_at!) >= Date.parse(requeued.at));
    });

    test('a job that ignores SIGTERM is killed when its grace period ends; preemptible: false is honoured for critical work', async () => {
      // The worker of the test above (2 cpus, 1 slot) runs these 2-cpu jobs one at a time.
      const guarded = await cl.client.submit({
        name: 'guarded', command: ['sh', '-c', 'trap "" TERM; echo started; sleep 1.5; echo finished'], priority: 'low', preemptible: false,
        resources: { cpu_cores: 2 },
      });
      await eventually(async () => /started/.test((await cl.client.logs(guarded.job_id)).logs.map((l) => l.data).join('')));
      const crit = await cl.client.submit({ command: ['true'], priority: 'critical', resources: { cpu_cores: 2 } });
      const g = await cl.client.waitFor(guarded.job_id, { interval_ms: 25, timeout_ms: 15_000 });
      assert.deepEqual(g.attempts?.map((a) => a.outcome), ['completed'], 'critical work did not preempt a non-preemptible job');
      assert.equal((await cl.client.waitFor(crit.job_id, { interval_ms: 25, timeout_ms: 15_000 })).status, 'COMPLETED');

      const stubborn = await cl.client.submit({
        name: 'stubborn', command: ['sh', '-c', 'trap "" TERM; echo started; if [ "$GANTRY_ATTEMPT" = 1 ]; then sleep 60; fi'], priority: 'low',
        preemptible: false, grace_period: 1, resources: { cpu_cores: 2 },
      });
      await eventually(async () => /started/.test((await cl.client.logs(stubborn.job_id)).logs.map((l) => l.data).join('')));
      const t0 = Date.now();
      const em = await cl.client.submit({ command: ['true'], priority: 'emergency', resources: { cpu_cores: 2 } });
      assert.equal((await cl.client.waitFor(em.job_id, { interval_ms: 25, timeout_ms: 15_000 })).status, 'COMPLETED');
      assert.ok(Date.now() - t0 >= 1000, 'the emergency job waited for the grace period');
      const s = await cl.client.waitFor(stubborn.job_id, { interval_ms: 25, timeout_ms: 15_000 });
      assert.deepEqual(s.attempts?.map((a) => a.outcome), ['preempted', 'completed'], 'emergency preempts even non-preemptible work');
      assert.match(s.attempts?.[0]?.error ?? '', /SIGKILL/);
    });
  });

  describe(`quota reclaim on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind);
    });
    after(() => cl.close());

    test("a tenant below its nominal quota reclaims what another borrowed: the borrower's jobs are preempted and requeued", async () => {
      await cl.startWorker({ cpu: 4, slots: 8 });
      for (const id of ['lender', 'borrower']) {
        await cl.client.createTenant({ id, tier: 'premium', cohort: 'pool', quota: { cpu_cores: 2 } });
      }
      const borrowed: string[] = [];
      for (let i = 0; i < 4; i++) {
        borrowed.push((await cl.client.submit({ command: ['sleep', '30'], tenant: 'borrower', resources: { cpu_cores: 1 }, grace_period: 1 })).job_id);
      }
      await eventually(async () => (await Promise.all(borrowed.map(async (id) => (await cl.client.getJob(id)).status))).every((s) => s === 'RUNNING'));
      const mine: string[] = [];
      for (let i = 0; i < 2; i++) mine.push((await cl.client.submit({ command: ['sleep', '30'], tenant: 'lender', resources: { cpu_cores: 1 } })).job_id);
      await eventually(async () => (await Promise.all(mine.map(async (id) => (await cl.client.getJob(id)).status))).every((s) => s === 'RUNNING'), 15_000);
      const after = await Promise.all(borrowed.map((id) => cl.client.getJob(id)));
      const preempted = after.filter((j) => j.attempts?.some((a) => a.outcome === 'preempted'));
      assert.equal(preempted.length, 2, 'exactly the borrowed part was reclaimed');
      assert.equal(after.filter((j) => j.status === 'RUNNING').length, 2, 'the borrower keeps its nominal quota');
      const ev = (await cl.client.events(preempted[0]!.job_id)).events.find((e) => e.from === 'RUNNING' && e.to === 'QUEUED');
      assert.equal(ev?.data?.preempted_by_tenant, 'lender');
      for (const id of [...borrowed, ...mine]) await cl.client.cancel(id);
    });
  });

  describe(`handler preemption on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind);
    });
    after(() => cl.close());

    test("a preempted handler sees its signal aborted ('preempted'), winds down, is requeued and completes on its next attempt", async () => {
      const seen: string[] = [];
      const w = new Worker({
        server: cl.server.url, token: cl.server.admin_token!, concurrency: 1,
        handlers: {
          train: async (job) => {
            if (job.parameters.block === true && job.attempt === 1) {
              await new Promise<void>((r) => job.signal.addEventListener('abort', () => r(), { once: true }));
              seen.push(String((job.signal.reason as Error).message));
              return 'checkpointed';
            }
            return { attempt: job.attempt };
          },
        },
      });
      await w.start();
      try {
        const victim = await cl.client.submit({ handler: 'train', priority: 'low', parameters: { block: true } });
        await eventually(async () => (await cl.client.getJob(victim.job_id)).status === 'RUNNING');
        const urgent = await cl.client.submit({ handler: 'train', priority: 'emergency' });
        assert.equal((await cl.client.waitFor(urgent.job_id, { interval_ms: 25, timeout_ms: 15_000 })).status, 'COMPLETED');
        const v = await cl.client.waitFor(victim.job_id, { interval_ms: 25, timeout_ms: 15_000 });
        assert.equal(v.status, 'COMPLETED');
        assert.deepEqual(v.result, { attempt: 2 });
        assert.deepEqual(v.attempts?.map((a) => a.outcome), ['preempted', 'completed']);
        assert.deepEqual(seen, ['preempted']);
      } finally {
        await w.stop();
      }
    });
  });

  describe(`placement and workers on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind);
    });
    after(() => cl.close());

    test('an 8-GPU job on 4-GPU workers stays QUEUED with the reason while small GPU jobs run', async () => {
      await cl.startWorker({ cpu: 8, slots: 8, gpus: 4 });
      await cl.startWorker({ cpu: 8, slots: 8, gpus: 4 });
      const big = await cl.client.submit({ name: 'big', command: ['true'], priority: 'high', resources: { gpu_count: 8 } });
      const small: string[] = [];
      for (let i = 0; i < 4; i++) small.push((await cl.client.submit({ command: ['sh', '-c', 'echo gpus=$CUDA_VISIBLE_DEVICES'], resources: { gpu_count: 2 } })).job_id);
      for (const id of small) assert.equal((await cl.client.waitFor(id, { interval_ms: 25, timeout_ms: 15_000 })).status, 'COMPLETED');
      const j = await cl.client.getJob(big.job_id);
      assert.equal(j.status, 'QUEUED');
      assert.match(j.pending_reason ?? '', /no worker is large enough: needs gpu_count 8 \(largest worker has 4\)/);
      const e = await cl.client.explain(big.job_id);
      const r = e.reasons.find((x) => x.kind === 'too_big');
      assert.ok(r, JSON.stringify(e));
      assert.equal(r.resource, 'gpu_count');
      assert.equal(r.need, 8);
      assert.equal(r.largest, 4);
      assert.equal(e.estimated_start_time, null);
      const cli = await runGantry(cl, ['why', big.job_id]);
      assert.match(cli.stdout, /too big for any worker: needs gpu_count 8, the largest worker has 4/);
      await cl.client.cancel(big.job_id);
    });
  });

  describe(`reservations on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind);
    });
    after(() => cl.close());

    test('a job waiting for room gets its estimated start from the reservation, on GET /jobs/{id}, /explain and gantry why', async () => {
      await cl.startWorker({ cpu: 2, slots: 4 });
      const long = await cl.client.submit({ command: ['sleep', '30'], priority: 'high', resources: { cpu_cores: 2 }, expected_duration: 60 });
      const running = await eventually(async () => {
        const j = await cl.client.getJob(long.job_id);
        return j.status === 'RUNNING' ? j : null;
      });
      const wide = await cl.client.submit({ command: ['true'], resources: { cpu_cores: 2 }, expected_duration: 5 });
      await new Promise((r) => setTimeout(r, 1200));
      const e = await cl.client.explain(wide.job_id);
      assert.equal(e.status, 'QUEUED');
      const expected = Date.parse(running.started_at!) + 60_000;
      assert.ok(e.estimated_start_time, JSON.stringify(e));
      assert.ok(Math.abs(Date.parse(e.estimated_start_time) - expected) < 2000, `${e.estimated_start_time} vs ${new Date(expected).toISOString()}`);
      assert.ok(e.reasons.length > 0, JSON.stringify(e));
      const j = await cl.client.getJob(wide.job_id);
      assert.equal(j.estimated_start_time, e.estimated_start_time, 'GET /jobs/{id} uses the same model');
      assert.ok(j.pending_reason);
      const why = await runGantry(cl, ['why', wide.job_id]);
      assert.match(why.stdout, /estimated_start:\s+\d{4}-\d\d-\d\dT/);
      await cl.client.cancel(wide.job_id);
      await cl.client.cancel(long.job_id);
    });

    test('gantry submit --not-preemptible --grace-period sets the job spec; a bad grace period names its flag', async () => {
      const r = await runGantry(cl, ['submit', '--not-preemptible', '--grace-period', '7', '--cpu', '64', '--output', 'json', '--', 'true']);
      assert.equal(r.code, 0, r.stderr);
      const j = await cl.client.getJob((JSON.parse(r.stdout) as { job_id: string }).job_id);
      assert.equal(j.preemptible, false);
      assert.equal(j.grace_period, 7);
      await cl.client.cancel(j.job_id);
      const bad = await runGantry(cl, ['submit', '--grace-period', '-1', '--', 'true']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--grace-period/);
    });
  });

  describe(`draining a worker on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind);
    });
    after(() => cl.close());

    test('gantry workers drain: its running job finishes, it gets no new work, another worker takes the queue', async () => {
      const a = await cl.startWorker({ cpu: 1, slots: 1 });
      const running = await cl.client.submit({ command: ['sh', '-c', 'echo started; sleep 1; echo finished'], resources: { cpu_cores: 1 } });
      await eventually(async () => (await cl.client.getJob(running.job_id)).status === 'RUNNING');
      const drained = await runGantry(cl, ['workers', 'drain', a.id]);
      assert.equal(drained.code, 0, drained.stderr);
      assert.match(drained.stdout, new RegExp(`worker ${a.id} draining`));
      const list = await runGantry(cl, ['workers', '--output', 'json']);
      assert.equal(JSON.parse(list.stdout).workers.find((w: { worker_id: string }) => w.worker_id === a.id).state, 'draining');
      const later = await cl.client.submit({ command: ['true'], resources: { cpu_cores: 1 } });
      const done = await cl.client.waitFor(running.job_id, { interval_ms: 25, timeout_ms: 15_000 });
      assert.equal(done.status, 'COMPLETED', 'the running job finished');
      assert.deepEqual(done.attempts?.map((x) => x.outcome), ['completed']);
      await new Promise((r) => setTimeout(r, 1500)); // cycles pass with the drained worker idle
      const waiting = await cl.client.getJob(later.job_id);
      assert.equal(waiting.status, 'QUEUED', 'the drained worker took no new work');
      assert.equal(waiting.pending_reason, 'no online process worker');
      const b = await cl.startWorker({ cpu: 1, slots: 1 });
      const ran = await cl.client.waitFor(later.job_id, { interval_ms: 25, timeout_ms: 15_000 });
      assert.equal(ran.status, 'COMPLETED');
      assert.equal(ran.attempts?.[0]?.worker_id, b.id);
    });
  });
}
