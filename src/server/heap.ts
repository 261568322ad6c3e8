/**
 * V8 heap settings for a process that runs a Gantry server (`gantry up` / `gantry server`, and the
 * benchmark's server). Live data stays small (~20 MB heap with a million queued jobs), but a submit
 * burst lets V8 grow the young generation to 2 × 64 MB and the old space to 4× the live data, and
 * nothing shrinks them while the server is busy: W4 measured 525 MB RSS with the defaults.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { isPostgresUrl } from '../store/driver.ts';

/** Command-line only (V8 sizes the young generation when the heap is created): 2 × 16 MB at most. */
export const SERVER_NODE_FLAGS = ['--max-semi-space-size=16'];

/**
 * Call first in a server process, with its database URL (any engine: the settings are the same for
 * SQLite and PostgreSQL). Without SERVER_NODE_FLAGS on the command line it replaces the process
 * image with one that has them (same pid, same arguments; where `process.execve` exists, i.e. not
 * on Windows). A flag the user gave on the node command line wins. Then the old space grows by 50%
 * over the live data between full collections instead of up to 4×, and scavenges run on the main
 * thread only. On SQLite, V8's helper threads also run at the lowest priority (see
 * V8_WORKER_NICE). PostgreSQL servers were left out of the heap settings until the W4 latency
 * measured with them in seconds there could not be reproduced (docs/notes/issue3d.md).
 */
export function prepareServerProcess(database: string): void {
  const missing = SERVER_NODE_FLAGS.filter((f) => !process.execArgv.some((a) => a.startsWith(f.split('=')[0]!)));
  if (missing.length > 0 && typeof process.execve === 'function' && process.platform !== 'win32') {
    process.execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)]);
  }
  setFlagsFromString('--heap-growing-percent=50');
  // Young-generation collections on the main thread alone: with the few survivors a server's
  // requests leave, handing the work to helper threads costs more than it saves (W2: median
  // scavenge 0.5 → 0.28 ms), and on a busy machine a scavenge waits for helpers to be scheduled.
  setFlagsFromString('--no-parallel-scavenge');
  if (!isPostgresUrl(database)) lowerV8WorkerPriority();
}

/**
 * The nice value of V8's background threads (concurrent compilation, marking and sweeping). At the
 * main thread's own 0, a job the main thread posts wakes a helper on the main thread's CPU, and the
 * kernel lets the helper take that CPU for 1–5 ms, even with the other CPU idle: on a 2-vCPU VM that was
 * 20 of the server's 28 longest waits in W2's 10 s (W2 SQLite p99 2.0–2.8 ms; docs/notes/issue3y.md).
 * Weighted this low a helper does not take the CPU from a running main thread: it runs on an idle
 * CPU, or when the main thread waits for the next request. Under full load it gets less CPU: W1's
 * drain measured the same, but a PostgreSQL server filling W4's million jobs — both CPUs busy with
 * it and the database's backends — ended at 290–323 MB RSS against 262–288 (five runs each, the
 * target is 300), its marking behind, and its W2 gained nothing measurable; so SQLite servers only.
 */
const V8_WORKER_NICE = 19;

/**
 * Lowers this process's V8 helper threads to V8_WORKER_NICE (Linux: a nice value belongs to one
 * thread, and /proc names V8's helpers `V8Worker`; node starts them with the process). Elsewhere,
 * or where /proc cannot be read, nothing changes.
 */
function lowerV8WorkerPriority(): void {
  if (process.platform !== 'linux') return;
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return;
  }
  for (const tid of tids) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() !== 'V8Worker') continue;
      setPriority(Number(tid), V8_WORKER_NICE);
    } catch {
      /* a thread that ended meanwhile */
    }
  }
}
