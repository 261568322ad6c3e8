import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, type RunningServer } from '../../src/server/run.ts';
import { compileServerConfig, type ServerConfig } from '../../src/config.ts';
import { GantryClient } from '../../src/client/http.ts';
import { freshDatabase, type StoreKind, type TestDatabase } from './db.ts';

const WORKER_SCRIPT = fileURLToPath(new URL('./workerProcess.ts', import.meta.url));

export interface WorkerProc {
  id: string;
  child: ChildProcess;
}

/** A real Gantry server on a fresh database, plus worker processes on demand. */
export interface TestCluster {
  server: RunningServer;
  client: GantryClient;
  db: TestDatabase;
  /** `grace_ms`: how long running jobs may finish on SIGTERM; `non_retryable_exit_code`: the worker's default. */
  startWorker(opts?: { cpu?: number; slots?: number; gpus?: number; grace_ms?: number; non_retryable_exit_code?: number }): Promise<WorkerProc>;
  /** The worker processes started so far. */
  workers(): readonly WorkerProc[];
  close(): Promise<void>;
}

export async function startCluster(
  kind: StoreKind, opts: { local_worker?: boolean; lease_timeout_ms?: number; config?: Partial<ServerConfig> } = {},
): Promise<TestCluster> {
  const db = await freshDatabase(kind);
  const config = { ...compileServerConfig({ dataDir: join(db.dir, 'data'), database: db.url, port: 0 }, {}), lease_timeout_ms: opts.lease_timeout_ms ?? 5000, ...opts.config };
  const server = await startServer({
    config,
    local_worker: opts.local_worker ? { cpu_cores: 4, memory_gb: 8, slots: 16, kill_grace_ms: 1000 } : false,
    logger: false,
  });
  const client = new GantryClient({ server: server.url, token: server.admin_token! });
  const workers: WorkerProc[] = [];
  return {
    server,
    client,
    db,
    async startWorker(w = {}) {
      const args = [server.url, server.admin_token!, String(w.cpu ?? 2), String(w.slots ?? 8), String(w.gpus ?? 0), String(w.grace_ms ?? 2000), String(w.non_retryable_exit_code ?? '')];
      const child = spawn(process.execPath, [WORKER_SCRIPT, ...args], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const id = await new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          const m = /ready (\S+)/.exec(buf);
          if (m) resolve(m[1]!);
        });
        child.on('exit', (c) => reject(new Error(`worker exited early (${c})`)));
      });
      const proc = { id, child };
      workers.push(proc);
      return proc;
    },
    workers: () => workers,
    async close() {
      for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await server.close();
      await db.drop();
    },
  };
}

/** Polls `fn` until it returns a truthy value or `ms` passes. */
export async function eventually<T>(fn: () => Promise<T | null | undefined | false>, ms = 10_000, every = 25): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** True while any process of the process group `pgid` is alive. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
