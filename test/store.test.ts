/**
 * Store conformance: the same suite on every backend, against real databases (no mocks).
 * Each backend gets a fresh database for this file; after each test the queue is emptied and
 * every worker taken offline, so tests see only their own jobs in the (global) queue.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { STORE_KINDS, freshDatabase, type StoreKind, type TestDatabase } from './helpers/db.ts';
import { CHANNELS, openStore, Store } from '../src/store/store.ts';
import { Scheduler } from '../src/scheduler/scheduler.ts';
import { ACTIVE_STATES_SQL } from '../src/store/rows.ts';
import { listMigrations, migrate } from '../src/store/migrate.ts';
import type { SqlDriver, SqlExecutor, SqlReader } from '../src/store/driver.ts';
import { SqliteDriver } from '../src/store/sqlite/driver.ts';
import { PostgresDriver } from '../src/store/postgres/driver.ts';
import { normalizeJobSpec, type JobRequest } from '../src/core/jobSpec.ts';
import { GantryError } from '../src/core/errors.ts';
import type { JobSpec, JobState, WorkerInfo } from '../src/core/types.ts';
import type { AttemptReport } from '../src/store/ops/reportResults.ts';
import { nearQueuePosition, NEAR_POSITIONS, queuePosition } from '../src/store/ops/jobActions.ts';
import { tenantLoad } from '../src/store/ops/tenants.ts';
import { priorityRank } from '../src/core/priorities.ts';
import { DEFAULT_BREAKER_OPTIONS } from '../src/core/breakers.ts';

function spec(over: JobRequest = {}): JobSpec {
  return normalizeJobSpec(over.handler !== undefined ? over : { command: ['echo', 'hi'], ...over });
}

/** A connection that bypasses the Store, to look at what is stored. */
function rawDriver(kind: StoreKind, url: string): SqlDriver {
  return kind === 'sqlite' ? new SqliteDriver(url.slice('sqlite:'.length)) : new PostgresDriver(url, 2);
}

async function expectGantryError(p: Promise<unknown>, code: GantryError['code']): Promise<GantryError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GantryError, `a GantryError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

for (const kind of STORE_KINDS) {
  describe(`store conformance (${kind})`, () => {
    let db: TestDatabase;
    let store: Store;
    let clock = Date.now();
    /** A fresh, strictly increasing time for each step (epoch ms). */
    const tick = (ms = 1000) => (clock += ms);
    let workerSeq = 0;

    before(async () => {
      db = await freshDatabase(kind);
      store = await openStore(db.url);
    });
    after(async () => {
      await store?.close();
      await db?.drop();
    });
    afterEach(async () => {
      for (const w of await store.listWorkers(true)) await store.releaseWorker(w.id, 'test cleanup', 'test', tick());
      for (const state of ['QUEUED', 'RETRYING', 'SCHEDULED'] as const) {
        for (const j of await store.listJobs({ state }, 10_000, null)) await store.cancelJob(j.id, 'test cleanup', 'test', tick());
      }
    });

    async function addWorker(cap: Partial<WorkerInfo['capacity']> = {}, now = tick()): Promise<WorkerInfo> {
      const id = `w${++workerSeq}`;
      return store.registerWorker(
        { id, name: id, kind: 'process', handlers: [], labels: {}, capacity: { cpu_cores: 8, memory_gb: 16, gpu_count: 0, slots: 8, ...cap } },
        now,
      );
    }
    async function submit(over: JobRequest = {}, now = tick()) {
      const [r] = await store.submitJobs([spec(over)], 'user:test', now);
      return r!.job;
    }
    /** Assigns a queued job to a worker and has the worker take it; returns the attempt id. */
    async function start(jobId: string, workerId: string, now = tick()): Promise<string> {
      const done = await store.assignJobs([{ job_id: jobId, worker_id: workerId, gpu_indices: [] }], now);
      assert.equal(done.length, 1, 'assigned');
      const d = await store.deliverToWorker(workerId, 100);
      assert.ok(d.jobs.some((j) => j.id === jobId), 'delivered');
      const attempt = (await store.getJob(jobId))!.current_attempt_id!;
      const [r] = await store.reportResults(workerId, [{ job_id: jobId, attempt_id: attempt, outcome: 'started' }], now);
      assert.equal(r!.state, 'RUNNING');
      return attempt;
    }
    async function running(over: JobRequest = {}) {
      const w = await addWorker();
      const job = await submit(over);
      const attempt = await start(job.id, w.id);
      return { job, worker: w, attempt };
    }
    const job = async (id: string) => (await store.getJob(id))!;
    /**
     * 200 queued jobs on a new worker with room for all, the one at index 150 made to fail on entering `state`
     * (a trigger raising 'poisoned'); `cure` removes the trigger.
     */
    async function poisonedBatch(handler: string, state: JobState) {
      const raw = rawDriver(kind, db.url);
      const w = await addWorker({ slots: 1000, cpu_cores: 1000, memory_gb: 1000 });
      const jobs = (await store.submitJobs(
        Array.from({ length: 200 }, (_, i) => spec({ handler, name: i === 150 ? 'poison' : 'fine' })), 'user:test', tick(), { batch: true },
      )).map((r) => r.job);
      if (kind === 'sqlite') {
        await raw.run(`CREATE TRIGGER poison BEFORE UPDATE ON jobs WHEN NEW.name = 'poison' AND NEW.state = '${state}' BEGIN SELECT RAISE(ABORT, 'poisoned'); END`);
      } else {
        await raw.run(`CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.name = 'poison' AND NEW.state = '${state}' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`);
        await raw.run('CREATE TRIGGER poison BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION poison()');
      }
      const cure = async () => {
        await raw.run(kind === 'sqlite' ? 'DROP TRIGGER poison' : 'DROP TRIGGER poison ON jobs');
        if (kind === 'postgres') await raw.run('DROP FUNCTION poison()');
        await raw.close();
      };
      return { w, jobs, cure };
    }
    const transitions = async (id: string) => (await store.jobEvents(id)).map((e) => `${e.from_state ?? '∅'}→${e.to_state}`);

    it('migrations are idempotent and safe when two servers start at once', async () => {
      const expected = listMigrations(kind).map((m) => m.version);
      assert.ok(expected.length >= 1);

      // Two stores opening one empty database at the same time.
      const fresh = await freshDatabase(kind);
      try {
        const [a, b] = await Promise.all([openStore(fresh.url), openStore(fresh.url)]);
        try {
          assert.deepEqual(await a.migrate(), [], 'nothing left to apply');
          assert.deepEqual(await b.migrate(), []);
          const j = await a.submitJobs([spec({ name: 'after-race' })], 'test');
          assert.equal((await b.getJob(j[0]!.job.id))?.name, 'after-race', 'both see one schema');
        } finally {
          await a.close();
          await b.close();
        }
      } finally {
        await fresh.drop();
      }

      // Two migrators racing on one empty database: each migration is applied exactly once.
      const fresh2 = await freshDatabase(kind);
      const d1 = rawDriver(kind, fresh2.url);
      const d2 = rawDriver(kind, fresh2.url);
      try {
        const results = await Promise.all([migrate(d1), migrate(d2)]);
        assert.deepEqual(results.flat().sort((x, y) => x - y), expected, `applied once in total: ${JSON.stringify(results)}`);
        const rows = await d1.query<{ version: number }>('SELECT version FROM gantry_migrations ORDER BY version');
        assert.deepEqual(rows.map((r) => Number(r.version)), expected);
        assert.deepEqual(await migrate(d2), [], 'a third run applies nothing');
      } finally {
        await d1.close();
        await d2.close();
        await fresh2.drop();
      }
    });

    it('migration 0011 (state indexes) applies on a database with jobs in every kind of state, and the jobs read back as before', async () => {
      const fresh = await freshDatabase(kind);
      const raw = rawDriver(kind, fresh.url);
      try {
        // A database at migration 0010, as servers before 0011 left it: 0011 recorded as done so it is skipped.
        await raw.run('CREATE TABLE gantry_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
        await raw.run("INSERT INTO gantry_migrations (version, name, applied_at) VALUES (11, 'held back', 0)");
        assert.deepEqual(await migrate(raw), listMigrations(kind).map((m) => m.version).filter((v) => v !== 11));
        const indexSql = async () => kind === 'sqlite'
          ? (await raw.query<{ name: string; sql: string }>("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN ('jobs_state_seq', 'jobs_active')"))
          : (await raw.query<{ name: string; sql: string }>("SELECT indexname AS name, indexdef AS sql FROM pg_indexes WHERE indexname IN ('jobs_state_seq', 'jobs_active')"));
        assert.ok((await indexSql()).every((r) => !String(r.sql).includes("<> 'SCHEDULED'")), 'the old indexes');

        let t = Date.now();
        const old = await openStore(fresh.url);
        const ids: Record<string, string[]> = {};
        try {
          const w = await old.registerWorker(
            { id: 'wm', name: 'wm', kind: 'process', handlers: [], labels: {}, capacity: { cpu_cores: 64, memory_gb: 64, gpu_count: 0, slots: 64 } }, ++t);
          const sub = async (n: number, over: JobRequest = {}) => (await old.submitJobs(Array.from({ length: n }, () => spec(over)), 'user:test', ++t)).map((r) => r.job.id);
          const assign = async (jobIds: string[]) => {
            assert.equal((await old.assignJobs(jobIds.map((job_id) => ({ job_id, worker_id: w.id, gpu_indices: [] })), ++t)).length, jobIds.length);
            return Promise.all(jobIds.map(async (id) => (await old.getJob(id))!.current_attempt_id!));
          };
          const report = (jobIds: string[], atts: string[], r: Omit<AttemptReport, 'job_id' | 'attempt_id'>) =>
            old.reportResults(w.id, jobIds.map((job_id, i) => ({ job_id, attempt_id: atts[i]!, ...r })), ++t);
          ids.QUEUED = await sub(3, { tenant: 'mig' });
          ids.SCHEDULED = await sub(2);
          await assign(ids.SCHEDULED);
          ids.RUNNING = await sub(2);
          await report(ids.RUNNING, await assign(ids.RUNNING), { outcome: 'started' });
          ids.COMPLETED = await sub(4, { tenant: 'mig' });
          await report(ids.COMPLETED, await assign(ids.COMPLETED), { outcome: 'completed', exit_code: 0 });
          ids.FAILED = await sub(1);
          await report(ids.FAILED, await assign(ids.FAILED), { outcome: 'failed', error: 'bad input', non_retryable: true });
          ids.CANCELLED = await sub(1);
          await old.cancelJob(ids.CANCELLED[0]!, 'test', 'test', ++t);
        } finally {
          await old.close();
        }

        await raw.run('DELETE FROM gantry_migrations WHERE version = 11');
        const s = await openStore(fresh.url);
        try {
          assert.ok((await indexSql()).every((r) => String(r.sql).includes("'SCHEDULED'") && !/ IN \(|ANY \(/.test(String(r.sql))), JSON.stringify(await indexSql()));
          const sorted = (a: string[]) => [...a].sort();
          for (const [state, want] of Object.entries(ids)) {
            const listed = await s.listJobs({ state: state as JobState }, 100, null);
            assert.deepEqual(sorted(listed.map((j) => j.id)), sorted(want), `listing ${state}`);
            assert.deepEqual(listed.map((j) => j.seq), [...listed.map((j) => j.seq)].sort((a, b) => b - a), `${state}: newest first`);
          }
          assert.deepEqual((await s.listJobs({ state: 'COMPLETED', tenant: 'mig' }, 100, null)).length, 4);
          assert.deepEqual((await s.listJobs({ dead_letter: true }, 100, null)).map((j) => j.id), ids.FAILED);
          const counts = await s.countJobs();
          for (const [state, want] of Object.entries(ids)) assert.equal(counts.by_state[state], want.length, `count of ${state}`);
          const stats = await s.queueStats(++t);
          assert.deepEqual([stats.queued, stats.scheduled, stats.running, stats.paused, stats.retrying], [3, 2, 2, 0, 0]);
          assert.deepEqual(sorted((await s.activeJobs()).map((j) => j.id)), sorted([...ids.SCHEDULED!, ...ids.RUNNING!]));
          assert.equal((await s.workerUsage()).get('wm')?.slots, 4);
          // A read written the pre-0011 way still finds the same rows (only its index may differ).
          const viaIn = await raw.query<{ id: string }>("SELECT id FROM jobs WHERE state IN ('SCHEDULED', 'RUNNING', 'PAUSED')");
          assert.deepEqual(sorted(viaIn.map((r) => r.id)), sorted([...ids.SCHEDULED!, ...ids.RUNNING!]));
          const rows = await raw.query<{ n: number }>('SELECT COUNT(*) AS n FROM jobs');
          assert.equal(Number(rows[0]!.n), 13, 'every row kept');
        } finally {
          await s.close();
        }
      } finally {
        await raw.close();
        await fresh.drop();
      }
    });

    it('submitJobs writes SUBMITTED→QUEUED with both events', async () => {
      const now = tick();
      const [r] = await store.submitJobs([spec({ name: 'train', tenant: 'acme', priority: 'high', labels: { team: 'ml' } })], 'user:alice', now);
      assert.equal(r!.created, true);
      const j = await job(r!.job.id);
      assert.equal(j.state, 'QUEUED');
      assert.equal(j.name, 'train');
      assert.equal(j.tenant, 'acme');
      assert.equal(j.priority, 'high');
      assert.deepEqual(j.labels, { team: 'ml' });
      assert.deepEqual(j.command, ['echo', 'hi']);
      assert.equal(j.created_at, now);
      assert.equal(j.queued_at, now);
      assert.equal(j.attempt_count, 0);
      assert.deepEqual(r!.job, j, 'submit returns the stored job');
      const events = await store.jobEvents(j.id);
      assert.deepEqual(events.map((e) => [e.from_state, e.to_state, e.actor]), [
        [null, 'SUBMITTED', 'user:alice'],
        ['SUBMITTED', 'QUEUED', 'system'],
      ]);
      assert.ok(events.every((e) => e.at === now));
    });

    it('a change through several states reads back one event per state, and event rows written before migration 0010 still read', async () => {
      const w = await addWorker();
      const j = await submit({ name: 'steps' });
      assert.equal((await store.assignJobs([{ job_id: j.id, worker_id: w.id, gpu_indices: [] }], tick())).length, 1);
      const attempt = (await job(j.id)).current_attempt_id!;
      // A first report that already says completed: SCHEDULED → RUNNING → COMPLETED in one change.
      const at = tick();
      await store.reportResults(w.id, [{ job_id: j.id, attempt_id: attempt, outcome: 'completed', exit_code: 0 }], at);
      const events = await store.jobEvents(j.id);
      assert.deepEqual(events.map((e) => [e.from_state, e.to_state, e.actor, e.reason]), [
        [null, 'SUBMITTED', 'user:test', 'submitted'],
        ['SUBMITTED', 'QUEUED', 'system', 'validated and queued'],
        ['QUEUED', 'SCHEDULED', 'scheduler', `assigned to worker ${w.id}`],
        ['SCHEDULED', 'RUNNING', `worker:${w.id}`, 'worker started the job'],
        ['RUNNING', 'COMPLETED', `worker:${w.id}`, 'completed'],
      ]);
      assert.equal(events[3]!.data, null, 'the step passed through has no data');
      assert.deepEqual(events[4]!.data, { attempt_id: attempt, exit_code: 0, error: null });
      assert.ok(events.slice(3).every((e) => e.at === at));

      // A row as servers before migration 0010 wrote it (no steps): one event, as before.
      const raw = rawDriver(kind, db.url);
      try {
        await raw.run('INSERT INTO job_events (job_id, at, from_state, to_state, reason, actor, data) VALUES (?, ?, ?, ?, ?, ?, ?)',
          [j.id, tick(), 'COMPLETED', 'COMPLETED', 'an old note', 'system', '{"k":1}']);
      } finally {
        await raw.close();
      }
      const last = (await store.jobEvents(j.id)).slice(5);
      assert.deepEqual(last.map((e) => [e.from_state, e.to_state, e.reason, e.data]), [['COMPLETED', 'COMPLETED', 'an old note', { k: 1 }]]);
    });

    it('an idempotency key returns the original job, across calls and within one batch', async () => {
      const first = await store.submitJobs([spec({ name: 'one', tenant: 'idem', idempotency_key: 'k1' })], 'test', tick());
      assert.equal(first[0]!.created, true);
      const again = await store.submitJobs([spec({ name: 'changed', tenant: 'idem', idempotency_key: 'k1' })], 'test', tick());
      assert.equal(again[0]!.created, false);
      assert.equal(again[0]!.job.id, first[0]!.job.id);
      assert.equal(again[0]!.job.name, 'one', 'the original, not the new request');

      const batch = await store.submitJobs(
        [
          spec({ name: 'a', tenant: 'idem', idempotency_key: 'k2' }),
          spec({ name: 'b', tenant: 'idem', idempotency_key: 'k2' }),
          spec({ name: 'c', tenant: 'idem', idempotency_key: 'k1' }),
          spec({ name: 'd', tenant: 'other', idempotency_key: 'k1' }),
        ],
        'test',
        tick(),
      );
      assert.deepEqual(batch.map((r) => r.created), [true, false, false, true]);
      assert.equal(batch[1]!.job.id, batch[0]!.job.id);
      assert.equal(batch[1]!.job.name, 'a');
      assert.equal(batch[2]!.job.id, first[0]!.job.id);
      assert.notEqual(batch[3]!.job.id, first[0]!.job.id, 'keys are per tenant');
      assert.equal((await store.listJobs({ tenant: 'idem' }, 100, null)).length, 2);
      // The duplicate did not write events either.
      assert.equal((await store.jobEvents(batch[0]!.job.id)).length, 2);
    });

    it('concurrent submits with one idempotency key create one job (a client retrying in parallel)', async () => {
      for (let round = 0; round < 5; round++) {
        const s = spec({ tenant: 'idem-race', idempotency_key: `race-${round}` });
        const results = await Promise.all([1, 2, 3, 4, 5, 6].map(() => store.submitJobs([s], 'test', tick())));
        const ids = new Set(results.map((r) => r[0]!.job.id));
        assert.equal(ids.size, 1, 'every caller gets the same job');
        assert.equal(results.filter((r) => r[0]!.created).length, 1, 'exactly one created it');
      }
    });

    it('listJobs filters and pages with a keyset cursor, newest first, without duplicates or gaps', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 23; i++) {
        const j = await submit({ tenant: 'lister', type: i % 3 === 0 ? 'etl' : 'train', priority: i % 2 === 0 ? 'low' : 'normal' });
        ids.push(j.id);
      }
      const seen: string[] = [];
      let cursor: number | null = null;
      for (let page = 0; page < 10; page++) {
        const rows = await store.listJobs({ tenant: 'lister' }, 5, cursor);
        if (rows.length === 0) break;
        seen.push(...rows.map((r) => r.id));
        cursor = rows[rows.length - 1]!.seq;
      }
      assert.deepEqual(seen, [...ids].reverse(), 'every job once, newest first');

      const etl = await store.listJobs({ tenant: 'lister', type: 'etl' }, 100, null);
      assert.deepEqual(etl.map((j) => j.id), ids.filter((_, i) => i % 3 === 0).reverse());
      const lowEtl = await store.listJobs({ tenant: 'lister', type: 'etl', priority: 'low' }, 100, null);
      assert.deepEqual(lowEtl.map((j) => j.id), ids.filter((_, i) => i % 3 === 0 && i % 2 === 0).reverse());
      await store.cancelJob(ids[4]!, 'no', 'test', tick());
      const cancelled = await store.listJobs({ tenant: 'lister', state: 'CANCELLED' }, 100, null);
      assert.deepEqual(cancelled.map((j) => j.id), [ids[4]]);
      assert.equal((await store.listJobs({ tenant: 'nobody' }, 100, null)).length, 0);
    });

    it('queuedJobs: priority class first, FIFO within a class; the keyset cursor continues', async () => {
      const low = await submit({ name: 'low', priority: 'low' });
      const n1 = await submit({ name: 'n1' });
      const high = await submit({ name: 'high', priority: 'high' });
      const batch = await store.submitJobs([spec({ name: 'n2' }), spec({ name: 'n3' }), spec({ name: 'n4' })], 'test', tick());
      const emergency = await submit({ name: 'emergency', priority: 'emergency' });
      const crit = await submit({ name: 'crit', priority: 'urgent' });
      const expected = [emergency.id, crit.id, high.id, n1.id, ...batch.map((b) => b.job.id), low.id];
      const all = await store.queuedJobs(100);
      assert.deepEqual(all.map((q) => q.id), expected);

      const paged: string[] = [];
      let cursor = null;
      for (;;) {
        const page = await store.queuedJobs(3, cursor);
        paged.push(...page.map((q) => q.id));
        const last = page[page.length - 1];
        if (page.length < 3 || !last) break;
        cursor = { priority_rank: last.priority_rank, sort_key: last.sort_key, seq: last.seq };
      }
      assert.deepEqual(paged, expected);

      // Only QUEUED jobs are in the queue.
      await store.cancelJob(high.id, 'gone', 'test', tick());
      assert.ok(!(await store.queuedJobs(100)).some((q) => q.id === high.id));
    });

    it('assignJobs: QUEUED→SCHEDULED with an attempt and an event; a job cancelled meanwhile is skipped', async () => {
      const w = await addWorker({ gpu_count: 2 });
      const a = await submit();
      const b = await submit();
      await store.cancelJob(b.id, 'changed my mind', 'user:test', tick());
      const now = tick();
      const done = await store.assignJobs(
        [
          { job_id: b.id, worker_id: w.id, gpu_indices: [] },
          { job_id: a.id, worker_id: w.id, gpu_indices: [1] },
        ],
        now,
      );
      assert.deepEqual(done.map(({ job: _, ...a }) => a), [{ job_id: a.id, worker_id: w.id, gpu_indices: [1] }]);
      const ja = await job(a.id);
      assert.equal(ja.state, 'SCHEDULED');
      assert.equal(ja.worker_id, w.id);
      assert.deepEqual(ja.gpu_indices, [1]);
      assert.equal(ja.attempt_count, 1);
      assert.ok(ja.current_attempt_id);
      // The job as the worker's poll will hand it out, from the assignment's own statement.
      assert.deepEqual(done[0]!.job, (await store.deliverToWorker(w.id, 10)).jobs[0]);
      const attempts = await store.jobAttempts(a.id);
      assert.equal(attempts.length, 1);
      assert.deepEqual(
        { ...attempts[0]!, id: undefined },
        { id: undefined, job_id: a.id, number: 1, worker_id: w.id, started_at: now, ended_at: null, exit_code: null, error: null, outcome: 'running' },
      );
      assert.equal(attempts[0]!.id, ja.current_attempt_id);
      const last = (await store.jobEvents(a.id)).at(-1)!;
      assert.equal(`${last.from_state}→${last.to_state}`, 'QUEUED→SCHEDULED');
      assert.equal(last.actor, 'scheduler');
      assert.equal(last.data?.attempt_id, ja.current_attempt_id);

      const jb = await job(b.id);
      assert.equal(jb.state, 'CANCELLED');
      assert.equal(jb.worker_id, null);
      assert.equal((await store.jobAttempts(b.id)).length, 0);
      assert.deepEqual(await transitions(b.id), ['∅→SUBMITTED', 'SUBMITTED→QUEUED', 'QUEUED→CANCELLED']);
    });

    it('deliverToWorker hands out SCHEDULED jobs the worker does not hold; `started` makes them RUNNING; controls exactly once', async () => {
      const w = await addWorker();
      const jobs = [await submit(), await submit(), await submit()];
      await store.assignJobs(jobs.map((j) => ({ job_id: j.id, worker_id: w.id, gpu_indices: [] })), tick());
      const first = await store.deliverToWorker(w.id, 2);
      assert.deepEqual(first.jobs.map((j) => j.id), [jobs[0]!.id, jobs[1]!.id], 'up to the room given, in queue order');
      assert.ok(first.jobs.every((j) => j.state === 'SCHEDULED'), 'handing out writes nothing');
      const held = new Set(first.jobs.map((j) => j.current_attempt_id!));
      const second = await store.deliverToWorker(w.id, 5, held);
      assert.deepEqual(second.jobs.map((j) => j.id), [jobs[2]!.id], 'what the worker holds is not handed out again');
      const t1 = tick();
      const started = await store.reportResults(w.id, first.jobs.map((j) => ({ job_id: j.id, attempt_id: j.current_attempt_id!, outcome: 'started' as const })), t1);
      assert.deepEqual(started.map((s) => s.state), ['RUNNING', 'RUNNING']);
      assert.equal((await job(jobs[0]!.id)).started_at, t1);
      assert.equal((await job(jobs[2]!.id)).state, 'SCHEDULED', 'not started yet');
      assert.deepEqual((await transitions(jobs[0]!.id)).slice(-1), ['SCHEDULED→RUNNING']);

      const res = await store.cancelJob(jobs[1]!.id, 'stop', 'user:test', tick());
      assert.equal(res.wake_worker, w.id);
      await store.controlJob(jobs[0]!.id, 'pause', 'user:test', tick());
      const ctl = await store.deliverToWorker(w.id, 0);
      assert.deepEqual(ctl.jobs, []);
      const byJob = Object.fromEntries(ctl.controls.map((c) => [c.job_id, c]));
      assert.deepEqual(byJob[jobs[1]!.id], { job_id: jobs[1]!.id, attempt_id: (await job(jobs[1]!.id)).current_attempt_id, control: 'cancel' });
      assert.equal(byJob[jobs[0]!.id]?.control, 'pause');
      assert.equal(ctl.controls.length, 2);
      assert.deepEqual((await store.deliverToWorker(w.id, 5, held)).controls, [], 'controls are handed out once');
      // Another worker gets none of this.
      const other = await addWorker();
      assert.deepEqual(await store.deliverToWorker(other.id, 5), { jobs: [], controls: [] });
    });

    it('reportResults completed: stores result and exit code, frees the worker', async () => {
      const { job: j, worker: w, attempt } = await running({ resources: { cpu_cores: 3 } });
      assert.equal((await store.workerUsage()).get(w.id)?.cpu_cores, 3);
      const now = tick();
      const out = await store.reportResults(w.id, [{ job_id: j.id, attempt_id: attempt, outcome: 'completed', exit_code: 0, result: { accuracy: 0.93 } }], now);
      assert.deepEqual(out, [{ job_id: j.id, status: 'applied', state: 'COMPLETED' }]);
      const done = await job(j.id);
      assert.equal(done.state, 'COMPLETED');
      assert.deepEqual(done.result, { accuracy: 0.93 });
      assert.equal(done.exit_code, 0);
      assert.equal(done.finished_at, now);
      assert.equal(done.worker_id, null);
      assert.equal(done.progress, 1);
      assert.equal(done.dead_lettered_at, null);
      assert.equal((await store.workerUsage()).has(w.id), false, 'the worker is free');
      const [a] = await store.jobAttempts(j.id);
      assert.equal(a!.outcome, 'completed');
      assert.equal(a!.ended_at, now);
      assert.equal(a!.exit_code, 0);
      assert.deepEqual((await transitions(j.id)).slice(-1), ['RUNNING→COMPLETED']);
    });

    it('progress reports update progress without changing state', async () => {
      const { job: j, worker: w, attempt } = await running();
      const out = await store.reportResults(w.id, [{ job_id: j.id, attempt_id: attempt, outcome: 'progress', progress: 0.4 }], tick());
      assert.deepEqual(out, [{ job_id: j.id, status: 'applied', state: 'RUNNING' }]);
      assert.equal((await job(j.id)).progress, 0.4);
    });

    it('a failure retries by the policy, with exponential backoff, then dead-letters when attempts are used up', async () => {
      const { job: j, worker: w, attempt } = await running({ retry_policy: { max_attempts: 3, retry_delay: 10, backoff: 'exponential', max_delay: 600, jitter: 0 } });
      const t1 = tick();
      const out = await store.reportResults(w.id, [{ job_id: j.id, attempt_id: attempt, outcome: 'failed', exit_code: 2, error: 'boom' }], t1);
      assert.deepEqual(out, [{ job_id: j.id, status: 'applied', state: 'RETRYING' }]);
      let r = await job(j.id);
      assert.equal(r.state, 'RETRYING');
      assert.equal(r.run_after, t1 + 10_000, 'first retry after retry_delay');
      assert.equal(r.error, 'boom');
      assert.equal(r.exit_code, 2);
      assert.equal(r.worker_id, null);
      assert.equal((await store.workerUsage()).has(w.id), false);
      assert.equal((await store.jobAttempts(j.id))[0]!.outcome, 'failed');
      assert.deepEqual((await transitions(j.id)).slice(-1), ['RUNNING→RETRYING']);

      // Not due yet: stays; next_due says when.
      assert.deepEqual(await store.promoteDueRetries(t1 + 9_999), { moved: 0, next_due: t1 + 10_000 });
      assert.equal((await job(j.id)).state, 'RETRYING');
      const p = await store.promoteDueRetries(t1 + 10_000);
      assert.equal(p.moved, 1);
      assert.equal(p.next_due, null);
      r = await job(j.id);
      assert.equal(r.state, 'QUEUED');
      assert.equal(r.run_after, null);
      assert.equal(r.queued_at, t1 + 10_000);
      clock = Math.max(clock, t1 + 10_000);

      // Second run fails: the delay doubles.
      const a2 = await start(j.id, w.id);
      const t2 = tick();
      await store.reportResults(w.id, [{ job_id: j.id, attempt_id: a2, outcome: 'failed', exit_code: 1 }], t2);
      r = await job(j.id);
      assert.equal(r.state, 'RETRYING');
      assert.equal(r.run_after, t2 + 20_000);
      assert.equal(r.error, 'exited with code 1');
      await store.promoteDueRetries(t2 + 20_000);
      clock = Math.max(clock, t2 + 20_000);

      // Third run fails: attempts used up → FAILED and in the dead-letter queue.
      const a3 = await start(j.id, w.id);
      const t3 = tick();
      const last = await store.reportResults(w.id, [{ job_id: j.id, attempt_id: a3, outcome: 'failed', exit_code: 1, error: 'still broken' }], t3);
      assert.deepEqual(last, [{ job_id: j.id, status: 'applied', state: 'FAILED' }]);
      r = await job(j.id);
      assert.equal(r.state, 'FAILED');
      assert.equal(r.dead_lettered_at, t3);
      assert.equal(r.finished_at, t3);
      assert.equal(r.attempt_count, 3);
      assert.deepEqual((await store.jobAttempts(j.id)).map((a) => [a.number, a.outcome]), [[1, 'failed'], [2, 'failed'], [3, 'failed']]);
      const ev = (await store.jobEvents(j.id)).at(-1)!;
      assert.equal(`${ev.from_state}→${ev.to_state}`, 'RUNNING→FAILED');
      assert.match(ev.reason, /attempts used up \(3\/3\)/);
      const dlq = await store.listJobs({ dead_letter: true }, 100, null);
      assert.ok(dlq.some((d) => d.id === j.id), 'listed in the dead-letter queue');
    });

    it('a non-retryable failure fails at once and dead-letters, attempts left or not', async () => {
      const { job: j, worker: w, attempt } = await running({ retry_policy: { max_attempts: 5 } });
      const out = await store.reportResults(w.id, [{ job_id: j.id, attempt_id: attempt, outcome: 'failed', error: 'bad input', non_retryable: true }], tick());
      assert.equal(out[0]!.state, 'FAILED');
      const r = await job(j.id);
      assert.equal(r.state, 'FAILED');
      assert.ok(r.dead_lettered_at);
      assert.equal(r.run_after, null);
      assert.match((await store.jobEvents(j.id)).at(-1)!.reason, /non-retryable/);
      assert.ok((await store.listJobs({ dead_letter: true }, 100, null)).some((d) => d.id === j.id));
    });

    it('a timeout goes TIMEOUT→RETRYING (two events) with attempts left, and stays TIMEOUT without', async () => {
      const { job: j, worker: w, attempt } = await running({ timeout: 5, retry_policy: { max_attempts: 2, retry_delay: 3, backoff: 'fixed' } });
      const now = tick();
      const out = await store.reportResults(w.id, [{ job_id: j.id, attempt_id: attempt, outcome: 'timeout' }], now);
      assert.deepEqual(out, [{ job_id: j.id, status: 'applied', state: 'RETRYING' }]);
      assert.deepEqual((await transitions(j.id)).slice(-2), ['RUNNING→TIMEOUT', 'TIMEOUT→RETRYING']);
      const r = await job(j.id);
      assert.equal(r.state, 'RETRYING');
      assert.equal(r.run_after, now + 3000);
      assert.equal(r.error, 'timed out after 5s');
      assert.equal((await store.jobAttempts(j.id))[0]!.outcome, 'timeout');

      await store.promoteDueRetries(now + 3000);
      clock = Math.max(clock, now + 3000);
      const a2 = await start(j.id, w.id);
      const out2 = await store.reportResults(w.id, [{ job_id: j.id, attempt_id: a2, outcome: 'timeout' }], tick());
      assert.equal(out2[0]!.state, 'TIMEOUT');
      const final = await job(j.id);
      assert.equal(final.state, 'TIMEOUT');
      assert.ok(final.dead_lettered_at);
      assert.deepEqual((await transitions(j.id)).slice(-1), ['RUNNING→TIMEOUT']);
      assert.ok((await store.listJobs({ dead_letter: true }, 100, null)).some((d) => d.id === j.id), 'TIMEOUT is in the DLQ too');
    });

    it('fencing: a report with a wrong attempt id or from another worker is recorded, not applied', async () => {
      const { job: j, worker: w, attempt } = await running();
      const intruder = await addWorker();
      const before = await transitions(j.id);

      const wrongAttempt = await store.reportResults(w.id, [{ job_id: j.id, attempt_id: 'att_bogus', outcome: 'completed' }], tick());
      assert.deepEqual(wrongAttempt, [{ job_id: j.id, status: 'stale', state: 'RUNNING' }]);
      const wrongWorker = await store.reportResults(intruder.id, [{ job_id: j.id, attempt_id: attempt, outcome: 'failed', error: 'x' }], tick());
      assert.deepEqual(wrongWorker, [{ job_id: j.id, status: 'stale', state: 'RUNNING' }]);

      const r = await job(j.id);
      assert.equal(r.state, 'RUNNING');
      assert.equal(r.result, null);
      assert.equal(r.error, null);
      assert.equal((await store.jobAttempts(j.id))[0]!.outcome, 'running');
      const events = await store.jobEvents(j.id);
      const late = events.slice(before.length);
      assert.equal(late.length, 2);
      for (const e of late) {
        assert.equal(e.from_state, 'RUNNING');
        assert.equal(e.to_state, 'RUNNING');
        assert.match(e.reason, /late report/);
      }
      assert.equal(late[0]!.data?.attempt_id, 'att_bogus');
      assert.equal(late[1]!.actor, `worker:${intruder.id}`);

      // The real owner still can.
      const ok = await store.reportResults(w.id, [{ job_id: j.id, attempt_id: attempt, outcome: 'completed' }], tick());
      assert.equal(ok[0]!.status, 'applied');
      // And a repeat of the same report, now that the job is done, is stale.
      const repeat = await store.reportResults(w.id, [{ job_id: j.id, attempt_id: attempt, outcome: 'failed' }], tick());
      assert.deepEqual(repeat, [{ job_id: j.id, status: 'stale', state: 'COMPLETED' }]);
      assert.equal((await job(j.id)).state, 'COMPLETED');
    });

    it('a batch of completions: each job ends as reported, through RUNNING if it had not started; late, watched and breaker-stepping reports in it take effect too', async () => {
      // On PostgreSQL a batch of plain completions is one statement; what it cannot take goes the transaction way.
      const w = await addWorker();
      const fresh = await submit({ handler: 'h-fresh' });
      const started = await submit({ handler: 'h-ok' });
      const upstream = await submit({ name: 'upstream' });
      const down = await submit({ name: 'down' });
      await store.addJobDependencies(down.id, [upstream.id], 'all_complete', 'user:test', tick());
      const other = await submit({ name: 'other' });
      assert.equal((await job(down.id)).state, 'SUBMITTED');
      await store.assignJobs([{ job_id: fresh.id, worker_id: w.id, gpu_indices: [] }], tick());
      const aFresh = (await job(fresh.id)).current_attempt_id!;
      const aStarted = await start(started.id, w.id);
      const startedAt = (await job(started.id)).started_at;
      const aUp = await start(upstream.id, w.id);
      await start(other.id, w.id);
      const now = tick();
      // Plain completions only (on PostgreSQL: the one statement)…
      const out = await store.reportResults(w.id, [
        { job_id: fresh.id, attempt_id: aFresh, outcome: 'completed', result: { n: 1 } },
        { job_id: started.id, attempt_id: aStarted, outcome: 'completed', exit_code: 0 },
      ], now, DEFAULT_BREAKER_OPTIONS);
      assert.deepEqual(out, [
        { job_id: fresh.id, status: 'applied', state: 'COMPLETED' },
        { job_id: started.id, status: 'applied', state: 'COMPLETED' },
      ]);
      // …a watched job's, and a late one (each taken by the transaction path).
      const out2 = await store.reportResults(w.id, [{ job_id: upstream.id, attempt_id: aUp, outcome: 'completed' }], now, DEFAULT_BREAKER_OPTIONS);
      assert.deepEqual(out2, [{ job_id: upstream.id, status: 'applied', state: 'COMPLETED' }]);
      const out3 = await store.reportResults(w.id, [{ job_id: other.id, attempt_id: 'att_bogus', outcome: 'completed' }], now, DEFAULT_BREAKER_OPTIONS);
      assert.deepEqual(out3, [{ job_id: other.id, status: 'stale', state: 'RUNNING' }]);
      const f = await job(fresh.id);
      assert.deepEqual(
        [f.state, f.started_at, f.finished_at, f.updated_at, f.result, f.progress, f.exit_code, f.error, f.worker_id, f.gpu_indices, f.control],
        ['COMPLETED', now, now, now, { n: 1 }, 1, 0, null, null, [], null],
      );
      assert.deepEqual((await transitions(fresh.id)).slice(-2), ['SCHEDULED→RUNNING', 'RUNNING→COMPLETED']);
      const fe = (await store.jobEvents(fresh.id)).slice(-2);
      assert.deepEqual(fe.map((e) => [e.reason, e.actor, e.at]), [['worker started the job', `worker:${w.id}`, now], ['completed', `worker:${w.id}`, now]]);
      assert.deepEqual(fe[1]!.data, { attempt_id: aFresh, exit_code: null, error: null });
      const [fa] = await store.jobAttempts(fresh.id);
      assert.deepEqual([fa!.id, fa!.outcome, fa!.ended_at, fa!.exit_code, fa!.error], [aFresh, 'completed', now, null, null]);
      const st = await job(started.id);
      assert.deepEqual([st.state, st.started_at, st.finished_at], ['COMPLETED', startedAt, now], 'a started job keeps its start time');
      assert.deepEqual((await transitions(started.id)).slice(-1), ['RUNNING→COMPLETED']);
      assert.equal((await store.jobAttempts(started.id))[0]!.exit_code, 0);
      assert.equal((await job(upstream.id)).state, 'COMPLETED');
      assert.equal((await job(down.id)).state, 'QUEUED', 'the final-state hook released the dependent');
      assert.equal((await job(other.id)).state, 'RUNNING');
      assert.match((await store.jobEvents(other.id)).at(-1)!.reason, /late report 'completed'/);

      // A breaker with a failure on record: a success closes it (the completion takes the transaction way).
      const bad = await submit({ handler: 'h-flaky', retry_policy: { max_attempts: 3, retry_delay: 1, backoff: 'fixed' } });
      const aBad = await start(bad.id, w.id);
      await store.reportResults(w.id, [{ job_id: bad.id, attempt_id: aBad, outcome: 'failed', error: 'boom' }], tick(), DEFAULT_BREAKER_OPTIONS);
      const flaky = (await store.listBreakers()).find((b) => b.key === 'handler:h-flaky');
      assert.equal(flaky?.consecutive_failures, 1);
      const good = await submit({ handler: 'h-flaky' });
      const aGood = await start(good.id, w.id);
      const done = await store.reportResults(w.id, [{ job_id: good.id, attempt_id: aGood, outcome: 'completed' }], tick(), DEFAULT_BREAKER_OPTIONS);
      assert.equal(done[0]!.state, 'COMPLETED');
      assert.equal((await store.listBreakers()).find((b) => b.key === 'handler:h-flaky')?.consecutive_failures, 0);
    });

    it('reapLostWorkers requeues a silent worker\'s jobs at their old place, attempt lost, retry budget kept', async () => {
      const t0 = tick();
      const silent = await addWorker({}, t0);
      const alive = await addWorker({}, t0);
      const policy = { max_attempts: 2, retry_delay: 1, backoff: 'fixed' as const };
      const first = await submit({ name: 'first', retry_policy: policy });
      const second = await submit({ name: 'second', retry_policy: policy });
      const onAlive = await submit({ name: 'on-alive' });
      const lostAttempt = await start(first.id, silent.id);
      await store.assignJobs([{ job_id: second.id, worker_id: silent.id, gpu_indices: [] }], tick()); // SCHEDULED, not yet taken
      await start(onAlive.id, alive.id);
      const later = tick(10_000);
      assert.equal(await store.heartbeat(alive.id, later), true);

      const reaped = await store.reapLostWorkers(later - 5000, later);
      assert.deepEqual(reaped.workers, [silent.id]);
      assert.deepEqual(reaped.jobs.sort(), [first.id, second.id].sort());
      assert.equal((await store.getWorker(silent.id))?.state, 'offline');
      assert.equal(await store.heartbeat(silent.id, tick()), false, 'a reaped worker must register again');
      assert.equal((await job(onAlive.id)).state, 'RUNNING', 'the live worker keeps its job');

      const r = await job(first.id);
      assert.equal(r.state, 'QUEUED');
      assert.equal(r.worker_id, null);
      assert.equal(r.current_attempt_id, null);
      assert.equal(r.sort_key, first.sort_key, 'back at its old place in the queue');
      assert.equal(r.retry_count, 0, 'the lost run does not count');
      assert.deepEqual((await store.queuedJobs(10)).map((q) => q.id), [first.id, second.id]);
      const [att] = await store.jobAttempts(first.id);
      assert.equal(att!.id, lostAttempt);
      assert.equal(att!.outcome, 'lost');
      assert.equal(att!.ended_at, later);
      const ev = (await store.jobEvents(first.id)).at(-1)!;
      assert.equal(`${ev.from_state}→${ev.to_state}`, 'RUNNING→QUEUED');
      assert.equal(ev.actor, 'lease-reaper');
      assert.ok(ev.reason.includes(`worker ${silent.id} lost (no heartbeat for ${((later - t0) / 1000).toFixed(1)}s)`), ev.reason);

      // The old worker's late report is fenced off.
      const stale = await store.reportResults(silent.id, [{ job_id: first.id, attempt_id: lostAttempt, outcome: 'completed' }], tick());
      assert.equal(stale[0]!.status, 'stale');

      // With max_attempts 2, one real failure after the lost run still leaves a retry.
      const a2 = await start(first.id, alive.id);
      const out = await store.reportResults(alive.id, [{ job_id: first.id, attempt_id: a2, outcome: 'failed', exit_code: 1 }], tick());
      assert.equal(out[0]!.state, 'RETRYING');
      assert.equal((await job(first.id)).attempt_count, 2);
    });

    it('cancel: QUEUED at once; RUNNING via a control to the worker; a pending cancel on a lost worker ends CANCELLED', async () => {
      const q = await submit();
      const now = tick();
      const res = await store.cancelJob(q.id, 'not needed', 'user:bob', now);
      assert.equal(res.job.state, 'CANCELLED');
      assert.equal(res.job.finished_at, now);
      assert.equal(res.wake_worker, null);
      const ev = (await store.jobEvents(q.id)).at(-1)!;
      assert.deepEqual([ev.from_state, ev.to_state, ev.reason, ev.actor], ['QUEUED', 'CANCELLED', 'not needed', 'user:bob']);

      // RUNNING: the worker is told; the job ends when it confirms.
      const { job: j, worker: w, attempt } = await running();
      const rc = await store.cancelJob(j.id, 'stop it', 'user:bob', tick());
      assert.equal(rc.job.state, 'RUNNING');
      assert.equal(rc.job.cancel_requested, true);
      assert.equal(rc.job.control, 'cancel');
      assert.equal(rc.wake_worker, w.id);
      const d = await store.deliverToWorker(w.id, 0);
      assert.deepEqual(d.controls, [{ job_id: j.id, attempt_id: attempt, control: 'cancel' }]);
      const out = await store.reportResults(w.id, [{ job_id: j.id, attempt_id: attempt, outcome: 'cancelled', exit_code: 143 }], tick());
      assert.equal(out[0]!.state, 'CANCELLED');
      assert.equal((await job(j.id)).worker_id, null);
      assert.equal((await store.jobAttempts(j.id))[0]!.outcome, 'cancelled');

      // A process that dies of the stop signal and reports 'failed' still ends CANCELLED, not retried.
      const k = await running({ retry_policy: { max_attempts: 5 } });
      await store.cancelJob(k.job.id, 'stop', 'user:bob', tick());
      const killed = await store.reportResults(k.worker.id, [{ job_id: k.job.id, attempt_id: k.attempt, outcome: 'failed', exit_code: 137 }], tick());
      assert.equal(killed[0]!.state, 'CANCELLED');

      // The worker is lost before it confirms: CANCELLED, not requeued.
      const t0 = tick();
      const silent = await addWorker({}, t0);
      const l = await submit();
      await start(l.id, silent.id);
      await store.cancelJob(l.id, 'stop', 'user:bob', tick());
      const later = tick(60_000);
      const reaped = await store.reapLostWorkers(later - 5000, later);
      assert.ok(reaped.workers.includes(silent.id));
      assert.ok(!reaped.jobs.includes(l.id), 'not requeued');
      const lj = await job(l.id);
      assert.equal(lj.state, 'CANCELLED');
      assert.equal(lj.worker_id, null);
      assert.equal((await store.jobAttempts(l.id))[0]!.outcome, 'lost');

      // Other states.
      const s = await submit();
      const ws = await addWorker();
      await store.assignJobs([{ job_id: s.id, worker_id: ws.id, gpu_indices: [] }], tick());
      const sAttempt = (await job(s.id)).current_attempt_id;
      const rs = await store.cancelJob(s.id, 'before it started', 'user:bob', tick());
      assert.equal(rs.job.state, 'CANCELLED', 'SCHEDULED is cancelled at once');
      assert.equal(rs.wake_worker, ws.id, 'the worker may already hold it, so it is told');
      assert.equal((await store.jobAttempts(s.id))[0]!.outcome, 'cancelled');
      assert.equal((await store.workerUsage()).has(ws.id), false, 'it holds nothing on the worker');
      const dws = await store.deliverToWorker(ws.id, 5);
      assert.deepEqual(dws.jobs, [], 'the worker never gets it');
      assert.deepEqual(dws.controls, [{ job_id: s.id, attempt_id: sAttempt, control: 'cancel' }]);
      const late = await store.reportResults(ws.id, [{ job_id: s.id, attempt_id: sAttempt!, outcome: 'cancelled' }], tick());
      assert.equal(late[0]!.status, 'stale');
      await expectGantryError(store.cancelJob(j.id, 'again', 'user:bob', tick()), 'INVALID_TRANSITION');
      await expectGantryError(store.cancelJob('job_nope', 'x', 'user:bob', tick()), 'NOT_FOUND');
    });

    it('cancelling a RETRYING job stops the retry', async () => {
      const { job: j, worker: w, attempt } = await running({ retry_policy: { max_attempts: 3, retry_delay: 5 } });
      const now = tick();
      await store.reportResults(w.id, [{ job_id: j.id, attempt_id: attempt, outcome: 'failed', exit_code: 1 }], now);
      const res = await store.cancelJob(j.id, 'give up', 'user:test', tick());
      assert.equal(res.job.state, 'CANCELLED');
      assert.equal(res.job.run_after, null);
      assert.equal((await store.promoteDueRetries(now + 60_000)).moved, 0);
      assert.equal((await job(j.id)).state, 'CANCELLED');
    });

    it('pause and resume go through the worker: control first, state on its confirmation', async () => {
      const { job: j, worker: w, attempt } = await running();
      await expectGantryError(store.controlJob(j.id, 'resume', 'user:test', tick()), 'INVALID_TRANSITION');
      const p = await store.controlJob(j.id, 'pause', 'user:test', tick());
      assert.equal(p.job.state, 'RUNNING');
      assert.equal(p.wake_worker, w.id);
      assert.deepEqual((await store.deliverToWorker(w.id, 0)).controls, [{ job_id: j.id, attempt_id: attempt, control: 'pause' }]);
      assert.equal((await store.reportResults(w.id, [{ job_id: j.id, attempt_id: attempt, outcome: 'paused' }], tick()))[0]!.state, 'PAUSED');
      assert.equal((await job(j.id)).state, 'PAUSED');
      assert.equal((await store.workerUsage()).get(w.id)?.slots, 1, 'a paused job still holds its place');
      await store.controlJob(j.id, 'resume', 'user:test', tick());
      assert.equal((await store.reportResults(w.id, [{ job_id: j.id, attempt_id: attempt, outcome: 'resumed' }], tick()))[0]!.state, 'RUNNING');
      const moves = (await store.jobEvents(j.id)).filter((e) => e.from_state !== e.to_state).map((e) => `${e.from_state}→${e.to_state}`);
      assert.deepEqual(moves.slice(-2), ['RUNNING→PAUSED', 'PAUSED→RUNNING']);
      const requests = (await store.jobEvents(j.id)).filter((e) => e.from_state === e.to_state).map((e) => e.reason);
      assert.deepEqual(requests, ['pause requested', 'resume requested']);
    });

    it('requeueJob resets the retry budget and takes the job out of the dead-letter queue', async () => {
      const { job: j, worker: w, attempt } = await running({ retry_policy: { max_attempts: 1 }, parameters: { lr: 0.1 } });
      await store.reportResults(w.id, [{ job_id: j.id, attempt_id: attempt, outcome: 'failed', exit_code: 1, error: 'oom' }], tick());
      assert.equal((await job(j.id)).state, 'FAILED');
      assert.ok((await store.listJobs({ dead_letter: true }, 100, null)).some((d) => d.id === j.id));

      const now = tick();
      const r = await store.requeueJob(j.id, 'fixed the bug', 'user:test', { lr: 0.01 }, now);
      assert.equal(r.state, 'QUEUED');
      assert.equal(r.retry_count, 0);
      assert.equal(r.dead_lettered_at, null);
      assert.equal(r.error, null);
      assert.equal(r.exit_code, null);
      assert.equal(r.finished_at, null);
      assert.equal(r.queued_at, now);
      assert.deepEqual(r.parameters, { lr: 0.01 });
      assert.ok(!(await store.listJobs({ dead_letter: true }, 100, null)).some((d) => d.id === j.id), 'out of the DLQ');
      assert.deepEqual((await transitions(j.id)).slice(-1), ['FAILED→QUEUED']);

      // It runs again with the full budget (max_attempts 1: one more run).
      const a2 = await start(j.id, w.id);
      assert.equal((await job(j.id)).attempt_count, 2);
      const out = await store.reportResults(w.id, [{ job_id: j.id, attempt_id: a2, outcome: 'completed' }], tick());
      assert.equal(out[0]!.state, 'COMPLETED');
      await expectGantryError(store.requeueJob(j.id, 'again', 'user:test', undefined, tick()), 'INVALID_TRANSITION');
      const q = await submit();
      await expectGantryError(store.requeueJob(q.id, 'x', 'user:test', undefined, tick()), 'INVALID_TRANSITION');
    });

    it('setPriority moves a queued job into its new class at once', async () => {
      const a = await submit({ name: 'a' });
      const b = await submit({ name: 'b' });
      const c = await submit({ name: 'c' });
      const h = await submit({ name: 'h', priority: 'high' });
      const r = await store.setPriority(c.id, 'critical', 'deadline', 'user:test', tick());
      assert.equal(r.priority, 'critical');
      assert.deepEqual((await store.queuedJobs(10)).map((q) => q.id), [c.id, h.id, a.id, b.id]);
      assert.equal(await store.queuePosition(r), 1);
      await store.setPriority(a.id, 'low', 'can wait', 'user:test', tick());
      assert.deepEqual((await store.queuedJobs(10)).map((q) => q.id), [c.id, h.id, b.id, a.id]);
      const ev = (await store.jobEvents(a.id)).at(-1)!;
      assert.deepEqual(ev.data, { from_priority: 'normal', to_priority: 'low' });
      assert.equal(ev.from_state, 'QUEUED');
      assert.equal(ev.to_state, 'QUEUED');

      await store.cancelJob(b.id, 'x', 'user:test', tick());
      await expectGantryError(store.setPriority(b.id, 'high', 'too late', 'user:test', tick()), 'INVALID_TRANSITION');
    });

    it('reorderJob moves a job within its class; a place held by a higher class is refused', async () => {
      const h = await submit({ name: 'h', priority: 'high' });
      const n1 = await submit({ name: 'n1' });
      const n2 = await submit({ name: 'n2' });
      const n3 = await submit({ name: 'n3' });
      const l = await submit({ name: 'l', priority: 'low' });
      const order = async () => (await store.queuedJobs(100)).map((q) => q.id);

      const moved = await store.reorderJob(n3.id, 2, 'hurry', 'user:test', tick());
      assert.deepEqual(await order(), [h.id, n3.id, n1.id, n2.id, l.id]);
      assert.equal(await store.queuePosition(moved), 2);
      assert.match((await store.jobEvents(n3.id)).at(-1)!.reason, /moved to position 2: hurry/);

      await store.reorderJob(n1.id, 4, 'later', 'user:test', tick());
      assert.deepEqual(await order(), [h.id, n3.id, n2.id, n1.id, l.id]);

      const err = await expectGantryError(store.reorderJob(n2.id, 1, 'me first', 'user:test', tick()), 'CONFLICT');
      assert.equal(err.status, 409);
      assert.match(err.message, /held by a high job/);
      assert.deepEqual(await order(), [h.id, n3.id, n2.id, n1.id, l.id], 'unchanged after a refusal');

      // Beyond the end of its class: last in the class, still ahead of lower classes.
      await store.reorderJob(n3.id, 99, 'whenever', 'user:test', tick());
      assert.deepEqual(await order(), [h.id, n2.id, n1.id, n3.id, l.id]);
      // A low job cannot move ahead of normal ones.
      await expectGantryError(store.reorderJob(l.id, 2, 'x', 'user:test', tick()), 'CONFLICT');
      // Only QUEUED jobs can be reordered.
      await store.cancelJob(n1.id, 'x', 'user:test', tick());
      await expectGantryError(store.reorderJob(n1.id, 1, 'x', 'user:test', tick()), 'INVALID_TRANSITION');
    });

    it('reorderJob between jobs submitted in the same millisecond', async () => {
      const now = tick();
      const batch = await store.submitJobs([spec({ name: 'a' }), spec({ name: 'b' }), spec({ name: 'c' }), spec({ name: 'd' })], 'test', now);
      const [a, b, c, d] = batch.map((r) => r.job.id);
      const order = async () => (await store.queuedJobs(100)).map((q) => q.id);
      assert.deepEqual(await order(), [a, b, c, d]);
      await store.reorderJob(d!, 2, 'between a and b', 'user:test', tick());
      assert.deepEqual(await order(), [a, d, b, c]);
      await store.reorderJob(c!, 3, 'between d and b', 'user:test', tick());
      assert.deepEqual(await order(), [a, d, c, b]);
      for (const [i, id] of [a, d, c, b].entries()) assert.equal(await store.queuePosition(await job(id!)), i + 1);
    });

    it('a queued job\'s position is its place in its queue\'s scheduling order: across priority classes, among jobs of one millisecond, after reorders and priority changes', async () => {
      const now = tick();
      // Batches share one sort key per millisecond: ties broken by seq. A second queue (handler jobs) is counted apart.
      const first = await store.submitJobs((['normal', 'normal', 'high', 'low', 'normal', 'normal'] as const).map((priority) => spec({ priority })), 'test', now);
      await store.submitJobs([spec({ handler: 'noop' }), spec({ handler: 'noop', priority: 'high' }), spec({ handler: 'noop' })], 'test', now);
      const second = await store.submitJobs(Array.from({ length: 5 }, () => spec()), 'test', tick());
      await submit({ priority: 'critical' });
      await submit({ priority: 'low' });
      const id = (rs: typeof first, i: number) => rs[i]!.job.id;
      await store.reorderJob(id(second, 3), 4, 'between two jobs of one millisecond', 'user:test', tick());
      await store.reorderJob(id(second, 4), 8, 'a fractional key', 'user:test', tick());
      await store.reorderJob(id(first, 0), 99, 'last in its class', 'user:test', tick());
      await store.setPriority(id(second, 1), 'high', 'into another class', 'user:test', tick());
      const raw = rawDriver(kind, db.url);
      try {
        for (const queue of ['', 'noop']) {
          const order = await store.queuedJobs(1000, null, queue);
          assert.ok(order.length >= 3);
          for (const [i, q] of order.entries()) {
            const j = await job(q.id);
            assert.equal(await store.queuePosition(j), i + 1, `${q.id} (${j.priority}) in queue '${queue}'`);
            assert.equal(await store.queuePosition(j, { long_read: true }), i + 1, `${q.id} counted off the event loop`);
            // A count that stops at 3 jobs ahead, wherever in the order they are.
            assert.equal(await nearQueuePosition(raw, j, 3), i < 3 ? i + 1 : null, `${q.id} near`);
          }
        }
      } finally {
        await raw.close();
      }
    });

    it('queueStats counts by state and per priority class', async () => {
      const base = tick();
      await submit({ priority: 'high' }, base);
      await submit({}, base + 1000);
      await submit({}, base + 3000);
      clock = base + 3000;
      const { worker: w } = await running();
      const r = await running({ retry_policy: { max_attempts: 3, retry_delay: 100 } });
      await store.reportResults(r.worker.id, [{ job_id: r.job.id, attempt_id: r.attempt, outcome: 'failed', exit_code: 1 }], tick());
      const sched = await submit();
      await store.assignJobs([{ job_id: sched.id, worker_id: w.id, gpu_indices: [] }], tick());
      const now = base + 10_000;
      const s = await store.queueStats(now);
      assert.equal(s.queued, 3);
      assert.equal(s.running, 1);
      assert.equal(s.scheduled, 1);
      assert.equal(s.retrying, 1);
      assert.equal(s.paused, 0);
      assert.deepEqual(s.per_priority.normal, { length: 2, oldest_queued_at: base + 1000, sum_wait_ms: 9000 + 7000 });
      assert.deepEqual(s.per_priority.high, { length: 1, oldest_queued_at: base, sum_wait_ms: 10_000 });
      assert.deepEqual(s.per_priority.low, { length: 0, oldest_queued_at: null, sum_wait_ms: 0 });
    });

    it('logs append and read back in order, after a sequence number', async () => {
      const j = await submit();
      const other = await submit();
      const at = tick();
      await store.appendLogs([
        { job_id: j.id, attempt: 1, stream: 'stdout', data: 'line 1\n', at },
        { job_id: other.id, attempt: 1, stream: 'stdout', data: 'not mine\n', at },
        { job_id: j.id, attempt: 1, stream: 'stderr', data: 'warn\n', at: at + 1 },
        { job_id: j.id, attempt: 2, stream: 'stdout', data: 'ünïcode ✓\n', at: at + 2 },
      ]);
      await store.appendLogs([]);
      const all = await store.readLogs(j.id);
      assert.deepEqual(all.map((c) => [c.attempt, c.stream, c.data, c.at]), [
        [1, 'stdout', 'line 1\n', at],
        [1, 'stderr', 'warn\n', at + 1],
        [2, 'stdout', 'ünïcode ✓\n', at + 2],
      ]);
      assert.ok(all[0]!.seq < all[1]!.seq && all[1]!.seq < all[2]!.seq);
      assert.deepEqual((await store.readLogs(j.id, all[0]!.seq)).map((c) => c.data), ['warn\n', 'ünïcode ✓\n']);
      assert.deepEqual((await store.readLogs(j.id, all[2]!.seq)), []);
      assert.deepEqual((await store.readLogs(j.id, 0, 1)).map((c) => c.data), ['line 1\n']);
    });

    it('tokens: created once in plaintext, found by it, only the hash stored', async () => {
      const before = await store.countTokens();
      const { info, token } = await store.createToken('ci', 'user', 'acme', tick());
      assert.match(token, /^gty_/);
      assert.deepEqual(await store.findToken(token), info);
      assert.deepEqual(info, { id: info.id, name: 'ci', role: 'user', tenant: 'acme' });
      assert.equal(await store.findToken(token + 'x'), null);
      assert.equal(await store.findToken('gty_unknown'), null);
      const admin = await store.createToken('root', 'admin', null, tick());
      assert.equal((await store.findToken(admin.token))?.tenant, null);
      assert.equal(await store.countTokens(), before + 2);

      const raw = rawDriver(kind, db.url);
      try {
        const rows = await raw.query<{ token_hash: string }>('SELECT * FROM tokens WHERE id = ?', [info.id]);
        assert.equal(rows.length, 1);
        assert.equal(rows[0]!.token_hash, createHash('sha256').update(token).digest('hex'));
        assert.ok(!JSON.stringify(rows[0]).includes(token.slice(4)), 'the plaintext is not stored');
      } finally {
        await raw.close();
      }
    });

    it('workerUsage sums what each worker\'s active jobs hold', async () => {
      const w1 = await addWorker({ gpu_count: 4 });
      const w2 = await addWorker();
      const j1 = await submit({ resources: { cpu_cores: 1.5, memory_gb: 2, gpu_count: 1 } });
      const j2 = await submit({ resources: { cpu_cores: 2, memory_gb: 4.5, gpu_count: 2 } });
      const j3 = await submit({ resources: { cpu_cores: 1, memory_gb: 1 } });
      const j4 = await submit({ resources: { cpu_cores: 4, memory_gb: 4 } });
      await store.assignJobs(
        [
          { job_id: j1.id, worker_id: w1.id, gpu_indices: [0] },
          { job_id: j2.id, worker_id: w1.id, gpu_indices: [2, 3] },
          { job_id: j3.id, worker_id: w2.id, gpu_indices: [] },
          { job_id: j4.id, worker_id: w2.id, gpu_indices: [] },
        ],
        tick(),
      );
      const d1 = await store.deliverToWorker(w1.id, 1);
      const a1 = d1.jobs[0]!;
      await store.reportResults(w1.id, [{ job_id: a1.id, attempt_id: a1.current_attempt_id!, outcome: 'started' }], tick()); // one RUNNING, one SCHEDULED: both count
      const d2 = await store.deliverToWorker(w2.id, 5);
      const a4 = d2.jobs.find((j) => j.id === j4.id)!.current_attempt_id!;
      await store.reportResults(w2.id, [{ job_id: j4.id, attempt_id: a4, outcome: 'completed' }], tick()); // finished: not counted
      const u = await store.workerUsage();
      const u1 = u.get(w1.id)!;
      assert.deepEqual({ ...u1, gpu_indices: [...u1.gpu_indices].sort() }, { cpu_cores: 3.5, memory_gb: 6.5, gpu_count: 3, slots: 2, gpu_indices: [0, 2, 3] });
      assert.deepEqual(u.get(w2.id), { cpu_cores: 1, memory_gb: 1, gpu_count: 0, slots: 1, gpu_indices: [] });
    });

    it('a cycle\'s admissions skip jobs of a tenant paused, and workers drained, after the cycle read them', async () => {
      // The scheduler reads tenants and workers before it writes its decisions; a pause or drain that
      // commits in between (and a job submitted after it was acknowledged) must not start.
      await store.createTenant('race-t', { tier: 'enterprise' });
      const w = await addWorker();
      const other = await addWorker();
      const a = await submit({ tenant: 'race-t' });
      const b = await submit({ tenant: 'default' });
      const c = await submit({ tenant: 'default' });
      await store.updateTenant('race-t', { paused: true }, false);
      await store.setWorkerState(other.id, 'draining');
      const { assigned } = await store.applySchedulingDecisions(
        [
          { job_id: a.id, worker_id: w.id, gpu_indices: [] },
          { job_id: b.id, worker_id: w.id, gpu_indices: [] },
          { job_id: c.id, worker_id: other.id, gpu_indices: [] },
        ],
        [],
        tick(),
      );
      assert.deepEqual(assigned.map((x) => x.job_id), [b.id], 'only the job of an unpaused tenant on an online worker');
      assert.equal((await job(a.id)).state, 'QUEUED');
      assert.equal((await job(c.id)).state, 'QUEUED');
      await store.updateTenant('race-t', { paused: false }, false);
      const again = await store.applySchedulingDecisions([{ job_id: a.id, worker_id: w.id, gpu_indices: [] }], [], tick());
      assert.equal(again.assigned.length, 1, 'resumed: admitted');
    });

    it('a big cycle\'s admissions and a big batch of completions take effect job by job, however they are cut into statements', async () => {
      // On PostgreSQL each is cut in parts written at once on two connections (Store #inParts, SqlDriver.spread):
      // the guards hold in every part, and the part holding a late report goes the transaction way.
      await store.createTenant('big-paused', { tier: 'enterprise' });
      const w = await addWorker({ slots: 1000, cpu_cores: 1000, memory_gb: 1000 });
      const drained = await addWorker();
      const specs = Array.from({ length: 300 }, (_, i) => spec({ handler: 'h-big', tenant: i % 10 === 3 ? 'big-paused' : 'default' }));
      const jobs = (await store.submitJobs(specs, 'user:test', tick(), { batch: true })).map((r) => r.job);
      await store.updateTenant('big-paused', { paused: true }, false);
      await store.setWorkerState(drained.id, 'draining');
      // Every 50th job to the drained worker: some in each part.
      const { assigned } = await store.applySchedulingDecisions(
        jobs.map((j, i) => ({ job_id: j.id, worker_id: i % 50 === 7 ? drained.id : w.id, gpu_indices: [] })), [], tick(),
      );
      const expected = jobs.filter((j, i) => j.tenant !== 'big-paused' && i % 50 !== 7).map((j) => j.id);
      assert.equal(expected.length, 264);
      assert.deepEqual(assigned.map((a) => a.job_id).sort(), [...expected].sort(), 'only jobs of unpaused tenants on the online worker');
      const attemptOf = new Map<string, string>();
      for (const id of expected) {
        const j = await job(id);
        assert.deepEqual([j.state, j.worker_id, j.attempt_count], ['SCHEDULED', w.id, 1]);
        assert.deepEqual((await store.jobAttempts(id)).map((a) => [a.id, a.outcome]), [[j.current_attempt_id, 'running']]);
        attemptOf.set(id, j.current_attempt_id!);
      }
      for (const j of jobs.filter((x) => !expected.includes(x.id))) assert.equal((await job(j.id)).state, 'QUEUED');
      // All completed in one batch; one report near the end names a wrong attempt.
      const late = expected[expected.length - 3]!;
      const reports: AttemptReport[] = expected.map((id) => ({ job_id: id, attempt_id: id === late ? 'att_bogus' : attemptOf.get(id)!, outcome: 'completed' }));
      const out = await store.reportResults(w.id, reports, tick());
      assert.deepEqual(out, expected.map((id) => (id === late ? { job_id: id, status: 'stale', state: 'SCHEDULED' } : { job_id: id, status: 'applied', state: 'COMPLETED' })));
      for (const id of expected) {
        const j = await job(id);
        assert.equal(j.state, id === late ? 'SCHEDULED' : 'COMPLETED');
        if (id === late) continue;
        assert.deepEqual((await store.jobAttempts(id)).map((a) => a.outcome), ['completed']);
        assert.deepEqual((await transitions(id)).slice(-2), ['SCHEDULED→RUNNING', 'RUNNING→COMPLETED']);
      }
    });

    it('a big cycle whose admissions fail part-way keeps each job whole, and the workers of those that took effect are told', async () => {
      // On PostgreSQL the parts are statements of their own: the one without the failing job commits, and its
      // worker is woken to look (no hand-off comes from a cycle that failed). SQLite writes the cycle in one
      // transaction: nothing is assigned. Either way each job is SCHEDULED with its attempt or QUEUED without one.
      const { w, jobs, cure } = await poisonedBatch('h-poison', 'SCHEDULED');
      const woken: string[] = [];
      const unlisten = store.listen(CHANNELS.WORKER, (id) => void woken.push(id));
      try {
        await assert.rejects(store.applySchedulingDecisions(jobs.map((j) => ({ job_id: j.id, worker_id: w.id, gpu_indices: [] })), [], tick()), /poisoned/);
        const scheduled: boolean[] = [];
        for (const j of jobs) {
          const now = await job(j.id);
          const attempts = await store.jobAttempts(j.id);
          if (now.state === 'SCHEDULED') assert.deepEqual([now.worker_id, attempts.map((a) => a.id)], [w.id, [now.current_attempt_id]]);
          else assert.deepEqual([now.state, now.current_attempt_id, attempts.length], ['QUEUED', null, 0]);
          scheduled.push(now.state === 'SCHEDULED');
        }
        const expected = jobs.map((_, i) => kind === 'postgres' && i < 100);
        assert.deepEqual(scheduled, expected, 'PostgreSQL: the first part (jobs 0–99) took effect; SQLite: none');
        assert.deepEqual(woken.filter((id) => id === w.id).length, kind === 'postgres' ? 1 : 0);
      } finally {
        unlisten();
        await cure();
      }
    });

    it('a big batch of completions that fails part-way ends each job once: sent again, it is applied where it was not and recorded stale where it was', async () => {
      // The worker's poll or /report fails, so it sends the batch again (workerLoop #carryFailed). On PostgreSQL the
      // part without the failing job has committed; the failing part went the transaction way and failed there too.
      const { w, jobs, cure } = await poisonedBatch('h-poison2', 'COMPLETED');
      await store.applySchedulingDecisions(jobs.map((j) => ({ job_id: j.id, worker_id: w.id, gpu_indices: [] })), [], tick());
      const reports: AttemptReport[] = [];
      for (const j of jobs) reports.push({ job_id: j.id, attempt_id: (await job(j.id)).current_attempt_id!, outcome: 'completed' });
      try {
        await assert.rejects(store.reportResults(w.id, reports, tick()), /poisoned/);
      } finally {
        await cure();
      }
      const done = (i: number) => kind === 'postgres' && i < 100;
      for (const [i, j] of jobs.entries()) assert.equal((await job(j.id)).state, done(i) ? 'COMPLETED' : 'SCHEDULED', `job ${i}`);
      const again = await store.reportResults(w.id, reports, tick());
      assert.deepEqual(again.map((r) => r.status), jobs.map((_, i) => (done(i) ? 'stale' : 'applied')));
      for (const j of jobs) {
        assert.equal((await job(j.id)).state, 'COMPLETED');
        assert.deepEqual((await store.jobAttempts(j.id)).map((a) => a.outcome), ['completed']);
        // A report recorded stale leaves an event that changes nothing (COMPLETED→COMPLETED, "late report").
        assert.deepEqual((await transitions(j.id)).filter((t) => t.endsWith('→COMPLETED')), ['RUNNING→COMPLETED', ...(done(jobs.indexOf(j)) ? ['COMPLETED→COMPLETED'] : [])]);
      }
    });

    it('a write cut in parts goes out on a connection per part (PostgreSQL); SQLite has one writer and does not cut', async () => {
      const raw = rawDriver(kind, db.url);
      try {
        if (kind === 'sqlite') return assert.equal(raw.spread, undefined);
        assert.ok(raw.spread && raw.spread.ways >= 2);
        // Issued in one turn: on the driver they go down one connection's pipeline, one after the other;
        // on the spread executor each on its own connection, run by its own backend at the same time.
        const pids = (q: SqlExecutor) => Promise.all([1, 2].map((n) => q.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, ?::int AS n', [n])));
        const [a, b] = (await pids(raw)).map((r) => r[0]!.pid);
        assert.equal(a, b);
        const [c, d] = (await pids(raw.spread.executor)).map((r) => r[0]!.pid);
        assert.notEqual(c, d);
      } finally {
        await raw.close();
      }
    });

    it('workers register, re-register, drain and leave', async () => {
      const t0 = tick();
      const w = await addWorker({ cpu_cores: 2 }, t0);
      assert.equal(w.state, 'online');
      assert.equal(w.registered_at, t0);
      assert.ok((await store.listWorkers()).some((x) => x.id === w.id));
      const j = await submit();
      const attempt = await start(j.id, w.id);
      assert.equal(await store.setWorkerState(w.id, 'draining'), true);
      assert.equal((await store.getWorker(w.id))?.state, 'draining');
      const k = await submit();
      assert.deepEqual(await store.assignJobs([{ job_id: k.id, worker_id: w.id, gpu_indices: [] }], tick()), [], 'a draining worker takes no new job');
      const requeued = await store.releaseWorker(w.id, 'worker shut down', `worker:${w.id}`, tick());
      assert.deepEqual(requeued, [j.id]);
      assert.equal((await job(j.id)).state, 'QUEUED');
      assert.equal((await store.getWorker(w.id))?.state, 'offline');
      assert.ok(!(await store.listWorkers()).some((x) => x.id === w.id), 'offline workers are hidden by default');
      assert.ok((await store.listWorkers(true)).some((x) => x.id === w.id));
      assert.equal((await store.reportResults(w.id, [{ job_id: j.id, attempt_id: attempt, outcome: 'completed' }], tick()))[0]!.status, 'stale');
      // A restarted agent registers again under its id with new capacity.
      const back = await store.registerWorker(
        { id: w.id, name: w.name, kind: 'process', handlers: [], labels: {}, capacity: { cpu_cores: 16, memory_gb: 64, gpu_count: 0, slots: 2 } },
        tick(),
      );
      assert.equal(back.state, 'online');
      assert.equal(back.capacity.cpu_cores, 16);
      assert.equal(back.registered_at, t0);
      assert.equal(await store.getWorker('w-nope'), null);
    });

    it('batches store each row\'s own values, whichever columns the rows of a batch share', async () => {
      // Shared values travel once per batch, the rest per row; past a few statement shapes per kind of batch
      // everything travels per row. Either way every job must end up with its own values.
      const one: JobRequest[] = [
        { name: 'a' }, { type: 't' }, { tenant: 'acme' }, { priority: 'high' }, { labels: { k: 'v' } }, { parameters: { x: 1 } },
        { env: { E: '1' } }, { timeout: 5 }, { expected_duration: 7 }, { resources: { cpu_cores: 2 } },
      ];
      for (const f of one) {
        const [plain, special] = await store.submitJobs([spec(), spec(f)], 'user:test', tick());
        const p = await job(plain!.job.id);
        const x = await job(special!.job.id);
        for (const [k, v] of Object.entries(f)) {
          if (k === 'resources') assert.equal(x.resources.cpu_cores, 2);
          else assert.deepEqual((x as unknown as Record<string, unknown>)[k], v, k);
        }
        assert.equal(p.name, 'echo');
        assert.equal(p.tenant, 'default');
        assert.equal(p.resources.cpu_cores, 1);
      }
      const w = await addWorker({ slots: 100 });
      for (let pattern = 0; pattern < 4; pattern++) {
        const jobs = (await store.submitJobs([spec(), spec(), spec()], 'user:test', tick())).map((r) => r.job.id);
        const assigned = await store.assignJobs(jobs.map((id) => ({ job_id: id, worker_id: w.id, gpu_indices: [] })), tick());
        assert.equal(assigned.length, 3);
        const attempts = await Promise.all(jobs.map(async (id) => (await job(id)).current_attempt_id!));
        const result = (i: number) => (pattern & 1 ? { n: i } : { n: 0 });
        const exit = (i: number) => (pattern & 2 ? i : 0);
        const out = await store.reportResults(w.id, jobs.map((id, i) => ({ job_id: id, attempt_id: attempts[i]!, outcome: 'completed' as const, result: result(i), exit_code: exit(i) })), tick());
        assert.ok(out.every((o) => o.status === 'applied'));
        for (const [i, id] of jobs.entries()) {
          const j = await job(id);
          assert.equal(j.state, 'COMPLETED');
          assert.deepEqual(j.result, result(i));
          assert.equal(j.exit_code, exit(i));
          assert.equal(j.attempt_count, 1);
          assert.deepEqual(await transitions(id), ['∅→SUBMITTED', 'SUBMITTED→QUEUED', 'QUEUED→SCHEDULED', 'SCHEDULED→RUNNING', 'RUNNING→COMPLETED']);
        }
      }
    });

    it('reads issued together each get the rows, values and order they get alone, and a failing read fails alone', async () => {
      // On PostgreSQL reads issued in one turn of the event loop go out as one statement (TickBatch).
      const raw = rawDriver(kind, db.url);
      try {
        const w = await addWorker({ slots: 3, cpu_cores: 2.5 });
        const [a, b] = (await store.submitJobs([spec({ priority: 'high', expected_duration: 7 }), spec({ labels: { k: 'v' } })], 'user:test', tick()))
          .map((r) => r.job.id);
        // Ids written into the text: on PostgreSQL only reads without parameters share a statement.
        const reads = [
          () => raw.query(`SELECT id, priority_rank, cpu_cores, expected_duration, labels, seq FROM jobs WHERE id IN ('${a}', '${b}') ORDER BY seq DESC`),
          () => raw.query(`SELECT * FROM workers WHERE state != 'offline' AND id = '${w.id}'`),
          () => raw.query(`SELECT COUNT(*) AS n, SUM(cpu_cores) AS cpu FROM jobs WHERE id = '${a}'`),
          () => raw.query("SELECT id FROM jobs WHERE id = 'no-such-job'"),
          () => raw.query("SELECT id FROM jobs WHERE state = 'QUEUED' AND id = ? ORDER BY seq", [b!]),
          // A long answer: sent on its own once it is known to be long.
          () => raw.query('WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 40) SELECT x FROM s ORDER BY x'),
        ];
        const together = await Promise.all(reads.map((r) => r()));
        const alone = [];
        for (const r of reads) alone.push(await r());
        assert.deepEqual(together, alone);
        assert.deepEqual(await Promise.all(reads.map((r) => r())), alone);
        assert.deepEqual(together[5]!.map((r) => r.x), Array.from({ length: 40 }, (_, i) => i + 1));
        assert.deepEqual(together[0]!.map((r) => r.id), [b, a]);
        assert.equal(together[0]![1]!.expected_duration, 7);
        assert.equal(together[0]![0]!.expected_duration, null);
        assert.equal(together[0]![0]!.labels, '{"k":"v"}');
        assert.equal(together[1]![0]!.cpu_cores, 2.5);
        assert.equal(together[2]![0]!.n, 1);
        assert.deepEqual(together[3], []);

        const [ok, bad] = await Promise.allSettled([raw.query(`SELECT id FROM jobs WHERE id = '${a}'`), raw.query('SELECT no_such_column FROM jobs')]);
        assert.deepEqual(ok.status === 'fulfilled' && ok.value, [{ id: a }]);
        assert.equal(bad.status, 'rejected');
      } finally {
        await raw.close();
      }
    });

    it('a read issued after a write in a held turn sees the write committed', async () => {
      // PostgreSQL (SqlDriver.holdTurn): both go out at the end of the turn, the write first, on one
      // connection — without the hold a read without parameters would be sent ahead of the write.
      // SQLite runs each statement as it is issued.
      const raw = rawDriver(kind, db.url);
      try {
        const [a] = (await store.submitJobs([spec({ name: 'before' })], 'user:test', tick())).map((r) => r.job.id);
        assert.deepEqual(await raw.query(`SELECT name FROM jobs WHERE id = '${a}'`), [{ name: 'before' }]);
        for (const name of ['after', 'again']) {
          raw.holdTurn?.();
          const write = raw.run('UPDATE jobs SET name = ? WHERE id = ?', [name, a!]);
          const plain = raw.query(`SELECT name FROM jobs WHERE id = '${a}'`);
          const withParams = raw.query('SELECT name FROM jobs WHERE id = ?', [a!]);
          assert.equal(await write, 1);
          assert.deepEqual(await plain, [{ name }]);
          assert.deepEqual(await withParams, [{ name }]);
        }
      } finally {
        await raw.close();
      }
    });

    it('a write sent with later() in a transaction: seen by what follows, committed with it, and its failure fails the transaction with its own error', async () => {
      const raw = rawDriver(kind, db.url);
      try {
        const [a] = (await store.submitJobs([spec({ name: 'start' })], 'user:test', tick())).map((r) => r.job.id);
        const name = async () => (await raw.query('SELECT name FROM jobs WHERE id = ?', [a!]))[0]!.name;
        // Seen by the statements after it, and committed.
        const seen = await raw.transaction(async (tx) => {
          tx.later('UPDATE jobs SET name = ? WHERE id = ?', ['later-1', a!]);
          tx.later('UPDATE jobs SET name = name || ? WHERE id = ?', ['+2', a!]);
          return (await tx.query('SELECT name FROM jobs WHERE id = ?', [a!]))[0]!.name;
        });
        assert.equal(seen, 'later-1+2');
        assert.equal(await name(), 'later-1+2');
        // A failing one: the next statement waited for (or the later() call itself on SQLite) fails with its error, and nothing of the transaction stays.
        const failing = raw.transaction(async (tx) => {
          await tx.run('UPDATE jobs SET name = ? WHERE id = ?', ['rolled-back', a!]);
          tx.later('UPDATE jobs SET no_such_column = 1 WHERE id = ?', [a!]);
          await tx.query('SELECT 1 AS x');
          return 'committed';
        });
        await assert.rejects(failing, /no_such_column/);
        assert.equal(await name(), 'later-1+2');
        // Failing with nothing after it: the commit fails with its error.
        await assert.rejects(raw.transaction(async (tx) => {
          await tx.run('UPDATE jobs SET name = ? WHERE id = ?', ['rolled-back', a!]);
          tx.later('UPDATE no_such_table SET x = 1');
        }), /no_such_table/);
        assert.equal(await name(), 'later-1+2');
        // Outside a transaction nothing would wait for it.
        assert.throws(() => raw.later('UPDATE jobs SET name = name'), /transaction/);
      } finally {
        await raw.close();
      }
    });

    it('leadership: exactly one of two servers on one database leads, and another takes over when it leaves', async () => {
      if (!store.capabilities.multiProcess) {
        // A single-process store is always its own leader.
        assert.equal(await store.tryLeadership(), true);
        assert.equal(await store.tryLeadership(), true);
        return;
      }
      const a = await openStore(db.url);
      const b = await openStore(db.url);
      try {
        const [la, lb] = await Promise.all([a.tryLeadership(), b.tryLeadership()]);
        assert.equal(Number(la) + Number(lb), 1, `exactly one leader (a=${la}, b=${lb})`);
        const [leader, follower] = la ? [a, b] : [b, a];
        assert.equal(await leader.tryLeadership(), true, 'the leader stays leader');
        assert.equal(await follower.tryLeadership(), false);
        await leader.close();
        let became = false;
        for (let i = 0; i < 20 && !became; i++) {
          became = await follower.tryLeadership();
          if (!became) await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(became, true, 'the follower took over');
      } finally {
        // Closing twice is harmless.
        await a.close();
        await b.close();
      }
    });
  });
}

describe('PostgreSQL sessions', () => {
  it('Gantry\'s statements are never JIT-compiled, even where the planner\'s estimates would call for it (a lone submit compiled for 0.5–0.7 s with a million jobs queued)', async () => {
    const db = await freshDatabase('postgres');
    const driver = new PostgresDriver(db.url, 2);
    try {
      // The server's default (jit on), with the threshold at 0 as a big estimated cost would cross it.
      const plan = await driver.transaction(async (tx) => {
        await tx.run('SET LOCAL jit_above_cost = 0');
        const rows = await tx.query<{ 'QUERY PLAN': { JIT?: unknown }[] }>('EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM generate_series(1, 10) g');
        return rows[0]!['QUERY PLAN'][0]!;
      });
      assert.equal(plan.JIT, undefined, `no JIT compilation: ${JSON.stringify(plan.JIT)}`);
      assert.deepEqual(await driver.query('SHOW jit'), [{ jit: 'off' }]);
    } finally {
      await driver.close();
      await db.drop();
    }
  });
});

describe('PostgreSQL reads stay off the entries of jobs gone by (a million jobs queued, never vacuumed)', () => {
  /** `n` queued jobs in the queue `key` (straight SQL: a backlog of this size through the API would take the test's whole budget). */
  async function fill(driver: PostgresDriver, key: string, n: number): Promise<void> {
    await driver.query(
      `INSERT INTO jobs (id, name, type, tenant, priority, priority_rank, state, kind, handler, env, retry_policy, labels, parameters, cpu_cores, memory_gb, gpu_count, storage_gb, created_at, updated_at, queued_at, sort_key, queue_key)
       SELECT CAST(? AS TEXT) || g, 'b', 'default', 'default', 'normal', 2, 'QUEUED', 'handler', CAST(? AS TEXT), '{}', '{}', '{}', '{}', 1, 0, 0, 0, g, g, g, g, CAST(? AS TEXT)
       FROM generate_series(1, CAST(? AS INTEGER)) g`,
      [`job_${key}_`, key, key, n],
    );
  }
  /** `n` jobs of the queue `key` that passed through a worker: queued, scheduled on `worker`, running, completed (each step leaves index entries behind). */
  async function passThrough(driver: PostgresDriver, key: string, worker: string, n: number): Promise<void> {
    await fill(driver, key, n);
    await driver.query(`UPDATE jobs SET state = 'SCHEDULED', worker_id = ?, current_attempt_id = 'att_' || id WHERE queue_key = ? AND state = 'QUEUED'`, [worker, key]);
    await driver.query(`UPDATE jobs SET state = 'RUNNING' WHERE queue_key = ? AND state = 'SCHEDULED'`, [key]);
    await driver.query(`UPDATE jobs SET state = 'COMPLETED', finished_at = 1 WHERE queue_key = ? AND state = 'RUNNING'`, [key]);
  }
  type PlanNode = { 'Node Type': string; 'Index Name'?: string; 'Actual Rows'?: number; Plans?: PlanNode[] };
  const nodes = (p: PlanNode): PlanNode[] => [p, ...(p.Plans ?? []).flatMap(nodes)];

  it('a submit to a small queue counts its place with an index scan when the table was analysed with a big queue (a bitmap scan visited every job the queue had passed since VACUUM: ~4.5 ms per submit in W4)', async () => {
    const db = await freshDatabase('postgres');
    const driver = new PostgresDriver(db.url, 2);
    // The submit's statement, as the store sends it, explained first.
    const plans: PlanNode[] = [];
    const spy = new Proxy(driver, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target) as unknown;
        if (prop === 'query') {
          return async (sql: string, params?: unknown[]) => {
            if (sql.startsWith('WITH j AS (INSERT INTO jobs') || sql.startsWith('SELECT COUNT(*) AS n FROM (SELECT 1 FROM jobs')) {
              const r = await target.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(`EXPLAIN (FORMAT JSON) ${sql}`, params as never);
              plans.push(r[0]!['QUERY PLAN'][0]!.Plan);
            }
            return target.query(sql, params as never);
          };
        }
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const store = new Store(spy);
    try {
      await store.migrate();
      await fill(driver, 'backlog', 20_000);
      await driver.query('ANALYZE jobs');
      await passThrough(driver, 'noop', 'w1', 2000);
      const [res] = await store.submitJobs([spec({ handler: 'noop' })], 'test', Date.now(), { positions: true });
      assert.equal(res!.queue_position, 1, 'first in its queue');
      assert.equal(plans.length, 1, 'the one-statement submit ran');
      const scans = nodes(plans[0]!).filter((n) => n['Node Type'].includes('Scan') && n['Node Type'] !== 'CTE Scan' && n['Node Type'] !== 'Function Scan');
      assert.ok(scans.length > 0, 'the count reads jobs');
      // Only an index walk stops at the LIMIT without reading the rest: a bitmap scan reads every row first, and a
      // sequential scan priced to stop after 1,000 of the rows the statistics promise reads the whole table when
      // the small queue has none (W4 after ANALYZE: 200 ms per submit at a million jobs).
      assert.deepEqual(scans.map((n) => n['Node Type']).filter((t) => t !== 'Index Scan' && t !== 'Index Only Scan'), [], `an index walk only in ${JSON.stringify(scans.map((n) => n['Node Type']))}`);
      // The count a submit answer makes after its write when the statement could not (Store.queuePosition, up to NEAR_POSITIONS ahead): the same.
      assert.equal(await store.queuePosition(res!.job), 1);
      assert.equal(plans.length, 2, 'the near count ran on the store');
      const near = nodes(plans[1]!).filter((n) => n['Node Type'].includes('Scan'));
      assert.ok(near.length > 0 && near.every((n) => !n['Node Type'].startsWith('Bitmap')), `no bitmap scan in ${JSON.stringify(near.map((n) => n['Node Type']))}`);
    } finally {
      await store.close();
      await db.drop();
    }
  });

  it('the scheduler\'s leader marks the jobs_active entries of jobs that left a worker, so that even a bitmap scan of it reads only jobs on workers (unmarked, every worker look of W4 visited 276–789 heap pages)', async () => {
    const db = await freshDatabase('postgres');
    const store = await openStore(db.url);
    const driver = new PostgresDriver(db.url, 2);
    const scheduler = new Scheduler(store);
    try {
      await fill(driver, 'backlog', 20_000);
      await passThrough(driver, 'noop', 'w1', 2000);
      await fill(driver, 'live', 3);
      await driver.query(`UPDATE jobs SET state = 'RUNNING', worker_id = 'w1' WHERE queue_key = 'live'`);
      await scheduler.start();
      assert.equal(scheduler.isLeader, true);
      await new Promise((r) => setTimeout(r, 700));
      // A bitmap scan marks nothing and skips what is marked: the entries it returns are the ones no one marked.
      const plan = await driver.transaction(async (tx) => {
        for (const off of ['seqscan', 'indexscan', 'indexonlyscan']) await tx.run(`SET LOCAL enable_${off} = off`);
        const r = await tx.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(
          `EXPLAIN (ANALYZE, FORMAT JSON) SELECT id FROM jobs WHERE worker_id = 'w1' AND ${ACTIVE_STATES_SQL}`);
        return r[0]!['QUERY PLAN'][0]!.Plan;
      });
      const index = nodes(plan).find((n) => n['Node Type'] === 'Bitmap Index Scan');
      assert.equal(index?.['Index Name'], 'jobs_active');
      assert.equal(plan['Actual Rows'], 3, 'the jobs on the worker');
      assert.equal(index?.['Actual Rows'], 3, 'entries read: only the live jobs\' (not the 4,000 left by the 2,000 that passed through)');
    } finally {
      await scheduler.stop();
      await driver.close();
      await store.close();
      await db.drop();
    }
  });
});

// Every store above was closed: no socket or ref'd timer may outlive the tests (the file would hang).
after(async () => {
  const leaked = () => process.getActiveResourcesInfo().filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap');
  for (let i = 0; i < 20 && leaked().length > 0; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(leaked(), [], 'leaked handles');
});

describe('PostgreSQL position counts', () => {
  it('the position of a job near the front of a big priority class reads the index entries ahead of it, not the rest of its class (a row comparison walked all 300,000 behind the 10th: 1,800 pages, 19 ms)', async () => {
    const db = await freshDatabase('postgres');
    const store = await openStore(db.url);
    const driver = new PostgresDriver(db.url, 2);
    type Plan = { 'Shared Hit Blocks': number; 'Shared Read Blocks': number };
    const pages: number[] = [];
    // queuePosition's statements as the store sends them, run under EXPLAIN: the index pages each one reads.
    const explained = {
      async query<T>(sql: string, params?: readonly unknown[]): Promise<T[]> {
        const r = await driver.query<{ 'QUERY PLAN': { Plan: Plan }[] }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`, params as never);
        const plan = r[0]!['QUERY PLAN'][0]!.Plan;
        pages.push(plan['Shared Hit Blocks'] + plan['Shared Read Blocks']);
        return driver.query<T>(sql, params as never);
      },
    };
    try {
      // 20,000 normal jobs, 1,000 to a millisecond (as batches are written): ~110 leaf pages of jobs_queue_by_key.
      await driver.query(
        `INSERT INTO jobs (id, name, type, tenant, priority, priority_rank, state, kind, handler, env, retry_policy, labels, parameters, cpu_cores, memory_gb, gpu_count, storage_gb, created_at, updated_at, queued_at, sort_key, queue_key)
         SELECT 'job_big_' || g, 'b', 'default', 'default', 'normal', ?, 'QUEUED', 'handler', 'big', '{}', '{}', '{}', '{}', 1, 0, 0, 0, 1, 1, 1, 1 + g / 1000, 'big'
         FROM generate_series(1, 20000) g`,
        [priorityRank('normal')],
      );
      await driver.query('VACUUM ANALYZE jobs');
      const tenth = (await store.getJob('job_big_10'))!;
      assert.equal(await queuePosition(explained, tenth), 10);
      assert.equal(await nearQueuePosition(explained, tenth, NEAR_POSITIONS), 10);
      // A descent of the index per range ahead of it; the rest of the class alone fills ~110 pages.
      for (const n of pages) assert.ok(n < 30, `index pages read by the count: ${pages.join(', ')}`);
    } finally {
      await driver.close();
      await store.close();
      await db.drop();
    }
  });
});

for (const kind of STORE_KINDS) {
  describe(`a tenant's load (${kind})`, () => {
    it("reads the jobs on workers, not every job the tenant ever ran, and its own queued jobs, not every tenant's (SQLite: 130 ms per GET /tenants/{id} at 270,000 finished jobs, 30 ms beside another tenant's 300,000 queued)", async () => {
      const db = await freshDatabase(kind);
      const store = await openStore(db.url);
      const driver = rawDriver(kind, db.url);
      try {
        for (let i = 0; i < 4; i++) await store.submitJobs(Array.from({ length: 1000 }, () => spec({ handler: 'h', tenant: 'long-lived', resources: { cpu_cores: 2 } })), 'test', Date.now(), { batch: true });
        // Its history: all but a few finished; three on a worker, two queued (straight SQL: the states, not how they got there).
        await driver.query(`UPDATE jobs SET state = 'COMPLETED', finished_at = 1 WHERE seq > 5`);
        await driver.query(`UPDATE jobs SET state = 'RUNNING', worker_id = 'w1' WHERE seq <= 3`);
        // Queued beside them: a neighbour's jobs in the same queue and another, and one more of its own in that other queue.
        await store.submitJobs(Array.from({ length: 400 }, (_, i) => spec({ handler: i % 2 ? 'h' : 'k', tenant: 'neighbour' })), 'test', Date.now(), { batch: true });
        await store.submitJobs([spec({ handler: 'k', tenant: 'long-lived' })], 'test');
        await driver.query(kind === 'sqlite' ? 'ANALYZE' : 'ANALYZE jobs');
        const plans: string[] = [];
        const explaining = {
          query: async (sql: string, params?: unknown[]) => {
            const rows = await driver.query(`${kind === 'sqlite' ? 'EXPLAIN QUERY PLAN' : 'EXPLAIN'} ${sql}`, params as never);
            plans.push(rows.map((r) => String(r.detail ?? r['QUERY PLAN'])).join('\n'));
            return driver.query(sql, params as never);
          },
        } as SqlReader;
        const load = await tenantLoad(explaining, 'long-lived');
        assert.deepEqual(load, { running_jobs: 3, queued_jobs: 3, held: { cpu_cores: 6, memory_gb: 0.75, gpu_count: 0 } });
        const held = plans[0]!;
        assert.match(held, /jobs_active/, `the jobs on workers, through jobs_active:\n${held}`);
        assert.doesNotMatch(held, /jobs_tenant_seq/, `not the tenant's history:\n${held}`);
        // Its queued jobs: the tenant's range in each queue (SQLite read every queued job of every tenant before).
        if (kind === 'sqlite') assert.match(plans[1]!, /SEARCH jobs USING COVERING INDEX jobs_queue_by_tenant \(queue_key=\? AND tenant=\?\)/, plans[1]);
      } finally {
        await driver.close();
        await store.close();
        await db.drop();
      }
    });
  });
}
