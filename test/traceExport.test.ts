/**
 * `gantry simulate export` on each store: the recorded history of a real server as a simulator
 * trace (JSONL) and its cluster as YAML.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { STORE_KINDS } from './helpers/db.ts';
import { runGantry } from './helpers/cli.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';

for (const kind of STORE_KINDS) {
  describe(`trace export on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind);
      await cl.startWorker({ cpu: 2, slots: 4, gpus: 2 });
    });
    after(() => cl.close());

    test('finished jobs become trace lines with their real runtimes; the cluster becomes YAML', async () => {
      await cl.client.createTenant({ id: 'acme', tier: 'premium', quota: { gpu_count: 2 }, cohort: 'research' });
      const a = await cl.client.submit({ command: ['sleep', '0.3'], tenant: 'acme', priority: 'high', resources: { cpu_cores: 1, gpu_count: 1 }, expected_duration: 2 });
      const b = await cl.client.submit({
        command: ['sh', '-c', 'sleep 0.1; [ "$GANTRY_ATTEMPT" = 2 ]'], retry_policy: { max_attempts: 2, retry_delay: 0.1 }, resources: { cpu_cores: 0.5 },
      });
      const queued = await cl.client.submit({ command: ['true'], tenant: 'acme', resources: { cpu_cores: 64 } });
      for (const id of [a.job_id, b.job_id]) assert.equal((await cl.client.waitFor(id, { interval_ms: 25, timeout_ms: 15_000 })).status, 'COMPLETED');

      const file = join(cl.db.dir, 'trace.jsonl');
      const cluster = join(cl.db.dir, 'cluster.yaml');
      const r = await runGantry(cl, ['simulate', 'export', '--out', file, '--cluster-out', cluster]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /wrote 2 jobs to .*trace\.jsonl and the cluster to .*cluster\.yaml/);
      const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(lines.map((l) => l.id), [a.job_id, b.job_id], 'only jobs that ran; one line per job');
      const [la, lb] = lines as [Record<string, unknown>, Record<string, unknown>];
      assert.equal(la.submit_ms, 0);
      assert.ok(Number(lb.submit_ms) >= 0);
      assert.equal(la.tenant, 'acme');
      assert.equal(la.priority, 'high');
      assert.equal(la.gpu_count, 1);
      assert.equal(la.expected_duration_ms, 2000);
      assert.ok(Number(la.duration_ms) >= 250 && Number(la.duration_ms) < 5000, `runtime ${la.duration_ms}`);
      assert.equal(lb.tenant, 'default');
      assert.equal(lb.expected_duration_ms, null);
      assert.ok(Number(lb.duration_ms) >= 50, 'the runtime of its last run');
      assert.equal(lb.queue_key, '');

      const y = parseYaml(readFileSync(cluster, 'utf8')) as { workers: Record<string, number>[]; tenants: Record<string, unknown>[] };
      assert.equal(y.workers.length, 1);
      assert.equal(y.workers[0]!.count, 1);
      assert.equal(y.workers[0]!.gpu_count, 2);
      const acme = y.tenants.find((t) => t.id === 'acme')!;
      assert.equal(acme.cohort, 'research');
      assert.deepEqual(acme.quota, { cpu_cores: 128, memory_gb: 1024, gpu_count: 2 });

      // The simulator replays the exported history on the exported cluster, and a what-if on it.
      const sim = await runGantry(cl, ['simulate', '--trace', file, '--cluster', cluster, '--policy', 'gantry,strict-fifo', '--add-gpus', '8', '--output', 'json']);
      assert.equal(sim.code, 0, sim.stderr);
      const res = JSON.parse(sim.stdout) as { jobs: number };
      assert.equal(res.jobs, 2);

      const window = await runGantry(cl, ['simulate', 'export', '--out', file, '--since', new Date(Date.now() + 60_000).toISOString()]);
      assert.match(window.stdout, /wrote 0 jobs/);
      const bad = await cl.server.app.inject({ method: 'GET', url: '/api/v1/trace?since=yesterday', headers: { authorization: `Bearer ${cl.server.admin_token}` } });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().error.field, 'since');
      await cl.client.cancel(queued.job_id);
    });
  });
}
