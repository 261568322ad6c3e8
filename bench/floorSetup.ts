/**
 * What the write-floor scripts (sqlite-floor, sqlite-hot-floor, pg-floor, pg-hot-floor) share:
 * a database holding `jobs` queued no-op handler jobs written by the real store, a raw SQLite
 * connection set up as the server's, wall time per section of a drain, and one statement's time and WAL under
 * EXPLAIN on PostgreSQL.
 */
import Database from 'better-sqlite3';
import type pg from 'pg';
import { openStore } from '../src/store/store.ts';
import { normalizeJobSpec } from '../src/core/jobSpec.ts';

/** Submits `jobs` no-op handler jobs through the store at `url` (SQLite path or postgres:// URL), in batches of 1,000. */
export async function seedQueuedJobs(url: string, jobs: number): Promise<void> {
  const store = await openStore(url);
  for (let i = 0; i < jobs; i += 1000) {
    await store.submitJobs(Array.from({ length: Math.min(1000, jobs - i) }, () => normalizeJobSpec({ handler: 'noop' })), 'bench', Date.now(), { batch: true });
  }
  await store.close();
}

/**
 * A raw connection to a SQLite file with the server's settings (WAL, synchronous=NORMAL, 32 MB
 * page cache). The server checkpoints in a thread of its own; here the WAL just grows.
 */
export function openSqliteLikeServer(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = -32768');
  db.pragma('wal_autocheckpoint = 0');
  return db;
}

export interface WalCost { ms: number; records: number; bytes: number; fpi: number }

/** Runs `text` under EXPLAIN (ANALYZE, WAL): its execution time and the WAL it wrote, whatever the machine load. */
export async function explainWal(c: pg.Client, text: string, values: unknown[]): Promise<WalCost> {
  const r = await c.query({ text: `EXPLAIN (ANALYZE, WAL, FORMAT JSON) ${text}`, values });
  const plan = (r.rows[0] as { 'QUERY PLAN': { Plan: Record<string, number>; 'Execution Time': number }[] })['QUERY PLAN'][0]!;
  return { ms: plan['Execution Time'], records: plan.Plan['WAL Records'] ?? 0, bytes: plan.Plan['WAL Bytes'] ?? 0, fpi: plan.Plan['WAL FPI'] ?? 0 };
}

/** Wall time per section of a drain, per variant: `start(variant)` before a batch, `lap(section)` after each part of it. */
export class SectionTimer {
  readonly #ms = new Map<string, Map<string, number>>();
  #current = new Map<string, number>();
  #mark = 0;

  start(variant: string): void {
    let m = this.#ms.get(variant);
    if (!m) this.#ms.set(variant, (m = new Map()));
    this.#current = m;
    this.#mark = performance.now();
  }

  lap(section: string): void {
    const t = performance.now();
    this.#current.set(section, (this.#current.get(section) ?? 0) + t - this.#mark);
    this.#mark = t;
  }

  /** µs per job of each section of `variant`, in the order they were first timed. */
  perJob(variant: string, jobs: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, ms] of this.#ms.get(variant) ?? []) out[k] = (ms * 1000) / jobs;
    return out;
  }
}
