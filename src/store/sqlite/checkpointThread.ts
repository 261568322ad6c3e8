/**
 * The SQLite checkpointer, in its own thread with its own connection: copies committed WAL
 * frames into the database file (and fsyncs it) every `interval_ms`, so the main thread's
 * commits never stall on a checkpoint. PASSIVE: it never blocks writers or readers.
 *
 * A PASSIVE checkpoint here never catches up with a busy writer (a commit lands while it runs),
 * and the WAL only starts over when a write finds every frame copied — so under steady load the
 * file would grow without end. When the WAL holds more than `restart_frames` frames this thread
 * asks the main thread to finish the job between two of its transactions (see the driver).
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

const { path, interval_ms, restart_frames } = workerData as { path: string; interval_ms: number; restart_frames: number };
const db = new Database(path, { timeout: 1000 });
db.pragma('synchronous = NORMAL');
let waitingForMain = false;
const timer = setInterval(() => {
  if (waitingForMain) return;
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    if (r && r.log >= restart_frames) {
      // Stay out of the main thread's way until it has finished (its checkpoint would find ours busy).
      waitingForMain = true;
      parentPort!.postMessage('restart');
    }
  } catch {
    /* busy or closing: the next tick tries again */
  }
}, interval_ms);
parentPort!.on('message', (m: string) => {
  if (m === 'restarted') waitingForMain = false;
  else if (m === 'stop') {
    clearInterval(timer);
    db.close();
    parentPort!.close();
  }
});
