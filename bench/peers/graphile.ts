/**
 * graphile-worker peer (REFERENCE.md §1): graphile-worker 0.18.0 with batching ON —
 * `localQueue: { size: 500 }`, `completeJobBatchDelay: 0`, `failJobBatchDelay: 0` (the 0.18 names,
 * checked in its index.d.ts) — one runner (`run()`, the library's worker pool) in the producer's
 * process, jobs enqueued with WorkerUtils.addJobs in chunks of 1,000. Each run installs the schema
 * into a fresh, uniquely named PostgreSQL schema and drops it after.
 */
import type { Runner, WorkerUtils } from 'graphile-worker';
import type { Peer } from './types.ts';
import type pg from 'pg';
import { analyzeNote, installedVersion, pgAvailable, pgDurability, pgExec, pgProbe, pgUrl, runDrain, runLatency, uniqueName, type Harness } from './util.ts';

// graphile-worker logs one line per successful job unless NO_LOG_SUCCESS is set (read when the
// module loads); its own perfTest sets it, so do the same before loading it.
process.env.NO_LOG_SUCCESS ??= '1';
const { run, makeWorkerUtils, Logger } = await import('graphile-worker');

const LATENCY_CONCURRENCY = 50;
const TASK = 'noop';

/** Warnings and errors go to stderr; info/debug are dropped (the benchmark must not time console I/O). */
const quietLogger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') process.stderr.write(`[peers] graphile-worker ${level}: ${message}\n`);
});

/** graphile-worker's docs: "we recommend setting it to 10 or concurrentJobs + 2, whichever is larger". */
const poolSizeFor = (concurrency: number) => Math.max(10, concurrency + 2);

function make() {
  const url = pgUrl();
  const schema = uniqueName('gantry_bench_gw');
  let utils: WorkerUtils | undefined;
  let probe: pg.Client | undefined;
  let concurrencyUsed = 0;
  const harness: Harness = {
    async setup(cleanup) {
      cleanup.add(`drop schema ${schema}`, () => pgExec(url, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
      utils = await makeWorkerUtils({ connectionString: url, schema, logger: quietLogger });
      cleanup.add('release WorkerUtils', async () => utils!.release());
      await utils.migrate();
      probe = await pgProbe(url, cleanup);
    },
    async enqueueBulk(payloads) {
      await utils!.addJobs(payloads.map((payload) => ({ identifier: TASK, payload })));
    },
    async enqueueOne(payload) {
      await utils!.addJob(TASK, payload);
    },
    async startWorker(concurrency, onJob, cleanup) {
      concurrencyUsed = concurrency;
      const runner: Runner = await run({
        connectionString: url,
        schema,
        concurrency,
        maxPoolSize: poolSizeFor(concurrency),
        noHandleSignals: true,
        logger: quietLogger,
        parsedCronItems: [],
        taskList: {
          [TASK]: async (payload) => {
            onJob(payload as Record<string, unknown>);
          },
        },
        preset: {
          worker: {
            localQueue: { size: 500 },
            completeJobBatchDelay: 0,
            failJobBatchDelay: 0,
          },
        },
      });
      cleanup.add('stop runner', () => runner.stop());
    },
    async settle() {
      await probe!.query(`ANALYZE "${schema}"._private_jobs`);
    },
    async unfinished() {
      // Completed jobs are deleted by graphile-worker's complete_jobs; what is left is unfinished.
      const r = await probe!.query(`SELECT count(*)::int AS n FROM "${schema}"._private_jobs`);
      return (r.rows[0] as { n: number }).n;
    },
  };
  const base = async () => ({
    peer: 'graphile-worker',
    version: installedVersion('graphile-worker'),
    config:
      `batching on: localQueue.size 500, completeJobBatchDelay 0, failJobBatchDelay 0; one run() worker pool, ` +
      `concurrency ${concurrencyUsed || 'n/a'}, maxPoolSize ${concurrencyUsed ? poolSizeFor(concurrencyUsed) : 'n/a'} (its docs' max(10, concurrency+2)); ` +
      `LISTEN/NOTIFY as built in; addJobs in chunks of 1,000; NO_LOG_SUCCESS=1 as in its perfTest; ` +
      `worker in the producer's process; fresh schema per run; ${analyzeNote('_private_jobs')}`,
    durability: await pgDurability(url),
  });
  return { harness, base };
}

export const graphileWorker: Peer = {
  name: 'graphile-worker',
  available() {
    return pgAvailable(pgUrl());
  },
  drain(jobs, concurrency) {
    return runDrain({ peer: 'graphile-worker', make }, jobs, concurrency);
  },
  latency(rate, seconds) {
    return runLatency({ peer: 'graphile-worker', make }, rate, seconds, LATENCY_CONCURRENCY);
  },
};
