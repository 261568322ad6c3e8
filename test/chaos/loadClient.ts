/**
 * The load generator, run as its own process: submits handler jobs (`noop`) one request each at
 * `rate` per second for `seconds`, paced every 5 ms, and prints one JSON line with the counts and
 * submit latencies. argv: server token rate seconds.
 */
import { GantryClient } from '../../src/client/http.ts';

const [server, token, rateArg, secondsArg] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const client = new GantryClient({ server: server!, token: token! });
const MAX_IN_FLIGHT = 512;
const latencies: number[] = [];
const errors: string[] = [];
let sent = 0;
let ok = 0;
let inFlight = 0;
let capped = 0;
const t0 = performance.now();
const total = Math.round(rate * seconds);

function fire(): void {
  sent++;
  inFlight++;
  const start = performance.now();
  client
    .submit({ handler: 'noop', name: 'load', type: 'load' })
    .then(() => {
      ok++;
      latencies.push(performance.now() - start);
    })
    .catch((err: Error) => {
      if (errors.length < 20) errors.push(err.message);
      else errors.push('');
    })
    .finally(() => inFlight--);
}

await new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
    while (sent < due) {
      if (inFlight >= MAX_IN_FLIGHT) {
        capped++;
        break;
      }
      fire();
    }
    // The run lasts `seconds` whatever the server manages: what could not be sent is reported (achieved rate).
    if (sent >= total || performance.now() - t0 > seconds * 1000) {
      clearInterval(timer);
      resolve();
    }
  }, 5);
});
while (inFlight > 0) await new Promise((r) => setTimeout(r, 10));
const elapsed = (performance.now() - t0) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? null;
process.stdout.write(
  JSON.stringify({ sent, ok, errors: errors.length, error_samples: errors.filter(Boolean).slice(0, 5), elapsed_s: elapsed, achieved_rate: sent / elapsed, p50_ms: pct(50), p99_ms: pct(99), max_ms: latencies.at(-1) ?? null, capped_ticks: capped }) + '\n',
);
process.exit(0);
