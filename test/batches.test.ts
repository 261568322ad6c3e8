/**
 * Batch submission (POST /api/v1/jobs/batch, seed 002) on each store: sequential batches run one
 * job after another on a real process worker, a failure stops the rest, and one bad entry
 * rejects the whole batch with its index and field.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS } from './helpers/db.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';

const node = process.execPath;
const step = (name: string, ms = 150, code = 0) => ({
  name, command: [node, '-e', `console.log('${name} start'); setTimeout(() => process.exit(${code}), ${ms})`], retry_policy: { max_attempts: 1 },
});

for (const kind of STORE_KINDS) {
  describe(`batches on ${kind}`, () => {
    let cl: TestCluster;
    let auth: Record<string, string>;
    before(async () => {
      cl = await startCluster(kind, { local_worker: true });
      auth = { authorization: `Bearer ${cl.server.admin_token}` };
    });
    after(() => cl.close());

    const batch = async (body: unknown) => {
      const res = await cl.server.app.inject({ method: 'POST', url: '/api/v1/jobs/batch', headers: { ...auth, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
      return { status: res.statusCode, body: res.json() as Record<string, any> };
    };
    const count = async () => (await cl.client.listJobs({ limit: 1000 })).jobs.length;
    const done = (id: string) => cl.client.waitFor(id, { timeout_ms: 30_000, interval_ms: 50 });

    test('sequential: each job starts only after the one before it completed, on a real worker', async () => {
      const res = await batch({ jobs: [step('first'), step('second'), step('third')], execution_mode: 'sequential' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.execution_mode, 'sequential');
      const ids: string[] = res.body.job_ids;
      assert.equal(ids.length, 3);
      assert.deepEqual(res.body.jobs.map((j: { status: string }) => j.status), ['QUEUED', 'SUBMITTED', 'SUBMITTED']);
      const second = await cl.client.getJob(ids[1]!);
      assert.deepEqual(second.depends_on?.map((d) => d.id), [ids[0]]);
      const jobs = [];
      for (const id of ids) jobs.push(await done(id));
      for (const j of jobs) assert.equal(j.status, 'COMPLETED', j.error ?? '');
      for (let i = 1; i < jobs.length; i++) {
        assert.ok(Date.parse(jobs[i]!.started_at!) >= Date.parse(jobs[i - 1]!.finished_at!), `job ${i} started after job ${i - 1} finished`);
      }
    });

    test('sequential: a failed job cancels the rest, saying why', async () => {
      const res = await batch({ jobs: [step('ok'), step('broken', 10, 4), step('never')], execution_mode: 'sequential' });
      const [a, b, c] = res.body.job_ids as string[];
      assert.equal((await done(a!)).status, 'COMPLETED');
      assert.equal((await done(b!)).status, 'FAILED');
      const cj = await cl.client.getJob(c!);
      assert.equal(cj.status, 'CANCELLED');
      assert.match(cj.error ?? '', new RegExp(`dependency ${b} ended FAILED`));
      assert.equal(cj.attempt_count, 0, 'it never ran');
    });

    test('sequential seed 002 batch (templates) runs in order', async () => {
      const res = await batch({
        jobs: [
          { template: 'hyperparameter_tuning', parameters: { algorithm: 'svm', C: 1.0 } },
          { template: 'hyperparameter_tuning', parameters: { algorithm: 'svm', C: 10.0 } },
        ],
        execution_mode: 'sequential',
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const [a, b] = await Promise.all((res.body.job_ids as string[]).map(done));
      assert.equal(a!.status, 'COMPLETED');
      assert.equal(b!.status, 'COMPLETED');
      assert.ok(Date.parse(b!.started_at!) >= Date.parse(a!.finished_at!));
    });

    const bad: [string, unknown[], string][] = [
      ['a schema error', [step('a'), { command: ['true'], resources: { cpu_cores: -1 } }], 'jobs[1].resources.cpu_cores'],
      ['nothing to run', [step('a'), step('b'), { name: 'empty' }], 'jobs[2].command'],
      ['an unknown dependency', [step('a'), { ...step('b'), depends_on: ['job_nope'] }], 'jobs[1].depends_on[0]'],
      ['an unknown dependency in a batch of one', [{ ...step('b'), depends_on: ['job_nope'] }], 'jobs[0].depends_on[0]'],
      ['a bad template parameter', [{ template: 'billing_report', parameters: { period: 'hourly' } }, step('b')], 'jobs[0].parameters.period'],
    ];
    for (const mode of ['parallel', 'sequential']) {
      for (const [what, jobs, field] of bad) {
        test(`${mode}: ${what} rejects the whole batch naming ${field}; nothing created`, async () => {
          const before = await count();
          const res = await batch({ jobs, execution_mode: mode });
          assert.equal(res.status, 400, JSON.stringify(res.body));
          assert.equal(res.body.error.field, field);
          assert.equal(await count(), before);
        });
      }
    }

    test('parallel returns every id and runs them side by side', async () => {
      const res = await batch({ jobs: [step('p1', 300), step('p2', 300)], execution_mode: 'parallel' });
      const [a, b] = await Promise.all((res.body.job_ids as string[]).map(done));
      assert.equal(a!.status, 'COMPLETED');
      assert.equal(b!.status, 'COMPLETED');
      assert.ok(Date.parse(b!.started_at!) < Date.parse(a!.finished_at!), 'overlapping');
    });
  });
}
