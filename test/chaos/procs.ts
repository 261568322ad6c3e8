/**
 * Real Gantry processes for the chaos, load and fault tests: `gantry server`, `gantry worker`
 * agents and SDK handler workers, each a child process that can be SIGKILLed and restarted on
 * the same port / with the same settings. Loopback only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const GANTRY = fileURLToPath(new URL('../../bin/gantry.js', import.meta.url));
const SDK_WORKER = fileURLToPath(new URL('./sdkWorker.ts', import.meta.url));

export type ProcKind = 'server' | 'agent' | 'sdk';

/** One restartable process. `id` is the worker id of the current incarnation (workers only). */
export interface Proc {
  kind: ProcKind;
  name: string;
  child: ChildProcess | null;
  id: string | null;
  /** Every worker id this slot has had (one per start). */
  ids: string[];
  start(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  alive(): boolean;
  /** How many times a SIGTERM did not end the process within 10 s (it was SIGKILLed then). */
  stuck_on_stop: number;
  /** Resident memory of the current process in bytes (Linux /proc), or null. */
  rss(): number | null;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

function rssOf(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Starts `argv` and resolves once stdout matches `ready` (its first group is the worker id, if any). */
function launch(argv: string[], env: NodeJS.ProcessEnv, ready: RegExp, what: string, timeoutMs = 30_000): Promise<{ child: ChildProcess; id: string | null }> {
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not start within ${timeoutMs} ms: ${err.slice(-500)}`));
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        out = '';
        resolve({ child, id: m[1] ?? null });
      }
      if (out.length > 100_000) out = out.slice(-10_000);
    });
    child.stderr!.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
      if (process.env.CHAOS_VERBOSE) process.stderr.write(`[${what}] ${d.toString()}`);
    });
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited during start (${code ?? sig}): ${err.slice(-500)}`));
    });
  });
}

function restartable(kind: ProcKind, name: string, run: () => Promise<{ child: ChildProcess; id: string | null }>): Proc {
  const p: Proc = {
    kind, name, child: null, id: null, ids: [], stuck_on_stop: 0,
    async start() {
      const { child, id } = await run();
      child.on('exit', () => {
        if (p.child === child) p.child = null;
      });
      p.child = child;
      p.id = id;
      if (id) p.ids.push(id);
    },
    async kill(signal = 'SIGKILL') {
      const c = p.child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill(signal);
      // A clean stop gets 10 s; then it is killed (and said so), so a hung shutdown never hangs the run.
      const t = signal === 'SIGKILL' ? null : setTimeout(() => {
        p.stuck_on_stop++;
        c.kill('SIGKILL');
      }, 10_000);
      await gone;
      if (t) clearTimeout(t);
    },
    alive: () => p.child !== null && p.child.exitCode === null && p.child.signalCode === null,
    rss: () => rssOf(p.child?.pid),
  };
  return p;
}

export interface ServerProcOptions {
  database: string;
  port: number;
  dataDir: string;
  leaseTimeoutMs?: number;
}

/** `gantry server` on a fixed port (so workers find it again after a restart). */
export function serverProc(name: string, o: ServerProcOptions): Proc & { url: string } {
  mkdirSync(o.dataDir, { recursive: true });
  const env = { ...process.env, GANTRY_LEASE_TIMEOUT_MS: String(o.leaseTimeoutMs ?? 5000), GANTRY_LOG_LEVEL: 'error' };
  const argv = [GANTRY, '--data-dir', o.dataDir, 'server', '--database', o.database, '--port', String(o.port), '--host', '127.0.0.1'];
  return Object.assign(restartable('server', name, () => launch(argv, env, /Stop with Ctrl-C/, `server ${name}`)), { url: `http://127.0.0.1:${o.port}` });
}

/** `gantry worker` (process executor). */
export function agentProc(name: string, server: string, token: string, slots = 16): Proc {
  const argv = [GANTRY, '--server', server, '--token', token, 'worker', '--cpu', '64', '--memory-gb', '64', '--gpus', '0', '--slots', String(slots), '--name', name, '--grace', '1'];
  return restartable('agent', name, () => launch(argv, process.env, /Gantry worker (wkr_\S+) connected/, `worker ${name}`));
}

/** An SDK Worker process running the chaos handlers (see sdkWorker.ts). */
export function sdkProc(name: string, server: string, token: string, marker: string, concurrency = 32, prefetch = 32): Proc {
  const argv = [SDK_WORKER, server, token, marker, String(concurrency), String(prefetch), name];
  return restartable('sdk', name, () => launch(argv, process.env, /ready (wkr_\S+)/, `sdk worker ${name}`));
}
