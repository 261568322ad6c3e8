/**
 * Smoke run of the peers: `node smoke.ts` runs each available peer with drain(2000, 50) and
 * latency(200, 2) and prints one line per result. `--full` uses the benchmark's shape,
 * drain(20000, 50) and latency(200, 10). `--only=bullmq,pg-boss` limits the peers.
 * Exits non-zero if any run failed.
 */
import { PEERS } from './index.ts';
import { watchContention } from './contention.ts';

const busy = (f: () => number | null) => {
  const v = f();
  return v === null ? '' : ` [other processes: ${v.toFixed(2)} cores${v > 0.2 ? ' — CONTENDED, rerun on a quiet machine' : ''}]`;
};

const argv = process.argv.slice(2);
const full = argv.includes('--full');
const only = argv.find((a) => a.startsWith('--only='))?.slice(7).split(',') ?? null;
const [drainJobs, drainConc, rate, seconds] = full ? [20_000, 50, 200, 10] : [2000, 50, 200, 2];

let failed = 0;
for (const peer of PEERS) {
  if (only && !only.includes(peer.name)) continue;
  const why = await peer.available();
  if (why) {
    console.log(`${peer.name}: skipped — ${why}`);
    continue;
  }
  try {
    const w = watchContention();
    const d = await peer.drain(drainJobs, drainConc);
    const other = busy(w);
    console.log(
      `${d.peer} ${d.version} drain(${d.jobs}, ${drainConc}): submit ${d.submit_per_s.toLocaleString('en-US')}/s, drain ${d.drain_per_s.toLocaleString('en-US')}/s` +
        `${other} | ${d.config} | ${d.durability}`,
    );
  } catch (e) {
    failed++;
    console.log(`${peer.name} drain FAILED: ${(e as Error).message}`);
  }
  try {
    const w = watchContention();
    const l = await peer.latency(rate, seconds);
    console.log(`${l.peer} ${l.version} latency(${rate}/s, ${seconds} s): samples ${l.samples}, p50 ${l.p50_ms} ms, p99 ${l.p99_ms} ms, max ${l.max_ms} ms${busy(w)}`);
  } catch (e) {
    failed++;
    console.log(`${peer.name} latency FAILED: ${(e as Error).message}`);
  }
}
process.exit(failed ? 1 : 0);
