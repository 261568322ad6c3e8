/**
 * Workflows end to end on each store: seed 002's body, versions, every trigger rule, `when`
 * skips, outputs between steps (handler results and a command's `::output` line), map fan-out
 * and join, retries, cancel, re-run from the failed step with edited parameters.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { STORE_KINDS } from './helpers/db.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { startAgent } from '../src/worker/agent.ts';
import { Worker, NonRetryableError, workflow, workflows, type RunView, type WorkflowDefinition } from '../src/client/index.ts';

/** Seed 002's "Create job workflow" request body, verbatim. */
function seedWorkflowBody(): unknown {
  const text = readFileSync(new URL('../../shared/seeds/002_8240561ec8f2aa7c.txt', import.meta.url), 'utf8');
  const at = text.indexOf('**POST /api/v1/workflows**');
  const block = /```json\n([\s\S]*?)```/.exec(text.slice(at))!;
  return JSON.parse(block[1]!);
}

for (const kind of STORE_KINDS) {
  describe(`workflows on ${kind}`, () => {
    let cl: TestCluster;
    let w: Worker;
    let wf: ReturnType<typeof workflows>;
    const calls: Record<string, number> = {};
    const inject = (method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown) =>
      cl.server.app.inject({
        method, url,
        headers: { authorization: `Bearer ${cl.server.admin_token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        payload: body === undefined ? undefined : JSON.stringify(body),
      });

    before(async () => {
      cl = await startCluster(kind, { local_worker: true });
      wf = workflows(cl.client);
      w = new Worker({
        server: cl.server.url,
        token: cl.server.admin_token!,
        concurrency: 8,
        handlers: {
          noop: async (job) => {
            calls[String(job.parameters.tag ?? 'noop')] = (calls[String(job.parameters.tag ?? 'noop')] ?? 0) + 1;
            return { ok: true };
          },
          emit: async (job) => job.parameters.emit as Record<string, unknown>,
          echo: async (job) => ({ got: job.parameters }),
          fail: async () => {
            throw new NonRetryableError('step failed on purpose');
          },
          maybe_fail: async (job) => {
            if (job.parameters.fail === true) throw new NonRetryableError('asked to fail');
            return { passed: true, threshold: job.parameters.threshold ?? null };
          },
          square: async (job) => ({ y: Number(job.parameters.x) ** 2 }),
          sum: async (job) => ({ total: (job.parameters.values as { y: number }[]).reduce((a, v) => a + v.y, 0) }),
          flaky: async (job) => {
            if (job.attempt < 2) throw new Error('transient');
            return { attempt: job.attempt };
          },
          slow: async (job) => {
            await new Promise<void>((resolve) => job.signal.addEventListener('abort', () => resolve()));
            throw new Error('aborted');
          },
        },
      });
      await w.start();
    });
    after(async () => {
      await w.stop(0);
      await cl.close();
    });

    const runToEnd = async (def: WorkflowDefinition, params: Record<string, unknown> = {}): Promise<RunView> => {
      await wf.create(def);
      const r = await wf.run(def.workflow_name, params);
      return wf.waitForRun(r.run_id, { timeout_ms: 30_000, interval_ms: 20 });
    };
    const step = (r: RunView, id: string) => r.steps!.find((s) => s.step_id === id)!;

    test("seed 002's workflow body is accepted verbatim and versioned on re-post", async () => {
      const body = seedWorkflowBody();
      const res = await inject('POST', '/api/v1/workflows', body);
      assert.equal(res.statusCode, 201, res.body);
      const created = res.json();
      assert.match(created.workflow_id, /^wf_/);
      assert.equal(created.workflow_name, 'complete_ml_pipeline');
      assert.equal(created.version, 1);
      assert.equal(created.status, 'created');
      assert.deepEqual(created.steps, ['data_preparation', 'model_training', 'model_evaluation']);
      const again = (await inject('POST', '/api/v1/workflows', body)).json();
      assert.equal(again.version, 2);
      assert.notEqual(again.workflow_id, created.workflow_id);
      const list = (await inject('GET', '/api/v1/workflows')).json().workflows;
      const mine = list.find((x: { workflow_name: string }) => x.workflow_name === 'complete_ml_pipeline');
      assert.equal(mine.version, 2);
      assert.equal(mine.versions, 2);
      const v1 = (await inject('GET', '/api/v1/workflows/complete_ml_pipeline@1')).json();
      assert.equal(v1.workflow_id, created.workflow_id);
      assert.deepEqual(v1.steps[1].depends_on, ['data_preparation']);
      assert.equal(v1.steps[1].job_template, 'ml_training');
      // The built-in templates render each step into a job; the run goes through end to end on a
      // process worker big enough for ml_training's template (4 GPUs, 32 GB).
      const gpuBox = await startAgent({ server: cl.server.url, token: cl.server.admin_token!, cpu_cores: 16, memory_gb: 64, gpu_count: 4, slots: 4, kill_grace_ms: 1000 });
      let done: RunView;
      try {
        const run = await wf.run('complete_ml_pipeline');
        done = await wf.waitForRun(run.run_id, { timeout_ms: 60_000, interval_ms: 50 });
      } finally {
        await gpuBox.loop.stop(0);
      }
      assert.equal(done.status, 'SUCCEEDED', JSON.stringify(done.steps));
      assert.equal(done.version, 2);
      const train = await cl.client.getJob(step(done, 'model_training').jobs[0]!.job_id);
      assert.equal(train.parameters.algorithm, 'random_forest');
      const unknown = await inject('POST', '/api/v1/workflows', { workflow_name: 'y', steps: [{ step_id: 'a', job_template: 'no_such_template' }] });
      assert.equal(unknown.statusCode, 400);
      assert.equal(unknown.json().error.field, 'steps[0].job_template');
    });

    test('a cycle is rejected naming it, and nothing is stored', async () => {
      const res = await inject('POST', '/api/v1/workflows', {
        workflow_name: 'loop',
        steps: [
          { step_id: 'a', handler: 'noop', depends_on: ['c'] },
          { step_id: 'b', handler: 'noop', depends_on: ['a'] },
          { step_id: 'c', handler: 'noop', depends_on: ['b'] },
        ],
      });
      assert.equal(res.statusCode, 400);
      const err = res.json().error;
      assert.equal(err.code, 'VALIDATION_FAILED');
      assert.match(err.field, /^steps\[\d\]\.depends_on$/);
      assert.match(err.message, /cycle: (a → b → c → a|b → c → a → b|c → a → b → c)/);
      assert.equal((await inject('GET', '/api/v1/workflows/loop')).statusCode, 404);
      const bad = await inject('POST', '/api/v1/workflows', { workflow_name: 'x', steps: [{ step_id: 'a', handler: 'noop', depends_on: ['ghost'] }] });
      assert.equal(bad.json().error.field, 'steps[0].depends_on[0]');
      const expr = await inject('POST', '/api/v1/workflows', { workflow_name: 'x', steps: [{ step_id: 'a', handler: 'noop', when: 'params.x ==' }] });
      assert.equal(expr.json().error.field, 'steps[0].when');
      const notUp = await inject('POST', '/api/v1/workflows', {
        workflow_name: 'x',
        steps: [{ step_id: 'a', handler: 'noop' }, { step_id: 'b', handler: 'noop', parameters: { p: '{{ steps.a.outputs.x }}' } }],
      });
      assert.match(notUp.json().error.message, /not upstream of b/);
    });

    test('every trigger rule decides as Airflow does (one run, table-driven)', async () => {
      // Upstream kinds: ok/ok2 succeed, bad/bad2 fail, sk is skipped by its condition.
      const cases: [rule: string, upstream: string[], expected: string][] = [
        ['all_success', ['ok', 'ok2'], 'SUCCEEDED'],
        ['all_success', ['ok', 'bad'], 'UPSTREAM_FAILED'],
        ['all_success', ['ok', 'sk'], 'SKIPPED'],
        ['all_failed', ['bad', 'bad2'], 'SUCCEEDED'],
        ['all_failed', ['ok', 'bad'], 'SKIPPED'],
        ['all_done', ['ok', 'bad', 'sk'], 'SUCCEEDED'],
        ['one_success', ['ok', 'bad'], 'SUCCEEDED'],
        ['one_success', ['bad', 'bad2'], 'UPSTREAM_FAILED'],
        ['one_failed', ['ok', 'bad'], 'SUCCEEDED'],
        ['one_failed', ['ok', 'ok2'], 'SKIPPED'],
        ['none_failed', ['ok', 'sk'], 'SUCCEEDED'],
        ['none_failed', ['ok', 'bad'], 'UPSTREAM_FAILED'],
        ['none_skipped', ['ok', 'bad'], 'SUCCEEDED'],
        ['none_skipped', ['ok', 'sk'], 'SKIPPED'],
        ['always', ['bad'], 'SUCCEEDED'],
      ];
      const b = workflow('trigger_rules')
        .step('ok', { handler: 'noop' })
        .step('ok2', { handler: 'noop' })
        .step('bad', { handler: 'fail' })
        .step('bad2', { handler: 'fail' })
        .step('sk', { handler: 'noop', when: 'params.never == true' });
      cases.forEach(([rule, up], i) => b.step(`t${i}_${rule}`, { handler: 'noop', depends_on: up, trigger_rule: rule as never }));
      const r = await runToEnd(b.build());
      assert.equal(step(r, 'sk').status, 'SKIPPED');
      cases.forEach(([rule, up, expected], i) => {
        assert.equal(step(r, `t${i}_${rule}`).status, expected, `${rule} over [${up.join(', ')}]`);
      });
      // Leaves include failed-upstream steps, so the run failed.
      assert.equal(r.status, 'FAILED');
    });

    test('a false condition skips its branch; the skip propagates and a none_failed join still runs', async () => {
      const def = workflow('branching')
        .param('mode', 'fast')
        .step('start', { handler: 'emit', parameters: { emit: { size: 10 } } })
        .step('fast', { handler: 'noop', depends_on: ['start'], when: "params.mode == 'fast' and steps.start.outputs.size < 100" })
        .step('slow', { handler: 'noop', depends_on: ['start'], when: "params.mode == 'slow' or steps.start.outputs.size >= 100" })
        .step('slow_after', { handler: 'noop', depends_on: ['slow'] })
        .step('join', { handler: 'noop', depends_on: ['fast', 'slow_after'], trigger_rule: 'none_failed' })
        .build();
      const r = await runToEnd(def);
      assert.equal(r.status, 'SUCCEEDED');
      assert.deepEqual(
        ['start', 'fast', 'slow', 'slow_after', 'join'].map((s) => step(r, s).status),
        ['SUCCEEDED', 'SUCCEEDED', 'SKIPPED', 'SKIPPED', 'SUCCEEDED'],
      );
      assert.match(step(r, 'slow').error ?? '', /condition false/);
      assert.equal(step(r, 'slow').jobs.length, 0);
      const r2 = await wf.waitForRun((await wf.run('branching', { mode: 'slow' })).run_id, { timeout_ms: 20_000, interval_ms: 20 });
      assert.deepEqual(['fast', 'slow', 'slow_after'].map((s) => step(r2, s).status), ['SKIPPED', 'SUCCEEDED', 'SUCCEEDED']);
    });

    test("outputs flow between steps: a handler's result and a command's ::output line", async () => {
      const def = workflow('outputs')
        .step('train', { handler: 'emit', parameters: { emit: { model_path: '/models/m1.bin', accuracy: 0.97 } } })
        .step('measure', { command: ['sh', '-c', 'echo preparing; echo \'::output {"rows": 150, "cols": 4}\''] })
        .step('report', {
          handler: 'echo',
          depends_on: ['train', 'measure'],
          parameters: { model: '{{ steps.train.outputs.model_path }}', acc: '{{ steps.train.outputs.accuracy }}', summary: 'rows={{ steps.measure.outputs.rows }}' },
        })
        .build();
      const r = await runToEnd(def);
      assert.equal(r.status, 'SUCCEEDED', JSON.stringify(r.steps));
      assert.deepEqual(step(r, 'measure').outputs, { rows: 150, cols: 4 });
      assert.deepEqual(step(r, 'report').outputs, { got: { model: '/models/m1.bin', acc: 0.97, summary: 'rows=150' } });
    });

    test('map fans out one job per item and the next step joins the list of outputs', async () => {
      const def = workflow('fanout')
        .param('items', [1, 2, 3, 4, 5])
        .step('split', { handler: 'emit', parameters: { emit: { items: '{{ params.items }}' } } })
        .step('square', { handler: 'square', depends_on: ['split'], map: 'steps.split.outputs.items', parameters: { x: '{{ item }}', i: '{{ index }}' } })
        .step('total', { handler: 'sum', depends_on: ['square'], parameters: { values: '{{ steps.square.outputs }}' } })
        .build();
      const r = await runToEnd(def);
      assert.equal(r.status, 'SUCCEEDED');
      assert.equal(step(r, 'square').map_total, 5);
      assert.equal(step(r, 'square').jobs.length, 5);
      assert.deepEqual(step(r, 'square').outputs, [{ y: 1 }, { y: 4 }, { y: 9 }, { y: 16 }, { y: 25 }]);
      assert.deepEqual(step(r, 'total').outputs, { total: 55 });
      // An empty list: the mapped step succeeds with no jobs and the join sees [].
      const empty = await wf.waitForRun((await wf.run('fanout', { items: [] })).run_id, { timeout_ms: 20_000, interval_ms: 20 });
      assert.equal(empty.status, 'SUCCEEDED');
      assert.equal(step(empty, 'square').jobs.length, 0);
      assert.deepEqual(step(empty, 'total').outputs, { total: 0 });
    });

    test('a fan-out whose jobs end on two workers at once still joins (one run row lock)', async () => {
      const w2 = new Worker({ server: cl.server.url, token: cl.server.admin_token!, concurrency: 8, handlers: { square: async (job) => ({ y: Number(job.parameters.x) ** 2 }) } });
      await w2.start();
      try {
        const items = Array.from({ length: 60 }, (_, i) => i);
        for (let round = 0; round < 3; round++) {
          const r = await wf.waitForRun((await wf.run('fanout', { items })).run_id, { timeout_ms: 30_000, interval_ms: 20 });
          assert.equal(r.status, 'SUCCEEDED');
          assert.deepEqual(step(r, 'total').outputs, { total: items.reduce((a, x) => a + x * x, 0) });
        }
      } finally {
        await w2.stop(0);
      }
    });

    test("a step's job goes straight to the worker that finished its upstream, in the same transaction", async () => {
      const r = await runToEnd(workflow('handoff').step('a', { handler: 'noop' }).step('b', { handler: 'noop', depends_on: ['a'] }).build());
      assert.equal(r.status, 'SUCCEEDED');
      const events = async (id: string) => (await cl.client.request<{ events: { at: string; to: string; data: { worker_id?: string } | null }[] }>('GET', `/api/v1/jobs/${id}/events`)).events;
      const up = await events(step(r, 'a').jobs[0]!.job_id);
      const down = await events(step(r, 'b').jobs[0]!.job_id);
      const completed = up.find((e) => e.to === 'COMPLETED')!;
      const scheduled = down.find((e) => e.to === 'SCHEDULED')!;
      assert.equal(scheduled.at, completed.at, 'assigned in the transaction that completed the upstream step');
      const upWorker = up.find((e) => e.to === 'SCHEDULED')!.data!.worker_id;
      assert.equal(scheduled.data!.worker_id, upWorker);
    });

    test('per-step retries: a flaky step succeeds on its second attempt', async () => {
      const r = await runToEnd(workflow('retrying').step('f', { handler: 'flaky', retries: 2, retry_delay: 0.05, timeout: 30 }).build());
      assert.equal(r.status, 'SUCCEEDED');
      assert.deepEqual(step(r, 'f').outputs, { attempt: 2 });
      const job = await cl.client.getJob(step(r, 'f').jobs[0]!.job_id);
      assert.equal(job.retry_policy.max_attempts, 3);
      assert.equal(job.timeout, 30);
    });

    test('re-run from the failed step with edited parameters keeps the successful steps and their outputs', async () => {
      const def = workflow('rerunnable')
        .param('fail', true)
        .step('prepare', { handler: 'emit', parameters: { emit: { threshold: 0.9 } } })
        .step('train', { handler: 'maybe_fail', depends_on: ['prepare'], parameters: { fail: '{{ params.fail }}', threshold: '{{ steps.prepare.outputs.threshold }}' } })
        .step('publish', { handler: 'noop', depends_on: ['train'], parameters: { tag: 'publish' } })
        .build();
      const first = await runToEnd(def);
      assert.equal(first.status, 'FAILED');
      assert.deepEqual(['prepare', 'train', 'publish'].map((s) => step(first, s).status), ['SUCCEEDED', 'FAILED', 'UPSTREAM_FAILED']);
      assert.match(step(first, 'train').error ?? '', /asked to fail/);
      const prepareJob = step(first, 'prepare').jobs[0]!.job_id;
      const re = await wf.rerun(first.run_id, { fail: false });
      assert.deepEqual(re.reused_steps, ['prepare']);
      const second = await wf.waitForRun(re.run_id, { timeout_ms: 20_000, interval_ms: 20 });
      assert.equal(second.status, 'SUCCEEDED');
      assert.equal(second.rerun_of, first.run_id);
      assert.equal(second.parameters.fail, false);
      assert.equal(step(second, 'prepare').reused_from, first.run_id);
      assert.equal(step(second, 'prepare').jobs.length, 0, 'prepare did not run again');
      assert.deepEqual(step(second, 'train').outputs, { passed: true, threshold: 0.9 });
      assert.notEqual(step(second, 'train').jobs[0]!.job_id, prepareJob);
      // Only a failed run can be re-run.
      assert.equal((await inject('POST', `/api/v1/workflow-runs/${second.run_id}/rerun`, {})).statusCode, 409);
    });

    test('a run pins its definition version; cancelling a run stops its running job', async () => {
      await wf.create(workflow('pinned').step('wait', { handler: 'slow' }).build());
      const run = await wf.run('pinned');
      await wf.create(workflow('pinned').step('other', { handler: 'noop' }).build());
      assert.equal(run.version, 1);
      const jobId = run.steps![0]!.jobs[0]!.job_id;
      const cancelled = await wf.cancelRun(run.run_id, 'no longer needed');
      assert.equal(cancelled.status, 'CANCELLED');
      const j = await cl.client.waitFor(jobId, { timeout_ms: 10_000, interval_ms: 20 });
      assert.equal(j.status, 'CANCELLED');
      const after = await wf.getRun(run.run_id);
      assert.equal(after.version, 1);
      assert.equal(after.steps![0]!.step_id, 'wait');
      assert.equal(after.steps![0]!.status, 'CANCELLED');
      const runs = (await wf.runs('pinned')).runs;
      assert.equal(runs[0]!.run_id, run.run_id);
      assert.equal((await inject('POST', `/api/v1/workflow-runs/${run.run_id}/cancel`, {})).statusCode, 409);
      assert.equal((await inject('GET', '/api/v1/workflow-runs/wfr_nope')).statusCode, 404);
    });
  });
}
