import type { WorkerInfo } from '../../core/types.ts';
import type { SqlExecutor } from '../driver.ts';
import { workerFromRow } from '../rows.ts';

/** Registers a worker or, when the id is known (a restarted agent), refreshes its capacity and brings it online. */
export async function registerWorker(tx: SqlExecutor, w: Omit<WorkerInfo, 'registered_at' | 'last_heartbeat' | 'state'>, now: number): Promise<WorkerInfo> {
  const existing = await tx.query('SELECT id FROM workers WHERE id = ?', [w.id]);
  const vals = [w.name, w.kind, JSON.stringify(w.handlers), w.capacity.cpu_cores, w.capacity.memory_gb, w.capacity.gpu_count,
    w.capacity.slots, JSON.stringify(w.labels)];
  if (existing.length) {
    await tx.run(
      `UPDATE workers SET name = ?, kind = ?, handlers = ?, cpu_cores = ?, memory_gb = ?, gpu_count = ?, slots = ?, labels = ?,
       state = 'online', last_heartbeat = ? WHERE id = ?`,
      [...vals, now, w.id],
    );
  } else {
    await tx.run(
      `INSERT INTO workers (id, name, kind, handlers, cpu_cores, memory_gb, gpu_count, slots, labels, state, registered_at, last_heartbeat)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'online', ?, ?)`,
      [w.id, ...vals, now, now],
    );
  }
  return workerFromRow((await tx.query('SELECT * FROM workers WHERE id = ?', [w.id]))[0]!);
}

/** Renews a worker's lease. Returns false if the worker is unknown or was declared lost (it must register again). */
export async function heartbeat(db: SqlExecutor, id: string, now: number): Promise<boolean> {
  return (await db.run(`UPDATE workers SET last_heartbeat = ? WHERE id = ? AND state != 'offline'`, [now, id])) === 1;
}

export async function listWorkers(db: SqlExecutor, includeOffline: boolean): Promise<WorkerInfo[]> {
  const rows = await db.query(
    includeOffline ? 'SELECT * FROM workers ORDER BY registered_at' : `SELECT * FROM workers WHERE state != 'offline' ORDER BY registered_at`,
  );
  return rows.map(workerFromRow);
}

export async function getWorker(db: SqlExecutor, id: string): Promise<WorkerInfo | null> {
  const r = (await db.query('SELECT * FROM workers WHERE id = ?', [id]))[0];
  return r ? workerFromRow(r) : null;
}

/** online ↔ draining (no new work; running jobs finish), or offline when a worker leaves cleanly. */
export async function setWorkerState(db: SqlExecutor, id: string, state: WorkerInfo['state']): Promise<boolean> {
  return (await db.run('UPDATE workers SET state = ? WHERE id = ?', [state, id])) === 1;
}
