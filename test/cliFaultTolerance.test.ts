/**
 * The fault-tolerance commands of the `gantry` CLI, run as child processes against a real server:
 * `submit --retry-policy`, `breakers` (list, reset), `dlq show` and `dlq requeue` of many jobs.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { STORE_KINDS } from './helpers/db.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { Worker } from '../src/client/index.ts';

const BIN = resolve(import.meta.dirname, '../bin/gantry.js');

for (const kind of STORE_KINDS) {
  describe(`fault-tolerance CLI on ${kind}`, () => {
    let cl: TestCluster;
    let sdk: Worker;
    before(async () => {
      cl = await startCluster(kind, { config: { breaker_threshold: 2, breaker_open_ms: 60_000 } });
      sdk = new Worker({
        server: cl.server.url, token: cl.server.admin_token!, concurrency: 2,
        handlers: { 'always-fails': async (job) => { if (job.parameters.fix !== true) throw new Error('bad input'); return { fixed: true }; } },
      });
      await sdk.start();
    });
    after(async () => {
      await sdk.close(0);
      await cl.close();
    });

    function gantry(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
      return new Promise((done, fail) => {
        const env = { ...process.env, GANTRY_URL: cl.server.url, GANTRY_TOKEN: cl.server.admin_token! };
        const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d) => (stdout += d));
        child.stderr!.on('data', (d) => (stderr += d));
        child.on('error', fail);
        child.on('close', (code) => done({ code, stdout, stderr }));
      });
    }

    test('submit --retry-policy takes a name; an unknown one is a usage error naming the flag', async () => {
      const ok = await gantry('submit', '--retry-policy', 'resource_exhausted', '-o', 'json', '--', 'true');
      assert.equal(ok.code, 0, ok.stderr);
      const job = await cl.client.getJob((JSON.parse(ok.stdout) as { job_id: string }).job_id);
      assert.equal(job.retry_policy.name, 'resource_exhausted');
      assert.equal(job.retry_policy.max_attempts, 3);
      const bad = await gantry('submit', '--retry-policy', 'hopeful', '--', 'true');
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^error: VALIDATION_FAILED retry_policy\.name: unknown retry policy 'hopeful' \(network_error, resource_exhausted, temporary_failure, critical_job\) \(--retry-policy\)\n$/);
    });

    test('breakers lists an open breaker and reset closes it; dlq show and requeue of many', async () => {
      const empty = await gantry('breakers');
      assert.equal(empty.code, 0, empty.stderr);
      assert.match(empty.stdout, /no breaker has tripped yet \(opens after 2 consecutive failures\)/);
      const sub = await cl.client.submitBatch([0, 1].map(() => ({ handler: 'always-fails', type: 'cli-dlq', retry_policy: { max_attempts: 1 } })));
      for (const id of sub.job_ids) await cl.client.waitFor(id, { interval_ms: 20, timeout_ms: 10_000 });
      const list = await gantry('breakers');
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /handler:always-fails\s+open\s+2\s/);
      const shown = await gantry('dlq', 'show', sub.job_ids[0]!);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /ATTEMPT\s+OUTCOME\s+EXIT/);
      assert.match(shown.stdout, /\n1\s+failed\s+-\s.*bad input/);
      const reset = await gantry('breakers', 'reset', 'handler:always-fails');
      assert.equal(reset.code, 0, reset.stderr);
      assert.equal(reset.stdout.trim(), 'breaker handler:always-fails closed');
      const both = await gantry('dlq', 'requeue', '--type', 'cli-dlq', '--param', 'fix=true');
      assert.equal(both.code, 0, both.stderr);
      assert.match(both.stdout, /^2 jobs requeued: /);
      for (const id of sub.job_ids) {
        const j = await cl.client.waitFor(id, { interval_ms: 20, timeout_ms: 10_000 });
        assert.equal(j.status, 'COMPLETED');
        assert.deepEqual(j.result, { fixed: true });
      }
      const neither = await gantry('dlq', 'requeue');
      assert.equal(neither.code, 2);
      assert.match(neither.stderr, /give job ids, or --type\/--tenant\/--error/);
    });
  });
}
