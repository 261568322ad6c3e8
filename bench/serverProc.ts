/** A Gantry server in its own process for the benchmark. argv: database-url data-dir [local-worker-slots]. Prints one JSON line {url, token, pid}. */
import { startServer } from '../src/server/run.ts';
import { compileServerConfig } from '../src/config.ts';

const [database, dataDir, localSlots] = process.argv.slice(2);
const srv = await startServer({
  config: compileServerConfig({ database: database!, dataDir: dataDir!, port: 0 }, {}),
  local_worker: localSlots ? { slots: Number(localSlots), kill_grace_ms: 1000 } : false,
  logger: false,
});
process.stdout.write(JSON.stringify({ url: srv.url, token: srv.admin_token, pid: process.pid }) + '\n');
process.on('SIGTERM', () => void srv.close().then(() => process.exit(0)));
