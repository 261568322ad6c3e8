/**
 * Sustained submissions from a second process while a worker drains (small size; the full
 * 2,000/s × 60 s runs in `npm run chaos`): no error responses and nothing lost — every accepted
 * job is stored and COMPLETED. Latency and memory are reported, not asserted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, STORE_KINDS } from './helpers/db.ts';
import { formatLoad, runLoad } from './chaos/load.ts';

for (const kind of STORE_KINDS) {
  test(`load on ${kind}: submits at up to 1,000/s for 5 s, no errors, every job completed`, async () => {
    const db = await freshDatabase(kind);
    try {
      const r = await runLoad({ database: db.url, dir: db.dir, rate: 1000, seconds: 5, drainTimeoutMs: 30_000 });
      console.log(`# load on ${kind}\n${formatLoad(r).replace(/^/gm, '# ')}`);
      assert.equal(r.errors, 0, r.error_samples.join('; '));
      assert.ok(r.sent > 0);
      assert.equal(r.ok, r.sent, 'every submit was accepted');
      assert.equal(r.jobs_in_store, r.ok, 'every accepted job is stored');
      assert.equal(r.completed, r.ok, 'every stored job completed');
    } finally {
      await db.drop();
    }
  });
}
