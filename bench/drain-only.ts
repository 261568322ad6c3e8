/** Quick W1 check while working on the hot path: `node bench/drain-only.ts [sqlite|postgres] [runs]`. */
import { gantryDrain, type StoreKind } from './gantry.ts';

const kind = (process.argv[2] ?? 'sqlite') as StoreKind;
const runs = Number(process.argv[3] ?? 3);
const pg = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
for (let i = 0; i < runs; i++) {
  const d = await gantryDrain(kind, pg, 20_000, 50, 450);
  console.log(`${kind}: submit ${Math.round(d.submit_per_s)}/s, drain ${Math.round(d.drain_per_s)}/s, server RSS ${Math.round(d.rss_mb)} MB, CPU per job: server ${Math.round(d.server_cpu_us)} µs, worker ${Math.round(d.worker_cpu_us)} µs${d.db_cpu_us === null ? '' : `, PostgreSQL ${Math.round(d.db_cpu_us)} µs`}`);
}
