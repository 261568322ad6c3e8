/**
 * End to end, on each store: a real server, real worker processes, real commands.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS } from './helpers/db.ts';
import { startCluster, eventually, groupAlive, type TestCluster } from './helpers/cluster.ts';
import type { GantryClient } from '../src/client/http.ts';

async function logText(c: GantryClient, id: string): Promise<string> {
  return (await c.logs(id)).logs.map((l) => l.data).join('');
}

async function pidFromLogs(c: GantryClient, id: string): Promise<number> {
  return eventually(async () => {
    const m = /pid=(\d+)/.exec(await logText(c, id));
    return m ? Number(m[1]) : null;
  });
}

for (const kind of STORE_KINDS) {
  describe(`end to end on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind);
      await cl.startWorker({ cpu: 2, slots: 8 });
    });
    after(() => cl.close());

    test('a command job completes with its stdout and stderr captured and its env set', async () => {
      const r = await cl.client.submit({
        name: 'hello',
        command: ['sh', '-c', 'echo "out $GREETING gpu=[$CUDA_VISIBLE_DEVICES]"; echo oops >&2'],
        env: { GREETING: 'hi' },
        resources: { cpu_cores: 0.5 },
      });
      assert.equal(r.status, 'QUEUED');
      assert.equal(typeof r.queue_position, 'number');
      const j = await cl.client.waitFor(r.job_id, { interval_ms: 20, timeout_ms: 15_000 });
      assert.equal(j.status, 'COMPLETED');
      assert.equal(j.exit_code, 0);
      assert.equal(j.attempts?.length, 1);
      assert.equal(j.attempts?.[0]?.outcome, 'completed');
      const logs = (await cl.client.logs(r.job_id)).logs;
      assert.deepEqual(logs.filter((l) => l.stream === 'stdout').map((l) => l.data).join(''), 'out hi gpu=[]\n');
      assert.deepEqual(logs.filter((l) => l.stream === 'stderr').map((l) => l.data).join(''), 'oops\n');
      const states = (await cl.client.events(r.job_id)).events.map((e) => e.to);
      assert.deepEqual(states, ['SUBMITTED', 'QUEUED', 'SCHEDULED', 'RUNNING', 'COMPLETED']);
    });

    test('exit 3 is retried by the policy, then dead-lettered, and can be requeued', async () => {
      const r = await cl.client.submit({
        command: ['sh', '-c', 'echo attempt $GANTRY_ATTEMPT; exit 3'],
        resources: { cpu_cores: 0.5 },
        retry_policy: { max_attempts: 2, retry_delay: 0.2, backoff: 'fixed' },
      });
      const j = await cl.client.waitFor(r.job_id, { interval_ms: 20, timeout_ms: 15_000 });
      assert.equal(j.status, 'FAILED');
      assert.equal(j.exit_code, 3);
      assert.equal(j.attempts?.length, 2);
      assert.ok(j.dead_lettered);
      const events = (await cl.client.events(r.job_id)).events;
      assert.ok(events.some((e) => e.to === 'RETRYING'), 'went through RETRYING');
      assert.match(events.at(-1)!.reason, /attempts used up \(2\/2\)/);
      const dlq = await cl.client.deadLetter();
      assert.ok(dlq.jobs.some((d) => d.job_id === r.job_id), 'in the dead-letter queue');
      await cl.client.requeueDead(r.job_id);
      const again = await cl.client.waitFor(r.job_id, { interval_ms: 20, timeout_ms: 15_000 });
      assert.equal(again.status, 'FAILED');
      assert.equal(again.attempts?.length, 4, 'requeue gave a fresh budget of 2 attempts');
      assert.match(await logText(cl.client, r.job_id), /attempt 4/);
    });

    test('a job that sleeps past its timeout ends TIMEOUT and its whole process group is gone', async () => {
      const r = await cl.client.submit({
        command: ['sh', '-c', 'echo pid=$$; sleep 60 & sleep 60; wait'],
        timeout: 1,
        resources: { cpu_cores: 0.5 },
        retry_policy: { max_attempts: 1 },
      });
      const pid = await pidFromLogs(cl.client, r.job_id);
      assert.ok(groupAlive(pid), 'running');
      const j = await cl.client.waitFor(r.job_id, { interval_ms: 50, timeout_ms: 15_000 });
      assert.equal(j.status, 'TIMEOUT');
      assert.match(j.error ?? '', /timed out after 1s/);
      await eventually(async () => !groupAlive(pid), 5000);
    });

    test('cancel stops a running job and its process group', async () => {
      const r = await cl.client.submit({ command: ['sh', '-c', 'echo pid=$$; sleep 60'], resources: { cpu_cores: 0.5 } });
      const pid = await pidFromLogs(cl.client, r.job_id);
      const c = await cl.client.cancel(r.job_id, 'test');
      assert.equal(c.cancel_requested, true);
      const j = await cl.client.waitFor(r.job_id, { interval_ms: 20, timeout_ms: 10_000 });
      assert.equal(j.status, 'CANCELLED');
      await eventually(async () => !groupAlive(pid), 5000);
    });

    test('pause stops the process (SIGSTOP) and resume continues it to completion', async () => {
      const r = await cl.client.submit({
        command: ['sh', '-c', 'echo pid=$$; i=0; while [ $i -lt 15 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done'],
        resources: { cpu_cores: 0.5 },
      });
      await pidFromLogs(cl.client, r.job_id);
      await cl.client.pause(r.job_id);
      await eventually(async () => (await cl.client.getJob(r.job_id)).status === 'PAUSED');
      const ticks = () => logText(cl.client, r.job_id).then((t) => (t.match(/tick/g) ?? []).length);
      const frozen = await ticks();
      await new Promise((res) => setTimeout(res, 600));
      assert.ok((await ticks()) <= frozen + 1, 'no output while paused');
      assert.equal((await cl.client.getJob(r.job_id)).status, 'PAUSED');
      await cl.client.resume(r.job_id);
      const j = await cl.client.waitFor(r.job_id, { interval_ms: 20, timeout_ms: 15_000 });
      assert.equal(j.status, 'COMPLETED');
      assert.equal(await ticks(), 15);
      const to = (await cl.client.events(r.job_id)).events.map((e) => e.to);
      assert.ok(to.includes('PAUSED'));
      assert.deepEqual(to.slice(-2), ['RUNNING', 'COMPLETED']);
    });

    test('a job needing more cores than any worker stays QUEUED with a reason; smaller jobs still run', async () => {
      const big = await cl.client.submit({ command: ['true'], resources: { cpu_cores: 64 } });
      const small = await cl.client.submit({ command: ['true'], resources: { cpu_cores: 0.5 } });
      assert.equal((await cl.client.waitFor(small.job_id, { interval_ms: 20, timeout_ms: 10_000 })).status, 'COMPLETED');
      const j = await cl.client.getJob(big.job_id);
      assert.equal(j.status, 'QUEUED');
      assert.match(j.pending_reason ?? '', /no worker is large enough: needs cpu_cores 64 \(largest worker has 2\)/);
      assert.equal(j.estimated_start_time, null);
      await cl.client.cancel(big.job_id);
    });

    test('higher priority runs first; FIFO within a priority', async () => {
      // One slot of 2 cpus: jobs run one at a time, so start order is queue order. The blocker is an
      // emergency job so that no job below preempts it (critical and emergency work preempts lower priorities).
      const blocker = await cl.client.submit({ command: ['sleep', '0.5'], priority: 'emergency', resources: { cpu_cores: 2 } });
      await eventually(async () => (await cl.client.getJob(blocker.job_id)).status === 'RUNNING');
      const order = ['low', 'normal', 'critical', 'normal', 'emergency'] as const;
      const ids: string[] = [];
      for (const p of order) ids.push((await cl.client.submit({ command: ['true'], priority: p, resources: { cpu_cores: 2 } })).job_id);
      const done = [];
      for (const id of ids) done.push(await cl.client.waitFor(id, { interval_ms: 20, timeout_ms: 20_000 }));
      const byStart = [...done].sort((a, b) => Date.parse(a.started_at!) - Date.parse(b.started_at!) || 0).map((j) => ids.indexOf(j.job_id));
      assert.deepEqual(byStart, [4, 2, 1, 3, 0]);
    });
  });
}

describe('a worker killed with SIGKILL mid-job', () => {
  for (const kind of STORE_KINDS) {
    test(`on ${kind}: its command is killed with it, and the job is requeued within 10 s and completes on another worker`, async (t) => {
      const cl = await startCluster(kind);
      t.after(() => cl.close());
      const a = await cl.startWorker({ cpu: 1, slots: 1 });
      const r = await cl.client.submit({
        command: ['sh', '-c', 'echo pid=$$ attempt=$GANTRY_ATTEMPT; if [ "$GANTRY_ATTEMPT" = "1" ]; then exec sleep 30; fi; echo finished'],
        resources: { cpu_cores: 1 },
      });
      const pid = await pidFromLogs(cl.client, r.job_id);
      const running = await cl.client.getJob(r.job_id);
      assert.equal(running.worker_id, a.id);
      const b = await cl.startWorker({ cpu: 1, slots: 1 });
      a.child.kill('SIGKILL');
      const killedAt = Date.now();
      // The killed worker's command does not run on beside its requeued attempt: its process group dies with it.
      await eventually(async () => !groupAlive(pid), 3000);
      const requeued = await eventually(async () => {
        const j = await cl.client.getJob(r.job_id);
        return j.worker_id !== a.id && j.status !== 'RUNNING' ? j : j.attempts?.some((x) => x.outcome === 'lost') ? j : null;
      }, 12_000, 50);
      assert.ok(Date.now() - killedAt < 10_000, 'detected and requeued within 10 s');
      const j = await cl.client.waitFor(requeued.job_id, { interval_ms: 50, timeout_ms: 15_000 });
      assert.equal(j.status, 'COMPLETED');
      assert.equal(j.attempts?.[0]?.outcome, 'lost');
      assert.equal(j.attempts?.[0]?.worker_id, a.id);
      assert.equal(j.attempts?.[1]?.worker_id, b.id);
      assert.match(await logText(cl.client, r.job_id), /finished/);
      const ev = (await cl.client.events(r.job_id)).events.find((e) => e.actor === 'lease-reaper');
      assert.match(ev?.reason ?? '', /lost \(no heartbeat/);
    });
  }
});
