/**
 * pg-boss peer (REFERENCE.md §1): pg-boss 12.35.0 with LISTEN/NOTIFY on — constructor
 * `useListenNotify: true` and the queue created with `notify: true` — and one `work()` registration
 * with `localConcurrency: 4, batchSize: 50, burstWhenBatchFull: true` (all four are real 12.35
 * options, checked in dist/types.d.ts). Jobs are enqueued with `insert()` in chunks of 1,000. The
 * worker runs in the producer's process. Each run installs pg-boss into a fresh, uniquely named
 * schema (its `schema` option) and drops it after.
 *
 * pg-boss's unit of concurrency is the fetch loop, not the job: `localConcurrency` loops each fetch
 * up to `batchSize` jobs and hand them to one handler call as an array, so up to 4 × 50 = 200 jobs
 * are in hand at once. The W1 `concurrency` argument is therefore not applied; the REFERENCE
 * configuration is used as is, and the result's `config` says so.
 */
import { PgBoss } from 'pg-boss';
import type pg from 'pg';
import type { Peer } from './types.ts';
import { analyzeNote, installedVersion, pgAvailable, pgDurability, pgExec, pgProbe, pgUrl, runDrain, runLatency, uniqueName, type Harness } from './util.ts';

const WORK_OPTIONS = { localConcurrency: 4, batchSize: 50, burstWhenBatchFull: true } as const;

function make() {
  const url = pgUrl();
  const schema = uniqueName('gantry_bench_pgboss');
  const queue = 'noop';
  let boss: PgBoss | undefined;
  let probe: pg.Client | undefined;
  let listenWarning = '';
  let requestedConcurrency = 0;
  const harness: Harness = {
    async setup(cleanup) {
      cleanup.add(`drop schema ${schema}`, () => pgExec(url, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
      boss = new PgBoss({ connectionString: url, schema, useListenNotify: true });
      boss.on('error', (e) => process.stderr.write(`[peers] pg-boss error: ${(e as Error).message ?? e}\n`));
      boss.on('warning', (w) => {
        const msg = (w as { message?: string }).message ?? JSON.stringify(w);
        if (/listen|notify/i.test(msg)) listenWarning = msg;
        process.stderr.write(`[peers] pg-boss warning: ${msg}\n`);
      });
      await boss.start();
      cleanup.add('stop pg-boss', () => boss!.stop({ graceful: true, timeout: 10_000 }));
      await boss.createQueue(queue, { notify: true });
      probe = await pgProbe(url, cleanup);
    },
    async enqueueBulk(payloads) {
      await boss!.insert(
        queue,
        payloads.map((data) => ({ data })),
      );
    },
    async enqueueOne(payload) {
      await boss!.send(queue, payload);
    },
    async startWorker(concurrency, onJob) {
      requestedConcurrency = concurrency;
      // The worker stops with boss.stop() (registered in setup).
      await boss!.work<Record<string, unknown>>(queue, WORK_OPTIONS, async (jobs) => {
        for (const job of jobs) onJob(job.data);
      });
    },
    async settle() {
      await probe!.query(`ANALYZE "${schema}".job`); // partitioned parent: analyzes its partitions too
    },
    async unfinished() {
      // Completed jobs stay in the table (state 'completed', deleted later by maintenance).
      const r = await probe!.query(`SELECT count(*)::int AS n FROM "${schema}".job WHERE name = $1 AND state < 'completed'`, [queue]);
      return (r.rows[0] as { n: number }).n;
    },
  };
  const base = async () => ({
    peer: 'pg-boss',
    version: installedVersion('pg-boss'),
    config:
      `useListenNotify: true, queue notify: true; work() localConcurrency 4, batchSize 50, burstWhenBatchFull true ` +
      `(REFERENCE config; the requested concurrency ${requestedConcurrency || 'n/a'} is not applied — pg-boss runs 4 fetch loops of up to 50 jobs each, ` +
      `handler called per batch); other options default; insert() in chunks of 1,000; worker in the producer's process; fresh schema per run; ${analyzeNote('job')}` +
      (listenWarning ? `; WARNING: ${listenWarning}` : ''),
    durability: await pgDurability(url),
  });
  return { harness, base };
}

export const pgBoss: Peer = {
  name: 'pg-boss',
  available() {
    return pgAvailable(pgUrl());
  },
  drain(jobs, concurrency) {
    return runDrain({ peer: 'pg-boss', make }, jobs, concurrency);
  },
  latency(rate, seconds) {
    // concurrency is not a pg-boss knob here (see the header); 50 is passed only for the config text.
    return runLatency({ peer: 'pg-boss', make }, rate, seconds, 50);
  },
};
