import Database from 'better-sqlite3';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { dirname } from 'node:path';
import type { ColumnType, DriverCapabilities, Row, NotifyReach, SqlDriver, SqlExecutor, SqlReader, SqlValue } from '../driver.ts';

const MULTI_ROWS = 64;

function sqliteRecordset(columns: readonly (readonly [string, ColumnType])[]): string {
  return `(SELECT ${columns.map(([c]) => `json_extract(value, '$.${c}') AS ${c}`).join(', ')} FROM json_each(?)) AS v`;
}
function sqliteInList(column: string): string {
  return `${column} IN (SELECT value FROM json_each(?))`;
}
import { GantryError } from '../../core/errors.ts';
import { PROFILE } from '../sqlProfile.ts';

const BUSY_TIMEOUT_MS = 5000;
/**
 * WAL size past which the WAL is made to start over (`GANTRY_SQLITE_WAL_MAX_MB`, default 64; see
 * checkpointThread.ts); also the size the file is cut back to then.
 */
function walMaxBytes(): number {
  const raw = process.env.GANTRY_SQLITE_WAL_MAX_MB;
  const mb = raw === undefined || raw === '' ? 64 : Number(raw);
  if (!Number.isFinite(mb) || mb <= 0) throw new Error(`GANTRY_SQLITE_WAL_MAX_MB must be a positive number of megabytes, got '${raw}'`);
  return Math.round(mb * 1024 * 1024);
}
/**
 * Past the WAL limit the checkpoint thread tries every QUICK_CHECKPOINT_MS to copy the WAL whole
 * while no commit lands (each try copies only the last few milliseconds' frames: mostly 1–3 ms with its
 * two fsyncs), up to QUICK_CHECKPOINT_TRIES times, before the main thread stops its writes for it.
 */
const QUICK_CHECKPOINT_MS = 3;
const QUICK_CHECKPOINT_TRIES = 30;
/** How long a starting server waits for another one's migrations on the same file. */
const MIGRATION_LOCK_WAIT_MS = 60_000;

/**
 * `SqlDriver.longReads` on SQLite: statements sent to readerThread.ts, started on the first read
 * (most stores never make one) and kept referenced only while a read is out, so an idle one never
 * keeps the process alive.
 */
class LongReadThread implements SqlReader {
  readonly #path: string;
  #thread: Worker | null = null;
  #next = 0;
  readonly #pending = new Map<number, { resolve(rows: unknown[]): void; reject(err: Error): void }>();

  constructor(path: string) {
    this.#path = path;
  }

  query<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    const t = this.#thread ?? this.#start();
    const id = ++this.#next;
    if (this.#pending.size === 0) t.ref();
    return new Promise<T[]>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (rows: unknown[]) => void, reject });
      t.postMessage({ id, sql, params });
    });
  }

  #start(): Worker {
    const t = new Worker(new URL('./readerThread.ts', import.meta.url), { workerData: { path: this.#path, busy_timeout_ms: BUSY_TIMEOUT_MS } });
    t.on('message', (m: { id: number; rows?: unknown[]; error?: { message: string; code?: unknown } }) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#settle(m.id);
      if (m.error) p.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
      else p.resolve(m.rows!);
    });
    // A thread that failed to open or died: its reads fail, and the next read starts a new thread.
    const lost = (err: Error) => {
      if (this.#thread !== t) return;
      this.#thread = null;
      for (const [id, p] of this.#pending) (this.#pending.delete(id), p.reject(err));
    };
    t.on('error', lost);
    t.on('exit', (code) => lost(new GantryError('STORE_UNAVAILABLE', `SQLite reader thread exited (${code})`)));
    t.unref();
    return (this.#thread = t);
  }

  #settle(id: number): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#thread?.unref();
  }

  async close(): Promise<void> {
    const t = this.#thread;
    if (!t) return;
    this.#thread = null;
    for (const [id, p] of this.#pending) (this.#pending.delete(id), p.reject(new GantryError('STORE_UNAVAILABLE', 'store closed')));
    t.ref();
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => void t.terminate(), 2000);
      t.once('exit', () => (clearTimeout(kill), resolve()));
      t.postMessage('stop');
    });
  }
}

/**
 * SQLite through better-sqlite3, WAL mode with synchronous=NORMAL: a committed transaction
 * survives a process crash; a power loss may lose the last few transactions (never corrupts).
 * One connection; all statements are synchronous, and an async transaction holds a lock
 * so no other statement interleaves with it.
 */
export class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  readonly serialWrites = true;
  readonly capabilities: DriverCapabilities = { skipLocked: false, listenNotify: false, multiProcess: false, roundTrips: false };
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();
  readonly #bus = new EventEmitter();
  #lock: Promise<void> | null = null;
  #checkpointer: Worker | null = null;
  /** Off the event loop (a file's other connection); an in-memory database has no other connection, so it reads on this one. */
  readonly longReads: SqlReader;
  readonly #longReadThread: LongReadThread | null;
  #restartingWal = false;
  #mainThreadCheckpoints = 0;
  readonly #direct: SqlExecutor;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const walMax = walMaxBytes();
    try {
      this.#db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = NORMAL');
      if (path !== ':memory:') {
        // Checkpoints run in a thread of their own (see checkpointThread.ts), not inside our commits.
        this.#db.pragma('wal_autocheckpoint = 0');
        this.#db.pragma(`journal_size_limit = ${walMax}`);
        const pageSize = this.#db.pragma('page_size', { simple: true }) as number;
        this.#checkpointer = new Worker(new URL('./checkpointThread.ts', import.meta.url), {
          workerData: {
            path, interval_ms: 200, restart_frames: Math.max(1, Math.floor(walMax / pageSize)), quick_ms: QUICK_CHECKPOINT_MS, quick_tries: QUICK_CHECKPOINT_TRIES,
          },
        });
        this.#checkpointer.on('message', (m) => {
          if (m === 'restart') void this.#restartWal();
        });
        this.#checkpointer.unref();
      }
      this.#db.pragma('foreign_keys = ON');
      // The default 2 MB page cache thrashes once the queue holds tens of thousands of jobs; 32 MB
      // holds the hot index pages (queue heads, active jobs) even with a million queued jobs.
      this.#db.pragma('cache_size = -32768');
      this.#db.pragma('temp_store = MEMORY');
    } catch (err) {
      throw new GantryError('STORE_UNAVAILABLE', `cannot open SQLite database ${path}: ${(err as Error).message}`);
    }
    this.#bus.setMaxListeners(0);
    this.#longReadThread = path === ':memory:' ? null : new LongReadThread(path);
    this.longReads = this.#longReadThread ?? this;
    const self = this;
    this.#direct = {
      query: async <T>(sql: string, params: readonly SqlValue[] = []) => self.#all<T>(sql, params),
      run: async (sql: string, params: readonly SqlValue[] = []) => self.#run(sql, params),
      // At once: statements run in the order issued, and its error is thrown to the caller here.
      later: (sql: string, params: readonly SqlValue[] = []) => void self.#run(sql, params),
      insertMany: async (table, columns, rows) => self.#insertMany(table, columns, rows),
      recordset: sqliteRecordset,
      inList: sqliteInList,
      serialWrites: true,
    };
  }

  /**
   * Copy the frames the checkpoint thread could not (written while it ran) between two of our
   * transactions: we are the only writer, so this checkpoint copies every frame, and the next
   * write starts the WAL over (cut back to `journal_size_limit`). Costs the copy of a few pages and
   * two fsyncs on the main thread (4–11 ms under W2 on the benchmark machine, every job arriving
   * meanwhile waits): only when the thread's own tries found no pause between our commits.
   */
  async #restartWal(): Promise<void> {
    if (this.#restartingWal) return;
    this.#restartingWal = true;
    try {
      while (this.#lock) await this.#lock;
      if (this.#db.open && !this.#db.inTransaction) {
        this.#mainThreadCheckpoints++;
        this.#db.pragma('wal_checkpoint(PASSIVE)');
      }
    } catch {
      /* another connection holds the file: the thread asks again on its next tick */
    } finally {
      this.#restartingWal = false;
      this.#checkpointer?.postMessage('restarted');
    }
  }

  /** How many times the main thread has stopped its writes to checkpoint the WAL whole (see #restartWal). */
  get mainThreadCheckpoints(): number {
    return this.#mainThreadCheckpoints;
  }

  #stmt(sql: string): Database.Statement {
    let s = this.#statements.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  #all<T>(sql: string, params: readonly SqlValue[]): T[] {
    const s = this.#stmt(sql);
    if (PROFILE) {
      const t0 = performance.now();
      const out = (s.reader ? s.all(...params) : (s.run(...params), [])) as T[];
      PROFILE.add(sql, performance.now() - t0);
      return out;
    }
    return (s.reader ? s.all(...params) : (s.run(...params), [])) as T[];
  }

  #run(sql: string, params: readonly SqlValue[]): number {
    if (PROFILE) {
      const t0 = performance.now();
      const n = this.#stmt(sql).run(...params).changes;
      PROFILE.add(sql, performance.now() - t0);
      return n;
    }
    return this.#stmt(sql).run(...params).changes;
  }

  #insertMany(table: string, columns: readonly string[], rows: readonly SqlValue[][]): void {
    if (rows.length === 0) return;
    // Multi-row statements of up to 64 rows: fewer statement steps than one row at a time.
    const one = `(${columns.map(() => '?').join(', ')})`;
    const t0 = PROFILE ? performance.now() : 0;
    let i = 0;
    if (rows.length >= MULTI_ROWS) {
      const s = this.#stmt(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${Array(MULTI_ROWS).fill(one).join(', ')}`);
      // One parameter array for every chunk, filled in place.
      const params: SqlValue[] = new Array(MULTI_ROWS * columns.length);
      for (; i + MULTI_ROWS <= rows.length; i += MULTI_ROWS) {
        let p = 0;
        for (let r = i; r < i + MULTI_ROWS; r++) {
          const row = rows[r]!;
          for (let c = 0; c < row.length; c++) params[p++] = row[c]!;
        }
        s.run(...params);
      }
    }
    if (i < rows.length) {
      const s = this.#stmt(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${one}`);
      for (; i < rows.length; i++) s.run(...rows[i]!);
    }
    if (PROFILE) PROFILE.add(`INSERT INTO ${table}`, performance.now() - t0);
  }

  async query<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    while (this.#lock) await this.#lock;
    return this.#all<T>(sql, params);
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    while (this.#lock) await this.#lock;
    return this.#run(sql, params);
  }

  later(): void {
    throw new Error('SqlExecutor.later is for statements in a transaction');
  }

  recordset(columns: readonly (readonly [string, ColumnType])[]): string {
    return sqliteRecordset(columns);
  }

  inList(column: string): string {
    return sqliteInList(column);
  }

  async insertMany(table: string, columns: readonly string[], rows: readonly SqlValue[][]): Promise<void> {
    await this.transaction((tx) => tx.insertMany(table, columns, rows));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#transaction(fn, false);
  }

  async #transaction<T>(fn: (tx: SqlExecutor) => Promise<T>, waitForOthers: boolean): Promise<T> {
    while (this.#lock) await this.#lock;
    let release!: () => void;
    this.#lock = new Promise<void>((r) => (release = r));
    try {
      if (waitForOthers) await this.#beginWhenFree();
      else this.#db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      this.#lock = null;
      release();
      throw err;
    }
    try {
      const out = await fn(this.#direct);
      const t0 = PROFILE ? performance.now() : 0;
      this.#db.exec('COMMIT');
      if (PROFILE) PROFILE.add('COMMIT', performance.now() - t0);
      return out;
    } catch (err) {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
      throw err;
    } finally {
      this.#lock = null;
      release();
    }
  }

  withMigrationLock<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#transaction(fn, true);
  }

  /**
   * BEGIN IMMEDIATE that waits on timers, not in the busy handler: another connection to the
   * file may hold the write lock while it migrates — possibly a second store in this very
   * process, which could never finish while the busy handler blocks the event loop.
   */
  async #beginWhenFree(): Promise<void> {
    const deadline = Date.now() + MIGRATION_LOCK_WAIT_MS;
    this.#db.pragma('busy_timeout = 0');
    try {
      for (;;) {
        try {
          this.#db.exec('BEGIN IMMEDIATE');
          return;
        } catch (err) {
          if ((err as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    } finally {
      this.#db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
  }

  /** One process per SQLite file: `elsewhere` is nobody. */
  notify(channel: string, payload: string, reach: NotifyReach = 'everywhere'): void {
    if (reach !== 'elsewhere') this.#bus.emit(channel, payload);
  }

  listen(channel: string, fn: (payload: string) => void): () => void {
    this.#bus.on(channel, fn);
    return () => this.#bus.off(channel, fn);
  }

  async tryLeadership(): Promise<boolean> {
    return true;
  }
  readonly leading = true;
  /** One server per SQLite file: nobody to hand over to. */
  async releaseLeadership(): Promise<void> {}

  async close(): Promise<void> {
    this.#bus.removeAllListeners();
    await this.#longReadThread?.close();
    if (this.#checkpointer) {
      const t = this.#checkpointer;
      this.#checkpointer = null;
      t.ref();
      await new Promise<void>((resolve) => {
        const kill = setTimeout(() => void t.terminate(), 2000);
        t.once('exit', () => (clearTimeout(kill), resolve()));
        t.postMessage('stop');
      });
    }
    if (this.#db.open) {
      try {
        this.#db.pragma('wal_checkpoint(TRUNCATE)');
      } catch {
        /* another connection is busy; the next open replays the WAL */
      }
      this.#db.close();
    }
  }
}
