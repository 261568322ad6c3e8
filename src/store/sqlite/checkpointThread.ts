/**
 * The SQLite checkpointer, in its own thread with its own connection: copies committed WAL
 * frames into the database file (and fsyncs it) every `interval_ms`, so the main thread's
 * commits never stall on a checkpoint. PASSIVE: it never blocks writers or readers.
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

const { path, interval_ms } = workerData as { path: string; interval_ms: number };
const db = new Database(path, { timeout: 1000 });
db.pragma('synchronous = NORMAL');
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    /* busy or closing: the next tick tries again */
  }
}, interval_ms);
parentPort!.on('message', (m: string) => {
  if (m === 'stop') {
    clearInterval(timer);
    db.close();
    parentPort!.close();
  }
});
