/**
 * Fault-tolerance mechanisms end to end, on each store, with real servers and worker processes:
 * named retry policies, non-retryable exit codes, circuit breakers, checkpoints, graceful
 * worker and server shutdown, and the dead-letter queue's history and bulk requeue.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { STORE_KINDS, freshDatabase } from './helpers/db.ts';
import { startCluster, eventually, groupAlive, type TestCluster } from './helpers/cluster.ts';
import { GantryApiError, GantryClient, type JobView } from '../src/client/http.ts';
import { Worker, type HandlerJob } from '../src/client/index.ts';
import { openStore } from '../src/store/store.ts';
import { Scheduler } from '../src/scheduler/scheduler.ts';
import { startServer } from '../src/server/run.ts';
import { compileServerConfig } from '../src/config.ts';

const GANTRY_BIN = fileURLToPath(new URL('../bin/gantry.js', import.meta.url));

async function logText(c: GantryClient, id: string): Promise<string> {
  return (await c.logs(id)).logs.map((l) => l.data).join('');
}

async function rejects(p: Promise<unknown>, status: number, code: string, field?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof GantryApiError, String(err));
    assert.equal(err.status, status, err.message);
    assert.equal(err.code, code);
    if (field) assert.equal(err.field, field);
    return true;
  });
}

/** Time from the job's RETRYING event to its run_after (ms): the backoff the policy chose. */
async function firstBackoffMs(c: GantryClient, id: string): Promise<{ delay: number; job: JobView }> {
  const job = await eventually(async () => {
    const j = await c.getJob(id);
    return j.status === 'RETRYING' && j.run_after ? j : null;
  }, 15_000, 10);
  const ev = (await c.events(id)).events.find((e) => e.to === 'RETRYING')!;
  return { delay: Date.parse(job.run_after!) - Date.parse(ev.at), job };
}

for (const kind of STORE_KINDS) {
  describe(`fault tolerance on ${kind}`, () => {
    let cl: TestCluster;
    let sdk: Worker;
    before(async () => {
      cl = await startCluster(kind, { config: { breaker_threshold: 3, breaker_open_ms: 2500 } });
      await cl.startWorker({ cpu: 4, slots: 8, non_retryable_exit_code: 43 });
      sdk = new Worker({
        server: cl.server.url,
        token: cl.server.admin_token!,
        concurrency: 2,
        handlers: {
          fragile: async (job) => {
            if (job.parameters.fail) throw new Error('upstream 503');
            if (job.parameters.hang) await new Promise((r) => job.signal.addEventListener('abort', r));
            return { ok: true };
          },
          resumable: async (job) => {
            if (job.lastCheckpoint) return { resumed_from: job.lastCheckpoint.data, saved_by_attempt: job.lastCheckpoint.attempt };
            job.checkpoint({ step: 3 });
            throw new Error('crashed after step 3');
          },
        },
      });
      await sdk.start();
    });
    after(async () => {
      await sdk.close(0);
      await cl.close();
    });

    test('named retry policies: backoff within the seed-003 bounds, overrides on top, unknown names refused', async () => {
      const cmd = ['sh', '-c', 'exit 3'];
      const crit = await cl.client.submit({ command: cmd, retry_policy: 'critical_job', resources: { cpu_cores: 0.1 } });
      const net = await cl.client.submit({ command: cmd, retry_policy: 'network_error', resources: { cpu_cores: 0.1 } });
      const c = await firstBackoffMs(cl.client, crit.job_id);
      const n = await firstBackoffMs(cl.client, net.job_id);
      // First retry: the lower bound, less up to half of it as jitter.
      assert.ok(c.delay >= 499 && c.delay <= 1001, `critical_job first backoff ${c.delay} ms, want 0.5–1 s`);
      assert.ok(n.delay >= 999 && n.delay <= 2001, `network_error first backoff ${n.delay} ms, want 1–2 s`);
      assert.deepEqual(
        { ...n.job.retry_policy },
        { name: 'network_error', max_attempts: 5, retry_delay: 2, backoff: 'exponential', max_delay: 120, jitter: 0.5 },
      );
      for (const id of [crit.job_id, net.job_id]) await cl.client.cancel(id);

      const over = await cl.client.submit({ command: ['true'], retry_policy: { name: 'temporary_failure', max_attempts: 4 } });
      const o = await cl.client.getJob(over.job_id);
      assert.equal(o.retry_policy.max_attempts, 4);
      assert.equal(o.retry_policy.retry_delay, 5);
      assert.equal(o.retry_policy.max_delay, 30);
      await rejects(cl.client.submit({ command: ['true'], retry_policy: 'flaky_network' }), 400, 'VALIDATION_FAILED', 'retry_policy');
      await rejects(cl.client.submit({ command: ['true'], retry_policy: { name: 'nope' } }), 400, 'VALIDATION_FAILED', 'retry_policy.name');
      await rejects(cl.client.submitBatch([{ command: ['true'] }, { command: ['true'], retry_policy: 'nope' }]), 400, 'VALIDATION_FAILED', 'jobs[1].retry_policy');
    });

    test('a non-retryable exit code fails the job for good: per job, and the worker default', async () => {
      const perJob = await cl.client.submit({ command: ['sh', '-c', 'exit 42'], retry_policy: { max_attempts: 5, retry_delay: 0.05, non_retryable_exit_code: 42 } });
      const byWorker = await cl.client.submit({ command: ['sh', '-c', 'exit 43'], retry_policy: { max_attempts: 5, retry_delay: 0.05 } });
      const other = await cl.client.submit({ command: ['sh', '-c', 'exit 44'], retry_policy: { max_attempts: 2, retry_delay: 0.05, non_retryable_exit_code: 42 } });
      for (const [id, code] of [[perJob.job_id, 42], [byWorker.job_id, 43]] as const) {
        const j = await cl.client.waitFor(id, { interval_ms: 20, timeout_ms: 15_000 });
        assert.equal(j.status, 'FAILED');
        assert.equal(j.exit_code, code);
        assert.equal(j.attempts?.length, 1, 'no retry');
        assert.ok(j.dead_lettered);
        assert.match((await cl.client.events(id)).events.at(-1)!.reason, /non-retryable failure/);
      }
      const j = await cl.client.waitFor(other.job_id, { interval_ms: 20, timeout_ms: 15_000 });
      assert.equal(j.attempts?.length, 2, 'another exit code is retried');
    });

    test('breaker: opens after N failures, jobs wait with the reason, a new leader sees it, the probe closes it', async () => {
      const fails = await cl.client.submitBatch(Array.from({ length: 3 }, () => ({ handler: 'fragile', parameters: { fail: true }, retry_policy: { max_attempts: 1 } })));
      for (const id of fails.job_ids) assert.equal((await cl.client.waitFor(id, { interval_ms: 20, timeout_ms: 10_000 })).status, 'FAILED');
      const open = (await cl.client.breakers()).breakers.find((b) => b.key === 'handler:fragile');
      assert.equal(open?.state, 'open');
      assert.equal(open?.consecutive_failures, 3);
      assert.equal(open?.last_error, 'upstream 503');
      const good = await cl.client.submit({ handler: 'fragile', parameters: {} });
      const waiting = await eventually(async () => {
        const j = await cl.client.getJob(good.job_id);
        return j.pending_reason?.includes('circuit') ? j : null;
      });
      assert.equal(waiting.status, 'QUEUED');
      assert.equal(waiting.attempt_count, 0, 'no attempt burnt');
      assert.match(waiting.pending_reason!, /^circuit open for handler:fragile after 3 consecutive failures, probe at \d{4}-/);
      // A new leader on the same database rebuilds the breaker from the store and holds the job back too.
      const store2 = await openStore(cl.db.url);
      try {
        const seen = (await store2.listBreakers()).find((b) => b.key === 'handler:fragile');
        assert.equal(seen?.state, 'open');
        assert.equal(new Date(seen!.probe_at!).toISOString(), open!.probe_at);
        if (Date.now() < Date.parse(open!.probe_at!) - 200) assert.equal(await new Scheduler(store2).cycle(), 0, 'nothing assigned while open');
      } finally {
        await store2.close();
      }
      const metrics = await eventually(async () => {
        const text = await metricsText(cl);
        return /gantry_breaker_state\{key="handler:fragile"\} 2/.test(text) ? text : null;
      });
      assert.match(metrics, /gantry_jobs\{state="FAILED"\} \d+/);
      assert.match(metrics, /# TYPE gantry_queue_depth gauge/);
      assert.match(metrics, /gantry_workers\{state="online"\} 2/);
      // After the open time the job runs as the probe, succeeds, and the breaker closes.
      const done = await cl.client.waitFor(good.job_id, { interval_ms: 20, timeout_ms: 10_000 });
      assert.equal(done.status, 'COMPLETED');
      assert.ok(Date.parse(done.started_at!) >= Date.parse(open!.probe_at!) - 5, 'ran only once the probe was due');
      const closed = (await cl.client.breakers()).breakers.find((b) => b.key === 'handler:fragile');
      assert.equal(closed?.state, 'closed');
      assert.equal(closed?.consecutive_failures, 0);
    });

    test('breaker per template: failures of one template hold back its jobs, not other command jobs', async () => {
      await cl.client.createTemplate({
        name: 'flaky_export', description: 'fails while the export target is down', category: 'test',
        parameters: [{ name: 'code', type: 'integer', required: false, default: 3 }],
        command: ['sh', '-c', 'exit {{ code }}'],
      });
      const fails = await cl.client.submitBatch(Array.from({ length: 3 }, () => ({ template: 'flaky_export', retry_policy: { max_attempts: 1 } })));
      for (const id of fails.job_ids) assert.equal((await cl.client.waitFor(id, { interval_ms: 20, timeout_ms: 10_000 })).status, 'FAILED');
      const open = (await cl.client.breakers()).breakers.find((b) => b.key === 'template:flaky_export');
      assert.equal(open?.state, 'open');
      const held = await cl.client.submit({ template: 'flaky_export', parameters: { code: 0 } });
      const other = await cl.client.submit({ command: ['true'] });
      assert.equal((await cl.client.waitFor(other.job_id, { interval_ms: 20, timeout_ms: 10_000 })).status, 'COMPLETED', 'other command jobs still run');
      const waiting = await cl.client.getJob(held.job_id);
      assert.equal(waiting.status, 'QUEUED');
      assert.match(waiting.pending_reason!, /^circuit open for template:flaky_export after 3 consecutive failures/);
      // Its probe (exit 0) closes the breaker.
      assert.equal((await cl.client.waitFor(held.job_id, { interval_ms: 20, timeout_ms: 10_000 })).status, 'COMPLETED');
      assert.equal((await cl.client.breakers()).breakers.find((b) => b.key === 'template:flaky_export')?.state, 'closed');
    });

    test('breaker: a failed probe reopens it; reset closes it by hand; unknown keys are 404', async () => {
      const fails = await cl.client.submitBatch(Array.from({ length: 3 }, () => ({ handler: 'fragile', parameters: { fail: true }, retry_policy: { max_attempts: 1 } })));
      for (const id of fails.job_ids) await cl.client.waitFor(id, { interval_ms: 20, timeout_ms: 10_000 });
      const first = (await cl.client.breakers()).breakers.find((b) => b.key === 'handler:fragile')!;
      assert.equal(first.state, 'open');
      const probe = await cl.client.submit({ handler: 'fragile', parameters: { fail: true }, retry_policy: { max_attempts: 1 } });
      assert.equal((await cl.client.waitFor(probe.job_id, { interval_ms: 20, timeout_ms: 10_000 })).status, 'FAILED');
      const reopened = (await cl.client.breakers()).breakers.find((b) => b.key === 'handler:fragile')!;
      assert.equal(reopened.state, 'open');
      assert.ok(Date.parse(reopened.opened_at!) > Date.parse(first.opened_at!), 'opened again by the failed probe');
      const reset = await cl.client.resetBreaker('handler:fragile');
      assert.equal(reset.state, 'closed');
      const next = await cl.client.submit({ handler: 'fragile', parameters: {} });
      assert.equal((await cl.client.waitFor(next.job_id, { interval_ms: 20, timeout_ms: 10_000 })).status, 'COMPLETED');
      await rejects(cl.client.resetBreaker('handler:never-seen'), 404, 'NOT_FOUND');
    });

    test('breaker: a probe that is cancelled makes way for the next probe at once', async () => {
      const fails = await cl.client.submitBatch(Array.from({ length: 3 }, () => ({ handler: 'fragile', parameters: { fail: true }, retry_policy: { max_attempts: 1 } })));
      for (const id of fails.job_ids) await cl.client.waitFor(id, { interval_ms: 20, timeout_ms: 10_000 });
      const hang = await cl.client.submit({ handler: 'fragile', parameters: { hang: true } });
      const half = await eventually(async () => {
        const b = (await cl.client.breakers()).breakers.find((x) => x.key === 'handler:fragile');
        return b?.state === 'half_open' ? b : null;
      }, 10_000);
      assert.equal(half.probe_job_id, hang.job_id);
      const next = await cl.client.submit({ handler: 'fragile', parameters: {} });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await cl.client.getJob(next.job_id)).status, 'QUEUED', 'held while the probe runs');
      const cancelledAt = Date.now();
      await cl.client.cancel(hang.job_id);
      const done = await cl.client.waitFor(next.job_id, { interval_ms: 20, timeout_ms: 10_000 });
      assert.equal(done.status, 'COMPLETED');
      const waited = Date.parse(done.started_at!) - cancelledAt;
      assert.ok(waited < 1200, `the next probe started ${waited} ms after the cancel (open period 2500 ms)`);
      assert.equal((await cl.client.breakers()).breakers.find((x) => x.key === 'handler:fragile')?.state, 'closed');
    });

    test('checkpoints: attempt 2 receives what attempt 1 saved (process file and SDK handler)', async () => {
      const script = 'if [ -n "$GANTRY_CHECKPOINT" ]; then echo "resumed $GANTRY_CHECKPOINT"; exit 0; fi; echo \'{"step": 7}\' > "$GANTRY_CHECKPOINT_FILE"; exit 3';
      const p = await cl.client.submit({ command: ['sh', '-c', script], retry_policy: { max_attempts: 2, retry_delay: 0.05 } });
      const pj = await cl.client.waitFor(p.job_id, { interval_ms: 20, timeout_ms: 15_000 });
      assert.equal(pj.status, 'COMPLETED');
      assert.match(await logText(cl.client, p.job_id), /resumed \{"step":7\}/);
      const shown = await cl.client.getJob(p.job_id);
      assert.equal(shown.last_checkpoint?.attempt, 1);
      assert.match(shown.last_checkpoint?.saved_at ?? '', /^\d{4}-\d\d-\d\dT/);

      const h = await cl.client.submit({ handler: 'resumable', retry_policy: { max_attempts: 2, retry_delay: 0.05 } });
      const hj = await cl.client.waitFor(h.job_id, { interval_ms: 20, timeout_ms: 15_000 });
      assert.equal(hj.status, 'COMPLETED');
      assert.deepEqual(hj.result, { resumed_from: { step: 3 }, saved_by_attempt: 1 });
    });

    test('checkpoint REST route: only the running attempt may save; size limit', async () => {
      const r = await cl.client.submit({ command: ['sleep', '30'], resources: { cpu_cores: 0.1 } });
      const running = await eventually(async () => {
        const j = await cl.client.getJob(r.job_id);
        return j.status === 'RUNNING' ? j : null;
      });
      const attempt = running.attempts!.at(-1)!.attempt_id;
      const saved = await cl.client.checkpoint(r.job_id, { attempt_id: attempt, file: 's3://bucket/ckpt-1', data: { epoch: 2 } });
      assert.deepEqual({ data: saved.checkpoint.data, file: saved.checkpoint.file, attempt: saved.checkpoint.attempt }, { data: { epoch: 2 }, file: 's3://bucket/ckpt-1', attempt: 1 });
      await rejects(cl.client.checkpoint(r.job_id, { attempt_id: 'att_not_this_one', data: 1 }), 409, 'STALE_ATTEMPT', 'attempt_id');
      await rejects(cl.client.checkpoint(r.job_id, { attempt_id: attempt, data: 'x'.repeat(70_000) }), 413, 'PAYLOAD_TOO_LARGE', 'data');
      await rejects(cl.client.checkpoint('job_missing', { attempt_id: attempt, data: 1 }), 404, 'NOT_FOUND');
      await rejects(cl.client.request('POST', `/api/v1/jobs/${r.job_id}/checkpoint`, { data: 1 }), 400, 'VALIDATION_FAILED', 'attempt_id');
      // Through the worker protocol, a checkpoint from an attempt the worker no longer owns is fenced off too.
      const late = await cl.client.report(running.worker_id!, [{ job_id: r.job_id, attempt_id: 'att_old', outcome: 'checkpoint', checkpoint: { data: 'stale' } }]);
      assert.deepEqual(late.results.map((x) => x.status), ['stale']);
      assert.equal((await cl.client.getJob(r.job_id)).last_checkpoint?.file, 's3://bucket/ckpt-1');
      await cl.client.cancel(r.job_id);
    });

    test('dead-letter queue: full failure history, bulk requeue with edited parameters, env and command', async () => {
      const specs = ['a', 'b'].map((v) => ({
        name: `dlq-${v}`, type: 'dlq-test', command: ['sh', '-c', 'echo try; exit 3'], parameters: { v, keep: true },
        retry_policy: { max_attempts: 2, retry_delay: 0.05, backoff: 'fixed' as const },
      }));
      const sub = await cl.client.submitBatch(specs);
      for (const id of sub.job_ids) await cl.client.waitFor(id, { interval_ms: 20, timeout_ms: 15_000 });
      const detail = await cl.client.dlqJob(sub.job_ids[0]!);
      assert.equal(detail.attempts?.length, 2);
      for (const a of detail.attempts!) {
        assert.equal(a.outcome, 'failed');
        assert.equal(a.exit_code, 3);
        assert.equal(a.error, 'exited with code 3');
        assert.ok(a.started_at && a.ended_at && Date.parse(a.ended_at) >= Date.parse(a.started_at));
      }
      assert.deepEqual(detail.events.map((e) => e.to).filter((s) => s === 'RETRYING' || s === 'FAILED'), ['RETRYING', 'FAILED']);
      const listed = await cl.client.dlq({ type: 'dlq-test' });
      assert.deepEqual(new Set(listed.jobs.map((j) => j.job_id)), new Set(sub.job_ids));
      assert.ok(listed.jobs.every((j) => j.attempts?.length === 2));

      // All or nothing: one id that is not dead-lettered refuses the whole request.
      const ok = await cl.client.submit({ command: ['true'] });
      await cl.client.waitFor(ok.job_id, { interval_ms: 20 });
      await rejects(cl.client.requeueDeadLetters({ job_ids: [sub.job_ids[0]!, ok.job_id] }), 409, 'INVALID_TRANSITION');
      assert.equal((await cl.client.getJob(sub.job_ids[0]!)).status, 'FAILED', 'nothing requeued');
      await rejects(cl.client.requeueDeadLetters({}), 400, 'VALIDATION_FAILED', 'job_ids');
      await rejects(cl.client.requeueDeadLetters({ filter: { type: 'dlq-test' }, command: [] }), 400, 'VALIDATION_FAILED', 'command');

      const res = await cl.client.requeueDeadLetters({
        filter: { type: 'dlq-test', error_contains: 'CODE 3' }, parameters: { v: 'fixed' }, env: { FIX: 'yes' }, command: ['sh', '-c', 'echo "fix=$FIX"'],
      });
      assert.equal(res.requeued, 2);
      for (const id of sub.job_ids) {
        const j = await cl.client.waitFor(id, { interval_ms: 20, timeout_ms: 15_000 });
        assert.equal(j.status, 'COMPLETED');
        assert.deepEqual(j.parameters, { v: 'fixed', keep: true });
        assert.equal(j.attempts?.length, 3);
        assert.match(await logText(cl.client, id), /fix=yes/);
      }
      assert.equal((await cl.client.dlq({ type: 'dlq-test' })).jobs.length, 0);
    });
  });

  describe(`graceful worker shutdown on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind, { lease_timeout_ms: 2000, config: { heartbeat_interval_ms: 200 } });
    });
    after(() => cl.close());

    test('the server tells workers its heartbeat interval', async () => {
      const r = await cl.client.registerWorker({ name: 'probe', kind: 'process', capacity: { slots: 1 } });
      assert.equal(r.heartbeat_interval_ms, 200);
      await cl.client.deregister(r.worker_id);
    });

    test('SIGTERM: the job is returned within a second of the deadline, with its checkpoint, and the retry budget untouched', async (t) => {
      const a = await cl.startWorker({ grace_ms: 1000 });
      const script = 'if [ -n "$GANTRY_CHECKPOINT" ]; then echo "resumed $GANTRY_CHECKPOINT"; exit 0; fi; echo \'{"epoch": 4}\' > "$GANTRY_CHECKPOINT_FILE"; sleep 60';
      const r = await cl.client.submit({ command: ['sh', '-c', script], retry_policy: { max_attempts: 1 } });
      await eventually(async () => (await cl.client.getJob(r.job_id)).last_checkpoint, 10_000);
      const sentAt = Date.now();
      a.child.kill('SIGTERM');
      const requeued = await eventually(async () => (await cl.client.events(r.job_id)).events.find((e) => e.to === 'QUEUED' && e.from !== 'SUBMITTED'), 10_000, 10);
      const after = Date.parse(requeued.at) - sentAt;
      assert.ok(after >= 900 && after <= 2000, `returned ${after} ms after SIGTERM (grace 1000 ms)`);
      t.diagnostic(`job returned to the queue ${after} ms after SIGTERM (grace 1000 ms)`);
      assert.match(requeued.reason, /shut down; job returned to the queue/);
      const exitCode = await new Promise<number | null>((res) => (a.child.exitCode !== null ? res(a.child.exitCode) : a.child.once('exit', (c) => res(c))));
      assert.equal(exitCode, 0);
      const w = (await cl.client.workers()).workers.find((x) => x.worker_id === a.id);
      assert.equal(w?.state, 'offline');
      const back = await cl.client.getJob(r.job_id);
      assert.equal(back.status, 'QUEUED');
      assert.equal(back.retries_used, 0, 'an interrupted attempt does not count');
      assert.equal(back.attempts?.[0]?.outcome, 'interrupted');
      await cl.startWorker();
      const done = await cl.client.waitFor(r.job_id, { interval_ms: 20, timeout_ms: 15_000 });
      assert.equal(done.status, 'COMPLETED', 'max_attempts 1 still had its one counted run');
      assert.equal(done.attempt_count, 2);
      assert.match(await logText(cl.client, r.job_id), /resumed \{"epoch":4\}/);
    });

    test('SDK Worker.close(): a handler past the deadline is aborted, returned at once, and resumed elsewhere from its checkpoint', async () => {
      const handlers = {
        long: async (job: HandlerJob) => {
          if (job.lastCheckpoint) return { resumed_at: job.lastCheckpoint.data };
          job.checkpoint({ batch: 1 });
          // Save where we are when told to stop: the abort listener runs before the worker deregisters.
          job.signal.addEventListener('abort', () => job.checkpoint({ batch: 2 }));
          await new Promise((r) => setTimeout(r, 60_000).unref());
          return { finished: true };
        },
      };
      const first = new Worker({ server: cl.server.url, token: cl.server.admin_token!, handlers });
      await first.start();
      const r = await cl.client.submit({ handler: 'long', retry_policy: { max_attempts: 1 } });
      await eventually(async () => (await cl.client.getJob(r.job_id)).last_checkpoint, 10_000);
      const closing = Date.now();
      await first.close(300);
      const took = Date.now() - closing;
      assert.ok(took < 1500, `close took ${took} ms with a 300 ms deadline`);
      const back = await cl.client.getJob(r.job_id);
      assert.equal(back.status, 'QUEUED');
      assert.equal(back.attempts?.[0]?.outcome, 'interrupted');
      assert.equal(back.retries_used, 0);
      const second = new Worker({ server: cl.server.url, token: cl.server.admin_token!, handlers });
      await second.start();
      try {
        const done = await cl.client.waitFor(r.job_id, { interval_ms: 20, timeout_ms: 10_000 });
        assert.equal(done.status, 'COMPLETED');
        assert.deepEqual(done.result, { resumed_at: { batch: 2 } });
      } finally {
        await second.close(0);
      }
    });

    test('SIGKILL: after the lease lapses the next attempt receives the checkpoint the lost one saved', async () => {
      const a = await cl.startWorker();
      // Only `a` may take the job: earlier tests' workers stop taking work.
      for (const w of (await cl.client.workers()).workers) if (w.worker_id !== a.id && w.state === 'online') await cl.client.drainWorker(w.worker_id);
      const script = 'if [ -n "$GANTRY_CHECKPOINT" ]; then echo "resumed $GANTRY_CHECKPOINT"; exit 0; fi; echo "pid=$$"; echo \'{"shard": 9}\' > "$GANTRY_CHECKPOINT_FILE"; sleep 60';
      const r = await cl.client.submit({ command: ['sh', '-c', script], retry_policy: { max_attempts: 1 } });
      await eventually(async () => (await cl.client.getJob(r.job_id)).last_checkpoint, 10_000);
      const running = await cl.client.getJob(r.job_id);
      a.child.kill('SIGKILL');
      await cl.startWorker();
      const done = await cl.client.waitFor(r.job_id, { interval_ms: 20, timeout_ms: 15_000 });
      assert.equal(done.status, 'COMPLETED');
      assert.equal(done.attempts?.[0]?.outcome, 'lost');
      assert.equal(done.attempts?.[0]?.worker_id, a.id);
      assert.equal(running.worker_id, a.id);
      const logs = await logText(cl.client, r.job_id);
      assert.match(logs, /resumed \{"shard":9\}/);
      // The first attempt's process group did not outlive its SIGKILLed worker (the worker's reaper killed it).
      const pid = Number(/pid=(\d+)/.exec(logs)?.[1]);
      assert.ok(pid > 0 && !groupAlive(pid), 'the lost attempt no longer runs');
    });
  });
}

async function metricsText(cl: TestCluster): Promise<string> {
  const res = await fetch(`${cl.server.url}/metrics`, { headers: { authorization: `Bearer ${cl.server.admin_token}` } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  return res.text();
}

for (const kind of STORE_KINDS) {
  describe(`server close on ${kind}`, () => {
    test('a long-poll in flight is answered at once, not cut off; new requests get 503 or a refused connection', async () => {
      const cl = await startCluster(kind);
      try {
        const w = await cl.client.registerWorker({ name: 'poller', kind: 'process', capacity: { slots: 1 } });
        const poll = cl.client.poll(w.worker_id, 20_000);
        await new Promise((r) => setTimeout(r, 200));
        const t0 = Date.now();
        await cl.server.close();
        assert.deepEqual(await poll, { jobs: [], controls: [] });
        assert.ok(Date.now() - t0 < 3000, `close took ${Date.now() - t0} ms with a poll in flight`);
        await assert.rejects(cl.client.health(), (err: unknown) => err instanceof GantryApiError && (err.code === 'UNREACHABLE' || err.status === 503));
      } finally {
        await cl.close();
      }
    });
  });
}

describe('server shutdown on postgres', () => {
  test('SIGTERM to the leader: it exits cleanly and the other server leads within 5 s', async (t) => {
    const db = await freshDatabase('postgres');
    const dataDir = join(db.dir, 'leader');
    const child = spawn(process.execPath, [GANTRY_BIN, '--data-dir', dataDir, 'server', '--database', db.url, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let other: Awaited<ReturnType<typeof startServer>> | null = null;
    try {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const url = await eventually(async () => /Gantry API:\s+(\S+)/.exec(out)?.[1] ?? null, 20_000);
      const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
      const leaderClient = new GantryClient({ server: url, token });
      await eventually(async () => (await leaderClient.request<{ scheduler_leader: boolean }>('GET', '/ready')).scheduler_leader, 10_000);
      other = await startServer({ config: compileServerConfig({ dataDir: join(db.dir, 'other'), database: db.url, port: 0 }, {}), logger: false });
      assert.equal(other.scheduler.isLeader, false);
      const sentAt = Date.now();
      child.kill('SIGTERM');
      const s = other.scheduler;
      await eventually(async () => s.isLeader, 5_000, 20);
      const tookOver = Date.now() - sentAt;
      const code = await new Promise<number | null>((res) => (child.exitCode !== null ? res(child.exitCode) : child.once('exit', (c) => res(c))));
      assert.equal(code, 0);
      assert.ok(tookOver <= 5000, `took over after ${tookOver} ms`);
      t.diagnostic(`leadership taken over ${tookOver} ms after SIGTERM`);
      // The new leader schedules: a submitted job is placed on a worker that joins it.
      const c = new GantryClient({ server: other.url, token });
      const w = await c.registerWorker({ name: 'w', kind: 'process', capacity: { slots: 1, cpu_cores: 1, memory_gb: 1 } });
      const j = await c.submit({ command: ['true'] });
      await eventually(async () => (await c.getJob(j.job_id)).status === 'SCHEDULED', 5_000);
      await c.deregister(w.worker_id);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await other?.close();
      await db.drop();
    }
  });
});
