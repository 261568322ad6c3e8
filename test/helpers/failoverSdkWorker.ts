/**
 * An SDK Worker process for the failover test. argv: servers (comma-separated) token name.
 * Handler `nap`: sleeps `parameters.ms` and returns this process's pid. Protocol messages
 * (`onError`, including the one line per server switch) go to stderr. Prints `ready <worker id>`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from '../../src/client/worker.ts';

const [servers, token, name] = process.argv.slice(2);
const w = new Worker({
  server: servers!,
  token: token!,
  name,
  concurrency: 8,
  handlers: {
    nap: async (job) => {
      await sleep(Number(job.parameters.ms ?? 0), undefined, { signal: job.signal }).catch(() => {});
      return { pid: process.pid };
    },
  },
  onError: (err) => process.stderr.write(`sdk: ${err.message}\n`),
});
const id = await w.start();
process.stdout.write(`ready ${id}\n`);
process.on('SIGTERM', () => void w.stop(1000).then(() => process.exit(0)));
