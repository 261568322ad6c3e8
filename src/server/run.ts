import { chmodSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { openStore, type Store } from '../store/store.ts';
import { isPostgresUrl } from '../store/driver.ts';
import { Scheduler } from '../scheduler/scheduler.ts';
import { TenantDirectory } from './tenantDirectory.ts';
import { buildApp } from './app.ts';
import type { ServerConfig } from '../config.ts';
import { startAgent, type AgentOptions } from '../worker/agent.ts';
import { builtinTemplates } from '../templates/builtin.ts';
import type { WorkerLoop } from '../client/workerLoop.ts';
import { ScheduleRunner } from '../schedules/runner.ts';

export interface RunningServer {
  url: string;
  store: Store;
  scheduler: Scheduler;
  schedules: ScheduleRunner;
  app: FastifyInstance;
  /** Set when this start created the first admin token. */
  admin_token: string | null;
  /** A token valid for this process's lifetime (the embedded worker uses it). */
  internal_token: string;
  worker: WorkerLoop | null;
  close(): Promise<void>;
}

export interface StartOptions {
  config: ServerConfig;
  /** Also run a local process worker in this process (`gantry up`). */
  local_worker?: Omit<AgentOptions, 'server' | 'token'> | false;
  /** Write admin-token and url files into the data dir. */
  write_files?: boolean;
  logger?: boolean | Record<string, unknown>;
}

/** Refuses a second server on the same SQLite data dir, which would corrupt scheduling. */
function takePidLock(dir: string): () => void {
  const file = join(dir, 'gantry.pid');
  try {
    const pid = Number(readFileSync(file, 'utf8'));
    if (pid && pid !== process.pid) {
      try {
        process.kill(pid, 0);
        throw new Error(`another Gantry server (pid ${pid}) is using ${dir}; stop it or pick another --data-dir`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  writeFileSync(file, String(process.pid));
  return () => {
    try {
      if (readFileSync(file, 'utf8') === String(process.pid)) unlinkSync(file);
    } catch {
      /* already gone */
    }
  };
}

/** Starts a Gantry server (API + scheduler), and with `local_worker` a process worker beside it. */
export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const cfg = opts.config;
  const sqlite = !isPostgresUrl(cfg.database);
  let releaseLock = () => {};
  if (opts.write_files !== false) mkdirSync(cfg.data_dir, { recursive: true });
  if (sqlite) {
    mkdirSync(cfg.data_dir, { recursive: true });
    releaseLock = takePidLock(cfg.data_dir);
  }
  let store: Store;
  try {
    store = await openStore(cfg.database);
  } catch (err) {
    releaseLock();
    throw err;
  }
  try {
    await store.ensureTemplates(builtinTemplates());
  } catch (err) {
    await store.close();
    releaseLock();
    throw err;
  }
  let admin_token: string | null = null;
  if ((await store.countTokens()) === 0) {
    admin_token = (await store.createToken('admin', 'admin', null)).token;
    if (opts.write_files !== false) {
      const f = join(cfg.data_dir, 'admin-token');
      writeFileSync(f, admin_token + '\n', { mode: 0o600 });
      chmodSync(f, 0o600);
    }
  }
  const internal_token = `gti_${randomBytes(24).toString('base64url')}`;
  const scheduler = new Scheduler(store, {
    lease_timeout_ms: cfg.lease_timeout_ms, breaker_open_ms: cfg.breaker_open_ms, default_tier: cfg.default_tier, usage_half_life_ms: cfg.usage_half_life_s * 1000,
    gang_start_timeout_ms: cfg.gang_start_timeout_ms,
  });
  const schedules = new ScheduleRunner(store, { isLeader: () => scheduler.isLeader });
  const tenants = new TenantDirectory(store, cfg.default_tier);
  const app = await buildApp(
    {
      store, scheduler, schedules, tenants, body_limit: cfg.body_limit, internal_token, heartbeat_interval_ms: cfg.heartbeat_interval_ms,
      breakers: { threshold: cfg.breaker_threshold, open_ms: cfg.breaker_open_ms, command_queue: cfg.breaker_command_queue },
    },
    { logger: opts.logger ?? { level: cfg.log_level } },
  );
  await app.listen({ port: cfg.port, host: cfg.host });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.port;
  const url = `http://${cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host}:${port}`;
  if (opts.write_files !== false) writeFileSync(join(cfg.data_dir, 'url'), url + '\n');
  await scheduler.start();
  schedules.start();
  let worker: WorkerLoop | null = null;
  if (opts.local_worker) {
    try {
      worker = (await startAgent({ ...opts.local_worker, server: url, token: internal_token })).loop;
    } catch (err) {
      await schedules.stop();
      await scheduler.stop();
      await app.close();
      await store.close();
      releaseLock();
      throw err;
    }
  }
  let closing: Promise<void> | null = null;
  return {
    url, store, scheduler, schedules, app, admin_token, internal_token, worker,
    close() {
      closing ??= (async () => {
        if (worker) await worker.stop(0).catch(() => {});
        await schedules.stop();
        await scheduler.stop();
        await app.close();
        await store.close();
        releaseLock();
      })();
      return closing;
    },
  };
}
