/**
 * Chaos in the suite (small size; `npm run chaos` runs the full one): mixed handler and process
 * jobs while workers and servers are SIGKILLed and restarted, then every store invariant must
 * hold: all jobs final, every COMPLETED job ran and was completed exactly once, attempts and
 * events consistent. SQLite: one server (restarted), workers killed. PostgreSQL: two servers,
 * the scheduler leader killed too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { freshDatabase, STORE_KINDS } from './helpers/db.ts';
import { formatChaos, runChaos } from './chaos/run.ts';

for (const kind of STORE_KINDS) {
  test(`chaos on ${kind}: no job lost or completed twice while ${kind === 'sqlite' ? 'workers and the server' : 'workers and the leader server'} are SIGKILLed`, async () => {
    const db = await freshDatabase(kind);
    try {
      const rep = await runChaos({
        database: db.url,
        dir: db.dir,
        jobs: 400,
        servers: kind === 'sqlite' ? 1 : 2,
        workers: 3,
        maxKills: 4,
        minKills: 2,
        killWindowMs: 20_000,
        submitOverMs: 10_000,
        killServers: true,
        leaseTimeoutMs: 1500,
        finishTimeoutMs: 40_000,
        seed: kind === 'sqlite' ? 7 : 11,
      });
      console.log(`# chaos on ${kind}\n${formatChaos(rep).replace(/^/gm, '# ')}`);
      assert.deepEqual(rep.invariants.violations, []);
      assert.equal(rep.jobs, 400);
      assert.ok(rep.kills.length >= 2, `expected kills, got ${rep.kills.length}`);
      assert.ok(rep.kills.some((k) => k.kind === 'server'), 'a server was killed');
      assert.ok((rep.invariants.by_state.COMPLETED ?? 0) > 300);
      if (kind === 'sqlite') {
        // The server was SIGKILLed mid-flight: the file must still be intact (WAL).
        const file = new Database(db.url.replace(/^sqlite:/, ''), { readonly: true });
        assert.equal(file.pragma('integrity_check', { simple: true }), 'ok');
        file.close();
      }
    } finally {
      await db.drop();
    }
  });
}
