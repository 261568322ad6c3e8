/**
 * The REST API v1 in-process (fastify.inject) on each store: validation, auth, errors, queue control.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS } from './helpers/db.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';

for (const kind of STORE_KINDS) {
  describe(`REST API on ${kind}`, () => {
    let cl: TestCluster;
    let auth: Record<string, string>;
    before(async () => {
      cl = await startCluster(kind);
      auth = { authorization: `Bearer ${cl.server.admin_token}` };
    });
    after(() => cl.close());

    const inject = (method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown, headers: Record<string, string> = {}) =>
      cl.server.app.inject({
        method,
        url,
        headers: { ...auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        payload: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });

    test('/health needs no token; everything else needs a known bearer token', async () => {
      assert.equal((await cl.server.app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
      const none = await cl.server.app.inject({ method: 'GET', url: '/api/v1/jobs' });
      assert.equal(none.statusCode, 401);
      assert.equal(none.json().error.code, 'UNAUTHORIZED');
      const bad = await inject('GET', '/api/v1/jobs', undefined, { authorization: 'Bearer gty_not-a-token' });
      assert.equal(bad.statusCode, 401);
      assert.equal((await inject('GET', '/ready')).json().status, 'ready');
    });

    const cases: [string, unknown, number, string, string | null][] = [
      ['malformed JSON', '{"command": ["true"', 400, 'INVALID_JSON', null],
      ['wrong type', { command: 'true' }, 400, 'VALIDATION_FAILED', 'command'],
      ['unknown field', { command: ['true'], colour: 'red' }, 400, 'VALIDATION_FAILED', 'colour'],
      ['negative resources', { command: ['true'], resources: { cpu_cores: -1 } }, 400, 'VALIDATION_FAILED', 'resources.cpu_cores'],
      ['fractional GPUs', { command: ['true'], resources: { gpu_count: 1.5 } }, 400, 'VALIDATION_FAILED', 'resources.gpu_count'],
      ['unknown priority', { command: ['true'], priority: 'asap' }, 400, 'VALIDATION_FAILED', 'priority'],
      ['neither command nor handler', { name: 'x' }, 400, 'VALIDATION_FAILED', 'command'],
      ['both command and handler', { command: ['true'], handler: 'h' }, 400, 'VALIDATION_FAILED', 'command'],
      ['empty command', { command: [] }, 400, 'VALIDATION_FAILED', 'command'],
      ['bad backoff', { command: ['true'], retry_policy: { backoff: 'linear' } }, 400, 'VALIDATION_FAILED', 'retry_policy.backoff'],
      ['zero attempts', { command: ['true'], retry_policy: { max_attempts: 0 } }, 400, 'VALIDATION_FAILED', 'retry_policy.max_attempts'],
      ['non-string env', { command: ['true'], env: { A: 1 } }, 400, 'VALIDATION_FAILED', 'env.A'],
      ['array body', [1, 2], 400, 'VALIDATION_FAILED', 'body'],
    ];
    for (const [what, body, status, code, field] of cases) {
      test(`submit with ${what} → ${status} ${code}${field ? ` naming ${field}` : ''}, nothing written`, async () => {
        const before = (await inject('GET', '/api/v1/jobs?limit=1000')).json().jobs.length;
        const res = await inject('POST', '/api/v1/jobs', body);
        assert.equal(res.statusCode, status, res.body);
        const err = res.json().error;
        assert.equal(err.code, code);
        if (field) assert.equal(err.field, field, err.message);
        assert.equal((await inject('GET', '/api/v1/jobs?limit=1000')).json().jobs.length, before);
      });
    }

    test('a body over the size limit → 413', async () => {
      const res = await inject('POST', '/api/v1/jobs', { command: ['echo', 'x'.repeat(17 * 1024 * 1024)] });
      assert.equal(res.statusCode, 413);
      assert.equal(res.json().error.code, 'PAYLOAD_TOO_LARGE');
    });

    test('unknown job → 404; illegal transition → 409 naming both states', async () => {
      const nf = await inject('GET', '/api/v1/jobs/job_nope');
      assert.equal(nf.statusCode, 404);
      assert.equal(nf.json().error.code, 'NOT_FOUND');
      const { job_id } = (await inject('POST', '/api/v1/jobs', { command: ['true'] })).json();
      const pause = await inject('POST', `/api/v1/jobs/${job_id}/pause`, {});
      assert.equal(pause.statusCode, 409);
      assert.equal(pause.json().error.code, 'INVALID_TRANSITION');
      assert.equal(pause.json().error.from, 'QUEUED');
      const retry = await inject('POST', `/api/v1/jobs/${job_id}/retry`, {});
      assert.equal(retry.statusCode, 409);
      assert.equal((await inject('POST', `/api/v1/jobs/${job_id}/cancel`, {})).json().status, 'CANCELLED');
      const again = await inject('POST', `/api/v1/jobs/${job_id}/cancel`, {});
      assert.equal(again.statusCode, 409);
    });

    test('submit answers seed 002 shape; idempotency key returns the original job', async () => {
      const body = { command: ['true'], idempotency_key: 'nightly-2026-11-22', tenant: 'acme' };
      const first = await inject('POST', '/api/v1/jobs', body);
      assert.equal(first.statusCode, 201);
      const j = first.json();
      assert.deepEqual(Object.keys(j).sort(), ['estimated_start_time', 'job_id', 'message', 'queue_position', 'status']);
      assert.equal(j.status, 'QUEUED');
      const second = await inject('POST', '/api/v1/jobs', body);
      assert.equal(second.statusCode, 200);
      assert.equal(second.json().job_id, j.job_id);
      const other = await inject('POST', '/api/v1/jobs', { ...body, tenant: 'globex' });
      assert.notEqual(other.json().job_id, j.job_id, 'keys are per tenant');
    });

    test('batch: all ids back; one bad job rejects the whole batch with its index and field', async () => {
      const ok = await inject('POST', '/api/v1/jobs/batch', {
        jobs: [{ command: ['true'], parameters: { C: 1.0 } }, { command: ['true'], parameters: { C: 10.0 } }],
        execution_mode: 'parallel',
      });
      assert.equal(ok.statusCode, 201);
      assert.equal(ok.json().job_ids.length, 2);
      const count = (await inject('GET', '/api/v1/jobs?limit=1000')).json().jobs.length;
      const bad = await inject('POST', '/api/v1/jobs/batch', {
        jobs: [{ command: ['true'] }, { command: ['true'] }, { command: ['true'], resources: { memory_gb: -2 } }],
      });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().error.field, 'jobs[2].resources.memory_gb');
      const semantic = await inject('POST', '/api/v1/jobs/batch', { jobs: [{ command: ['true'] }, { name: 'no-command' }] });
      assert.equal(semantic.json().error.field, 'jobs[1].command');
      assert.equal((await inject('GET', '/api/v1/jobs?limit=1000')).json().jobs.length, count, 'nothing half-created');
    });

    test('list filters and pages with a cursor; a forged cursor → 400 INVALID_CURSOR', async () => {
      for (let i = 0; i < 5; i++) await inject('POST', '/api/v1/jobs', { command: ['true'], type: 'pager', tenant: 'paging' });
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: { jobs: { job_id: string; type: string }[]; next_cursor: string | null } = (
          await inject('GET', `/api/v1/jobs?tenant=paging&limit=2${cursor ? `&cursor=${cursor}` : ''}`)
        ).json();
        seen.push(...res.jobs.map((j) => j.job_id));
        assert.ok(res.jobs.every((j) => j.type === 'pager'));
        cursor = res.next_cursor;
      } while (cursor);
      assert.equal(new Set(seen).size, 5);
      const bad = await inject('GET', '/api/v1/jobs?cursor=bm9wZQ');
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().error.code, 'INVALID_CURSOR');
      assert.equal((await inject('GET', '/api/v1/jobs?limit=abc')).json().error.field, 'querystring.limit');
      assert.equal((await inject('GET', '/api/v1/jobs?status=running')).statusCode, 200);
    });

    test('submit answers each job\'s queue position, in turn and when submits share one write', async () => {
      // A handler no worker serves: its own queue, nothing taken from it meanwhile.
      const body = { handler: 'queue-position-probe', tenant: 'positions' };
      const pos = async (id: string) => (await inject('GET', `/api/v1/jobs/${id}`)).json().queue_position as number;
      const inTurn = [];
      for (let i = 0; i < 3; i++) inTurn.push((await inject('POST', '/api/v1/jobs', body)).json());
      assert.deepEqual(inTurn.map((j) => j.queue_position), [1, 2, 3]);
      const together = (await Promise.all(Array.from({ length: 6 }, () => inject('POST', '/api/v1/jobs', body)))).map((r) => r.json());
      assert.deepEqual(together.map((j) => j.queue_position).sort((a, b) => a - b), [4, 5, 6, 7, 8, 9]);
      for (const j of [...inTurn, ...together]) assert.equal(j.queue_position, await pos(j.job_id), j.job_id);
      const urgent = (await inject('POST', '/api/v1/jobs', { ...body, priority: 'high' })).json();
      assert.equal(urgent.queue_position, 1, 'a higher class goes first');
    });

    test('priority change (seed 002 body, `urgent` alias) and reorder move jobs in the queue', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await inject('POST', '/api/v1/jobs', { command: ['true'], tenant: 'reorder', priority: 'low' })).json().job_id);
      const pos = async (id: string) => (await inject('GET', `/api/v1/jobs/${id}`)).json().queue_position as number;
      const p2 = await pos(ids[2]!);
      const moved = await inject('POST', '/api/v1/queue/reorder', { job_id: ids[2], new_position: p2 - 2, reason: 'Critical production fix' });
      assert.equal(moved.statusCode, 200, moved.body);
      assert.equal(moved.json().queue_position, p2 - 2);
      assert.equal(await pos(ids[0]!), p2 - 1);
      const up = await inject('PUT', `/api/v1/jobs/${ids[1]}/priority`, { priority: 'urgent', reason: 'Production model update required' });
      assert.equal(up.json().priority, 'critical');
      assert.equal(await pos(ids[1]!), 1);
      const ev = (await inject('GET', `/api/v1/jobs/${ids[1]}/events`)).json().events.at(-1);
      assert.match(ev.reason, /priority low → critical: Production model update required/);
      const conflict = await inject('POST', '/api/v1/queue/reorder', { job_id: ids[0], new_position: 1 });
      assert.equal(conflict.statusCode, 409);
      assert.equal(conflict.json().error.code, 'CONFLICT');
      const status = (await inject('GET', '/api/v1/queue/status')).json();
      assert.ok(status.queue_length >= 3);
      assert.ok(status.queues.low.length >= 2);
      assert.match(status.queues.low.avg_wait_time, /^\d+(m |h )?\d*s?/);
    });

    test('OpenAPI 3.1 lists every route', async () => {
      const doc = (await inject('GET', '/api/v1/openapi.json')).json();
      assert.equal(doc.openapi, '3.1.0');
      for (const p of ['/api/v1/jobs', '/api/v1/jobs/{id}', '/api/v1/jobs/batch', '/api/v1/jobs/{id}/logs', '/api/v1/queue/reorder', '/api/v1/dead-letter/{id}/requeue', '/api/v1/workers']) {
        assert.ok(doc.paths[p], `missing ${p}`);
      }
      assert.ok(doc.paths['/api/v1/jobs'].post.requestBody);
    });
  });
}
