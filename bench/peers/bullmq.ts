/**
 * BullMQ peer (REFERENCE.md §1): BullMQ 6.7.0 on Redis through ioredis 5, `maxRetriesPerRequest: null`
 * on every connection, jobs added with `removeOnComplete: true, removeOnFail: true`, bulk adds with
 * `Queue.addBulk` in chunks of 1,000, one `Worker` (the library's own, with its blocking connection)
 * in the same process as the producer. Each run uses a fresh queue name and obliterates it after.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Peer } from './types.ts';
import { installedVersion, redisDurability, redisUrl, runDrain, runLatency, uniqueName, where, withDeadline, type Harness } from './util.ts';

const LATENCY_CONCURRENCY = 50;
const JOB_OPTS = { removeOnComplete: true, removeOnFail: true } as const;

function connect(url: string): Redis {
  // maxRetriesPerRequest: null is what BullMQ requires for its connections (REFERENCE gotcha).
  const r = new Redis(url, { maxRetriesPerRequest: null, connectTimeout: 5000 });
  r.on('error', (e) => process.stderr.write(`[peers] bullmq ioredis: ${e.message}\n`));
  return r;
}

/** QUIT, or drop the socket if the server does not answer within 2 s. */
async function closeRedis(r: Redis): Promise<void> {
  try {
    await withDeadline(r.quit(), 2000, 'quit');
  } catch {
    r.disconnect();
  }
}

function make() {
  const url = redisUrl();
  const name = uniqueName('gantry_bench');
  let queue: Queue | undefined;
  let qconn: Redis | undefined;
  let concurrencyUsed = 0;
  const harness: Harness = {
    async setup(cleanup) {
      qconn = connect(url);
      cleanup.add('disconnect producer', () => closeRedis(qconn!));
      queue = new Queue(name, { connection: qconn, defaultJobOptions: JOB_OPTS });
      queue.on('error', (e) => process.stderr.write(`[peers] bullmq queue: ${e.message}\n`));
      cleanup.add('close queue', () => queue!.close());
      cleanup.add(`obliterate queue ${name}`, () => queue!.obliterate({ force: true }));
      await queue.waitUntilReady();
    },
    async enqueueBulk(payloads) {
      await queue!.addBulk(payloads.map((data) => ({ name: 'noop', data, opts: JOB_OPTS })));
    },
    async enqueueOne(payload) {
      await queue!.add('noop', payload, JOB_OPTS);
    },
    async startWorker(concurrency, onJob, cleanup) {
      concurrencyUsed = concurrency;
      const wconn = connect(url);
      cleanup.add('disconnect worker', () => closeRedis(wconn));
      const worker = new Worker(
        name,
        async (job) => {
          onJob(job.data as Record<string, unknown>);
        },
        { connection: wconn, concurrency, autorun: true },
      );
      worker.on('error', (e) => process.stderr.write(`[peers] bullmq worker: ${e.message}\n`));
      cleanup.add('close worker', () => worker.close());
      await worker.waitUntilReady();
    },
    async unfinished() {
      const c = await queue!.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children');
      return Object.values(c).reduce((a, b) => a + b, 0);
    },
  };
  const base = async () => ({
    peer: 'bullmq',
    version: installedVersion('bullmq'),
    config:
      `ioredis ${installedVersion('ioredis')}, maxRetriesPerRequest: null; jobs removeOnComplete: true, removeOnFail: true; ` +
      `addBulk in chunks of 1,000; one Worker, concurrency ${concurrencyUsed || 'n/a'}, default worker options; ` +
      `worker in the producer's process (own ioredis connection + BullMQ's blocking duplicate)`,
    durability: await redisDurability(qconn!),
  });
  return { harness, base };
}

export const bullmq: Peer = {
  name: 'bullmq',
  async available() {
    const url = redisUrl();
    const r = new Redis(url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    r.on('error', () => {});
    try {
      await withDeadline(r.connect().then(() => r.ping()), 3000, 'ping');
      return null;
    } catch (e) {
      return `Redis not reachable at ${where(url)} (${(e as Error).message})`;
    } finally {
      r.disconnect();
    }
  },
  drain(jobs, concurrency) {
    return runDrain({ peer: 'bullmq', make }, jobs, concurrency);
  },
  latency(rate, seconds) {
    return runLatency({ peer: 'bullmq', make }, rate, seconds, LATENCY_CONCURRENCY);
  },
};
