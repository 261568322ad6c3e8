/**
 * The SDK Worker: handler jobs in a user process, scheduled like any other job.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS } from './helpers/db.ts';
import { startCluster, eventually, type TestCluster } from './helpers/cluster.ts';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker, NonRetryableError } from '../src/client/index.ts';
import { CHANNELS, type DeliveredJob } from '../src/store/store.ts';

for (const kind of STORE_KINDS) {
  describe(`SDK Worker on ${kind}`, () => {
    let cl: TestCluster;
    let w: Worker;
    let calls = 0;
    before(async () => {
      cl = await startCluster(kind);
      w = new Worker({
        server: cl.server.url,
        token: cl.server.admin_token!,
        concurrency: 4,
        handlers: {
          'send-email': async (job) => {
            calls++;
            job.progress(0.5);
            job.log(`sending to ${String(job.parameters.to)}`);
            return { sent: true, to: job.parameters.to };
          },
          flaky: async (job) => {
            if (job.attempt < 2) throw new Error('smtp timeout');
            return { attempt: job.attempt };
          },
          broken: async () => {
            throw new NonRetryableError('template missing');
          },
        },
      });
      await w.start();
    });
    after(async () => {
      await w.stop(0);
      await cl.close();
    });

    test('a handler result is stored on the job with its log line', async () => {
      const r = await cl.client.submit({ handler: 'send-email', parameters: { to: 'ops@example.com' } });
      const j = await cl.client.waitFor(r.job_id, { interval_ms: 10, timeout_ms: 10_000 });
      assert.equal(j.status, 'COMPLETED');
      assert.deepEqual(j.result, { sent: true, to: 'ops@example.com' });
      assert.equal(j.progress, 1);
      assert.match((await cl.client.logs(r.job_id)).logs.map((l) => l.data).join(''), /sending to ops@example.com/);
      assert.ok(calls >= 1);
    });

    test('a thrown error is retried; NonRetryableError dead-letters at once', async () => {
      const flaky = await cl.client.submit({ handler: 'flaky', retry_policy: { max_attempts: 3, retry_delay: 0.05 } });
      const j = await cl.client.waitFor(flaky.job_id, { interval_ms: 10, timeout_ms: 10_000 });
      assert.equal(j.status, 'COMPLETED');
      assert.deepEqual(j.result, { attempt: 2 });
      assert.equal(j.attempts?.[0]?.error, 'smtp timeout');
      const broken = await cl.client.submit({ handler: 'broken', retry_policy: { max_attempts: 5 } });
      const b = await cl.client.waitFor(broken.job_id, { interval_ms: 10, timeout_ms: 10_000 });
      assert.equal(b.status, 'FAILED');
      assert.equal(b.attempts?.length, 1);
      assert.ok(b.dead_lettered);
      assert.match(b.error ?? '', /template missing/);
    });

    test('a handler no worker knows waits QUEUED with that reason', async () => {
      const r = await cl.client.submit({ handler: 'resize-image' });
      const j = await eventually(async () => {
        const x = await cl.client.getJob(r.job_id);
        return x.pending_reason ? x : null;
      });
      assert.equal(j.status, 'QUEUED');
      assert.equal(j.pending_reason, "no online worker runs handler 'resize-image'");
    });

    test('many handler jobs drain through the worker, never more at once than its concurrency', async () => {
      const res = await cl.client.submitBatch(Array.from({ length: 200 }, (_, i) => ({ handler: 'send-email', parameters: { to: `u${i}@x` } })));
      await eventually(async () => {
        const all = await Promise.all(res.job_ids.slice(-5).map((id) => cl.client.getJob(id)));
        return all.every((x) => x.status === 'COMPLETED');
      }, 20_000);
      const workers = (await cl.client.workers()).workers.filter((x) => x.kind === 'handler');
      assert.equal(workers[0]?.capacity.slots, 4);
      const done = await Promise.all(res.job_ids.map((id) => cl.client.getJob(id)));
      assert.ok(done.every((x) => x.status === 'COMPLETED'));
    });

    test('a prefetching worker draining instant jobs runs each exactly once and reports each result', async () => {
      // W1's shape in small: synchronous handlers, a prefetch window, every report carried on a poll
      // or sent in a batch; started reports of jobs that ended before their batch left are dropped.
      const runs = new Map<number, number>();
      const drain = new Worker({
        server: cl.server.url, token: cl.server.admin_token!, concurrency: 5, prefetch: 45,
        handlers: {
          instant: (job) => {
            const n = job.parameters.n as number;
            runs.set(n, (runs.get(n) ?? 0) + 1);
            return { n };
          },
        },
      });
      await drain.start();
      try {
        const res = await cl.client.submitBatch(Array.from({ length: 400 }, (_, n) => ({ handler: 'instant', parameters: { n } })));
        await eventually(async () => (await Promise.all(res.job_ids.slice(-5).map((id) => cl.client.getJob(id)))).every((x) => x.status === 'COMPLETED'), 20_000);
        const jobs = await Promise.all(res.job_ids.map((id) => cl.client.getJob(id)));
        for (const [n, j] of jobs.entries()) {
          assert.equal(j.status, 'COMPLETED', j.job_id);
          assert.deepEqual(j.result, { n });
          assert.equal(j.attempts?.length, 1, j.job_id);
        }
        assert.equal(runs.size, 400);
        assert.ok([...runs.values()].every((c) => c === 1));
      } finally {
        await drain.stop(0);
      }
    });

    test('reports keep each job\'s history in order, logs included', async () => {
      // Jobs that start and end at different times, with logs and progress, reported in batches: no job's
      // reports may overtake each other.
      const fast = new Worker({
        server: cl.server.url, token: cl.server.admin_token!, concurrency: 20, prefetch: 100,
        handlers: {
          jitter: async (job) => {
            job.log(`begin ${job.id}`);
            await new Promise((r) => setTimeout(r, Math.random() * 4));
            job.progress(0.5);
            return { ok: true };
          },
        },
      });
      await fast.start();
      try {
        const res = await cl.client.submitBatch(Array.from({ length: 300 }, () => ({ handler: 'jitter' })));
        await eventually(async () => {
          const all = await Promise.all(res.job_ids.map((id) => cl.client.getJob(id)));
          return all.every((x) => x.status === 'COMPLETED');
        }, 30_000);
        for (const id of res.job_ids) {
          const { events } = await cl.client.events(id);
          assert.deepEqual(events.map((e) => e.to), ['SUBMITTED', 'QUEUED', 'SCHEDULED', 'RUNNING', 'COMPLETED'], id);
          assert.ok(!events.some((e) => /late report/.test(e.reason)), id);
          assert.match((await cl.client.logs(id)).logs.map((l) => l.data).join(''), new RegExp(`begin ${id}`));
        }
      } finally {
        await fast.stop(0);
      }
    });

    test('a poll can carry the reports of jobs that ended: applied before it looks, results in its answer', async () => {
      const c = cl.client;
      const worker = (await c.registerWorker({ name: 'carrier', kind: 'handler', handlers: ['carry'], capacity: { slots: 1 } })).worker_id;
      const first = await c.submit({ handler: 'carry' });
      const got = await eventually(async () => (await c.poll(worker, 1000)).jobs.find((j) => j.job_id === first.job_id) ?? null);
      // A bad report refuses the whole poll, naming the field; nothing of it is applied.
      await assert.rejects(
        c.poll(worker, 0, [got.attempt_id], undefined, { reports: [{ job_id: got.job_id, attempt_id: got.attempt_id, outcome: 'exploded' as 'completed' }], logs: [] }),
        (e: Error & { status?: number; field?: string }) => e.status === 400 && /outcome/.test(`${e.field} ${e.message}`),
      );
      assert.equal((await c.getJob(first.job_id)).status, 'SCHEDULED');
      // The report rides along; the room it frees takes the next job in the same poll.
      const second = await c.submit({ handler: 'carry' });
      const answer = await c.poll(worker, 2000, [got.attempt_id], undefined, {
        reports: [{ job_id: got.job_id, attempt_id: got.attempt_id, outcome: 'completed', result: { carried: true } }], logs: [],
      });
      assert.deepEqual(answer.results, [{ job_id: first.job_id, status: 'applied', state: 'COMPLETED' }]);
      const done = await c.getJob(first.job_id);
      assert.equal(done.status, 'COMPLETED');
      assert.deepEqual(done.result, { carried: true });
      const next = answer.jobs.length ? answer.jobs : (await c.poll(worker, 2000)).jobs;
      assert.deepEqual(next.map((j) => j.job_id), [second.job_id]);
      // Sent again (the worker could not know the first copy landed): recorded stale, applied once.
      const again = await c.poll(worker, 0, [next[0]!.attempt_id], undefined, {
        reports: [{ job_id: got.job_id, attempt_id: got.attempt_id, outcome: 'failed', error: 'late duplicate' }], logs: [],
      });
      assert.deepEqual(again.results?.map((r) => r.status), ['stale']);
      assert.equal((await c.getJob(first.job_id)).status, 'COMPLETED');
      await c.deregister(worker);
    });

    test('a cycle hands each new job to its worker\'s waiting poll as a look would give it; the poll answers it once, and never a hand-off written before it came in', async () => {
      const c = cl.client;
      const { store } = cl.server;
      const worker = (await c.registerWorker({ name: 'handoff', kind: 'handler', handlers: ['handoff'], capacity: { slots: 4 } })).worker_id;
      const handed = new Map<string, DeliveredJob>();
      const unlisten = store.listen(CHANNELS.WORKER, (id, h) => {
        if (id === worker) for (const j of h?.jobs ?? []) handed.set(j.id, j);
      });
      try {
        const spec = { handler: 'handoff', priority: 'high' as const, parameters: { n: 1, deep: { list: [1, 'two'] } }, labels: { team: 'ml' }, timeout: 90 };
        // No poll waits: the job stays SCHEDULED; the cycle's hand-off holds what the worker's look finds, field for field.
        const away = await c.submit(spec);
        await eventually(async () => (await c.getJob(away.job_id)).status === 'SCHEDULED');
        const look = await store.deliverToWorker(worker, 10);
        assert.deepEqual(look.jobs.map((j) => j.id), [away.job_id]);
        assert.deepEqual(handed.get(away.job_id), look.jobs[0]);
        const first = (await c.poll(worker, 2000)).jobs;
        assert.deepEqual(first.map((j) => j.job_id), [away.job_id]);
        // A poll waits: the next job comes to it once, with the same fields; neither a poll holding it nor one
        // carrying its end gets it again.
        const waiting = c.poll(worker, 5000, [first[0]!.attempt_id]);
        await new Promise((r) => setTimeout(r, 100));
        const next = await c.submit(spec);
        const got = (await waiting).jobs;
        assert.deepEqual(got.map((j) => j.job_id), [next.job_id]);
        assert.deepEqual({ ...got[0], job_id: '', attempt_id: '' }, { ...first[0], job_id: '', attempt_id: '' });
        assert.ok(handed.has(next.job_id));
        assert.deepEqual((await c.poll(worker, 0, [first[0]!.attempt_id, got[0]!.attempt_id])).jobs, []);
        const carried = await c.poll(worker, 300, [first[0]!.attempt_id], undefined, {
          reports: [{ job_id: next.job_id, attempt_id: got[0]!.attempt_id, outcome: 'completed' }], logs: [],
        });
        assert.deepEqual([carried.results?.[0]?.state, carried.jobs], ['COMPLETED', []]);
        // Jobs not in the database show which way an answer came: a waiting poll answers a hand-off written
        // after it came in without a look, and one written before it (its worker could hold or have ended
        // those jobs) never — it looks instead, finds nothing and answers empty at its deadline.
        const decoy = (n: string): DeliveredJob => ({ ...look.jobs[0]!, id: `job_decoy_${n}`, current_attempt_id: `att_decoy_${n}` });
        const early = store.mark();
        const fenced = c.poll(worker, 1200, [first[0]!.attempt_id]);
        let over = false;
        void fenced.finally(() => (over = true));
        for (let i = 0; i < 30 && !over; i++) {
          store.wakeWorker(worker, { sent: early, jobs: [decoy('early')] });
          await new Promise((r) => setTimeout(r, 25));
        }
        assert.deepEqual((await fenced).jobs, []);
        const taking = c.poll(worker, 5000, [first[0]!.attempt_id]);
        over = false;
        void taking.finally(() => (over = true));
        for (let i = 0; i < 200 && !over; i++) {
          store.wakeWorker(worker, { sent: store.mark(), jobs: [decoy('late')] });
          await new Promise((r) => setTimeout(r, 25));
        }
        assert.deepEqual((await taking).jobs.map((j) => [j.job_id, j.attempt_id]), [['job_decoy_late', 'att_decoy_late']]);
      } finally {
        unlisten();
        await c.deregister(worker);
      }
    });

    test('a poll carrying the end of a job it never started does not get that attempt back, whichever way the report is written', async () => {
      const c = cl.client;
      const worker = (await c.registerWorker({ name: 'carry-fail', kind: 'handler', handlers: ['carry-fail'], capacity: { slots: 1 } })).worker_id;
      for (const outcome of ['failed', 'completed'] as const) {
        const j = await c.submit({ handler: 'carry-fail' });
        const got = await eventually(async () => (await c.poll(worker, 1000)).jobs.find((x) => x.job_id === j.job_id) ?? null);
        // Still SCHEDULED when the report comes (never started). A failure is written by the transaction path,
        // which on PostgreSQL the poll's first look (sent alongside) can overtake: it must not hand the attempt out again.
        const answer = await c.poll(worker, 300, [], undefined, {
          reports: [{ job_id: j.job_id, attempt_id: got.attempt_id, outcome, ...(outcome === 'failed' ? { error: 'boom', non_retryable: true } : {}) }], logs: [],
        });
        assert.equal(answer.results?.[0]?.status, 'applied');
        assert.deepEqual(answer.jobs.filter((x) => x.attempt_id === got.attempt_id), []);
      }
      await c.deregister(worker);
    });

    test('against a server that refuses reports in a poll (an older one), an SDK Worker still gets every job done', async () => {
      // A real HTTP hop in front of the server that answers a poll carrying reports as a server
      // before this protocol change did: 400 for the unknown fields. Everything else passes through.
      let refused = 0;
      const proxy = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (d: Buffer) => chunks.push(d));
        req.on('end', () => {
          const body = Buffer.concat(chunks);
          if (/\/poll$/.test(req.url ?? '') && 'reports' in (JSON.parse(body.toString() || '{}') as object)) {
            refused++;
            res.writeHead(400, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: { code: 'VALIDATION_FAILED', message: 'body must NOT have additional properties', field: 'reports' } }));
            return;
          }
          const up = httpRequest(new URL(req.url!, cl.server.url), { method: req.method, headers: req.headers }, (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
          });
          up.on('error', () => res.destroy());
          up.end(body);
        });
      });
      await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
      const old = new Worker({
        server: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, token: cl.server.admin_token!, concurrency: 1,
        handlers: { quick: (job) => ({ n: job.parameters.n }) },
      });
      try {
        await old.start();
        const ids = [];
        for (let n = 0; n < 5; n++) ids.push((await cl.client.submit({ handler: 'quick', parameters: { n } })).job_id);
        for (const [n, id] of ids.entries()) {
          const j = await cl.client.waitFor(id, { interval_ms: 10, timeout_ms: 10_000 });
          assert.equal(j.status, 'COMPLETED');
          assert.deepEqual(j.result, { n });
        }
        // It tried once, then stopped carrying reports.
        assert.equal(refused, 1);
      } finally {
        await old.stop(0);
        await new Promise((r) => proxy.close(r));
      }
    });
  });
}
