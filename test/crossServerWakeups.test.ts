/**
 * Wake-ups between servers on one PostgreSQL database (PostgreSQL only: a SQLite file has one
 * server). A wake-up only this server acts on stays here — the leader's own scheduler wake-ups, and
 * an assignment's wake-up when a poll here took all of the jobs — and every other one still goes
 * through NOTIFY: a submit or a report on a follower wakes the leader's scheduler, and an assignment
 * wakes its worker's poll waiting on another server, also when a poll the worker left here took it. The schedulers' safety cycle is turned off
 * (an hour), so only a wake-up can make them act within the test.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { buildApp } from '../src/server/app.ts';
import { Scheduler } from '../src/scheduler/scheduler.ts';
import { TenantDirectory } from '../src/server/tenantDirectory.ts';
import { CHANNELS, openStore } from '../src/store/store.ts';
import { GantryClient } from '../src/client/http.ts';
import { freshDatabase } from './helpers/db.ts';
import { eventually } from './helpers/cluster.ts';

const HOUR = 3_600_000;

/** A Gantry server on `url` whose scheduler cycles only when woken. */
async function serve(url: string, token: string | null) {
  const store = await openStore(url);
  const admin = token ?? (await store.createToken('admin', 'admin', null)).token;
  const scheduler = new Scheduler(store, { idle_cycle_ms: HOUR });
  const app = await buildApp({ store, scheduler, tenants: new TenantDirectory(store, 'enterprise'), body_limit: 1 << 20 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  await scheduler.start();
  const port = (app.server.address() as { port: number }).port;
  return {
    scheduler,
    token: admin,
    client: new GantryClient({ server: `http://127.0.0.1:${port}`, token: admin }),
    async close() {
      await scheduler.stop();
      await app.close();
      await store.close();
    },
  };
}

describe('wake-ups between servers on PostgreSQL', () => {
  test('the leader keeps to itself the wake-ups only it acts on; a follower\'s submits and reports and a poll waiting on it are still woken', async (t) => {
    const db = await freshDatabase('postgres');
    // Closed last first: the database goes once nothing uses it.
    const closing: (() => Promise<void>)[] = [() => db.drop()];
    t.after(async () => {
      for (const close of closing.reverse()) await close();
    });
    const leader = await serve(db.url, null);
    closing.push(() => leader.close());
    assert.equal(leader.scheduler.isLeader, true);
    const follower = await serve(db.url, leader.token);
    closing.push(() => follower.close());
    assert.equal(follower.scheduler.isLeader, false);
    // What goes through PostgreSQL, as any other session on the database sees it.
    const heard: string[] = [];
    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    closing.push(() => listener.end());
    listener.on('notification', (m) => heard.push(m.channel));
    await listener.query(`LISTEN ${CHANNELS.SCHEDULE}`);
    await listener.query(`LISTEN ${CHANNELS.WORKER}`);

    const a = leader.client;
    const b = follower.client;
    const worker = (await a.registerWorker({ name: 'w', kind: 'handler', handlers: ['h'], capacity: { slots: 1 } })).worker_id;
    const done = (job: { job_id: string; attempt_id: string }) => ({ job_id: job.job_id, attempt_id: job.attempt_id, outcome: 'completed' as const });
    /** A poll of `via` that is waiting on its server before `act` runs (the worker runs `held`); the jobs it was answered. */
    const pollAround = async (via: GantryClient, act: () => Promise<unknown>, opts: { carry?: ReturnType<typeof done>; held?: string } = {}) => {
      const poll = via.poll(worker, 20_000, opts.held ? [opts.held] : [], undefined, opts.carry ? { reports: [opts.carry], logs: [] } : undefined);
      await sleep(250);
      const t0 = Date.now();
      await act();
      const answer = await poll;
      return { jobs: answer.jobs, ms: Date.now() - t0 };
    };

    // Everything on the leader: submits, assignments handed to the poll waiting there, reports carried by polls.
    let last: ReturnType<typeof done> | undefined;
    for (let i = 0; i < 3; i++) {
      const { jobs } = await pollAround(a, () => a.submit({ handler: 'h' }), { carry: last });
      assert.equal(jobs.length, 1);
      last = done(jobs[0]!);
    }
    await a.report(worker, [last!]);
    await eventually(async () => (await a.getJob(last!.job_id)).status === 'COMPLETED');
    await sleep(200);
    assert.deepEqual(heard, [], 'no wake-up went through PostgreSQL');

    // The worker's poll waits on the follower: the leader's assignment wakes it there.
    const onB = await pollAround(b, () => a.submit({ handler: 'h' }));
    assert.equal(onB.jobs.length, 1);
    assert.ok(onB.ms < 10_000, `the poll on the follower was woken, not timed out (${onB.ms} ms)`);
    await eventually(async () => heard.length > 0);
    assert.deepEqual(heard, [CHANNELS.WORKER], 'only the worker\'s wake-up went to the other server');

    // A submit on the follower wakes the leader's scheduler (no safety cycle for an hour): a second job
    // waits for the one slot, and the report of the first, sent to the follower, frees it.
    const second = await b.submit({ handler: 'h' });
    await eventually(async () => (await b.getJob(second.job_id)).status === 'QUEUED');
    const freed = await pollAround(b, () => b.report(worker, [done(onB.jobs[0]!)]), { held: onB.jobs[0]!.attempt_id });
    assert.deepEqual(freed.jobs.map((j) => j.job_id), [second.job_id]);
    assert.ok(freed.ms < 10_000, `the report on the follower woke the leader's scheduler (${freed.ms} ms)`);
    assert.ok(heard.filter((c) => c === CHANNELS.SCHEDULE).length >= 2, `the follower's submit and report reached the leader (${heard.join(', ')})`);
    const third = await b.submit({ handler: 'h' });
    const fourth = await pollAround(a, () => b.report(worker, [done(freed.jobs[0]!)]), { held: freed.jobs[0]!.attempt_id });
    assert.deepEqual(fourth.jobs.map((j) => j.job_id), [third.job_id]);

    // The worker leaves a poll on the leader (as when it moves to another server) and polls the follower: the
    // abandoned poll may still take the next hand-off, but the poll on the follower is woken all the same.
    await a.report(worker, [done(fourth.jobs[0]!)]);
    const abandon = new AbortController();
    const left = a.poll(worker, 20_000, [], abandon.signal).catch(() => null);
    await sleep(250);
    abandon.abort();
    await left;
    const moved = await pollAround(b, () => a.submit({ handler: 'h' }));
    assert.equal(moved.jobs.length, 1);
    assert.ok(moved.ms < 10_000, `the poll on the follower was woken, not timed out (${moved.ms} ms)`);
  });
});
