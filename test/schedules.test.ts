/**
 * Cron schedules under a fake clock on each store: catch-up policies, overlap policies,
 * backfill, time zones, the API; and exactly-once firing with two servers on one PostgreSQL.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS, freshDatabase, type TestDatabase } from './helpers/db.ts';
import { openStore, type Store } from '../src/store/store.ts';
import { ScheduleRunner, fireTimesDue } from '../src/schedules/runner.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import type { ScheduleInput } from '../src/store/ops/schedules.ts';
import type { GantryApiError } from '../src/client/index.ts';

const T0 = Date.parse('2026-11-22T10:00:00Z');
const MIN = 60_000;

function input(name: string, over: Partial<ScheduleInput> = {}): ScheduleInput {
  return {
    name, cron: '*/10 * * * *', timezone: 'UTC', catchup: 'none', catchup_window: 86_400, overlap: 'allow', enabled: true,
    // No worker runs this handler, so a started job stays QUEUED (active) until cancelled.
    target: { kind: 'job', job: { handler: 'nightly-report', parameters: { scope: 'all' } } },
    ...over,
  };
}

for (const kind of STORE_KINDS) {
  describe(`schedules on ${kind} (fake clock)`, () => {
    let db: TestDatabase;
    let store: Store;
    let clock = T0;
    let runner: ScheduleRunner;
    before(async () => {
      db = await freshDatabase(kind);
      store = await openStore(db.url);
      runner = new ScheduleRunner(store, { now: () => clock, isLeader: () => true });
    });
    after(async () => {
      await store.close();
      await db.drop();
    });

    const fires = async (id: string) => (await store.scheduleFires(id)).reverse();

    for (const [policy, expected] of [
      ['none', []],
      ['last', ['10:30 catchup started']],
      ['all', ['10:10 catchup started', '10:20 catchup started', '10:30 catchup started']],
    ] as const) {
      test(`catch-up ${policy}: after 35 missed minutes → ${expected.length} fire(s)`, async () => {
        const s = await store.createSchedule(input(`catchup-${policy}`, { catchup: policy }), T0);
        await runner.tick(T0 + 35 * MIN);
        const got = (await fires(s.id)).map((f) => `${new Date(f.fire_time).toISOString().slice(11, 16)} ${f.kind} ${f.outcome}`);
        assert.deepEqual(got, expected);
        // The cursor moved past the missed times: the next look fires only the next on-time one.
        await runner.tick(T0 + 40 * MIN + 500);
        const last = (await fires(s.id)).at(-1)!;
        assert.equal(new Date(last.fire_time).toISOString().slice(11, 16), '10:40');
        assert.equal(last.kind, 'scheduled');
        await store.deleteSchedule(s.id);
      });
    }

    test('catch-up all stays within its window', async () => {
      const due = fireTimesDue({ cron: '0 * * * *', timezone: 'UTC', catchup: 'all', catchup_window: 3 * 3600, cursor_at: T0 - 48 * 3600 * 1000 }, T0 + 1, 60_000);
      assert.equal(due.fire.length, 3);
    });

    test('overlap skip: a fire while the previous job is still active is skipped', async () => {
      const s = await store.createSchedule(input('ov-skip', { overlap: 'skip' }), T0);
      await runner.tick(T0 + 10 * MIN);
      await runner.tick(T0 + 20 * MIN);
      const f = await fires(s.id);
      assert.deepEqual(f.map((x) => x.outcome), ['started', 'skipped']);
      const job = await store.getJob(f[0]!.target_id!);
      assert.equal(job?.state, 'QUEUED');
      assert.equal(job?.labels['gantry.fire_time'], '2026-11-22T10:10:00.000Z');
    });

    test('overlap buffer_one: one fire waits for the previous job, further ones are skipped', async () => {
      const s = await store.createSchedule(input('ov-buffer', { overlap: 'buffer_one' }), T0);
      await runner.tick(T0 + 10 * MIN);
      await runner.tick(T0 + 20 * MIN);
      await runner.tick(T0 + 30 * MIN);
      let f = await fires(s.id);
      assert.deepEqual(f.map((x) => x.outcome), ['started', 'buffered', 'skipped']);
      await runner.tick(T0 + 31 * MIN);
      assert.equal((await fires(s.id))[1]!.outcome, 'buffered', 'still waiting while the first job is active');
      await store.cancelJob(f[0]!.target_id!, 'done', 'test');
      await runner.tick(T0 + 32 * MIN);
      f = await fires(s.id);
      assert.equal(f[1]!.outcome, 'started');
      assert.notEqual(f[1]!.target_id, f[0]!.target_id);
      assert.equal((await store.getSchedule(s.id))!.buffered_fire, null);
    });

    test('overlap cancel_other: a new fire cancels the active job and starts', async () => {
      const s = await store.createSchedule(input('ov-cancel', { overlap: 'cancel_other' }), T0);
      await runner.tick(T0 + 10 * MIN);
      await runner.tick(T0 + 20 * MIN);
      const f = await fires(s.id);
      assert.deepEqual(f.map((x) => x.outcome), ['started', 'started']);
      assert.equal((await store.getJob(f[0]!.target_id!))?.state, 'CANCELLED');
      assert.equal((await store.getJob(f[1]!.target_id!))?.state, 'QUEUED');
    });

    test('overlap allow: fires start regardless', async () => {
      const s = await store.createSchedule(input('ov-allow', { overlap: 'allow' }), T0);
      await runner.tick(T0 + 10 * MIN);
      await runner.tick(T0 + 20 * MIN);
      assert.deepEqual((await fires(s.id)).map((x) => x.outcome), ['started', 'started']);
    });

    test('backfill fires each past cron time once; a repeat finds them fired', async () => {
      const s = await store.createSchedule(input('backfill', { cron: '0 2 * * *', timezone: 'Europe/Berlin' }), T0);
      const from = Date.parse('2026-11-01T00:00:00Z');
      const to = Date.parse('2026-11-03T23:59:00Z');
      const first = await runner.backfill(s.id, from, to);
      // 02:00 in Berlin (CET, UTC+1) is 01:00 UTC.
      assert.deepEqual(first.map((f) => new Date(f.fire_time).toISOString()), ['2026-11-01T01:00:00.000Z', '2026-11-02T01:00:00.000Z', '2026-11-03T01:00:00.000Z']);
      assert.ok(first.every((f) => f.outcome === 'started'));
      const again = await runner.backfill(s.id, from, to);
      assert.ok(again.every((f) => f.outcome === 'duplicate'));
    });

    test('a fire whose target cannot start is recorded as failed, not retried', async () => {
      const s = await store.createSchedule(input('ghost', { target: { kind: 'workflow', workflow: 'no_such_workflow', parameters: {} } }), T0);
      await runner.tick(T0 + 10 * MIN);
      await runner.tick(T0 + 10 * MIN + 5000);
      assert.deepEqual((await fires(s.id)).map((f) => f.outcome), ['failed']);
    });

    test('a follower fires nothing', async () => {
      const s = await store.createSchedule(input('follower'), T0);
      const follower = new ScheduleRunner(store, { now: () => clock, isLeader: () => false });
      assert.equal(await follower.tick(T0 + 10 * MIN), T0 + 10 * MIN + 1000, 'looks again in a second in case it becomes leader');
      assert.equal((await fires(s.id)).length, 0);
    });
  });
}

describe('schedules: exactly once with two servers on one PostgreSQL', () => {
  let db: TestDatabase;
  let a: Store;
  let b: Store;
  before(async () => {
    db = await freshDatabase('postgres');
    a = await openStore(db.url);
    b = await openStore(db.url);
  });
  after(async () => {
    await a.close();
    await b.close();
    await db.drop();
  });

  test('only the advisory-lock leader fires; and even two runners that both think they lead fire each time once', async () => {
    const leaderA = await a.tryLeadership();
    const leaderB = await b.tryLeadership();
    assert.notEqual(leaderA, leaderB, 'exactly one of two servers leads');
    const s = await a.createSchedule(input('twice', { cron: '* * * * *', catchup: 'all' }), T0);
    const ra = new ScheduleRunner(a, { isLeader: () => leaderA });
    const rb = new ScheduleRunner(b, { isLeader: () => leaderB });
    await Promise.all([ra.tick(T0 + 5 * MIN + 1), rb.tick(T0 + 5 * MIN + 1)]);
    assert.equal((await a.scheduleFires(s.id)).length, 5);
    // A leadership hand-over race: both act as leader for the same minutes.
    const both = [new ScheduleRunner(a, { isLeader: () => true }), new ScheduleRunner(b, { isLeader: () => true })];
    await Promise.all(both.map((r) => r.tick(T0 + 12 * MIN + 1)));
    const fired = await a.scheduleFires(s.id);
    assert.equal(fired.length, 12);
    assert.equal(new Set(fired.map((f) => f.fire_time)).size, 12);
    const jobs = await a.listJobs({ type: 'nightly-report' }, 1000, null);
    assert.equal(jobs.length, 12, 'one job per fire time');
  });
});

describe('schedules API', () => {
  let cl: TestCluster;
  before(async () => {
    cl = await startCluster('sqlite');
  });
  after(() => cl.close());

  test('CRUD with clear errors; a workflow schedule names an existing workflow', async () => {
    const c = cl.client;
    const bad = await c.request('POST', '/api/v1/schedules', { name: 'x', cron: '61 * * * *', job: { command: ['true'] } }).then(() => assert.fail('expected an error'), (e: unknown) => e as GantryApiError);
    assert.equal(bad.code, 'VALIDATION_FAILED');
    assert.equal(bad.field, 'cron');
    const tz = await c.request('POST', '/api/v1/schedules', { name: 'x', cron: '0 * * * *', timezone: 'Mars/Base', job: { command: ['true'] } }).then(() => assert.fail('expected an error'), (e: unknown) => e as GantryApiError);
    assert.equal(tz.field, 'timezone');
    const none = await c.request('POST', '/api/v1/schedules', { name: 'x', cron: '0 * * * *', workflow: { workflow: 'ghost' } }).then(() => assert.fail('expected an error'), (e: unknown) => e as GantryApiError);
    assert.equal(none.field, 'workflow.workflow');
    const both = await c.request('POST', '/api/v1/schedules', { name: 'x', cron: '0 * * * *' }).then(() => assert.fail('expected an error'), (e: unknown) => e as GantryApiError);
    assert.equal(both.field, 'job');
    const created = await c.request<{ schedule_id: string; next_fire_time: string }>('POST', '/api/v1/schedules', {
      name: 'hourly', cron: '0 * * * *', timezone: 'America/New_York', job: { command: ['true'] }, overlap: 'buffer_one', catchup: 'last',
    });
    assert.match(created.schedule_id, /^sch_/);
    assert.ok(Date.parse(created.next_fire_time) > Date.now());
    const dup = await c.request('POST', '/api/v1/schedules', { name: 'hourly', cron: '0 * * * *', job: { command: ['true'] } }).then(() => assert.fail('expected an error'), (e: unknown) => e as GantryApiError);
    assert.equal(dup.code, 'CONFLICT');
    const upd = await c.request<{ cron: string; enabled: boolean }>('PUT', '/api/v1/schedules/hourly', { name: 'hourly', cron: '30 * * * *', job: { command: ['true'] }, enabled: false });
    assert.equal(upd.cron, '30 * * * *');
    assert.equal(upd.enabled, false);
    const bf = await c.request<{ fires: unknown[] }>('POST', '/api/v1/schedules/hourly/backfill', { start: '2026-01-01T00:00:00Z', end: '2026-01-01T03:00:00Z' });
    assert.equal(bf.fires.length, 3);
    const got = await c.request<{ fires: { kind: string }[] }>('GET', '/api/v1/schedules/hourly');
    assert.equal(got.fires.length, 3);
    assert.ok(got.fires.every((f) => f.kind === 'backfill'));
    await c.request('DELETE', '/api/v1/schedules/hourly');
    assert.equal((await c.request<{ schedules: unknown[] }>('GET', '/api/v1/schedules')).schedules.length, 0);
  });
});
