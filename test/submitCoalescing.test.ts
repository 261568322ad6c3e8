/**
 * Single submits that arrive together share one transaction (src/server/submitCoalescer.ts); each
 * caller must still get its own job, or its own error, exactly as if it had been alone.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS } from './helpers/db.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';

for (const kind of STORE_KINDS) {
  describe(`concurrent single submits on ${kind}`, () => {
    let cl: TestCluster;
    let auth: Record<string, string>;
    before(async () => {
      cl = await startCluster(kind);
      auth = { authorization: `Bearer ${cl.server.admin_token}`, 'content-type': 'application/json' };
    });
    after(() => cl.close());
    const submit = (body: unknown) => cl.server.app.inject({ method: 'POST', url: '/api/v1/jobs', headers: auth, payload: JSON.stringify(body) });

    test('200 at once: each gets its own job in arrival order; a bad one fails alone with its own error', async () => {
      const bodies = Array.from({ length: 200 }, (_, i) =>
        i === 57 ? { command: ['true'], name: 'bad', depends_on: ['job_does_not_exist'] } : { command: ['true'], name: `j${i}`, labels: { i: String(i) } });
      const res = await Promise.all(bodies.map(submit));
      const bad = res[57]!;
      assert.equal(bad.statusCode, 400, bad.body);
      assert.equal(bad.json().error.field, 'depends_on[0]');
      const ok = res.filter((_, i) => i !== 57);
      assert.ok(ok.every((r) => r.statusCode === 201), ok.find((r) => r.statusCode !== 201)?.body);
      const ids = ok.map((r) => r.json().job_id as string);
      assert.equal(new Set(ids).size, 199);
      for (const [k, r] of ok.entries()) {
        const i = k < 57 ? k : k + 1;
        const job = (await cl.server.app.inject({ method: 'GET', url: `/api/v1/jobs/${r.json().job_id}`, headers: auth })).json();
        assert.equal(job.name, `j${i}`);
      }
      const listed = (await cl.server.app.inject({ method: 'GET', url: '/api/v1/jobs?limit=1000', headers: auth })).json().jobs;
      assert.equal(listed.filter((j: { name: string }) => j.name === 'bad').length, 0, 'nothing of the bad submit was written');
    });

    test('the same idempotency key sent many times at once: one job, created once', async () => {
      const res = await Promise.all(Array.from({ length: 20 }, () => submit({ command: ['true'], idempotency_key: 'once' })));
      assert.ok(res.every((r) => r.statusCode === 201 || r.statusCode === 200), res.map((r) => r.statusCode).join());
      assert.equal(new Set(res.map((r) => r.json().job_id)).size, 1);
      assert.equal(res.filter((r) => r.statusCode === 201).length, 1);
    });
  });
}
