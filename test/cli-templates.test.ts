/**
 * Seed 000's manage-jobs commands end to end: a real `gantry up` (on SQLite, and on PostgreSQL
 * with --database) whose local worker offers 4 GPUs, and every `gantry create-…`, `status
 * --execution-id`, `list --tenant --status`, `templates …` and `submit --template` run as child
 * processes, the way a user runs them. The built-in templates' scripts really run.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { STORE_KINDS, freshDatabase, type TestDatabase } from './helpers/db.ts';

const BIN = resolve(import.meta.dirname, '../bin/gantry.js');

function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('GANTRY_')) delete env[k];
  return env;
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

for (const kind of STORE_KINDS) {
  describe(`gantry create-… and templates CLI on ${kind}`, () => {
    let db: TestDatabase;
    let dataDir: string;
    let up: ChildProcess;
    const children = new Set<ChildProcess>();

    const gantry = (args: readonly string[]): Promise<RunResult> =>
      new Promise((done, fail) => {
        const child = spawn(process.execPath, [BIN, '--data-dir', dataDir, ...args], { cwd: dataDir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
        children.add(child);
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d) => (stdout += d));
        child.stderr!.on('data', (d) => (stderr += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.on('error', fail);
        child.on('close', (code) => {
          clearTimeout(timer);
          children.delete(child);
          done({ code, stdout, stderr });
        });
      });
    const json = async <T>(args: readonly string[]): Promise<T> => {
      const r = await gantry([...args, '--output', 'json']);
      assert.equal(r.code, 0, `gantry ${args.join(' ')}: ${r.stderr}`);
      return JSON.parse(r.stdout) as T;
    };

    before(async () => {
      db = await freshDatabase(kind);
      dataDir = mkdtempSync(join(tmpdir(), 'gantry-cli5-'));
      up = spawn(
        process.execPath,
        [BIN, 'up', '--port', '0', '--data-dir', dataDir, '--database', db.url, '--cpu', '8', '--memory-gb', '32', '--gpus', '4', '--slots', '8'],
        { cwd: dataDir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
      );
      await new Promise<void>((done, fail) => {
        let out = '';
        const timer = setTimeout(() => fail(new Error(`gantry up not ready: ${out}`)), 20_000);
        up.stdout!.on('data', (d) => {
          out += d;
          if (/Gantry API:/.test(out)) {
            clearTimeout(timer);
            done();
          }
        });
        up.on('exit', (c) => fail(new Error(`gantry up exited (${c}): ${out}`)));
      });
    });
    after(async () => {
      for (const c of children) c.kill('SIGKILL');
      up.kill('SIGTERM');
      await new Promise((r) => up.once('exit', r));
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    test('create-ml --tenant=enterprise-001 --model=transformer --gpus=4 runs its four steps on 4 GPUs', async () => {
      const r = await gantry(['create-ml', '--tenant=enterprise-001', '--model=transformer', '--gpus=4', '--param', 'pace_ms=1', '--wait']);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const id = /execution_id:\s+(\S+)/.exec(r.stdout)?.[1];
      assert.ok(id, r.stdout);
      assert.match(r.stdout, /template:\s+ml_training v1/);
      assert.match(r.stdout, /COMPLETED/);
      const job = await json<{ status: string; tenant: string; priority: string; resources: { gpu_count: number }; gpu_indices: number[]; steps: { name: string }[]; parameters: { model: string } }>(['status', `--execution-id=${id}`]);
      assert.equal(job.status, 'COMPLETED');
      assert.equal(job.tenant, 'enterprise-001');
      assert.equal(job.priority, 'high');
      assert.equal(job.resources.gpu_count, 4);
      assert.equal(job.parameters.model, 'transformer');
      assert.deepEqual(job.steps.map((s) => s.name), ['data_preparation', 'model_training', 'model_evaluation', 'model_storage']);
      const logs = await gantry(['logs', id!]);
      assert.match(logs.stdout, /training transformer \(transformer\) on GPUs 0,1,2,3/);
      assert.match(logs.stdout, /::output \{"model_uri":/);
      const text = await gantry(['status', '--execution-id', id!]);
      assert.match(text.stdout, /template:\s+ml_training v1/);
      assert.match(text.stdout, /steps:\s+data_preparation → model_training → model_evaluation → model_storage/);
    });

    test('create-etl, create-scan, create-billing, create-backup run to completion with their outputs', async () => {
      const runs: [string[], RegExp][] = [
        [['create-etl', '--tenant=enterprise-001', '--source=kafka:spotify-user-events', '--destination', 'delta_lake:user_events_processed'], /loaded into delta_lake:user_events_processed/],
        [['create-scan', '--tenant=enterprise-001', '--frameworks=PCI-DSS,GDPR', '--scan-type', 'compliance'], /compliance scan of enterprise-001 against GDPR/],
        [['create-billing', '--tenant=enterprise-001', '--period=monthly'], /monthly billing report for enterprise-001: [\d.]+ USD/],
        [['create-backup', '--tenant=enterprise-001', '--type=full'], /full backup of enterprise-001: 100%[\s\S]*verified backup checksums/],
      ];
      for (const [args, expected] of runs) {
        const r = await gantry([...args, '--param', 'pace_ms=1', '--wait']);
        assert.equal(r.code, 0, `${args[0]}: ${r.stderr}${r.stdout}`);
        const id = /execution_id:\s+(\S+)/.exec(r.stdout)![1]!;
        assert.match((await gantry(['logs', id])).stdout, expected, args[0]);
      }
      const listed = await gantry(['list', '--tenant=enterprise-001', '--status=completed']);
      assert.equal(listed.code, 0, listed.stderr);
      for (const t of ['ml_training', 'data_etl', 'security_scan', 'billing_report', 'tenant_backup']) assert.match(listed.stdout, new RegExp(t));
      const running = await json<{ jobs: unknown[] }>(['list', '--tenant', 'enterprise-001', '--status', 'running']);
      assert.deepEqual(running.jobs, []);
    });

    test('a bad value names the flag the user typed and exits 2', async () => {
      const r = await gantry(['create-billing', '--tenant=enterprise-001', '--period=hourly']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^error: VALIDATION_FAILED parameters\.period: 'hourly' is not one of daily, weekly, monthly, quarterly, yearly .*\(--period\)\n$/);
      const missing = await gantry(['create-backup', '--tenant=enterprise-001']);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /parameters\.type: is required by template tenant_backup v1 \(--type\)/);
    });

    test('templates list|show|create|delete and submit --template --param', async () => {
      const list = await gantry(['templates', 'list']);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /ml_training_template\s+1\s+machine_learning\s+ML Model Training\s+algorithm/);
      const show = await gantry(['templates', 'show', 'tenant_backup']);
      assert.match(show.stdout, /steps:\s+snapshot \(7200s\) → verify \(1800s\)/);
      assert.match(show.stdout, /type\s+string\s+yes\s+-\s+full,incremental,differential/);
      const file = join(dataDir, 'greet.json');
      writeFileSync(file, JSON.stringify({ name: 'greet', command: ['echo', 'hi {{ who }} from {{ tenant }}'], parameters: [{ name: 'who', type: 'string', required: true }] }));
      const created = await gantry(['templates', 'create', '-f', file]);
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, /template greet created \(version 1\)/);
      const sub = await gantry(['submit', '--template', 'greet', '--param', 'who=ada', '--tenant', 'acme', '--wait']);
      assert.equal(sub.code, 0, sub.stderr);
      const id = /job_id:\s+(\S+)/.exec(sub.stdout)![1]!;
      assert.equal((await gantry(['logs', id])).stdout, 'hi ada from acme\n');
      const bad = await gantry(['submit', '--template', 'greet', '--param', 'whom=ada']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /parameters\.whom: unknown parameter; template greet v1 takes who \(--param whom=…\)/);
      assert.equal((await gantry(['templates', 'delete', 'greet'])).code, 0);
      const gone = await gantry(['templates', 'show', 'greet']);
      assert.equal(gone.code, 1);
      assert.match(gone.stderr, /NOT_FOUND/);
    });
  });
}
