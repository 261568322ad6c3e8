import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export type StoreKind = 'sqlite' | 'postgres';
/** Every store-backed test runs on each of these. */
export const STORE_KINDS: readonly StoreKind[] = ['sqlite', 'postgres'];

export interface TestDatabase {
  url: string;
  /** A scratch directory for this database's test (data dirs, files). */
  dir: string;
  drop(): Promise<void>;
}

/**
 * A fresh, empty database for one test file: a temp SQLite file, or a new database on the
 * PostgreSQL server at GANTRY_TEST_PG_URL (set by `npm test`, which starts one if needed).
 */
export async function freshDatabase(kind: StoreKind): Promise<TestDatabase> {
  const dir = mkdtempSync(join(tmpdir(), `gantry-test-${kind}-`));
  if (kind === 'sqlite') {
    return { url: `sqlite:${join(dir, 'gantry.db')}`, dir, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const base = process.env.GANTRY_TEST_PG_URL;
  if (!base) throw new Error('GANTRY_TEST_PG_URL is not set: run the suite with `npm test`, which provides PostgreSQL');
  const name = `gantry_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    dir,
    drop: async () => {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await c.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
