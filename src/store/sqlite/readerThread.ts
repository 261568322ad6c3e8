/**
 * The SQLite long-read thread: reads that walk much of a table (the queue status's counts over a
 * backlog of a million jobs take 100–200 ms) run here, on a read-only connection of their own, so the
 * main thread's event loop — which hands jobs to workers — never waits for them. In WAL mode each
 * statement reads a committed snapshot: every transaction the main thread committed before it started.
 * Messages: `{ id, sql, params }` in, `{ id, rows }` or `{ id, error }` out; `'stop'` closes it.
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

const { path, busy_timeout_ms } = workerData as { path: string; busy_timeout_ms: number };
const db = new Database(path, { readonly: true, timeout: busy_timeout_ms });
const statements = new Map<string, Database.Statement>();

parentPort!.on('message', (m: { id: number; sql: string; params: unknown[] } | 'stop') => {
  if (m === 'stop') {
    db.close();
    parentPort!.close();
    return;
  }
  try {
    let s = statements.get(m.sql);
    if (!s) statements.set(m.sql, (s = db.prepare(m.sql)));
    parentPort!.postMessage({ id: m.id, rows: s.all(...m.params) });
  } catch (err) {
    parentPort!.postMessage({ id: m.id, error: { message: (err as Error).message, code: (err as { code?: unknown }).code } });
  }
});
