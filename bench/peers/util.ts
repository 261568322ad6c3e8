/**
 * Shared harness for the peer benchmarks: connection settings, deadlines, bounded cleanup,
 * nearest-rank percentiles, and the two workload drivers (W1 drain, W2 latency) that every
 * peer runs through, so the three peers are timed by exactly the same code.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { DrainResult, LatencyResult, PeerResult } from './types.ts';
import { serviceCpuMs } from './contention.ts';

export const BULK_CHUNK = 1000;
/** W2: jobs sent (paced at the same rate, results discarded) before measuring, so connection set-up and first-use costs are not counted. */
export const LATENCY_WARMUP_JOBS = 20;

export function redisUrl(): string {
  return process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379';
}
export function pgUrl(): string {
  return process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
}
/** host:port of a URL, for messages (never the credentials). */
export function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || (u.protocol.startsWith('redis') ? '6379' : '5432')}${u.pathname && u.pathname !== '/' ? u.pathname : ''}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** Installed version of a package from bench/peers/node_modules (read from its package.json). */
export function installedVersion(pkg: string): string {
  const req = createRequire(import.meta.url);
  try {
    return (req(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    /* package.json not exported: fall through */
  }
  // Packages whose "exports" hide package.json: walk up from the resolved entry.
  let dir = req.resolve(pkg);
  for (let i = 0; i < 6; i++) {
    dir = dir.slice(0, dir.lastIndexOf('/'));
    try {
      const j = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8')) as { name?: string; version?: string };
      if (j.name === pkg && j.version) return j.version;
    } catch {
      /* keep walking */
    }
  }
  return 'unknown';
}

/** A name usable as a Redis key part, a PostgreSQL schema and a queue name: lower case, [a-z0-9_]. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Absolute wall-clock milliseconds with sub-millisecond resolution (performance.timeOrigin + performance.now()). */
export const nowMs = () => performance.timeOrigin + performance.now();

export class DeadlineError extends Error {}

/** Rejects with a clear message if `p` has not settled within `ms`. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what}: no result within ${(ms / 1000).toFixed(0)} s (deadline)`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** The error with `what` in front of its message unless it already names it. */
function named(e: unknown, what: string): Error {
  const err = e instanceof Error ? e : new Error(String(e));
  const peer = what.split(' ')[0]!;
  if (!err.message.startsWith(peer)) err.message = `${what}: ${err.message}`;
  return err;
}

/** Cleanup steps run in reverse order of registration, each bounded in time; failures are reported, never thrown. */
export class Cleanup {
  private steps: { label: string; fn: () => Promise<unknown> }[] = [];
  add(label: string, fn: () => Promise<unknown>): void {
    this.steps.push({ label, fn });
  }
  async run(peer: string, stepMs = 15_000): Promise<void> {
    while (this.steps.length) {
      const { label, fn } = this.steps.pop()!;
      try {
        await withDeadline(Promise.resolve().then(fn), stepMs, `${peer} cleanup: ${label}`);
      } catch (e) {
        process.stderr.write(`[peers] ${peer} cleanup: ${label} failed: ${(e as Error).message}\n`);
      }
    }
  }
}

/** Polls `cond` every `intervalMs` until true; rejects when `deadline` (absolute performance.now() ms) passes or `stop.aborted`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, intervalMs: number, deadline: number, what: string, stop: Abort): Promise<void> {
  for (;;) {
    if (await cond()) return;
    if (stop.aborted) throw new Error(`${what}: aborted`);
    if (performance.now() > deadline) throw new DeadlineError(`${what}: not reached before the deadline`);
    await sleep(intervalMs);
  }
}

export interface Abort {
  aborted: boolean;
}

/** Nearest-rank percentile of ascending-sorted samples: the value at rank ceil(p/100 · n). */
export function nearestRank(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export const round = (v: number, digits: number) => {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};

export async function redisDurability(client: { call(...args: string[]): Promise<unknown>; info(section: string): Promise<string> }): Promise<string> {
  const get = async (key: string) => {
    const r = (await client.call('CONFIG', 'GET', key)) as string[];
    return r[1] ?? '?';
  };
  const version = /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? '?';
  const aof = await get('appendonly');
  const save = await get('save');
  const fsync = aof === 'yes' ? `, appendfsync=${await get('appendfsync')}` : '';
  const words = `${aof === 'yes' ? 'AOF on' : 'no AOF'}, ${save.trim() ? `RDB snapshots "${save}"` : 'no RDB snapshots'}`;
  return `Redis ${version}, appendonly=${aof}${fsync}, save="${save}" (${words}; as started on this machine)`;
}

export async function pgDurability(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    const show = async (k: string) => ((await c.query(`SHOW ${k}`)).rows[0] as Record<string, string>)[k];
    return `PostgreSQL ${await show('server_version')}, fsync=${await show('fsync')}, synchronous_commit=${await show('synchronous_commit')}, full_page_writes=${await show('full_page_writes')}`;
  } finally {
    await c.end();
  }
}

/** null when PostgreSQL answers a query at `url` within 3 s, else why not. */
export async function pgAvailable(url: string): Promise<string | null> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000, query_timeout: 3000 });
  c.on('error', () => {});
  try {
    await withDeadline(
      (async () => {
        await c.connect();
        await c.query('SELECT 1');
      })(),
      4000,
      'connect',
    );
    return null;
  } catch (e) {
    return `PostgreSQL not reachable at ${where(url)} (${(e as Error).message})`;
  } finally {
    c.end().catch(() => {});
  }
}

/** Runs `sql` on a short-lived connection (used for schema drop and counting rows). */
export async function pgExec(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

/** How W1 treated planner statistics (for the PostgreSQL peers' `config`). */
export function analyzeNote(table: string): string {
  return process.env.BENCH_PEERS_NO_ANALYZE === '1'
    ? `W1 without ANALYZE (BENCH_PEERS_NO_ANALYZE=1): fresh table, no planner statistics`
    : `W1: ANALYZE ${table} after enqueue, before the worker starts (untimed; what autovacuum would have done on a long-lived install)`;
}

/** A connection kept open for the run (for counting unfinished jobs without a connect per poll). */
export async function pgProbe(url: string, cleanup: Cleanup): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  c.on('error', (e) => process.stderr.write(`[peers] probe connection: ${e.message}\n`));
  await c.connect();
  cleanup.add('close probe connection', () => c.end());
  return c;
}

/**
 * What a peer plugs into the drivers. A fresh queue/schema is made in `setup`; everything made is
 * registered on `cleanup` so it is removed even when the run fails or times out.
 */
export interface Harness {
  setup(cleanup: Cleanup): Promise<void>;
  /** Enqueue one bulk chunk (≤ 1,000 jobs) with these payloads, in one library call. */
  enqueueBulk(payloads: object[]): Promise<void>;
  /** Enqueue one job. */
  enqueueOne(payload: object): Promise<void>;
  /** Start ONE real worker of the library at `concurrency`; `onJob` is called at the start of each handler invocation. Registers its own stop on `cleanup`. */
  startWorker(concurrency: number, onJob: (payload: Record<string, unknown>) => void, cleanup: Cleanup): Promise<void>;
  /**
   * Optional, after W1's enqueue and before the worker starts (not timed): bring the store to the
   * state a long-lived install is in. The PostgreSQL peers ANALYZE their job table here: a schema
   * made a moment ago has no planner statistics, and autovacuum (1 min naptime) would only gather
   * them later, so without it every fetch plans for an empty table (see README.md).
   */
  settle?(): Promise<void>;
  /** Jobs not yet finished (waiting, active, or completed-but-not-yet-acknowledged) according to the store. */
  unfinished(): Promise<number>;
}

interface Meta {
  peer: string;
  make(): { harness: Harness; base: () => Promise<PeerResult> };
}

/**
 * W1. Enqueue `jobs` no-op jobs in bulk chunks of 1,000 (sequential awaits; submit rate = jobs / that
 * time), check the store holds them all, then start one worker at `concurrency`. Drain time runs
 * from the first handler start to the moment the store reports no unfinished job (polled every
 * 1 ms once every handler has run), so it includes the library's own completion write.
 */
export async function runDrain(meta: Meta, jobs: number, concurrency: number): Promise<DrainResult> {
  const { harness, base } = meta.make();
  const cleanup = new Cleanup();
  const stop: Abort = { aborted: false };
  const budgetMs = 60_000 + jobs * 3;
  const body = async (): Promise<DrainResult> => {
    await withDeadline(harness.setup(cleanup), 30_000, `${meta.peer} setup`);
    const t0 = performance.now();
    for (let sent = 0; sent < jobs; ) {
      const n = Math.min(BULK_CHUNK, jobs - sent);
      const payloads = Array.from({ length: n }, (_, k) => ({ i: sent + k }));
      await harness.enqueueBulk(payloads);
      sent += n;
      if (stop.aborted) throw new Error('aborted');
    }
    const submitMs = performance.now() - t0;
    const queued = await harness.unfinished();
    if (queued !== jobs) throw new Error(`${meta.peer}: store holds ${queued} unfinished jobs after enqueueing ${jobs}`);
    if (harness.settle && process.env.BENCH_PEERS_NO_ANALYZE !== '1') await withDeadline(harness.settle(), 30_000, `${meta.peer} settle`);

    const service = meta.peer === 'bullmq' ? 'redis' : 'postgres';
    const cpu0 = process.cpuUsage();
    const db0 = serviceCpuMs(service);
    let first = 0;
    let handled = 0;
    let allHandled!: () => void;
    const handledAll = new Promise<void>((r) => (allHandled = r));
    await harness.startWorker(
      concurrency,
      () => {
        if (handled === 0) first = performance.now();
        if (++handled === jobs) allHandled();
      },
      cleanup,
    );
    const deadline = t0 + budgetMs - 5_000;
    await withDeadline(handledAll, Math.max(1000, deadline - performance.now()), `${meta.peer} drain: ${jobs} handler starts`);
    await waitFor(async () => (await harness.unfinished()) === 0, 1, deadline, `${meta.peer} drain: store reports all ${jobs} jobs finished`, stop);
    const drainMs = performance.now() - first;
    const cpu = process.cpuUsage(cpu0);
    const db1 = db0 === null ? null : serviceCpuMs(service);
    if (handled !== jobs) throw new Error(`${meta.peer}: ${handled} handler runs for ${jobs} jobs`);
    return {
      ...(await base()),
      jobs,
      submit_per_s: Math.round(jobs / (submitMs / 1000)),
      drain_per_s: Math.round(jobs / (drainMs / 1000)),
      app_cpu_us: round((cpu.user + cpu.system) / jobs, 1),
      db_cpu_us: db0 === null || db1 === null ? null : round(((db1 - db0) * 1000) / jobs, 1),
    };
  };
  try {
    return await withDeadline(body(), budgetMs, `${meta.peer} drain(${jobs}, ${concurrency})`);
  } catch (e) {
    throw named(e, `${meta.peer} drain(${jobs}, ${concurrency})`);
  } finally {
    stop.aborted = true;
    await cleanup.run(meta.peer);
  }
}

/**
 * W2. One worker (concurrency `concurrency`) idle and waiting; the producer sends one job at a time
 * (each awaited) on a fixed schedule of `rate`/s for `seconds` s, the payload carrying the absolute
 * submit time in ms (performance.timeOrigin + performance.now(), same process as the handler); the
 * handler records now − t at its start. A warm-up of LATENCY_WARMUP_JOBS jobs at the same rate
 * runs first and is discarded.
 */
export async function runLatency(meta: Meta, rate: number, seconds: number, concurrency: number): Promise<LatencyResult> {
  const { harness, base } = meta.make();
  const cleanup = new Cleanup();
  const stop: Abort = { aborted: false };
  const total = Math.round(rate * seconds);
  const budgetMs = 60_000 + seconds * 1000 * 2;
  const body = async (): Promise<LatencyResult> => {
    await withDeadline(harness.setup(cleanup), 30_000, `${meta.peer} setup`);
    const samples: number[] = [];
    let warm = 0;
    await harness.startWorker(
      concurrency,
      (p) => {
        const lat = nowMs() - (p.t as number);
        if (p.warm) warm++;
        else samples.push(lat);
      },
      cleanup,
    );
    const deadlineFor = (ms: number) => performance.now() + ms;
    const paced = async (n: number, warmup: boolean) => {
      const start = performance.now();
      for (let i = 0; i < n; i++) {
        const due = start + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        if (stop.aborted) throw new Error('aborted');
        await harness.enqueueOne(warmup ? { t: nowMs(), warm: 1 } : { t: nowMs() });
      }
    };
    await paced(LATENCY_WARMUP_JOBS, true);
    await waitFor(() => warm >= LATENCY_WARMUP_JOBS, 5, deadlineFor(15_000), `${meta.peer} latency: warm-up jobs handled`, stop);
    await sleep(200); // back to idle
    await paced(total, false);
    await waitFor(() => samples.length >= total, 5, deadlineFor(15_000), `${meta.peer} latency: all ${total} jobs handled`, stop);
    const sorted = samples.slice().sort((a, b) => a - b);
    return {
      ...(await base()),
      samples: sorted.length,
      p50_ms: round(nearestRank(sorted, 50), 2),
      p99_ms: round(nearestRank(sorted, 99), 2),
      max_ms: round(sorted[sorted.length - 1]!, 2),
    };
  };
  try {
    return await withDeadline(body(), budgetMs, `${meta.peer} latency(${rate}/s, ${seconds} s)`);
  } catch (e) {
    throw named(e, `${meta.peer} latency(${rate}/s, ${seconds} s)`);
  } finally {
    stop.aborted = true;
    await cleanup.run(meta.peer);
  }
}
