/**
 * `gantry workflow …` and `gantry schedule …` as child processes against a real server with a
 * real process worker, on each store — including the iris example end to end (a random forest
 * trained and evaluated by the example's step scripts, accuracy reported as the run's output).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { STORE_KINDS } from './helpers/db.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';

const BIN = resolve(import.meta.dirname, '../bin/gantry.js');
const IRIS_DIR = resolve(import.meta.dirname, '../examples/iris');

for (const kind of STORE_KINDS) {
  describe(`gantry workflow / schedule CLI on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind, { local_worker: true });
    });
    after(() => cl.close());

    const gantry = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
        const env = { ...process.env };
        for (const k of Object.keys(env)) if (k.startsWith('GANTRY_')) delete env[k];
        const child = spawn(process.execPath, [BIN, '--server', cl.server.url, '--token', cl.server.admin_token!, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.on('error', fail);
        child.on('close', (code) => {
          clearTimeout(timer);
          done({ code, stdout, stderr });
        });
      });

    test('the iris example: create from YAML, run, accuracy > 0.9 reported by the evaluate step', async () => {
      const created = await gantry(['workflow', 'create', '-f', join(IRIS_DIR, 'workflow.yaml')]);
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, /Workflow created successfully: iris_random_forest v1 .*steps preprocess, train, evaluate, report/);
      const run = await gantry(['workflow', 'run', 'iris_random_forest', '--param', `example_dir=${IRIS_DIR}`, '--wait', '--timeout', '120', '-o', 'json']);
      assert.equal(run.code, 0, run.stderr + run.stdout);
      const r = JSON.parse(run.stdout) as { status: string; steps: { step_id: string; status: string; outputs: Record<string, unknown> }[] };
      assert.equal(r.status, 'SUCCEEDED');
      const evaluate = r.steps.find((s) => s.step_id === 'evaluate')!;
      const accuracy = Number(evaluate.outputs.accuracy);
      assert.ok(accuracy > 0.9 && accuracy <= 1, `accuracy ${accuracy}`);
      assert.equal(evaluate.outputs.total, 30);
      assert.equal(r.steps.find((s) => s.step_id === 'preprocess')!.outputs.n_train, 120);
      assert.equal(r.steps.find((s) => s.step_id === 'report')!.status, 'SUCCEEDED');
      const list = await gantry(['workflow', 'list']);
      assert.match(list.stdout, /iris_random_forest\s+1\s+4\s+wf_/);
    });

    test('run, status, runs, rerun with an edited parameter, cancel — with exit codes', async () => {
      const file = join(cl.db.dir, 'wf.yaml');
      writeFileSync(file, [
        'workflow_name: cli_pipeline',
        'parameters: {code: 3}',
        'steps:',
        '  - step_id: first',
        "    command: [sh, -c, 'echo \"::output {\\\"n\\\": 7}\"']",
        '  - step_id: second',
        "    command: [sh, -c, 'exit {{ params.code }}']",
        '    depends_on: [first]',
        '',
      ].join('\n'));
      assert.equal((await gantry(['workflow', 'create', '-f', file])).code, 0);
      const failed = await gantry(['workflow', 'run', 'cli_pipeline', '--wait', '-o', 'json']);
      assert.equal(failed.code, 1, 'a failed run exits 1');
      const f = JSON.parse(failed.stdout) as { run_id: string; status: string };
      assert.equal(f.status, 'FAILED');
      const status = await gantry(['workflow', 'status', f.run_id]);
      assert.equal(status.code, 0);
      assert.match(status.stdout, /status:\s+FAILED/);
      assert.match(status.stdout, /first\s+SUCCEEDED\s+job_\S+\s+\{"n":7\}/);
      assert.match(status.stdout, /second\s+FAILED/);
      const re = await gantry(['workflow', 'rerun', f.run_id, '--param', 'code=0', '--wait']);
      assert.equal(re.code, 0, re.stderr + re.stdout);
      assert.match(re.stdout, /reused: first/);
      assert.match(re.stdout, /first\s+SUCCEEDED\s+reused from wfr_/);
      assert.match(re.stdout, /second\s+SUCCEEDED/);
      const runs = await gantry(['workflow', 'runs', 'cli_pipeline']);
      assert.equal(runs.stdout.trim().split('\n').length, 3, runs.stdout);

      writeFileSync(file, 'workflow_name: cli_sleep\nsteps:\n  - step_id: nap\n    command: [sleep, "30"]\n');
      await gantry(['workflow', 'create', '-f', file]);
      const started = JSON.parse((await gantry(['workflow', 'run', 'cli_sleep', '-o', 'json'])).stdout) as { run_id: string };
      const cancel = await gantry(['workflow', 'cancel', started.run_id, '--reason', 'test']);
      assert.equal(cancel.code, 0, cancel.stderr);
      assert.match(cancel.stdout, /CANCELLED/);

      const bad = await gantry(['workflow', 'create', '-f', join(cl.db.dir, 'missing.yaml')]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /cannot read/);
      writeFileSync(file, 'workflow_name: cyc\nsteps:\n  - {step_id: a, command: ["true"], depends_on: [b]}\n  - {step_id: b, command: ["true"], depends_on: [a]}\n');
      const cyc = await gantry(['workflow', 'create', '-f', file]);
      assert.equal(cyc.code, 2);
      assert.match(cyc.stderr, /VALIDATION_FAILED .*cycle: (a → b → a|b → a → b)/);
    });

    test('schedule create, list, backfill, show, delete', async () => {
      const c = await gantry(['schedule', 'create', '--name', 'nightly', '--cron', '0 2 * * *', '--timezone', 'Europe/Berlin', '--workflow', 'cli_pipeline', '--param', 'code=0', '--overlap', 'buffer_one']);
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stdout, /schedule nightly \(sch_\S+\) created; next fire \d{4}-\d\d-\d\dT01:00:00Z/);
      assert.match((await gantry(['schedule', 'list'])).stdout, /nightly\s+0 2 \* \* \*\s+Europe\/Berlin\s+workflow cli_pipeline\s+buffer_one/);
      const bf = await gantry(['schedule', 'backfill', 'nightly', '--from', '2026-01-01T00:00:00Z', '--to', '2026-01-02T23:00:00Z']);
      assert.equal(bf.code, 0, bf.stderr);
      assert.match(bf.stdout, /2 fires started/);
      assert.match((await gantry(['schedule', 'show', 'nightly'])).stdout, /2026-01-02T01:00:00Z\s+backfill\s+started\s+wfr_/);
      assert.equal((await gantry(['schedule', 'delete', 'nightly'])).code, 0);
      const gone = await gantry(['schedule', 'show', 'nightly']);
      assert.equal(gone.code, 1);
      assert.match(gone.stderr, /NOT_FOUND/);
    });
  });
}
