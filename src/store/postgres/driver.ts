import pg from 'pg';
import { EventEmitter } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { PROFILE } from '../sqlProfile.ts';
import { uniformColumns, type ColumnType, type DriverCapabilities, type NotifyReach, type Row, type SqlDriver, type SqlExecutor, type SqlPart, type SqlReader, type SqlValue } from '../driver.ts';

const PG_TYPES: Record<ColumnType, string> = { text: 'text', real: 'float8', int: 'int8' };
// json, not jsonb: the rows are read once, and json skips building jsonb's binary form (~25% faster on 1,000 rows).
function pgRecordset(columns: readonly (readonly [string, ColumnType])[]): string {
  return `json_to_recordset(?::json) AS v(${columns.map(([c, t]) => `${c} ${PG_TYPES[t]}`).join(', ')})`;
}
// `= ANY(array)` is planned as index lookups; `IN (SELECT … FROM recordset)` was planned as a hash
// join over a scan of the whole jobs table once the table looked small (500 ids: 9.7 → 1.5 ms).
function pgInList(column: string): string {
  return `${column} = ANY(ARRAY(SELECT json_array_elements_text(?::json)))`;
}

// BIGINT and NUMERIC come back as strings by default; Gantry keeps them below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));

const LEADER_LOCK_KEY = 727_100_001;
const MIGRATION_LOCK_KEY = 727_100_002;

/** `?` placeholders to `$n` (Gantry's SQL never has a literal `?`). */
function toDollar(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

function pgToColumnType(dataType: string): ColumnType {
  if (dataType === 'bigint' || dataType === 'integer' || dataType === 'smallint') return 'int';
  if (dataType === 'double precision' || dataType === 'real' || dataType === 'numeric') return 'real';
  return 'text';
}

/** Column types of Gantry's tables as the recordsets need them, read once from the catalog. */
type TableTypes = (table: string, via: pg.PoolClient | pg.Pool) => Promise<ReadonlyMap<string, ColumnType>>;

/** A statement as the driver sends it: `prepared` is its entry in the driver's statement cache (name, text, row shape). */
interface Statement {
  readonly prepared: Prepared;
  /** The prepared statement's name for this use (a REPLAN_MS period's name for one without parameters), or none. */
  readonly name: string | undefined;
  readonly values: readonly unknown[];
}

/** What a statement gave back. */
interface StatementResult {
  rows: Row[];
  rowCount: number;
}

/**
 * Gantry's connections run with JIT compilation off. Its statements are short, but PostgreSQL prices
 * a generic plan by its estimates: with a million jobs queued and the table analysed, a lone
 * submit's one statement (its queue-position count estimated at 166,668 rows per job for 100 jobs)
 * cost 5.5M, above `jit_above_cost` and the inlining and optimisation thresholds, so every submit
 * compiled its expressions — 0.5–1.0 s per submit for a count that read no row (PostgreSQL 15, 1M
 * queued in another queue: 1–2 ms before ANALYZE, 480–990 ms after; `bench/pg-jit.ts`). All three
 * kinds of connection (statement pool, LISTEN session, long reads). A URL's own `options` replaces this.
 */
const SESSION_OPTIONS = '-c jit=off';

/** Where an executor's statements go: a transaction's connection, or the pool by way of TickBatch. */
interface Queryable {
  query(s: Statement): Promise<StatementResult>;
}

/** One SQL text of Gantry's: as written (`?`), its `$n` form, the name it is prepared under, and its rows' shape once seen. */
interface Prepared {
  readonly sql: string;
  readonly text: string;
  readonly name: string;
  /** A plain read (see PLAIN_READ): TickBatch may send it inside one statement with other reads. */
  readonly read: boolean;
  shape: RowShape | null;
  /** How many rows its last execution returned (TickBatch combines only reads whose answers are small). */
  lastRows: number;
}

/** The entry for `sql`: named after its text's hash. */
function prepare(sql: string): Prepared {
  const text = toDollar(sql);
  return { sql, text, name: 'g' + createHash('sha1').update(text).digest('hex').slice(0, 16), read: PLAIN_READ.test(sql) && !NOT_A_READ.test(sql), shape: null, lastRows: 0 };
}

/**
 * A statement that only reads, and so can be a subquery of another: a SELECT or a WITH query that
 * writes, locks and notifies nothing (a data-modifying WITH is only allowed at the top level).
 */
const PLAIN_READ = /^\s*(SELECT|WITH)\b/i;
const NOT_A_READ = /\b(INSERT|UPDATE|DELETE|SHARE|pg_notify|pg_advisory_\w+|pg_try_advisory_\w+|nextval|setval)\b/i;

/** Wake-ups for other servers, many in one statement (PostgresDriver.notify). */
const NOTIFY: Prepared = { ...prepare('SELECT pg_notify(c, p) FROM unnest(?::text[], ?::text[]) AS t(c, p)'), name: 'gnotify' };

/** How a statement's rows are built: each column's key and type parser, in order. */
interface RowShape {
  readonly names: readonly string[];
  readonly types: readonly number[];
  readonly parsers: readonly ((raw: string) => unknown)[];
}

/** The shape of `fields`: `known` when it describes the same columns (a statement's rows look the same at every execution). */
function shapeOf(fields: readonly pg.FieldDef[], known: RowShape | null): RowShape {
  if (known && known.names.length === fields.length && fields.every((f, i) => f.name === known.names[i] && f.dataTypeID === known.types[i])) return known;
  return {
    names: fields.map((f) => f.name),
    types: fields.map((f) => f.dataTypeID),
    parsers: fields.map((f) => pg.types.getTypeParser(f.dataTypeID, 'text') as (raw: string) => unknown),
  };
}

/** pg.Query's protocol hooks and fields that StatementQuery uses (not in pg's typings; the Submittable interface pg-cursor implements). */
interface QueryInternals {
  name: string | undefined;
  values: unknown[];
  callback: ((err: unknown, res?: unknown) => void) | undefined;
  _canceledDueToError: unknown;
  handleError(err: unknown, connection: unknown): void;
}

/**
 * A parameterised or named statement (the extended protocol: one statement, one result) whose rows
 * are built from the statement's cached RowShape. pg's own Query rebuilds its row template from
 * every RowDescription (~10 µs for a 27-column row, measured: once per execution, since the
 * portal is described every time) and copies its config object; a W2 job ran ~11 statements.
 */
class StatementQuery extends pg.Query {
  readonly #prepared: Prepared;
  #shape: RowShape | null = null;
  readonly #rows: Row[] = [];
  #rowCount = 0;
  constructor(s: Statement, callback: (err: unknown, res?: StatementResult) => void) {
    // The text alone: pg copies a config object property by property; name and values are set below.
    super(s.prepared.text);
    const self = this as unknown as QueryInternals;
    self.name = s.name;
    self.values = s.values as unknown[];
    self.callback = callback as QueryInternals['callback'];
    this.#prepared = s.prepared;
  }

  handleRowDescription(msg: { fields: pg.FieldDef[] }): void {
    this.#shape = this.#prepared.shape = shapeOf(msg.fields, this.#prepared.shape);
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    const self = this as unknown as QueryInternals;
    if (self._canceledDueToError) return;
    const { names, parsers } = this.#shape!;
    const row: Row = {};
    try {
      for (let i = 0; i < names.length; i++) {
        const raw = msg.fields[i];
        row[names[i]!] = raw == null ? null : (parsers[i]!(raw) as Row[string]);
      }
    } catch (err) {
      self._canceledDueToError = err;
      return;
    }
    this.#rows.push(row);
  }

  handleCommandComplete(msg: { text: string }): void {
    // "SELECT 3", "UPDATE 5", "INSERT 0 5": the count is the last word.
    const n = Number(msg.text.slice(msg.text.lastIndexOf(' ') + 1));
    this.#rowCount = Number.isInteger(n) ? n : 0;
  }

  handleReadyForQuery(connection: unknown): void {
    const self = this as unknown as QueryInternals;
    if (self._canceledDueToError) return self.handleError(self._canceledDueToError, connection);
    self.callback?.(null, { rows: this.#rows, rowCount: this.#rowCount });
  }
}

/** Sends `s` on `client`. */
function execute(client: pg.ClientBase, s: Statement): Promise<StatementResult> {
  if (s.name === undefined && s.values.length === 0) {
    // No parameters, no name: the simple protocol, which allows several statements in one text (migrations).
    return client.query(s.prepared.text).then((r) => ({ rows: r.rows as Row[], rowCount: r.rowCount ?? 0 }));
  }
  return new Promise((resolve, reject) => {
    void client.query(new StatementQuery(s, (err, res) => {
      if (err) return reject(err);
      s.prepared.lastRows = res!.rows.length;
      resolve(res!);
    }));
  });
}

/** The socket under a pg client (not in pg's typings): corked while a batch is written. */
function socketOf(client: pg.PoolClient): { cork(): void; uncork(): void } | undefined {
  return (client as unknown as { connection?: { stream?: { cork(): void; uncork(): void } } }).connection?.stream;
}

/**
 * Statements outside a transaction that are issued within one turn of the event loop (a scheduling
 * cycle's reads, the long poll's two looks) go out together: one pooled connection, pipelined
 * (node-postgres `pipeline` mode: each statement still has its own Sync, so its own result or
 * error), written with one socket write. On a loaded machine every round trip costs the server a
 * write syscall and the database a backend wake-up (~45 µs of server CPU each, measured in W2), and
 * six reads on six connections cost six of each; the backend runs them one after the other at
 * ~50 µs each. Small plain reads among them go further: one statement (TickBatch #combine).
 */
type Pending = { statement: Statement; resolve: (r: StatementResult) => void; reject: (e: unknown) => void };

/** Parts of one big write run at once (SqlDriver.spread): the database machine's cores this server's batches may use. */
const SPREAD_WAYS = 2;
/** Statements pipelined on one connection at most. */
const MAX_PIPELINE = 8;
/**
 * Reads whose last answer had more rows than this go out on their own: building JSON costs the
 * database ~4.4 µs more per row than its row format (500 queue-head rows: 1.0 → 3.1–3.4 ms of backend
 * CPU), about what the statement saved costs it at ~10 rows.
 */
const SMALL_ANSWER = 16;
/** Combinations of reads TickBatch prepares at most (each is a prepared statement on every pooled connection): the recurring ones come first. */
const MAX_COMBINED = 16;

class TickBatch implements Queryable {
  readonly #pool: pg.Pool;
  /** A statement to send along with the next batch if there is one (the wake-ups for other servers, see PostgresDriver.notify). */
  readonly #rider: () => Statement | null;
  #pending: Pending[] = [];
  /** Statements wait for the end of this turn of the event loop (holdTurn). */
  #held = false;
  /** Combined statements by the names of their reads, in order. */
  readonly #combined = new Map<string, Prepared>();
  constructor(pool: pg.Pool, rider: () => Statement | null) {
    this.#pool = pool;
    this.#rider = rider;
  }

  query(statement: Statement): Promise<StatementResult> {
    return new Promise((resolve, reject) => {
      if (this.#pending.push({ statement, resolve, reject }) === 1 && !this.#held) queueMicrotask(() => this.#flush());
    });
  }

  /** A statement sent now on a connection of its own, with nothing pipelined around it (SqlDriver.spread). */
  alone(statement: Statement): Promise<StatementResult> {
    return new Promise((resolve, reject) => this.#send([{ statement, resolve, reject }]));
  }

  /** SqlDriver.holdTurn: what is issued until the end of this turn goes out then, in one pipeline, writes first. */
  holdTurn(): void {
    if (this.#held) return;
    this.#held = true;
    setImmediate(() => {
      this.#held = false;
      if (this.#pending.length > 0) this.#flush(true);
    });
  }

  #flush(held = false): void {
    // A flush asked for before the hold began waits for the held one, which takes every statement.
    if (this.#held) return;
    const batch = this.#pending;
    this.#pending = [];
    const rider = this.#rider();
    if (rider) batch.push({ statement: rider, resolve: () => {}, reject: () => {} });
    const joins = (b: Pending) => b.statement.values.length === 0 && b.statement.prepared.read && b.statement.prepared.lastRows <= SMALL_ANSWER;
    const reads = batch.filter(joins);
    // Held: the writes go first and everything on one connection, so each read sees them committed
    // (each statement has its own Sync: its own implicit transaction, committed before the next runs).
    const out: Pending[] = held ? batch.filter((b) => !b.statement.prepared.read) : [];
    for (let i = 0; i < reads.length; i += MAX_PIPELINE) {
      const some = reads.slice(i, i + MAX_PIPELINE);
      const together = some.length > 1 ? this.#combine(some) : null;
      out.push(...(together ? [together] : some));
    }
    out.push(...batch.filter((b) => !joins(b) && (!held || b.statement.prepared.read)));
    if (held) return this.#send(out);
    // A burst (a fan-out's reads) still spreads over several connections: one backend would run it all in turn.
    for (let i = 0; i < out.length; i += MAX_PIPELINE) this.#send(out.slice(i, i + MAX_PIPELINE));
  }

  /**
   * Plain reads without parameters issued together go out as one statement — each a subquery whose
   * rows come back as one JSON array (`json_agg` over the subquery keeps its order: nothing is joined
   * after it) — so the database runs one statement, not one each (a scheduling cycle's workers,
   * tenants, breakers and running jobs and gang members: five reads), and they all see one snapshot.
   * JSON gives the values the row parsers give: numbers for the integer and float columns (Gantry
   * stores no NaN or infinity), strings for text, booleans. Reads with parameters stay apart: a
   * statement with parameters may be planned afresh at every execution (PostgreSQL's custom plans,
   * when its generic plan looks costlier), and one that held all of a cycle's reads was — 15% of
   * the database's CPU in W2 went to planning. A database error in the combined statement sends its
   * reads again one by one, so each gets its own answer.
   */
  #combine(reads: Pending[]): Pending | null {
    const key = reads.map((r) => r.statement.prepared.name).join(' ');
    let p = this.#combined.get(key);
    if (!p) {
      if (this.#combined.size >= MAX_COMBINED) return null;
      p = prepare(`SELECT ${reads.map((r, i) => `(SELECT COALESCE(json_agg(q), '[]') FROM (${r.statement.prepared.sql}) q) AS r${i}`).join(', ')}`);
      this.#combined.set(key, p);
    }
    return {
      // Re-planned every REPLAN_MS like the reads it holds.
      statement: { prepared: p, name: replanName(p), values: [] },
      resolve: (res) => {
        const row = res.rows[0]!;
        reads.forEach((r, i) => {
          const rows = row[`r${i}`] as unknown as Row[];
          r.statement.prepared.lastRows = rows.length;
          r.resolve({ rows, rowCount: rows.length });
        });
      },
      reject: (err) => (err instanceof pg.DatabaseError ? this.#send(reads) : reads.forEach((r) => r.reject(err))),
    };
  }

  #send(batch: Pending[]): void {
    this.#pool.connect().then(
      (client) => {
        let broken: unknown = undefined;
        const socket = batch.length > 1 ? socketOf(client) : undefined;
        socket?.cork();
        const done = batch.map((b) => {
          if (b.statement.name) retireOlderPlan(client, b.statement.name);
          return execute(client, b.statement).then(b.resolve, (err: unknown) => {
            // An error from the database leaves the connection usable; any other (a cut connection) does not.
            if (!(err instanceof pg.DatabaseError)) broken = err;
            b.reject(err);
          });
        });
        socket?.uncork();
        void Promise.all(done).then(() => client.release(broken as Error | undefined));
      },
      (err: unknown) => batch.forEach((b) => b.reject(err)),
    );
  }
}

/**
 * How long a statement without parameters keeps its plan outside transactions (ms). PostgreSQL
 * plans such a prepared statement once and keeps that plan until the table's statistics change: a
 * read planned as a sequential scan while `jobs` was nearly empty walked a million queued jobs on
 * every scheduling cycle after a burst of submits (W4) — so these statements went unnamed, planned
 * at every use: 0.02–0.1 ms of the database's CPU each, five per scheduling cycle. Now they are
 * prepared under a name that changes every REPLAN_MS (`g<hash>_<period>`): planned afresh at most
 * once a period per connection, and the last period's statement is deallocated as the new one is
 * prepared (retireOlderPlan).
 */
const REPLAN_MS = 1000;

/** `p`'s name in the current REPLAN_MS period. */
function replanName(p: Prepared): string {
  return `${p.name}_${Math.floor(Date.now() / REPLAN_MS)}`;
}

/** Per pooled connection: the current period's name of each periodically re-planned statement, by its hash. */
const currentPlans = new WeakMap<pg.PoolClient, Map<string, string>>();

/** Before `name` (a REPLAN_MS name) runs on `client`: deallocates the same statement's name of an earlier period there. */
function retireOlderPlan(client: pg.PoolClient, name: string): void {
  const cut = name.lastIndexOf('_');
  if (cut < 0) return;
  let plans = currentPlans.get(client);
  if (!plans) currentPlans.set(client, (plans = new Map()));
  const base = name.slice(0, cut);
  const prev = plans.get(base);
  if (prev === name) return;
  plans.set(base, name);
  const conn = (client as unknown as { connection?: { parsedStatements?: Record<string, string>; submittedNamedStatements?: Record<string, string> } }).connection;
  if (prev === undefined || conn?.parsedStatements?.[prev] === undefined) return;
  delete conn.parsedStatements[prev];
  if (conn.submittedNamedStatements) delete conn.submittedNamedStatements[prev];
  // Outside a transaction (TickBatch only), so a failure here cannot abort anything else.
  client.query(`DEALLOCATE ${prev}`).catch(() => {});
}

class PgExecutor implements SqlExecutor {
  readonly serialWrites = false;
  recordset(columns: readonly (readonly [string, ColumnType])[]): string {
    return pgRecordset(columns);
  }
  inList(column: string): string {
    return pgInList(column);
  }
  readonly #client: Queryable;
  readonly #typesVia: pg.PoolClient | pg.Pool;
  readonly #names: Map<string, Prepared>;
  readonly #types: TableTypes;
  /** Statements without parameters are prepared for REPLAN_MS at a time (outside transactions: TickBatch retires the old ones). */
  readonly #replan: boolean;
  constructor(
    client: Queryable, typesVia: pg.PoolClient | pg.Pool, names: Map<string, Prepared>, types: TableTypes, replan: boolean,
  ) {
    this.#client = client;
    this.#typesVia = typesVia;
    this.#names = names;
    this.#types = types;
    this.#replan = replan;
  }

  /**
   * Parameterised statements are named and prepared. A statement without parameters is planned
   * afresh every REPLAN_MS outside a transaction, and at each use inside one (where a failed
   * DEALLOCATE would abort the transaction) — see REPLAN_MS.
   */
  #statement(sql: string, params: readonly SqlValue[]): Statement {
    let p = this.#names.get(sql);
    if (!p) this.#names.set(sql, (p = prepare(sql)));
    if (params.length > 0) return { prepared: p, name: p.name, values: params };
    return { prepared: p, name: this.#replan ? replanName(p) : undefined, values: params };
  }

  async query<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return (await this.#send(sql, params)).rows as T[];
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return (await this.#send(sql, params)).rowCount;
  }

  async #send(sql: string, params: readonly SqlValue[]): Promise<StatementResult> {
    const s = this.#statement(sql, params);
    const t0 = PROFILE ? performance.now() : 0;
    try {
      return await this.#client.query(s);
    } catch (err) {
      // A write sent with later() failed first: the transaction is aborted, and that is the cause.
      throw this.#laterFailed ?? err;
    } finally {
      if (PROFILE) PROFILE.add(sql, performance.now() - t0);
    }
  }

  /** Writes sent with later() (in a transaction), and the first one's error. */
  #later: Promise<void>[] = [];
  #laterFailed: unknown = undefined;

  later(sql: string, params: readonly SqlValue[] = []): void {
    if (this.#replan) throw new Error('SqlExecutor.later is for statements in a transaction');
    // Responses come in the order sent: a failed write's error is recorded before any later statement's.
    this.#later.push(this.#send(sql, params).then(() => undefined, (err: unknown) => void (this.#laterFailed ??= err)));
  }

  /** Waits for the writes sent with later(); throws the first one's error (before COMMIT). */
  async settle(): Promise<void> {
    await Promise.all(this.#later);
    this.#later = [];
    if (this.#laterFailed !== undefined) throw this.#laterFailed;
  }

  /**
   * All rows in one prepared statement: the rows travel as one JSON parameter read through
   * jsonb_to_recordset (a multi-VALUES statement would be parsed and planned afresh every time).
   */
  async insertMany(table: string, columns: readonly string[], rows: readonly SqlValue[][]): Promise<void> {
    if (rows.length === 0) return;
    const part = await insertSql(table, columns, rows, await this.#types(table, this.#typesVia));
    const t0 = PROFILE ? performance.now() : 0;
    await this.query(part.sql, part.params);
    if (PROFILE) PROFILE.add(`INSERT INTO ${table}`, performance.now() - t0);
  }
}

/**
 * All rows in one prepared statement: the rows travel as one JSON parameter read through
 * json_to_recordset (a multi-VALUES statement would be parsed and planned afresh every time).
 * A column with one value in every row (a time, an actor, a reason) is one parameter, not a JSON
 * field per row; the first column always travels in the rows so the recordset has one.
 */
function insertSql(table: string, columns: readonly string[], rows: readonly SqlValue[][], types: ReadonlyMap<string, ColumnType>): SqlPart {
  const type = (c: string) => types.get(c) ?? 'text';
  const same = uniformColumns(`insert ${table}`, columns.map((_, j) => j > 0 && rows.every((r) => (r[j] ?? null) === (rows[0]![j] ?? null))));
  const varying = columns.filter((_, j) => !same[j]);
  const data = JSON.stringify(rows.map((r) => Object.fromEntries(columns.flatMap((c, j) => (same[j] ? [] : [[c, r[j] ?? null]])))));
  const select = columns.map((c, j) => (same[j] ? `?::${PG_TYPES[type(c)]}` : c));
  const params = [...columns.flatMap((_, j) => (same[j] ? [rows[0]![j] ?? null] : [])), data];
  return { sql: `INSERT INTO ${table} (${columns.join(', ')}) SELECT ${select.join(', ')} FROM ${pgRecordset(varying.map((c) => [c, type(c)]))}`, params };
}

/**
 * `SqlDriver.longReads` on PostgreSQL: one connection of their own, one read at a time. A count that
 * walks a million queued jobs takes ~0.5 s; on the statement pool it would hold a connection that
 * the hot path's batches and transactions wait for, and readers that poll would stack up there.
 */
class PgLongReads implements SqlReader {
  readonly #pool: pg.Pool;
  constructor(url: string) {
    this.#pool = new pg.Pool({ connectionString: url, options: SESSION_OPTIONS, max: 1 });
    this.#pool.on('error', () => {});
    this.#pool.on('connect', (client) => client.on('error', () => {}));
  }
  async query<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return (await this.#pool.query(toDollar(sql), params as SqlValue[])).rows as T[];
  }
  close(): Promise<void> {
    return this.#pool.end().catch(() => {});
  }
}

/**
 * PostgreSQL through node-postgres: a pool for statements (named prepared statements per
 * connection), plus one dedicated session that LISTENs for wake-ups and holds the
 * leader advisory lock — when the process dies the session ends and another server takes over.
 */
export class PostgresDriver implements SqlDriver {
  readonly dialect = 'postgres' as const;
  readonly serialWrites = false;
  readonly capabilities: DriverCapabilities = { skipLocked: true, listenNotify: true, multiProcess: true, roundTrips: true };
  readonly #pool: pg.Pool;
  readonly longReads: PgLongReads;
  readonly #names = new Map<string, Prepared>();
  readonly #typeCache = new Map<string, Promise<ReadonlyMap<string, ColumnType>>>();
  /** The tables whose column types have been read (insertSqlReady). */
  readonly #typesKnown = new Set<string>();
  // The catalog is read on the caller's own connection: inside a transaction, asking the pool for a
  // second client deadlocks once every client is held by a transaction waiting for the same answer.
  readonly #tableTypes: TableTypes = (table, via) => {
    let t = this.#typeCache.get(table);
    if (!t) {
      t = via
        .query<{ column_name: string; data_type: string }>(
          'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1',
          [table],
        )
        .then((r) => {
          this.#typesKnown.add(table);
          return new Map(r.rows.map((c) => [c.column_name, pgToColumnType(c.data_type)]));
        });
      t.catch(() => this.#typeCache.delete(table));
      this.#typeCache.set(table, t);
    }
    return t;
  };
  readonly #direct: PgExecutor;
  readonly #batch: TickBatch;
  /**
   * Parts of one big write (a W1 batch's 500 completions or admissions) on two backends at once: the
   * database's work on a batch is one backend's CPU otherwise, the rest of the machine idle meanwhile
   * (W1 drain on a 2-vCPU machine: +12–31% in three A/B pairs; three or four ways were slower there).
   */
  readonly spread: { readonly ways: number; readonly executor: SqlExecutor };
  readonly #bus = new EventEmitter();
  /** Wake-ups for other servers waiting for the end of this turn of the event loop (see notify). */
  readonly #outgoing = new Map<string, [string, string]>();
  readonly #url: string;
  #session: pg.Client | null = null;
  #sessionReady: Promise<pg.Client> | null = null;
  readonly #channels = new Set<string>();
  #leader = false;
  #closed = false;
  /** Tells this process's notifications apart from other servers' when they come back over LISTEN. */
  readonly #instance = randomBytes(6).toString('hex');
  /** The session runs one statement at a time (LISTENs and lock attempts must not overlap). */
  #sessionChain: Promise<unknown> = Promise.resolve();

  constructor(url: string, poolSize = 10) {
    this.#url = url;
    // Pipeline mode: statements queued on one connection are sent without waiting for the one before
    // (TickBatch, and a transaction's BEGIN with its first statement).
    this.#pool = new pg.Pool({ connectionString: url, options: SESSION_OPTIONS, max: poolSize, pipeline: true } as pg.PoolConfig);
    // An idle client's error (server restart) must not crash the process; the pool replaces it.
    this.#pool.on('error', () => {});
    // A checked-out client whose connection is cut (database restart) emits 'error' too; unheard it
    // would crash the process. Its running query rejects anyway, and the pool drops the client.
    this.#pool.on('connect', (client) => client.on('error', () => {}));
    this.#batch = new TickBatch(this.#pool, () => this.#takeNotifies());
    this.#direct = new PgExecutor(this.#batch, this.#pool, this.#names, this.#tableTypes, true);
    this.spread = { ways: SPREAD_WAYS, executor: new PgExecutor({ query: (s) => this.#batch.alone(s) }, this.#pool, this.#names, this.#tableTypes, true) };
    this.longReads = new PgLongReads(url);
    this.#bus.setMaxListeners(0);
  }

  holdTurn(): void {
    this.#batch.holdTurn();
  }
  query<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    return this.#direct.query<T>(sql, params);
  }
  recordset(columns: readonly (readonly [string, ColumnType])[]): string {
    return pgRecordset(columns);
  }
  inList(column: string): string {
    return pgInList(column);
  }
  run(sql: string, params?: readonly SqlValue[]): Promise<number> {
    return this.#direct.run(sql, params);
  }
  later(sql: string, params?: readonly SqlValue[]): void {
    this.#direct.later(sql, params);
  }
  insertMany(table: string, columns: readonly string[], rows: readonly SqlValue[][]): Promise<void> {
    return this.transaction((tx) => tx.insertMany(table, columns, rows));
  }
  insertSqlReady(table: string): boolean {
    return this.#typesKnown.has(table);
  }
  async insertSql(table: string, columns: readonly string[], rows: readonly SqlValue[][]): Promise<SqlPart> {
    return insertSql(table, columns, rows, await this.#tableTypes(table, this.#pool));
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    try {
      // Not waited for: the transaction's first statement follows it on the wire at once (pipeline
      // mode), in the same socket write when it is issued in this turn of the event loop.
      const socket = socketOf(client);
      socket?.cork();
      const begin = client.query('BEGIN');
      begin.catch(() => {});
      queueMicrotask(() => socket?.uncork());
      const tx = new PgExecutor({ query: (s) => execute(client, s) }, client, this.#names, this.#tableTypes, false);
      const out = await fn(tx);
      await begin;
      await tx.settle();
      const t0 = PROFILE ? performance.now() : 0;
      await client.query('COMMIT');
      if (PROFILE) PROFILE.add('COMMIT', performance.now() - t0);
      client.release();
      return out;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
        client.release();
      } catch {
        client.release(true);
      }
      throw err;
    }
  }

  withMigrationLock<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(?)', [MIGRATION_LOCK_KEY]);
      return fn(tx);
    });
  }

  /** The dedicated session: LISTEN and the leader lock. Reconnects after a server restart. */
  #ensureSession(): Promise<pg.Client> {
    if (this.#sessionReady) return this.#sessionReady;
    this.#sessionReady = (async () => {
      const client = new pg.Client({ connectionString: this.#url, options: SESSION_OPTIONS });
      client.on('notification', (msg) => {
        // Payload = `<sender instance>|<payload>`; our own notifications were already delivered locally.
        const raw = msg.payload ?? '';
        const bar = raw.indexOf('|');
        if (raw.slice(0, bar) === this.#instance) return;
        this.#bus.emit(msg.channel, raw.slice(bar + 1));
      });
      client.on('error', () => this.#dropSession(client));
      client.on('end', () => this.#dropSession(client));
      await client.connect();
      for (const ch of [...this.#channels]) await client.query(`LISTEN "${ch}"`);
      this.#session = client;
      return client;
    })();
    this.#sessionReady.catch(() => {
      this.#sessionReady = null;
    });
    return this.#sessionReady;
  }

  #onSession<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const next = this.#sessionChain.then(async () => fn(await this.#ensureSession()));
    this.#sessionChain = next.catch(() => {});
    return next;
  }

  #dropSession(client: pg.Client): void {
    if (this.#session !== client && this.#session !== null) return;
    this.#session = null;
    this.#sessionReady = null;
    this.#leader = false;
    client.end().catch(() => {});
    if (!this.#closed && this.#channels.size > 0) {
      setTimeout(() => {
        if (!this.#closed) this.#ensureSession().catch(() => {});
      }, 500).unref();
    }
  }

  notify(channel: string, payload: string, reach: NotifyReach = 'everywhere'): void {
    if (reach !== 'elsewhere') this.#bus.emit(channel, payload);
    if (reach === 'here') return;
    // Other servers hear it through PostgreSQL. Wake-ups asked for within one turn of the event loop
    // go out as one statement (a burst of submits or reports costs one round trip, not one each);
    // the same wake-up twice in a turn is sent once. It rides with the statements this process
    // sends next in this turn (TickBatch: the cycle a submit starts, the look of the long poll an
    // assignment wakes) — no write of its own — or goes alone at the end of the turn.
    const key = `${channel}\u0000${payload}`;
    if (this.#outgoing.has(key)) return;
    this.#outgoing.set(key, [channel, `${this.#instance}|${payload}`]);
    if (this.#outgoing.size === 1) setImmediate(() => this.#sendNotifies());
  }

  #takeNotifies(): Statement | null {
    if (this.#outgoing.size === 0 || this.#closed) return null;
    const batch = [...this.#outgoing.values()];
    this.#outgoing.clear();
    return { prepared: NOTIFY, name: NOTIFY.name, values: [batch.map((b) => b[0]), batch.map((b) => b[1])] };
  }

  #sendNotifies(): void {
    const q = this.#takeNotifies();
    if (q) this.#pool.query({ name: q.name, text: q.prepared.text, values: q.values as unknown[] }).catch(() => {});
  }

  listen(channel: string, fn: (payload: string) => void): () => void {
    this.#bus.on(channel, fn);
    if (!this.#channels.has(channel)) {
      this.#channels.add(channel);
      void this.#onSession((c) => c.query(`LISTEN "${channel}"`)).catch(() => {});
    }
    return () => this.#bus.off(channel, fn);
  }

  async tryLeadership(): Promise<boolean> {
    if (this.#closed) return false;
    try {
      return await this.#onSession(async (session) => {
        if (this.#leader && this.#session === session) return true;
        const res = await session.query('SELECT pg_try_advisory_lock($1) AS ok', [LEADER_LOCK_KEY]);
        this.#leader = res.rows[0]?.ok === true;
        return this.#leader;
      });
    } catch {
      this.#leader = false;
      return false;
    }
  }

  get leading(): boolean {
    return this.#leader;
  }

  async releaseLeadership(): Promise<void> {
    if (!this.#leader || this.#closed) return;
    // Not leading from before the unlock: a wake-up sent meanwhile goes to the other servers, one of
    // which may lead the moment the lock is free (Store.notify keeps the leader's own at home).
    this.#leader = false;
    await this.#onSession(async (session) => {
      if (this.#session === session) await session.query('SELECT pg_advisory_unlock($1)', [LEADER_LOCK_KEY]);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#bus.removeAllListeners();
    const s = this.#session;
    this.#session = null;
    if (s) await s.end().catch(() => {});
    await this.longReads.close();
    await this.#pool.end().catch(() => {});
  }
}
