import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { SqlDriver } from './driver.ts';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function listMigrations(dialect: SqlDriver['dialect']): Migration[] {
  const dir = join(MIGRATIONS_DIR, dialect);
  return readdirSync(dir)
    .filter((f) => /^\d{4}_.+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 4)), name: f.slice(5, -4), sql: readFileSync(join(dir, f), 'utf8') }));
}

/** Splits a migration file into statements (Gantry's migrations have no `;` inside literals). */
function statements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0);
}

/**
 * Applies numbered, append-only migrations that are not yet recorded, each in the migration-lock
 * transaction, so two servers starting at once apply each exactly once.
 */
export async function migrate(driver: SqlDriver): Promise<number[]> {
  const applied: number[] = [];
  await driver.withMigrationLock(async (tx) => {
    await tx.run(
      'CREATE TABLE IF NOT EXISTS gantry_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
    );
    const done = new Set((await tx.query<{ version: number }>('SELECT version FROM gantry_migrations')).map((r) => Number(r.version)));
    for (const m of listMigrations(driver.dialect)) {
      if (done.has(m.version)) continue;
      for (const stmt of statements(m.sql)) await tx.run(stmt);
      await tx.run('INSERT INTO gantry_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, Date.now()]);
      applied.push(m.version);
    }
  });
  return applied;
}
