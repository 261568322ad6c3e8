/**
 * Tenants through the real server on each store: CRUD and bad input, tier priority permission,
 * quotas enforced by the scheduler (and changed without a restart), pause/resume of a tenant's
 * queue, fair progress of a small tenant beside a flooding one, and the `gantry tenants` CLI.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS } from './helpers/db.ts';
import { runGantry } from './helpers/cli.ts';
import { startCluster, eventually, type TestCluster } from './helpers/cluster.ts';
import { GantryApiError } from '../src/client/http.ts';

async function apiError(p: Promise<unknown>): Promise<GantryApiError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GantryApiError) return err;
    throw err;
  }
  assert.fail('expected the API to refuse');
}

for (const kind of STORE_KINDS) {
  describe(`tenants on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind);
    });
    after(() => cl.close());

    const inject = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, body?: unknown) =>
      cl.server.app.inject({
        method, url,
        headers: { authorization: `Bearer ${cl.server.admin_token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        payload: body === undefined ? undefined : JSON.stringify(body),
      });

    test('create, show, list, patch, put, delete; tier defaults fill what is not overridden', async () => {
      const created = await inject('POST', '/api/v1/tenants', { id: 'acme', tier: 'premium', quota: { gpu_count: 8 }, cohort: 'ml' });
      assert.equal(created.statusCode, 201, created.body);
      const t = created.json();
      assert.equal(t.tier, 'premium');
      assert.equal(t.cohort, 'ml');
      assert.deepEqual(t.overrides.quota, { gpu_count: 8 });
      assert.equal(t.effective.quota.gpu_count, 8);
      assert.equal(t.effective.quota.cpu_cores, 128, 'premium default');
      assert.deepEqual(t.effective.allowed_priorities, ['critical', 'high', 'normal', 'low']);

      const list = (await inject('GET', '/api/v1/tenants')).json();
      assert.ok(list.tenants.some((x: { tenant_id: string }) => x.tenant_id === 'acme'));
      assert.equal(list.default_tier, 'enterprise');

      const patched = (await inject('PATCH', '/api/v1/tenants/acme', { max_running_jobs: 3, fair_share_weight: 5 })).json();
      assert.equal(patched.effective.max_running_jobs, 3);
      assert.equal(patched.effective.quota.gpu_count, 8, 'PATCH keeps other overrides');
      const put = (await inject('PUT', '/api/v1/tenants/acme', { tier: 'basic' })).json();
      assert.equal(put.tier, 'basic');
      assert.deepEqual(put.overrides.quota, {}, 'PUT resets overrides');
      assert.equal(put.effective.quota.gpu_count, 4, 'basic default');
      assert.equal(put.cohort, 'default');

      assert.equal((await inject('DELETE', '/api/v1/tenants/acme')).statusCode, 200);
      const gone = await inject('GET', '/api/v1/tenants/acme');
      assert.equal(gone.statusCode, 404);
      assert.equal(gone.json().error.code, 'NOT_FOUND');
    });

    const bad: [string, string, string, unknown, number, string, string][] = [
      ['unknown tier', 'POST', '/api/v1/tenants', { id: 'x1', tier: 'gold' }, 400, 'VALIDATION_FAILED', 'tier'],
      ['negative quota', 'POST', '/api/v1/tenants', { id: 'x2', quota: { gpu_count: -1 } }, 400, 'VALIDATION_FAILED', 'quota.gpu_count'],
      ['unknown resource', 'POST', '/api/v1/tenants', { id: 'x3', quota: { tpu_count: 1 } }, 400, 'VALIDATION_FAILED', 'quota.tpu_count'],
      ['unknown field', 'POST', '/api/v1/tenants', { id: 'x4', colour: 'red' }, 400, 'VALIDATION_FAILED', 'colour'],
      ['missing id', 'POST', '/api/v1/tenants', { tier: 'free' }, 400, 'VALIDATION_FAILED', 'id'],
      ['zero weight', 'POST', '/api/v1/tenants', { id: 'x5', fair_share_weight: 0 }, 400, 'VALIDATION_FAILED', 'fair_share_weight'],
      ['unknown priority', 'POST', '/api/v1/tenants', { id: 'x6', allowed_priorities: ['asap'] }, 400, 'VALIDATION_FAILED', 'allowed_priorities[0]'],
      ['unknown tier on update', 'PATCH', '/api/v1/tenants/dup', { tier: 'platinum' }, 400, 'VALIDATION_FAILED', 'tier'],
      ['duplicate id', 'POST', '/api/v1/tenants', { id: 'dup' }, 409, 'CONFLICT', 'id'],
    ];
    for (const [what, method, url, body, status, code, field] of bad) {
      test(`tenant ${what} → ${status} ${code} naming ${field}; nothing written`, async () => {
        if ((await inject('GET', '/api/v1/tenants/dup')).statusCode === 404) await inject('POST', '/api/v1/tenants', { id: 'dup', tier: 'free' });
        const before = (await inject('GET', '/api/v1/tenants')).json().tenants;
        const res = await inject(method as 'POST', url, body);
        assert.equal(res.statusCode, status, res.body);
        assert.equal(res.json().error.code, code);
        assert.equal(res.json().error.field, field, res.json().error.message);
        assert.deepEqual((await inject('GET', '/api/v1/tenants')).json().tenants, before);
      });
    }

    test('a tier may only use its priorities: free may not submit emergency; unregistered tenants run under the default tier', async () => {
      await cl.client.createTenant({ id: 'cheap', tier: 'free' });
      const e = await apiError(cl.client.submit({ command: ['true'], tenant: 'cheap', priority: 'emergency' }));
      assert.equal(e.status, 403);
      assert.equal(e.code, 'PRIORITY_NOT_ALLOWED');
      assert.equal(e.field, 'priority');
      assert.match(e.message, /tier free.*allowed: normal, low/);
      const batch = await apiError(cl.client.request('POST', '/api/v1/jobs/batch', { jobs: [{ command: ['true'], tenant: 'cheap' }, { command: ['true'], tenant: 'cheap', priority: 'high' }] }));
      assert.equal(batch.code, 'PRIORITY_NOT_ALLOWED');
      assert.equal(batch.field, 'jobs[1].priority');
      assert.equal((await cl.client.listJobs({ tenant: 'cheap' })).jobs.length, 0, 'nothing of the batch was written');

      const ok = await cl.client.submit({ command: ['true'], tenant: 'cheap', priority: 'low' });
      const up = await apiError(cl.client.setPriority(ok.job_id, 'critical'));
      assert.equal(up.code, 'PRIORITY_NOT_ALLOWED', 'a priority change is held to the same rule');
      await cl.client.cancel(ok.job_id);

      // A per-tenant override widens the tier's list.
      await cl.client.updateTenant('cheap', { allowed_priorities: ['high', 'normal', 'low'] });
      const high = await cl.client.submit({ command: ['true'], tenant: 'cheap', priority: 'high' });
      await cl.client.cancel(high.job_id);
      // Not registered: the default tier (enterprise) may use emergency.
      const unreg = await cl.client.submit({ command: ['true'], tenant: 'nobody-registered', priority: 'emergency' });
      await cl.client.cancel(unreg.job_id);
    });

    test('gantry tenants create/show/update/list/pause/resume/delete, and errors name the field', async () => {
      const c = await runGantry(cl, ['tenants', 'create', 'cli-t', '--tier', 'premium', '--quota', 'gpu_count=2', '--weight', '3']);
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stdout, /tier:\s+premium/);
      assert.match(c.stdout, /quota:\s+cpu_cores=128 memory_gb=1024 gpu_count=2/);
      const u = await runGantry(cl, ['tenants', 'update', 'cli-t', '--max-running', '4', '--output', 'json']);
      assert.equal(u.code, 0, u.stderr);
      assert.equal(JSON.parse(u.stdout).effective.max_running_jobs, 4);
      const l = await runGantry(cl, ['tenants', 'list']);
      assert.match(l.stdout, /cli-t\s+premium\s+default\s+active/);
      assert.match((await runGantry(cl, ['tenants', 'pause', 'cli-t'])).stdout, /tenant cli-t queue paused/);
      assert.match((await runGantry(cl, ['tenants', 'show', 'cli-t'])).stdout, /queue:\s+PAUSED/);
      assert.match((await runGantry(cl, ['tenants', 'resume', 'cli-t'])).stdout, /tenant cli-t queue active/);
      const bad = await runGantry(cl, ['tenants', 'update', 'cli-t', '--tier', 'gold']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /VALIDATION_FAILED tier: unknown tier 'gold'/);
      assert.equal((await runGantry(cl, ['tenants', 'delete', 'cli-t'])).code, 0);
      const missing = await runGantry(cl, ['tenants', 'show', 'cli-t']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /NOT_FOUND tenant cli-t not found/);
    });

    describe('with a worker', () => {
      before(async () => {
        await cl.startWorker({ cpu: 4, slots: 8 });
      });

      test('a quota holds jobs back with an explanation, and a raised quota applies on the next cycle without a restart', async () => {
        await cl.client.createTenant({ id: 'quota-t', tier: 'basic', cohort: 'quota-solo', quota: { cpu_cores: 1 }, borrowing_limit: { cpu_cores: 0 } });
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) ids.push((await cl.client.submit({ command: ['sleep', '30'], tenant: 'quota-t', resources: { cpu_cores: 1 } })).job_id);
        await eventually(async () => (await cl.client.getJob(ids[0]!)).status === 'RUNNING');
        await new Promise((r) => setTimeout(r, 1500)); // a few cycles
        const states = await Promise.all(ids.map(async (id) => (await cl.client.getJob(id)).status));
        assert.deepEqual(states, ['RUNNING', 'QUEUED', 'QUEUED'], 'one cpu of quota: one job at a time');
        const why = await cl.client.explain(ids[1]!);
        const q = why.reasons.find((r) => r.kind === 'quota');
        assert.ok(q, JSON.stringify(why));
        assert.equal(q.resource, 'cpu_cores');
        assert.equal(q.limit, 1);
        assert.match(why.summary ?? '', /tenant quota-t at quota for cpu_cores \(1\/1/);
        assert.match((await cl.client.getJob(ids[1]!)).pending_reason ?? '', /at quota for cpu_cores/);
        const cli = await runGantry(cl, ['why', ids[1]!]);
        assert.equal(cli.code, 0, cli.stderr);
        assert.match(cli.stdout, /tenant:\s+quota-t \(tier basic, cohort quota-solo\)/);
        assert.match(cli.stdout, /- tenant quota-t at quota for cpu_cores/);
        const asked = Date.now();
        const { as_of, ...load } = (await cl.client.getTenant('quota-t')).load!;
        assert.deepEqual(load, { running_jobs: 1, queued_jobs: 2, held: { cpu_cores: 1, memory_gb: 0.25, gpu_count: 0 } });
        assert.ok(Date.parse(as_of) >= asked - 1, `a small queue is counted at the call, not at ${as_of}`);
        assert.match((await runGantry(cl, ['tenants', 'show', 'quota-t'])).stdout, /running:\s+1 jobs holding cpu_cores=1 memory_gb=0.25 gpu_count=0\nqueued:\s+2 jobs/);

        await cl.client.updateTenant('quota-t', { quota: { cpu_cores: 3 } });
        await eventually(async () => (await Promise.all(ids.map(async (id) => (await cl.client.getJob(id)).status))).every((s) => s === 'RUNNING'), 5000);
        for (const id of ids) await cl.client.cancel(id);
      });

      test("a paused tenant's queue holds its jobs while others run; resume releases them", async () => {
        await cl.client.createTenant({ id: 'pausy', tier: 'premium' });
        await cl.client.pauseTenant('pausy');
        const held = await cl.client.submit({ command: ['true'], tenant: 'pausy' });
        const other = await cl.client.submit({ command: ['true'], tenant: 'someone-else' });
        assert.equal((await cl.client.waitFor(other.job_id, { interval_ms: 20, timeout_ms: 10_000 })).status, 'COMPLETED');
        await new Promise((r) => setTimeout(r, 1200));
        const j = await cl.client.getJob(held.job_id);
        assert.equal(j.status, 'QUEUED');
        assert.match(j.pending_reason ?? '', /tenant pausy's queue is paused/);
        assert.ok((await cl.client.explain(held.job_id)).reasons.some((r) => r.kind === 'tenant_paused'));
        await cl.client.resumeTenant('pausy');
        assert.equal((await cl.client.waitFor(held.job_id, { interval_ms: 20, timeout_ms: 10_000 })).status, 'COMPLETED');
      });

      test('a small tenant progresses while another floods the queue', async () => {
        await cl.client.createTenant({ id: 'flood', tier: 'premium' });
        await cl.client.createTenant({ id: 'small', tier: 'premium' });
        const flood: string[] = [];
        const jobs = Array.from({ length: 120 }, () => ({ command: ['sleep', '0.3'], tenant: 'flood', resources: { cpu_cores: 0.5 } }));
        flood.push(...(await cl.client.request<{ job_ids: string[] }>('POST', '/api/v1/jobs/batch', { jobs })).job_ids);
        const small: string[] = [];
        for (let i = 0; i < 4; i++) small.push((await cl.client.submit({ command: ['sleep', '0.3'], tenant: 'small', resources: { cpu_cores: 0.5 } })).job_id);
        for (const id of small) assert.equal((await cl.client.waitFor(id, { interval_ms: 50, timeout_ms: 20_000 })).status, 'COMPLETED');
        const floodDone = (await cl.client.listJobs({ tenant: 'flood', status: 'COMPLETED', limit: 1000 })).jobs.length;
        assert.ok(floodDone > 0, 'the flooding tenant progressed too');
        assert.ok(floodDone < 100, `the small tenant did not wait for the flood to drain (${floodDone}/120 flood jobs done)`);
        for (const id of flood) await cl.client.cancel(id).catch(() => {});
      });
    });
  });
}
