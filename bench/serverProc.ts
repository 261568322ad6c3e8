/** A Gantry server in its own process for the benchmark. argv: database-url data-dir [local-worker-slots]. Prints one JSON line {url, token, pid}. BENCH_DEFAULT_HEAP=1: V8 defaults instead of src/server/heap.ts (for before/after). */
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { startServer } from '../src/server/run.ts';
import { prepareServerProcess } from '../src/server/heap.ts';
import { compileServerConfig } from '../src/config.ts';

const [database, dataDir, localSlots] = process.argv.slice(2);
if (process.env.BENCH_DEFAULT_HEAP !== '1') prepareServerProcess(database!); // as `gantry server` does (young generation capped, old space kept near the live data)
const srv = await startServer({
  config: compileServerConfig({ database: database!, dataDir: dataDir!, port: 0 }, {}),
  local_worker: localSlots ? { slots: Number(localSlots), kill_grace_ms: 1000 } : false,
  logger: false,
});
process.stdout.write(JSON.stringify({ url: srv.url, token: srv.admin_token, pid: process.pid }) + '\n');
process.on('SIGTERM', () => void srv.close().then(() => process.exit(0)));
// SIGUSR2: the process's memory breakdown on stderr (bench/backlog-mem.ts reads it to find what holds RSS).
process.on('SIGUSR2', () => {
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, Math.round(s.space_size / 2 ** 20)]));
  const mb = Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, Math.round(v / 2 ** 20)]));
  const status = readFileSync('/proc/self/status', 'utf8');
  const rss = Object.fromEntries([...status.matchAll(/^(Rss\w+):\s+(\d+) kB/gm)].map((m) => [m[1], Math.round(Number(m[2]) / 1024)]));
  process.stderr.write(`MEM ${JSON.stringify({ ...mb, ...rss, spaces })}\n`);
});
// SIGHUP: a heap snapshot (after a full GC) in the data dir; its path on stderr.
process.on('SIGHUP', () => process.stderr.write(`SNAPSHOT ${writeHeapSnapshot(`${dataDir}/server.heapsnapshot`)}\n`));
