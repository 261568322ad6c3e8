/**
 * The SQL seam between Gantry's store operations and a database engine. Operations in
 * src/store/ops are written once against this interface with `?` placeholders; each driver
 * owns its connections and states its dialect differences as capabilities, not `if (pg)`.
 */
export type SqlValue = string | number | null;
export type Row = Record<string, unknown>;

export interface SqlExecutor {
  query<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /**
   * A write in a transaction whose answer the caller does not need: issued now, not waited for.
   * Every statement issued after it runs after it — PostgreSQL pipelines them on the transaction's
   * connection (one round trip fewer on a transaction's way), SQLite runs it at once. If it fails,
   * the transaction fails with its error: SQLite throws it here; PostgreSQL at the next statement
   * that is waited for, or at the commit. Outside a transaction it throws: nothing would wait for it.
   */
  later(sql: string, params?: readonly SqlValue[]): void;
  /** Inserts many rows into `table` (one statement per chunk where the engine allows). */
  insertMany(table: string, columns: readonly string[], rows: readonly SqlValue[][]): Promise<void>;
  /**
   * A FROM-clause source `v` with the given typed columns, read from ONE `?` parameter that
   * takes a JSON array of objects — so a batch UPDATE is one statement on every engine
   * (SQLite `json_each`, PostgreSQL `json_to_recordset`).
   */
  recordset(columns: readonly (readonly [name: string, type: ColumnType])[]): string;
  /**
   * `column` is one of the strings in ONE `?` parameter that takes a JSON array of strings. Cheaper
   * than a one-column recordset, and on PostgreSQL planned as an index lookup per string
   * (`= ANY(…)`) rather than a join the planner may turn into a scan of the whole table.
   */
  inList(column: string): string;
  /**
   * A write transaction shuts out every other writer from its BEGIN (SQLite's `BEGIN IMMEDIATE`), so
   * a row read in it cannot change before the commit and needs no lock; PostgreSQL: false.
   */
  readonly serialWrites: boolean;
}

export type ColumnType = 'text' | 'real' | 'int';

/**
 * A text parameter the SQLite planner cannot look into: `col = CAST(? AS TEXT)` instead of
 * `col = ?` in a statement with MIN/MAX, ORDER BY … LIMIT, or a bound LIMIT. For those SQLite
 * (3.54, better-sqlite3) consults the bound value while planning and marks the statement to be
 * compiled again every time that parameter is bound — i.e. on every run: 20–50 µs per run of a
 * hot statement instead of 3–6 µs, with the same plan. The cast keeps the index use (`col=?`) and
 * is the same comparison on both engines (every such column is TEXT). Not for a parameter whose
 * value should choose a partial index (`state = ?` against `WHERE state = 'QUEUED'`).
 */
export const PLAIN_TEXT = 'CAST(? AS TEXT)';

/**
 * `id IN (…)` for any number of ids as ONE parameter (a JSON list read through a recordset), so
 * the statement text never changes and stays prepared. Returns the SQL and its parameter.
 */
export function idsIn(tx: SqlExecutor, column: string, ids: readonly string[]): { sql: string; param: string } {
  return { sql: tx.inList(column), param: JSON.stringify(ids) };
}

/** Statement variants kept per batch shape; past that, every column travels in the rows. */
const MAX_VARIANTS = 8;
const variants = new Map<string, Set<string>>();

/**
 * Which columns of a batch go as one parameter (the same value in every row) rather than a field of
 * each JSON row: `same` as proposed, unless this shape of batch (`shape`) already has MAX_VARIANTS
 * statement texts — each text is a prepared statement (on PostgreSQL, on every pooled connection),
 * so their number stays bounded whatever the data.
 */
export function uniformColumns(shape: string, same: boolean[]): boolean[] {
  const key = same.map((x) => (x ? '1' : '0')).join('');
  let seen = variants.get(shape);
  if (!seen) variants.set(shape, (seen = new Set()));
  if (seen.has(key)) return same;
  if (seen.size >= MAX_VARIANTS) return same.map(() => false);
  seen.add(key);
  return same;
}

/**
 * The SET list and the rows of a batch `UPDATE … FROM recordset`: a column with one value in every row is
 * one parameter, the others are fields of the JSON rows (less JSON to write and to read back — on SQLite a
 * json_extract per field and row). `keys` always travel in the rows. The batch has `count` rows; `value(row,
 * column)` reads one field (read from the caller's own objects, so no row object is built for a column that
 * turns out uniform). `set(column, value)` writes one assignment (`value` is `?` or `v.column`). Params: the
 * shared values in SET order, then the rows.
 */
export function batchSet(
  shape: string,
  keys: readonly (readonly [string, ColumnType])[],
  columns: readonly (readonly [string, ColumnType])[],
  count: number,
  value: (row: number, column: string) => SqlValue | undefined,
  set: (column: string, value: string) => string = (c, v) => `${c} = ${v}`,
): { sets: string[]; recordset: [string, ColumnType][]; params: SqlValue[] } {
  const uniform = uniformColumns(shape, columns.map(([c]) => {
    const v = value(0, c) ?? null;
    for (let i = 1; i < count; i++) if ((value(i, c) ?? null) !== v) return false;
    return true;
  }));
  const same = columns.filter((_, j) => uniform[j]);
  const varying = columns.filter((_, j) => !uniform[j]);
  const recordset: [string, ColumnType][] = [...keys, ...varying].map(([c, t]) => [c, t]);
  const names = recordset.map(([c]) => c);
  const data: Record<string, SqlValue>[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const o: Record<string, SqlValue> = {};
    for (let j = 0; j < names.length; j++) o[names[j]!] = value(i, names[j]!) ?? null;
    data[i] = o;
  }
  return {
    sets: [...same.map(([c]) => set(c, '?')), ...varying.map(([c]) => set(c, `v.${c}`))],
    recordset,
    params: [...same.map(([c]) => value(0, c) ?? null), JSON.stringify(data)],
  };
}

/** Reads only: see `SqlDriver.longReads`. */
export type SqlReader = Pick<SqlExecutor, 'query'>;

export interface DriverCapabilities {
  /** `FOR UPDATE SKIP LOCKED` in claims. */
  readonly skipLocked: boolean;
  /** Cross-process wake-ups via LISTEN/NOTIFY; otherwise wake-ups are in-process only. */
  readonly listenNotify: boolean;
  /** Several server processes may share the database (and so need leader election). */
  readonly multiProcess: boolean;
  /**
   * Each statement is a round trip to a database server (PostgreSQL): a hot path's statements are
   * worth folding into one where the SQL allows (data-modifying `WITH`, `LATERAL`), and such a
   * statement is its own transaction. SQLite runs in-process: nothing to save.
   */
  readonly roundTrips: boolean;
}

/** An INSERT's text and parameters, to be run as part of a larger statement (see SqlDriver.insertSql). */
export interface SqlPart {
  sql: string;
  params: SqlValue[];
}

/** Whose listeners a notification reaches: every process's, this one's only, or only the others'. */
export type NotifyReach = 'everywhere' | 'here' | 'elsewhere';

export interface SqlDriver extends SqlExecutor {
  readonly dialect: 'sqlite' | 'postgres';
  readonly capabilities: DriverCapabilities;
  /**
   * Where reads that walk much of a table go (counts over the whole backlog: queue status, metrics, a
   * tenant's load, a deep job's queue position): on SQLite a thread of its own with a read-only
   * connection, because a statement there runs on the calling thread and would hold up the event loop —
   * every job's dispatch — for as long as it walks; on PostgreSQL a connection of its own, so such a
   * read never holds one of the pool's connections that the hot path waits for. A driver may leave it
   * out; those reads then go to the driver itself.
   */
  readonly longReads?: SqlReader;
  /**
   * With `capabilities.roundTrips`: the `INSERT … SELECT` `insertMany` would run, as text with `?`
   * placeholders and its parameters, to be part of one larger statement (src/store/ops/submitJobs.ts).
   */
  insertSql?(table: string, columns: readonly string[], rows: readonly SqlValue[][]): Promise<SqlPart>;
  /**
   * Where statements outside transactions go out in batches per turn of the event loop (PostgreSQL):
   * the ones issued from now to the end of this turn go out at its end, together in one pipeline on
   * one connection, writes first — so a read issued in this turn after a write that has not been
   * sent yet runs after it has committed (a submit and the scheduling cycle it starts, see
   * SubmitCoalescer). Absent where every statement runs at once (SQLite).
   */
  holdTurn?(): void;
  /**
   * Where one big write may be cut in parts that run at the same time (PostgreSQL): `executor` sends
   * each statement outside a transaction at once on a connection of its own — not pipelined behind
   * the others issued in this turn, which one backend would run one after the other — so `ways`
   * parts of a batch run on that many backends at once (Store #inParts). Absent where one writer
   * runs at a time (SQLite).
   */
  readonly spread?: { readonly ways: number; readonly executor: SqlExecutor };
  /** insertSql for `table` issues no statement of its own first (its column types are known). */
  insertSqlReady?(table: string): boolean;
  /** Runs `fn` in one transaction; rolls back and rethrows on error. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Runs `fn` in a transaction that holds the migration lock (safe when two servers start at once). */
  withMigrationLock<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Sends `payload` to the listeners of `channel`: in this process and (if supported) others, or with
   * `reach` only here or only elsewhere — a caller that knows no other process needs a wake-up spares
   * the database a statement and every listening session a signal (see Store.notify).
   */
  notify(channel: string, payload: string, reach?: NotifyReach): void;
  listen(channel: string, fn: (payload: string) => void): () => void;
  /** Tries to become (or stay) the single scheduler leader. SQLite: always true. */
  tryLeadership(): Promise<boolean>;
  /**
   * This process holds the leadership as far as it knows: its last try won, and it has neither given
   * it up nor seen its session end. SQLite: always true.
   */
  readonly leading: boolean;
  /** Gives leadership up now (a server shutting down), so another server takes over at its next try. */
  releaseLeadership(): Promise<void>;
  close(): Promise<void>;
}

/** A PostgreSQL URL (`postgres://…` / `postgresql://…`); anything else names a SQLite file (see openStore). */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}
