/**
 * The one place Gantry reads its environment. Options → compile*Options() → a fully defaulted
 * object; flags override environment, environment overrides defaults.
 *
 * | env | default | meaning |
 * |---|---|---|
 * | GANTRY_DATA_DIR | ./.gantry | data dir of `gantry up` (SQLite file, admin-token, url) |
 * | GANTRY_DATABASE | sqlite:<data-dir>/gantry.db | database URL (postgres://… or a SQLite path) |
 * | GANTRY_PORT | 8084 | API port |
 * | GANTRY_HOST | 127.0.0.1 | API listen address |
 * | GANTRY_LOG_LEVEL | warn | pino level of the server log |
 * | GANTRY_LEASE_TIMEOUT_MS | 5000 | a worker silent this long is lost; its jobs are requeued (detection ≤ lease + 1 s reaper tick) |
 * | GANTRY_HEARTBEAT_MS | 1000 | heartbeat interval the server tells workers (a worker's own setting wins); at most lease/2 |
 * | GANTRY_BREAKER_THRESHOLD | 5 | consecutive failures that open a circuit breaker (0 = breakers off) |
 * | GANTRY_BREAKER_OPEN_MS | 30000 | how long a breaker stays open before one probe job may run |
 * | GANTRY_BREAKER_COMMAND_QUEUE | 0 | 1 = also a breaker for the shared command-job queue (handler queues and templates always have one) |
 * | GANTRY_BODY_LIMIT | 16777216 | largest request body, bytes |
 * | GANTRY_DEFAULT_TIER | enterprise | tier of tenants nobody registered (`gantry tenants create`), incl. `default` |
 * | GANTRY_USAGE_HALF_LIFE_S | 3600 | half-life of the decayed usage fair share is computed from, seconds |
 * | GANTRY_GANG_START_TIMEOUT_MS | 60000 | a gang job not every member of which its worker took this long after the assignment goes back to the queue (not counted as a retry) |
 * | GANTRY_SQLITE_WAL_MAX_MB | 64 | SQLite: WAL size past which it is checkpointed whole and starts over (read by the store driver) |
 * | GANTRY_URL / GANTRY_TOKEN | local `gantry up` | where the CLI and `gantry worker` connect (several servers: comma-separated; a worker fails over between them), and with what token |
 */
import { join, resolve } from 'node:path';
import { isTier, TIERS, type Tier } from './core/tiers.ts';
import { parseServerList } from './client/servers.ts';

function tier(name: string, v: string | undefined): Tier {
  if (v === undefined || v === '') return 'enterprise';
  if (!isTier(v)) throw new Error(`${name} must be one of ${TIERS.join(', ')}, got '${v}'`);
  return v;
}

export interface ServerConfig {
  data_dir: string;
  database: string;
  port: number;
  host: string;
  log_level: string;
  lease_timeout_ms: number;
  /** Heartbeat interval handed to workers when they register. */
  heartbeat_interval_ms: number;
  body_limit: number;
  breaker_threshold: number;
  breaker_open_ms: number;
  breaker_command_queue: boolean;
  default_tier: Tier;
  usage_half_life_s: number;
  /** A gang job's members must all be taken by their workers within this long of the assignment, else the gang is requeued (ms). */
  gang_start_timeout_ms: number;
}

export interface ServerFlags {
  dataDir?: string;
  database?: string;
  port?: number | string;
  host?: string;
}

function int(name: string, v: string | number | undefined, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max}, got '${v}'`);
  return n;
}

export function compileServerConfig(flags: ServerFlags, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const data_dir = resolve(flags.dataDir ?? env.GANTRY_DATA_DIR ?? '.gantry');
  return {
    data_dir,
    database: flags.database ?? env.GANTRY_DATABASE ?? `sqlite:${join(data_dir, 'gantry.db')}`,
    port: int('port', flags.port ?? env.GANTRY_PORT, 8084, 0, 65535),
    host: flags.host ?? env.GANTRY_HOST ?? '127.0.0.1',
    log_level: env.GANTRY_LOG_LEVEL ?? 'warn',
    ...leaseSettings(env),
    body_limit: int('GANTRY_BODY_LIMIT', env.GANTRY_BODY_LIMIT, 16 * 1024 * 1024, 1024),
    breaker_threshold: int('GANTRY_BREAKER_THRESHOLD', env.GANTRY_BREAKER_THRESHOLD, 5, 0, 1_000_000),
    breaker_open_ms: int('GANTRY_BREAKER_OPEN_MS', env.GANTRY_BREAKER_OPEN_MS, 30_000, 100),
    breaker_command_queue: int('GANTRY_BREAKER_COMMAND_QUEUE', env.GANTRY_BREAKER_COMMAND_QUEUE, 0, 0, 1) === 1,
    default_tier: tier('GANTRY_DEFAULT_TIER', env.GANTRY_DEFAULT_TIER),
    usage_half_life_s: int('GANTRY_USAGE_HALF_LIFE_S', env.GANTRY_USAGE_HALF_LIFE_S, 3600, 1),
    gang_start_timeout_ms: int('GANTRY_GANG_START_TIMEOUT_MS', env.GANTRY_GANG_START_TIMEOUT_MS, 60_000, 100),
  };
}

/** Lease timeout and heartbeat interval; a lease must outlast at least two heartbeats. */
function leaseSettings(env: NodeJS.ProcessEnv): { lease_timeout_ms: number; heartbeat_interval_ms: number } {
  const lease_timeout_ms = int('GANTRY_LEASE_TIMEOUT_MS', env.GANTRY_LEASE_TIMEOUT_MS, 5000, 500);
  const heartbeat_interval_ms = int('GANTRY_HEARTBEAT_MS', env.GANTRY_HEARTBEAT_MS, Math.min(1000, Math.floor(lease_timeout_ms / 2)), 50);
  if (heartbeat_interval_ms * 2 > lease_timeout_ms) {
    throw new Error(`GANTRY_HEARTBEAT_MS (${heartbeat_interval_ms}) must be at most half of GANTRY_LEASE_TIMEOUT_MS (${lease_timeout_ms})`);
  }
  return { lease_timeout_ms, heartbeat_interval_ms };
}

export interface ClientConfig {
  /** The servers as given, comma-separated (for messages). */
  server: string;
  /** Every server URL, validated, in the order tried (several servers on one database). */
  servers: string[];
  token: string | null;
  /** Where the token came from, for error messages. */
  token_source: string;
}

export interface ClientFlags {
  server?: string;
  token?: string;
  dataDir?: string;
}

/** Flags, then GANTRY_URL/GANTRY_TOKEN, then the local `gantry up` (its url and admin-token files). */
export function compileClientConfig(flags: ClientFlags, readFile: (p: string) => string | null, env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const dir = resolve(flags.dataDir ?? env.GANTRY_DATA_DIR ?? '.gantry');
  const urlFile = join(dir, 'url');
  const [given, source] = flags.server !== undefined ? [flags.server, '--server']
    : env.GANTRY_URL !== undefined ? [env.GANTRY_URL, 'GANTRY_URL']
    : [readFile(urlFile)?.trim() ?? 'http://127.0.0.1:8084', urlFile];
  const servers = parseServerList(given, source);
  const where = { server: servers.join(','), servers };
  if (flags.token) return { ...where, token: flags.token, token_source: '--token' };
  if (env.GANTRY_TOKEN) return { ...where, token: env.GANTRY_TOKEN, token_source: 'GANTRY_TOKEN' };
  const t = readFile(join(dir, 'admin-token'))?.trim() ?? null;
  return { ...where, token: t, token_source: join(dir, 'admin-token') };
}
