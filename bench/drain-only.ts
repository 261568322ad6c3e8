/**
 * Quick W1 check while working on the hot path: `node bench/drain-only.ts [sqlite|postgres] [runs] [drains]`.
 * With `drains` > 1 each run drains that many times on one server (bench/gantry.ts gantryDrains): the
 * first drain is W1, the later ones show a server whose drain code V8 has already compiled.
 */
import { gantryDrains, type StoreKind } from './gantry.ts';

const kind = (process.argv[2] ?? 'sqlite') as StoreKind;
const runs = Number(process.argv[3] ?? 3);
const drains = Number(process.argv[4] ?? 1);
const pg = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const us = (x: number) => Math.round(x);
for (let i = 0; i < runs; i++) {
  const all = await gantryDrains(kind, pg, 20_000, 50, 450, drains);
  all.forEach((d, n) => {
    const t = d.server_threads_cpu_us;
    console.log(`${kind}${drains > 1 ? ` drain ${n + 1}/${drains}` : ''}: submit ${us(d.submit_per_s)}/s, drain ${us(d.drain_per_s)}/s, server RSS ${us(d.rss_mb)} MB, CPU per job: server ${us(d.server_cpu_us)} µs (main thread ${us(t.main)}, V8 helpers ${us(t.v8)}, other ${us(t.other)}), worker ${us(d.worker_cpu_us)} µs${d.db_cpu_us === null ? '' : `, PostgreSQL ${us(d.db_cpu_us)} µs`}`);
  });
}
