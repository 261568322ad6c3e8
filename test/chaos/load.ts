/**
 * The load run: one `gantry server`, one SDK Worker draining, and a second process submitting
 * jobs at a fixed rate (loadClient.ts). Reports errors, achieved rate, p50/p99 submit latency and
 * the server's RSS at the start and the end; afterwards every accepted job must be COMPLETED.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { openStore } from '../../src/store/store.ts';
import { freePort, sdkProc, serverProc } from './procs.ts';
import { rawDb } from './invariants.ts';

const LOAD_CLIENT = fileURLToPath(new URL('./loadClient.ts', import.meta.url));

export interface LoadReport {
  rate: number;
  seconds: number;
  sent: number;
  ok: number;
  errors: number;
  error_samples: string[];
  achieved_rate: number;
  p50_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  rss_start_mb: number | null;
  rss_end_mb: number | null;
  rss_peak_mb: number | null;
  jobs_in_store: number;
  completed: number;
  drain_s: number;
}

export async function runLoad(o: { database: string; dir: string; rate: number; seconds: number; drainTimeoutMs: number }): Promise<LoadReport> {
  const setup = await openStore(o.database);
  const token = (await setup.createToken('load', 'admin', null)).token;
  await setup.close();
  const server = serverProc('load-server', { database: o.database, port: await freePort(), dataDir: join(o.dir, 'load-server') });
  const worker = sdkProc('load-worker', server.url, token, join(o.dir, 'load-marker.txt'), 256, 512);
  const db = await rawDb(o.database);
  try {
    await server.start();
    await worker.start();
    await sleep(500);
    const mb = (b: number | null) => (b === null ? null : Math.round(b / 1048576));
    const rss_start_mb = mb(server.rss());
    let peak = rss_start_mb ?? 0;
    const sampler = setInterval(() => (peak = Math.max(peak, mb(server.rss()) ?? 0)), 500);
    const child = spawn(process.execPath, [LOAD_CLIENT, server.url, token, String(o.rate), String(o.seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => child.on('exit', r));
    const rss_end_mb = mb(server.rss());
    clearInterval(sampler);
    const res = JSON.parse(out.trim().split('\n').at(-1)!) as Omit<LoadReport, 'rate' | 'seconds' | 'rss_start_mb' | 'rss_end_mb' | 'rss_peak_mb' | 'jobs_in_store' | 'completed' | 'drain_s'>;
    const t0 = Date.now();
    let jobs = 0;
    let completed = 0;
    for (;;) {
      const [row] = await db.query<{ n: number; c: number }>(`SELECT COUNT(*) AS n, SUM(CASE WHEN state = 'COMPLETED' THEN 1 ELSE 0 END) AS c FROM jobs`);
      jobs = Number(row?.n ?? 0);
      completed = Number(row?.c ?? 0);
      if (completed >= jobs || Date.now() - t0 > o.drainTimeoutMs) break;
      await sleep(250);
    }
    return { rate: o.rate, seconds: o.seconds, ...res, rss_start_mb, rss_end_mb, rss_peak_mb: Math.max(peak, rss_end_mb ?? 0), jobs_in_store: jobs, completed, drain_s: (Date.now() - t0) / 1000 };
  } finally {
    await worker.kill('SIGKILL');
    await server.kill('SIGTERM');
    await db.close();
  }
}

export function formatLoad(r: LoadReport): string {
  return [
    `load: ${r.sent} submits at a target of ${r.rate}/s for ${r.seconds} s → achieved ${r.achieved_rate.toFixed(0)}/s; ${r.ok} accepted, ${r.errors} errors${r.error_samples.length ? ` (${r.error_samples.join('; ')})` : ''}`,
    `submit latency p50 ${r.p50_ms?.toFixed(1)} ms, p99 ${r.p99_ms?.toFixed(1)} ms, max ${r.max_ms?.toFixed(1)} ms; server RSS start ${r.rss_start_mb} MB, end ${r.rss_end_mb} MB, peak ${r.rss_peak_mb} MB`,
    `store: ${r.jobs_in_store} jobs, ${r.completed} COMPLETED (${(r.drain_s).toFixed(1)} s to drain after the last submit)`,
  ].join('\n');
}
