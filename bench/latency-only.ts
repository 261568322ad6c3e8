/**
 * W2 (and W4's latency part) alone while working on the submit→start path:
 * `node bench/latency-only.ts [sqlite|postgres] [runs] [backlog] [seconds]`. `BENCH_W2_WARM=n`: the warm-up drain
 * before the measured jobs (default 20,000, as `npm run bench`; 0 = a server measured in its first seconds).
 * `BENCH_W4_AFTER_FILL='ANALYZE jobs'` (PostgreSQL; `;`-separated statements): run on the bench database after
 * the backlog fill, before the warm-up — `ANALYZE jobs` is what autovacuum does on a real server after a big
 * insert (this machine's PostgreSQL runs with autovacuum off). Default: nothing, as `npm run bench`.
 */
import { gantryLatency, type StoreKind } from './gantry.ts';

const kind = (process.argv[2] ?? 'sqlite') as StoreKind;
const runs = Number(process.argv[3] ?? 1);
const backlog = Number(process.argv[4] ?? 0);
const seconds = Number(process.argv[5] ?? 10);
const warm = Number(process.env.BENCH_W2_WARM ?? 20_000);
const pg = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const afterFill = (process.env.BENCH_W4_AFTER_FILL ?? '').split(';').map((s) => s.trim()).filter((s) => s.length > 0);
for (let i = 0; i < runs; i++) {
  const l = await gantryLatency(kind, pg, 200, seconds, backlog, warm, afterFill);
  const f = (x: number) => x.toFixed(2);
  console.log(
    `${kind}${backlog ? ` backlog ${backlog}` : ''}: p50 ${f(l.p50_ms)} / p99 ${f(l.p99_ms)} / max ${f(l.max_ms)} ms (${l.samples} samples), server RSS ${Math.round(l.rss_mb)} MB, server CPU ${l.server_cpu_ms_per_job.toFixed(2)} ms/job` +
      (l.db_cpu_ms_per_job === null ? '' : `, database CPU ${l.db_cpu_ms_per_job.toFixed(2)} ms/job`) +
      (l.backend_cpu_ms_per_job === null ? '' : ` (its backends ${l.backend_cpu_ms_per_job.toFixed(2)})`) +
      (l.backlog_submit_per_s ? `, backlog submit ${Math.round(l.backlog_submit_per_s)}/s` : ''),
  );
}
