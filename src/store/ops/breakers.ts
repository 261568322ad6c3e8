import { afterAttempt, breakerKeysOf, closedBreaker, type Breaker, type BreakerOptions, type BreakerState } from '../../core/breakers.ts';
import { idsIn, type Row, type SqlExecutor } from '../driver.ts';

const numOrNull = (v: unknown) => (v === null || v === undefined ? null : Number(v));

function breakerFromRow(r: Row): Breaker {
  return {
    key: String(r.key), state: r.state as BreakerState, consecutive_failures: Number(r.consecutive_failures),
    opened_at: numOrNull(r.opened_at), probe_at: numOrNull(r.probe_at), probe_job_id: r.probe_job_id === null ? null : String(r.probe_job_id),
    last_error: r.last_error === null ? null : String(r.last_error), last_failure_at: numOrNull(r.last_failure_at), updated_at: Number(r.updated_at),
    ...(r.probe_live === undefined ? {} : { probe_live: Number(r.probe_live) === 1 }),
  };
}

/** Every breaker, or only those not closed (`heldOnly`), by key; half-open ones say whether their probe job is still on a worker. */
export async function listBreakers(db: SqlExecutor, heldOnly = false): Promise<Breaker[]> {
  const rows = await db.query(
    `SELECT b.*, CASE WHEN j.state IN ('SCHEDULED', 'RUNNING', 'PAUSED') THEN 1 ELSE 0 END AS probe_live
     FROM breakers b LEFT JOIN jobs j ON j.id = b.probe_job_id ${heldOnly ? "WHERE b.state != 'closed'" : ''} ORDER BY b.key`,
  );
  return rows.map(breakerFromRow);
}

/** A breaker a success would change: not closed, or with failures on record (none: successes change nothing). */
export const DIRTY_BREAKER = `state != 'closed' OR consecutive_failures > 0`;

/** How one job's attempt ended, as a breaker sees it. */
export interface SettledAttempt {
  job_id: string;
  ok: boolean;
  error: string | null;
}

/**
 * Feeds attempt ends into the breakers of their jobs (see src/core/breakers.ts), in the report's
 * transaction. Successes close breakers that are not already clean in one statement (skipped when
 * no breaker has a failure on record); failures lock the rows (the `UPDATE … SET key = key` takes a row lock on
 * PostgreSQL; SQLite has one writer) and step the state machine in order.
 * Params: settled — attempt ends in report order; opts — threshold and open time.
 */
export async function recordBreakerOutcomes(tx: SqlExecutor, settled: readonly SettledAttempt[], opts: BreakerOptions, now: number): Promise<void> {
  if (opts.threshold <= 0 || settled.length === 0) return;
  // The common case — only successes, every breaker clean — costs one look at a tiny table.
  if (settled.every((s) => s.ok)) {
    const dirty = await tx.query(`SELECT key FROM breakers WHERE ${DIRTY_BREAKER} LIMIT 1`);
    if (dirty.length === 0) return;
  }
  const sel = idsIn(tx, 'id', [...new Set(settled.map((s) => s.job_id))]);
  const jobs = new Map(
    (await tx.query(`SELECT id, handler, template FROM jobs WHERE ${sel.sql}`, [sel.param])).map((r) => [
      String(r.id), { handler: r.handler === null ? null : String(r.handler), template: r.template == null ? null : String(r.template) },
    ]),
  );
  const steps = settled.flatMap((s) => {
    const j = jobs.get(s.job_id);
    return j ? breakerKeysOf(j, opts).map((key) => ({ key, ...s })) : [];
  });
  const failing = [...new Set(steps.filter((s) => !s.ok).map((s) => s.key))];
  if (failing.length === 0) {
    const ok = [...new Set(steps.map((s) => s.key))];
    if (ok.length > 0) {
      const keys = idsIn(tx, 'key', ok);
      await tx.run(
        `UPDATE breakers SET state = 'closed', consecutive_failures = 0, opened_at = NULL, probe_at = NULL, probe_job_id = NULL, updated_at = ?
         WHERE ${keys.sql} AND (state != 'closed' OR consecutive_failures > 0)`,
        [now, keys.param],
      );
    }
    return;
  }
  const touched = [...new Set(steps.map((s) => s.key))];
  for (const key of failing) {
    await tx.run(`INSERT INTO breakers (key, state, consecutive_failures, updated_at) VALUES (?, 'closed', 0, ?) ON CONFLICT (key) DO NOTHING`, [key, now]);
  }
  const keys = idsIn(tx, 'key', touched);
  await tx.run(`UPDATE breakers SET key = key WHERE ${keys.sql}`, [keys.param]);
  const current = new Map((await tx.query(`SELECT * FROM breakers WHERE ${keys.sql}`, [keys.param])).map((r) => [String(r.key), breakerFromRow(r)]));
  const changed = new Map<string, Breaker>();
  for (const s of steps) {
    const b = changed.get(s.key) ?? current.get(s.key);
    if (!b) continue; // a success for a key that never failed: nothing to record
    changed.set(s.key, afterAttempt(b, s.ok, s.error, opts, now));
  }
  for (const b of changed.values()) await writeBreaker(tx, b);
}

async function writeBreaker(tx: SqlExecutor, b: Breaker): Promise<void> {
  await tx.run(
    `UPDATE breakers SET state = ?, consecutive_failures = ?, opened_at = ?, probe_at = ?, probe_job_id = ?, last_error = ?, last_failure_at = ?, updated_at = ? WHERE key = ?`,
    [b.state, b.consecutive_failures, b.opened_at, b.probe_at, b.probe_job_id, b.last_error, b.last_failure_at, b.updated_at, b.key],
  );
}

/** The scheduler let a probe job through: the breaker is half-open until it reports (or `open_ms` passes, then another probe may go). */
export async function startProbes(tx: SqlExecutor, probes: readonly { key: string; job_id: string }[], openMs: number, now: number): Promise<void> {
  for (const p of probes) {
    await tx.run(`UPDATE breakers SET state = 'half_open', probe_job_id = ?, probe_at = ?, updated_at = ? WHERE key = ? AND state != 'closed'`, [p.job_id, now + openMs, now, p.key]);
  }
}

/** Closes a breaker by hand. Returns the breaker afterwards, or null for a key never seen. */
export async function resetBreaker(tx: SqlExecutor, key: string, now: number): Promise<Breaker | null> {
  const n = await tx.run(
    `UPDATE breakers SET state = 'closed', consecutive_failures = 0, opened_at = NULL, probe_at = NULL, probe_job_id = NULL, updated_at = ? WHERE key = ?`,
    [now, key],
  );
  if (n === 0) return null;
  const r = (await tx.query('SELECT * FROM breakers WHERE key = ?', [key]))[0];
  return r ? breakerFromRow(r) : closedBreaker(key, now);
}
