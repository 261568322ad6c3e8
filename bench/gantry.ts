/** The Gantry side of the benchmark: server and SDK Worker in their own processes, producer here. */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { GantryClient } from '../src/client/http.ts';
import { LATENCY_WARMUP_JOBS } from './peers/util.ts';
import { serviceCpuMs } from './peers/contention.ts';

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
// CLOCK_MONOTONIC, one clock for every process on the machine: the producer stamps a job in one
// process and the handler reads it in another. performance.timeOrigin is the wall clock at each
// process's start, so two processes' timeOrigin + performance.now() disagree by however much the
// wall clock moved against the monotonic clock between their starts — on the benchmark machine
// (2026-11-22) ~5 ms per second, which W2 counted as latency.
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** BENCH_PROFILE=dir: CPU profiles of the server and worker processes (and bench/w1-floor.ts's relay) go there (node --cpu-prof). */
export function profileArgs(name: string): string[] {
  const dir = process.env.BENCH_PROFILE;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`] : [];
}

/** CPU time (user + system, ms) a process has used so far, from /proc. */
export function cpuMs(pid: number): number {
  return statCpuMs(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/** User + system ms from a /proc `stat` line (a process's or a thread's). */
function statCpuMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/**
 * A process's CPU time (ms, as cpuMs) by thread: its main thread, V8's helper threads (`V8Worker`: JIT
 * compilation, concurrent marking and sweeping) and the rest (the SQLite checkpoint and reader threads,
 * libuv's pool, the inspector). The main thread is what bounds a server's throughput; /proc's figure
 * for the process counts all of them.
 */
export function threadCpuMs(pid: number): { main: number; v8: number; other: number } {
  const out = { main: 0, v8: 0, other: 0 };
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let f: string;
    try {
      f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // a thread that ended meanwhile
    }
    const ms = statCpuMs(f);
    if (tid === String(pid)) out.main += ms;
    else if (f.slice(f.indexOf('(') + 1, f.lastIndexOf(')')) === 'V8Worker') out.v8 += ms;
    else out.other += ms;
  }
  return out;
}

export interface GantryServerProc {
  url: string;
  token: string;
  pid: number;
  client: GantryClient;
  rssMb(): number;
  /** CPU time (user + system) the server process has used so far, ms. */
  cpuMs(): number;
  stop(): Promise<void>;
}

export type StoreKind = 'sqlite' | 'postgres';

/** A fresh database: a SQLite file in a temp dir, or a new PostgreSQL database on `pgUrl`. */
export async function freshDb(kind: StoreKind, pgUrl: string): Promise<{ url: string; dir: string; drop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-bench-'));
  if (kind === 'sqlite') return { url: join(dir, 'gantry.db'), dir, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  const name = `gantry_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: pgUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  // BENCH_PG_DB_SET: `;`-separated settings for this scratch database alone (its sessions start with them), e.g.
  // `session_preload_libraries='auto_explain';auto_explain.log_min_duration=0;auto_explain.sample_rate=0.1;auto_explain.log_analyze=on`.
  for (const set of (process.env.BENCH_PG_DB_SET ?? '').split(';').filter((x) => x.trim())) await admin.query(`ALTER DATABASE ${name} SET ${set}`);
  await admin.end();
  const u = new URL(pgUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    dir,
    drop: async () => {
      const c = new pg.Client({ connectionString: pgUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await c.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startGantryServer(database: string, dataDir: string, localWorkerSlots?: number): Promise<GantryServerProc> {
  const args = [here('./serverProc.ts'), database, dataDir, ...(localWorkerSlots ? [String(localWorkerSlots)] : [])];
  const child = spawn(process.execPath, [...profileArgs('server'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const info = await new Promise<{ url: string; token: string; pid: number }>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)));
    });
    child.on('exit', (c) => reject(new Error(`gantry server exited (${c})`)));
  });
  return {
    ...info,
    client: new GantryClient({ server: info.url, token: info.token }),
    rssMb: () => {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${info.pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : NaN;
    },
    cpuMs: () => cpuMs(info.pid),
    stop: () =>
      new Promise<void>((r) => {
        child.once('exit', () => r());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

interface WorkerStats {
  first: number;
  last: number;
  count: number;
  latencies: number[];
}

export interface WorkerProc {
  pid: number;
  stats(): Promise<WorkerStats>;
  /** Forget the figures so far (after a warm-up). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startSdkWorker(url: string, token: string, concurrency: number, prefetch = 0): Promise<WorkerProc> {
  const child: ChildProcess = fork(here('./workerProc.ts'), [url, token, String(concurrency), String(prefetch)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: profileArgs('worker'),
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (c) => reject(new Error(`worker exited (${c})`)));
  });
  return {
    pid: child.pid!,
    stats: () =>
      new Promise((resolve) => {
        child.once('message', (m) => resolve(m as WorkerStats));
        child.send({ cmd: 'stats' });
      }),
    reset: () =>
      new Promise((resolve) => {
        child.once('message', () => resolve());
        child.send({ cmd: 'reset' });
      }),
    stop: () =>
      new Promise<void>((r) => {
        child.once('exit', () => r());
        child.send({ cmd: 'stop' });
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

/** Submits `n` jobs made by `make(i)` through the batch endpoint, `chunk` at a time, `parallel` requests in flight. */
export async function submitMany(c: GantryClient, n: number, make: (i: number) => Parameters<GantryClient['submit']>[0], chunk = 1000, parallel = 1): Promise<number> {
  const t0 = now();
  let next = 0;
  async function lane() {
    for (;;) {
      const start = next;
      if (start >= n) return;
      next += chunk;
      const jobs = Array.from({ length: Math.min(chunk, n - start) }, (_, k) => make(start + k));
      await c.submitBatch(jobs);
    }
  }
  await Promise.all(Array.from({ length: parallel }, lane));
  return n / ((now() - t0) / 1000);
}

export async function waitUntil(fn: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** The middle value of an odd count (of an even one, the lower middle): `percentile` at 50 of the sorted values. */
export const median = (xs: readonly number[]): number => percentile([...xs].sort((a, b) => a - b), 50);

/**
 * Forks the module at `moduleUrl` in the role `role` (its argv[2], then `args`), with an IPC channel, and resolves
 * with the child and its first message (a relay's URL, a worker's readiness) — how the floor benches start their parts.
 */
export function forkRole<M>(moduleUrl: string, role: string, args: string[] = [], execArgv: string[] = []): Promise<{ child: ChildProcess; msg: M }> {
  const child = fork(fileURLToPath(moduleUrl), [role, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  return new Promise((resolve, reject) => {
    child.once('message', (msg) => resolve({ child, msg: msg as M }));
    child.once('exit', (c) => reject(new Error(`${role} exited (${c})`)));
  });
}

/** Sends `cmd` to a forked part and resolves with its next message. */
export function ask<T>(child: ChildProcess, cmd: string): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send({ cmd });
  });
}

/**
 * W1: submit `jobs` no-op handler jobs in batches, then drain with one SDK Worker process at
 * `concurrency`, taking `prefetch` more ahead (graphile-worker's peer setting is a local queue of 500).
 */
export async function gantryDrain(kind: StoreKind, pgUrl: string, jobs: number, concurrency: number, prefetch: number) {
  return (await gantryDrains(kind, pgUrl, jobs, concurrency, prefetch, 1))[0]!;
}

/**
 * W1 `drains` times in a row on one server (each a fresh batch of `jobs` and a fresh SDK Worker
 * process): the first is W1 as `npm run bench` measures it, on a server whose drain code has never run;
 * the later ones drain on a server V8 has compiled and optimised for it, as a server that has been up a
 * while. The server's CPU per job also comes by thread (threadCpuMs).
 */
export async function gantryDrains(kind: StoreKind, pgUrl: string, jobs: number, concurrency: number, prefetch: number, drains: number) {
  const db = await freshDb(kind, pgUrl);
  const srv = await startGantryServer(db.url, join(db.dir, 'data'));
  const out = [];
  try {
    for (let i = 0; i < drains; i++) out.push(await drainOnce(kind, db.url, srv, jobs, concurrency, prefetch));
    return out;
  } finally {
    await srv.stop();
    await db.drop();
  }
}

async function drainOnce(kind: StoreKind, dbUrl: string, srv: GantryServerProc, jobs: number, concurrency: number, prefetch: number) {
  const submit_per_s = await submitMany(srv.client, jobs, () => ({ handler: 'noop' }));
  if (kind === 'postgres' && process.env.BENCH_ANALYZE === '1') {
    const c = new pg.Client({ connectionString: dbUrl });
    await c.connect();
    await c.query('ANALYZE jobs');
    await c.end();
  }
  const w = await startSdkWorker(srv.url, srv.token, concurrency, prefetch);
  try {
    const cpu0 = [cpuMs(srv.pid), cpuMs(w.pid)];
    const threads0 = threadCpuMs(srv.pid);
    const db0 = kind === 'postgres' ? serviceCpuMs('postgres') : null;
    let s: WorkerStats = { first: 0, last: 0, count: 0, latencies: [] };
    await waitUntil(async () => (s = await w.stats()).count >= jobs, 600_000, 'drain');
    // Every completion must also be recorded by the server, not just run.
    await waitUntil(async () => (await srv.client.queueStatus()).running_jobs === 0, 60_000, 'final reports');
    // CPU per drained job counts work, not waiting: steadier than jobs/s on a busy machine.
    const perJob = (ms: number) => (ms * 1000) / jobs;
    const threads1 = threadCpuMs(srv.pid);
    const db1 = db0 === null ? null : serviceCpuMs('postgres');
    return {
      jobs, submit_per_s, drain_per_s: jobs / ((s.last - s.first) / 1000), rss_mb: srv.rssMb(),
      server_cpu_us: perJob(cpuMs(srv.pid) - cpu0[0]!), worker_cpu_us: perJob(cpuMs(w.pid) - cpu0[1]!),
      server_threads_cpu_us: { main: perJob(threads1.main - threads0.main), v8: perJob(threads1.v8 - threads0.v8), other: perJob(threads1.other - threads0.other) },
      db_cpu_us: db0 === null || db1 === null ? null : perJob(db1 - db0),
    };
  } finally {
    await w.stop();
  }
}

/**
 * W2: one job at a time at `rate`/s for `seconds`, worker idle and waiting; submit→handler-start latency.
 * `warmJobs` first go through the same server and worker as a drain (batch submit, then run), as each peer's W2
 * runs in the process that has just run its W1 drain: the code on a job's way is compiled and optimised by V8
 * on both sides, as in a server that has been up for a while, not measured in its first seconds.
 */
/**
 * W2 latency (W4 with `backlog` jobs queued in a queue no worker serves). `afterFill` (PostgreSQL):
 * statements run on the bench database once the backlog is in, before the warm-up — e.g. `ANALYZE jobs`,
 * what autovacuum does on a real server after a big insert (bench/latency-only.ts BENCH_W4_AFTER_FILL).
 */
export async function gantryLatency(kind: StoreKind, pgUrl: string, rate: number, seconds: number, backlog = 0, warmJobs = 0, afterFill: string[] = []) {
  const db = await freshDb(kind, pgUrl);
  const srv = await startGantryServer(db.url, join(db.dir, 'data'));
  try {
    let backlog_submit_per_s: number | null = null;
    let rss_after_backlog_mb: number | null = null;
    if (backlog > 0) {
      backlog_submit_per_s = await submitMany(srv.client, backlog, () => ({ handler: 'backlog' }), 5000, 2);
      rss_after_backlog_mb = srv.rssMb();
    }
    if (kind === 'postgres' && afterFill.length > 0) {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      for (const sql of afterFill) await c.query(sql);
      await c.end();
    }
    const w = await startSdkWorker(srv.url, srv.token, 10);
    try {
      if (warmJobs > 0) {
        await submitMany(srv.client, warmJobs, () => ({ handler: 'noop' }));
        await waitUntil(async () => (await w.stats()).count >= warmJobs, 600_000, 'W2 warm-up drain');
        await waitUntil(async () => (await srv.client.queueStatus()).running_jobs === 0, 60_000, 'W2 warm-up drain reports');
        await w.reset();
      }
      await new Promise((r) => setTimeout(r, 300));
      const total = rate * seconds;
      const paced = async (n: number) => {
        const t0 = now();
        for (let i = 0; i < n; i++) {
          const due = t0 + (i * 1000) / rate;
          const wait = due - now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          await srv.client.submit({ handler: 'noop', parameters: { t: now() } });
        }
      };
      // The peers' warm-up (bench/peers/util.ts): LATENCY_WARMUP_JOBS at the same rate, discarded, then back to idle.
      await paced(LATENCY_WARMUP_JOBS);
      await waitUntil(async () => (await w.stats()).count >= LATENCY_WARMUP_JOBS, 15_000, 'latency warm-up jobs');
      await w.reset();
      await new Promise((r) => setTimeout(r, 200));
      const cpu0 = srv.cpuMs();
      const db0 = kind === 'postgres' ? serviceCpuMs('postgres') : null;
      const own0 = kind === 'postgres' ? new Map((await benchBackends(db.url)).map((pid) => [pid, cpuMsOr0(pid)])) : null;
      await paced(total);
      let s: WorkerStats = { first: 0, last: 0, count: 0, latencies: [] };
      await waitUntil(async () => (s = await w.stats()).count >= total, 60_000, 'latency jobs');
      const server_cpu_ms_per_job = (srv.cpuMs() - cpu0) / total;
      const db1 = db0 === null ? null : serviceCpuMs('postgres');
      const db_cpu_ms_per_job = db0 === null || db1 === null ? null : (db1 - db0) / total;
      // Backends alive at the end (a pool connection idle for 10 s closes, and its CPU since the start is lost: counted low, never negative).
      const backend_cpu_ms_per_job = own0 === null ? null
        : (await benchBackends(db.url)).reduce((sum, pid) => sum + Math.max(0, cpuMsOr0(pid) - (own0.get(pid) ?? 0)), 0) / total;
      const sorted = s.latencies.sort((a, b) => a - b);
      return {
        samples: sorted.length,
        p50_ms: percentile(sorted, 50),
        p99_ms: percentile(sorted, 99),
        max_ms: sorted[sorted.length - 1]!,
        backlog,
        backlog_submit_per_s,
        rss_mb: rss_after_backlog_mb ?? srv.rssMb(),
        server_cpu_ms_per_job,
        db_cpu_ms_per_job,
        backend_cpu_ms_per_job,
      };
    } finally {
      await w.stop();
    }
  } finally {
    await srv.stop();
    await db.drop();
  }
}

/**
 * The PostgreSQL backends serving the bench database now (the server's pool and sessions): their CPU is the
 * bench's own, where `serviceCpuMs('postgres')` also counts whatever else the machine's PostgreSQL runs.
 */
async function benchBackends(url: string): Promise<number[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    return r.rows.map((x) => Number(x.pid));
  } finally {
    await c.end();
  }
}

/** cpuMs of a process, 0 once it has ended. */
function cpuMsOr0(pid: number): number {
  try {
    return cpuMs(pid);
  } catch {
    return 0;
  }
}

/** W3: `jobs` `true` command jobs on the local process worker; compared with spawning `true` directly at the same concurrency. */
export async function gantryProcessJobs(kind: StoreKind, pgUrl: string, jobs: number, slots: number) {
  const db = await freshDb(kind, pgUrl);
  const srv = await startGantryServer(db.url, join(db.dir, 'data'), slots);
  try {
    const t0 = now();
    await submitMany(srv.client, jobs, () => ({ command: ['true'], resources: { cpu_cores: 0.01, memory_gb: 0 } }));
    await waitUntil(async () => {
      const q = await srv.client.queueStatus();
      return q.queue_length === 0 && q.running_jobs === 0;
    }, 600_000, 'process jobs');
    const per_s = jobs / ((now() - t0) / 1000);
    const spawn_per_s = await spawnBaseline(jobs, slots);
    return { jobs, per_s, spawn_per_s, overhead_ms_per_job: 1000 / per_s - 1000 / spawn_per_s };
  } finally {
    await srv.stop();
    await db.drop();
  }
}

/** Spawning `true` directly, `concurrency` at a time: the floor for W3. */
async function spawnBaseline(jobs: number, concurrency: number): Promise<number> {
  const t0 = now();
  let next = 0;
  async function lane() {
    while (next < jobs) {
      next++;
      await new Promise<void>((r) => spawn('true', [], { stdio: 'ignore', detached: true }).on('close', () => r()));
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  return jobs / ((now() - t0) / 1000);
}
