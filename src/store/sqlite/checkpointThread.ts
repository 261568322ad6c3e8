/**
 * The SQLite checkpointer, in its own thread with its own connection: copies committed WAL
 * frames into the database file (and fsyncs it) every `interval_ms`, so the main thread's
 * commits never stall on a checkpoint. PASSIVE: it never blocks writers or readers.
 *
 * The WAL only starts over when a write finds every frame copied, i.e. after a checkpoint that no
 * commit overlapped. A tick every `interval_ms` copies a few hundred frames and takes ~10 ms: under
 * steady load a commit always lands meanwhile, so the file would grow without end. When the WAL
 * holds more than `restart_frames` frames this thread tries again at short intervals: each try has
 * only the frames of the last few milliseconds to copy, so it fits in a pause between two bursts of
 * commits (a job's transactions come together, then nothing until the next job) and the next
 * write starts the WAL over without anyone waiting. Only if `quick_tries` tries in a row were all
 * overlapped does it ask the main thread to finish the job between two of its transactions (which
 * stops its writes for a checkpoint's length; see the driver).
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

const { path, interval_ms, restart_frames, quick_ms, quick_tries } = workerData as {
  path: string; interval_ms: number; restart_frames: number; quick_ms: number; quick_tries: number;
};
const db = new Database(path, { timeout: 1000 });
db.pragma('synchronous = NORMAL');
let waitingForMain = false;
let stopped = false;
let timer: NodeJS.Timeout | null = null;
/** Tries since the WAL passed the limit, and the WAL's frame count at the last one. */
let tries = 0;
let lastLog = -1;

function tick(): void {
  timer = null;
  let next = interval_ms;
  if (!waitingForMain) {
    try {
      const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      if (!r || r.log < restart_frames || (r.log === lastLog && r.checkpointed === r.log)) {
        // Under the limit, or every frame copied and no commit since the last try: the next write starts the WAL over.
        tries = 0;
        lastLog = -1;
      } else if (tries < quick_tries) {
        tries++;
        lastLog = r.log;
        next = quick_ms;
      } else {
        tries = 0;
        lastLog = -1;
        // Stay out of the main thread's way until it has finished (its checkpoint would find ours busy).
        waitingForMain = true;
        parentPort!.postMessage('restart');
      }
    } catch {
      /* busy or closing: the next tick tries again */
    }
  }
  if (!stopped) timer = setTimeout(tick, next);
}
timer = setTimeout(tick, interval_ms);

parentPort!.on('message', (m: string) => {
  if (m === 'restarted') waitingForMain = false;
  else if (m === 'stop') {
    stopped = true;
    if (timer) clearTimeout(timer);
    db.close();
    parentPort!.close();
  }
});
