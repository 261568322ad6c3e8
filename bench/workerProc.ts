/**
 * An SDK Worker process for the benchmark. argv: url token concurrency [prefetch].
 * Handler `noop` records, per job, the wall-clock time it started (ms, sub-ms precision) and,
 * for latency jobs, submit→start from the producer's stamp `parameters.t`. The parent asks for
 * the figures over IPC.
 */
import { Worker } from '../src/client/index.ts';

const [url, token, concurrency, prefetch] = process.argv.slice(2);
// CLOCK_MONOTONIC, one clock for every process on the machine: the producer stamps a job in one
// process and the handler reads it in another. performance.timeOrigin is the wall clock at each
// process's start, so two processes' timeOrigin + performance.now() disagree by however much the
// wall clock moved against the monotonic clock between their starts — on the benchmark machine
// (2026-11-22) ~5 ms per second, which W2 counted as latency.
const now = () => Number(process.hrtime.bigint()) / 1e6;
let first = 0;
let last = 0;
let count = 0;
const latencies: number[] = [];
const w = new Worker({
  server: url!,
  token: token!,
  concurrency: Number(concurrency),
  prefetch: Number(prefetch ?? 0),
  handlers: {
    noop: (job) => {
      const t = now();
      if (!first) first = t;
      if (typeof job.parameters.t === 'number') latencies.push(t - job.parameters.t);
      count++;
      last = now();
      return null;
    },
  },
});
await w.start();
process.send!({ ready: true });
process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'stats') process.send!({ first, last, count, latencies });
  if (m.cmd === 'reset') {
    first = last = count = 0;
    latencies.length = 0;
    process.send!({ reset: true });
  }
  if (m.cmd === 'stop') void w.stop(0).then(() => process.exit(0));
});
