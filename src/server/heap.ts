/**
 * V8 heap settings for a process that runs a Gantry server (`gantry up` / `gantry server`, and the
 * benchmark's server). Live data stays small (~20 MB heap with a million queued jobs), but a submit
 * burst lets V8 grow the young generation to 2 × 64 MB and the old space to 4× the live data, and
 * nothing shrinks them while the server is busy: W4 measured 525 MB RSS with the defaults.
 */
import { setFlagsFromString } from 'node:v8';

/** Command-line only (V8 sizes the young generation when the heap is created): 2 × 16 MB at most. */
export const SERVER_NODE_FLAGS = ['--max-semi-space-size=16'];

/**
 * Call first in a server process, with its database URL (any engine: the settings are the same for
 * SQLite and PostgreSQL). Without SERVER_NODE_FLAGS on the command line it replaces the process
 * image with one that has them (same pid, same arguments; where `process.execve` exists, i.e. not
 * on Windows). A flag the user gave on the node command line wins. Then the old space grows by 50%
 * over the live data between full collections instead of up to 4×, and scavenges run on the main
 * thread only. PostgreSQL servers were left
 * out until the W4 latency measured with these settings in seconds there could not be reproduced
 * (docs/notes/issue3d.md).
 */
export function prepareServerProcess(_database: string): void {
  const missing = SERVER_NODE_FLAGS.filter((f) => !process.execArgv.some((a) => a.startsWith(f.split('=')[0]!)));
  if (missing.length > 0 && typeof process.execve === 'function' && process.platform !== 'win32') {
    process.execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)]);
  }
  setFlagsFromString('--heap-growing-percent=50');
  // Young-generation collections on the main thread alone: with the few survivors a server's
  // requests leave, handing the work to helper threads costs more than it saves (W2: median
  // scavenge 0.5 → 0.28 ms), and on a busy machine a scavenge waits for helpers to be scheduled.
  setFlagsFromString('--no-parallel-scavenge');
}
