/**
 * An SDK Worker process for the chaos and load tests. argv: server token marker concurrency prefetch name.
 * Handler `chaos`: appends "<job id> <attempt>" to the marker file (proof it ran), waits
 * `parameters.ms`, then fails if `parameters.fail` is 'always' or ('first' and attempt 1).
 * Handler `noop`: returns at once (load tests). Prints `ready <worker id>` once registered.
 */
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from '../../src/client/worker.ts';

const [server, token, marker, concurrency, prefetch, name] = process.argv.slice(2);
const w = new Worker({
  server: server!,
  token: token!,
  name,
  concurrency: Number(concurrency ?? 32),
  prefetch: Number(prefetch ?? 0),
  handlers: {
    chaos: async (job) => {
      appendFileSync(marker!, `${job.id} ${job.attempt}\n`);
      const ms = Number(job.parameters.ms ?? 0);
      if (ms > 0) await sleep(ms, undefined, { signal: job.signal }).catch(() => {});
      const fail = job.parameters.fail;
      if (fail === 'always' || (fail === 'first' && job.attempt === 1)) throw new Error(`chaos failure (attempt ${job.attempt})`);
      return { ok: true };
    },
    noop: () => null,
  },
  onError: () => {},
});
const id = await w.start();
process.stdout.write(`ready ${id}\n`);
process.on('SIGTERM', () => void w.stop(1000).then(() => process.exit(0)));
