/**
 * GET /api/v1/queue/status (and `gantry queue`) on each store: exact counts after submits, starts and
 * completions; with a big backlog, the count runs off the event loop (SQLite) and is shared by callers
 * for up to a second, each answer saying when it was counted (`as_of`).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { STORE_KINDS } from './helpers/db.ts';
import { eventually, startCluster, type TestCluster } from './helpers/cluster.ts';
import type { QueueStatus } from '../src/client/http.ts';

for (const kind of STORE_KINDS) {
  describe(`queue status on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind, { local_worker: true });
    });
    after(() => cl.close());

    test('counts exactly what was submitted, started and finished, as of a time it names', async () => {
      const running = await Promise.all([1, 2].map(() => cl.client.submit({ command: ['sleep', '30'], resources: { cpu_cores: 0.1, memory_gb: 0 } })));
      const done = await cl.client.submit({ command: ['true'], resources: { cpu_cores: 0.1, memory_gb: 0 } });
      for (const priority of ['high', 'normal', 'normal'] as const) await cl.client.submit({ handler: 'nobody-serves-this', priority });
      await eventually(async () => (await cl.client.getJob(done.job_id)).status === 'COMPLETED');
      await eventually(async () => {
        for (const r of running) if ((await cl.client.getJob(r.job_id)).status !== 'RUNNING') return false;
        return true;
      });
      const before = Date.now();
      const s = await cl.client.queueStatus();
      assert.equal(s.pending_jobs, 3);
      assert.equal(s.queue_length, 3);
      assert.equal(s.running_jobs, 2);
      assert.equal(s.queues.high!.length, 1);
      assert.equal(s.queues.normal!.length, 2);
      assert.equal(s.queues.low!.length, 0);
      // A small queue is counted afresh for every call: what was just written is in it.
      assert.ok(Date.parse(s.as_of) >= before - 1, `${s.as_of} is before the call (${new Date(before).toISOString()})`);
      await cl.client.submit({ handler: 'nobody-serves-this', priority: 'low' });
      for (const r of running) await cl.client.cancel(r.job_id);
      await eventually(async () => (await cl.client.queueStatus()).running_jobs === 0);
      const t = await cl.client.queueStatus();
      assert.equal(t.pending_jobs, 4);
      assert.equal(t.queues.low!.length, 1);
    });

    test('with a big backlog: one count a second for any number of callers, each answer exact as of its as_of', async () => {
      const n = 120_000;
      for (let i = 0; i < n; i += 5000) await cl.client.submitBatch(Array.from({ length: 5000 }, () => ({ handler: 'backlog' })));
      const queuedBefore = 4; // from the test above
      // Wait for a count slow enough to be shared (it says so by answering twice with one as_of).
      const [a, b] = await eventually(async () => {
        const pair = await Promise.all([cl.client.queueStatus(), cl.client.queueStatus()]);
        const again = await cl.client.queueStatus();
        return pair[0].as_of === again.as_of ? [pair[0], again] : null;
      });
      assert.equal(a.pending_jobs, n + queuedBefore);
      assert.deepEqual(b, a);
      assert.ok(Date.now() - Date.parse(a.as_of) <= 1500, `as_of ${a.as_of} is more than a second old`);
      // A submit after that count shows up once the count is a second old.
      await cl.client.submit({ handler: 'backlog' });
      const fresh: QueueStatus = await eventually(async () => {
        const s = await cl.client.queueStatus();
        return s.as_of !== a.as_of ? s : null;
      }, 5000, 50);
      assert.equal(fresh.pending_jobs, n + queuedBefore + 1);
      assert.ok(Date.parse(fresh.as_of) > Date.parse(a.as_of));
    });

    test('a submit into a deep queue is told its exact place; one ahead of it is counted as before', async () => {
      // The test above left 120,000 + 1 `backlog` jobs queued (normal priority), far more than a submit counts on the spot.
      const deep = await cl.client.submit({ handler: 'backlog' });
      assert.equal(deep.queue_position, 120_002);
      const again = await cl.client.submit({ handler: 'backlog' });
      assert.equal(again.queue_position, 120_003);
      assert.equal((await cl.client.getJob(deep.job_id)).queue_position, 120_002);
      const first = await cl.client.submit({ handler: 'backlog', priority: 'high' });
      assert.equal(first.queue_position, 1);
    });

    if (kind === 'sqlite') {
      // The tests above left 120,000 queued jobs. On a fast machine a count over them takes ~10 ms, too close to
      // the few milliseconds a submit's own write or a collection may hold the loop to tell the two apart; so
      // 360,000 more, copied from one of them straight into the file (through the API they would take a minute):
      // each of these reads then walks ~480,000 jobs for tens of milliseconds.
      test('(a deeper backlog for the tests below: 360,000 more queued jobs)', () => {
        const file = new Database(cl.db.url.replace(/^sqlite:/, ''));
        try {
          const cols = (file.pragma('table_info(jobs)') as { name: string }[]).map((c) => c.name).filter((c) => c !== 'seq');
          const copied = cols.map((c) => (c === 'id' ? `id || '_' || x` : c === 'sort_key' ? 'sort_key - 1' : c)).join(', ');
          const added = file.prepare(
            `INSERT INTO jobs (${cols.join(', ')})
             WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 360000)
             SELECT ${copied} FROM n, (SELECT * FROM jobs WHERE state = 'QUEUED' AND queue_key = 'backlog' ORDER BY seq LIMIT 1)`,
          ).run().changes;
          assert.equal(added, 360_000);
          // Hand the copied pages to the file: the server's connection would otherwise take ~30 ms on its next
          // write to take in a WAL this big, a stall of this test's making, not the server's.
          file.pragma('wal_checkpoint(TRUNCATE)');
        } finally {
          file.close();
        }
      });
      const reads: [string, () => Promise<unknown>][] = [
        ['queue status counts', () => cl.server.store.queueStats()],
        ['metrics counts', () => cl.server.store.countJobs()],
        // Counted queue by queue, the tenant's own range in each, one load is ~3× quicker than the other reads:
        // four at once, which the long reader runs one after the other while the loop keeps turning.
        ["four tenant loads at once", () => Promise.all([1, 2, 3, 4].map(() => cl.server.store.tenantLoad('default')))],
      ];
      /** Runs `work` while a 1 ms timer watches the event loop; asserts it never stood still for half of the work's time. */
      async function loopKeepsTurning<T>(what: string, work: () => Promise<T>): Promise<T> {
        let last = performance.now();
        let maxGap = 0;
        const tick = setInterval(() => {
          const t = performance.now();
          maxGap = Math.max(maxGap, t - last);
          last = t;
        }, 1);
        try {
          const t0 = performance.now();
          const result = await work();
          const took = performance.now() - t0;
          maxGap = Math.max(maxGap, performance.now() - last);
          console.log(`# ${what}: ${took.toFixed(1)} ms, longest event-loop gap ${maxGap.toFixed(1)} ms`);
          assert.ok(took >= 20, `${what} took only ${took.toFixed(1)} ms: too small a backlog to tell`);
          assert.ok(maxGap < took / 2, `the event loop stood still for ${maxGap.toFixed(1)} ms of ${what}'s ${took.toFixed(1)} ms`);
          return result;
        } finally {
          clearInterval(tick);
        }
      }
      test('a submit into a deep queue does not hold up the event loop while its place is counted', async () => {
        const r = await loopKeepsTurning('a submit into the deep queue', () => cl.client.submit({ handler: 'backlog' }));
        assert.equal(r.queue_position, 480_005, 'behind the 120,004 submitted and the 360,000 copied');
      });
      for (const [what, read] of reads) {
        test(`${what} over a big backlog do not hold up the event loop`, async () => {
          await loopKeepsTurning(what, read);
        });
      }
    }
  });
}
