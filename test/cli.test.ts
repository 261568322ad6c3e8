/**
 * End-to-end tests of the `gantry` CLI: a real `gantry up` process, and every command run as a
 * child process against it, the way a user runs them. Children are killed in `after` even when
 * a test fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const BIN = resolve(import.meta.dirname, '../bin/gantry.js');
const RUN_TIMEOUT_MS = 20_000;

const children = new Set<ChildProcess>();
const dirs: string[] = [];

/** The environment of a user who set nothing: the CLI must find the local server by itself. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('GANTRY_')) delete env[k];
  return env;
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gantry-cli-'));
  dirs.push(d);
  return d;
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `gantry …args` to completion. */
function gantry(args: readonly string[], cwd = workDir): Promise<RunResult> {
  return new Promise((done, fail) => {
    const child = track(spawn(process.execPath, [BIN, ...args], { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** `gantry … -o json`, parsed; fails the test with the CLI's stderr when the command fails. */
async function gantryJson<T>(args: readonly string[]): Promise<T> {
  const r = await gantry([...args, '--output', 'json']);
  assert.equal(r.code, 0, `gantry ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

interface Up {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  exited: Promise<number | null>;
}

/** Starts `gantry up --port 0` and resolves once it prints its URL. */
function startUp(dataDir: string): Promise<Up> {
  const child = track(spawn(
    process.execPath,
    [BIN, 'up', '--port', '0', '--data-dir', dataDir, '--cpu', '2', '--memory-gb', '2', '--slots', '4'],
    { cwd: dataDir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
  ));
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`gantry up printed no URL in 15 s: ${stdout}${stderr}`)), 15_000);
    child.stdout!.on('data', (d) => {
      stdout += d;
      const m = /Gantry API:\s+(\S+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        done({ child, url: m[1]!, stdout: () => stdout, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      fail(new Error(`gantry up exited with ${code} before it was ready: ${stderr}`));
    });
  });
}

function jobIdOf(stdout: string): string {
  const m = /job_id:\s+(\S+)/.exec(stdout);
  assert.ok(m, `no job_id in: ${stdout}`);
  return m[1]!;
}

/** One line on stderr, no stack trace. */
function assertOneLine(stderr: string): void {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  assert.match(lines[0]!, /^error: /);
}

async function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => done(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

let dataDir = '';
let workDir = '';
let up: Up;
const submitted: string[] = [];

before(async () => {
  dataDir = tempDir();
  workDir = tempDir();
  up = await startUp(dataDir);
});

after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// Every client command below passes only --data-dir: server URL and token come from the files `up` wrote.
const g = (...args: string[]) => gantry(['--data-dir', dataDir, ...args]);

test('up prints its URL and first-start admin token, and writes admin-token with mode 0600', () => {
  const tokenFile = join(dataDir, 'admin-token');
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
  const token = readFileSync(tokenFile, 'utf8').trim();
  assert.match(up.stdout(), new RegExp(`Admin token:\\s+${token} .*written to ${tokenFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.match(up.stdout(), /Token file:\s+\S*admin-token/);
  assert.match(up.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(readFileSync(join(dataDir, 'url'), 'utf8').trim(), up.url);
});

// A job V8 starts in the background (compiling, marking) wakes its thread on the main thread's CPU;
// at the same priority it took that CPU from the server for 1–5 ms while the other CPU sat idle
// (docs/notes/issue3y.md). Linux names V8's threads in /proc and keeps a nice value per thread.
test('up runs V8\'s background threads at the lowest priority and its main thread as started', () => {
  const threads = readdirSync(`/proc/${up.child.pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${up.child.pid}/task/${tid}/stat`, 'utf8');
    // Fields after the name: state is the 3rd field of the whole line, nice the 19th.
    return { tid: Number(tid), name: readFileSync(`/proc/${up.child.pid}/task/${tid}/comm`, 'utf8').trim(), nice: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]) };
  });
  const v8 = threads.filter((t) => t.name === 'V8Worker');
  assert.ok(v8.length > 0, `no V8Worker thread in ${JSON.stringify(threads)}`);
  assert.deepEqual(v8.map((t) => t.nice), v8.map(() => 19));
  assert.equal(threads.find((t) => t.tid === up.child.pid)!.nice, 0);
});

test('submit --wait runs a command, exits 0, and logs shows its output', async () => {
  const r = await g('submit', '--wait', '--', 'sh', '-c', 'echo hi');
  assert.equal(r.code, 0, r.stderr);
  const id = jobIdOf(r.stdout);
  submitted.push(id);
  assert.match(r.stdout, /queue_position:/);
  assert.match(r.stdout, /estimated_start:/);
  assert.match(r.stdout, /RUNNING/);
  assert.match(r.stdout, /COMPLETED/);
  const logs = await g('logs', id);
  assert.equal(logs.code, 0, logs.stderr);
  assert.equal(logs.stdout, 'hi\n');
});

test('submit --wait exits with the exit code of a failed job', async () => {
  const r = await g('submit', '--wait', '--max-attempts', '1', '--', 'sh', '-c', 'exit 3');
  assert.equal(r.code, 3, r.stderr);
  submitted.push(jobIdOf(r.stdout));
  assert.match(r.stdout, /FAILED/);
});

test('everything after -- belongs to the command; --flag=value works', async () => {
  const r = await g('submit', '--name=args', '--cpu=0.5', '--param', 'n=3', '--param', 'tag=x', '--wait', '--', 'sh', '-c', 'echo "$0 $1"', '--epochs', '3');
  assert.equal(r.code, 0, r.stderr);
  const id = jobIdOf(r.stdout);
  submitted.push(id);
  assert.equal((await g('logs', id)).stdout, '--epochs 3\n');
  const job = await gantryJson<{ name: string; command: string[]; resources: { cpu_cores: number }; parameters: Record<string, unknown> }>(
    ['--data-dir', dataDir, 'status', id],
  );
  assert.equal(job.name, 'args');
  assert.deepEqual(job.command, ['sh', '-c', 'echo "$0 $1"', '--epochs', '3']);
  assert.equal(job.resources.cpu_cores, 0.5);
  assert.deepEqual(job.parameters, { n: 3, tag: 'x' });
});

test('submit -f takes a JSON body, and flags override it', async () => {
  const file = join(workDir, 'job.json');
  writeFileSync(file, JSON.stringify({ name: 'from-file', command: ['sh', '-c', 'echo $WHO'], env: { WHO: 'file' }, retry_policy: { max_attempts: 1 } }));
  const r = await g('submit', '-f', file, '--env', 'WHO=flag', '--wait');
  assert.equal(r.code, 0, r.stderr);
  const id = jobIdOf(r.stdout);
  submitted.push(id);
  assert.equal((await g('logs', id)).stdout, 'flag\n');
});

test('list --output json parses and holds the submitted jobs', async () => {
  const page = await gantryJson<{ jobs: { job_id: string }[] }>(['--data-dir', dataDir, 'list']);
  const ids = page.jobs.map((j) => j.job_id);
  for (const id of submitted) assert.ok(ids.includes(id), `${id} missing from list`);
  const table = await g('list', '--status', 'completed');
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^JOB_ID\s+NAME\s+STATUS/);
  assert.match(table.stdout, new RegExp(submitted[0]!));
});

test('logs -f streams until the job ends', async () => {
  const s = await g('submit', '--', 'sh', '-c', 'echo one; sleep 0.3; echo two');
  assert.equal(s.code, 0, s.stderr);
  const r = await g('logs', '-f', jobIdOf(s.stdout));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'one\ntwo\n');
});

test('cancel stops a running job and waits until it is final', async () => {
  const s = await g('submit', '--', 'sleep', '30');
  const id = jobIdOf(s.stdout);
  for (let i = 0; i < 40; i++) {
    const j = await gantryJson<{ status: string }>(['--data-dir', dataDir, 'status', id]);
    if (j.status === 'RUNNING') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const r = await g('cancel', id, '--reason', 'test');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /CANCELLED/);
  const j = await gantryJson<{ status: string }>(['--data-dir', dataDir, 'status', id]);
  assert.equal(j.status, 'CANCELLED');
});

test('workers, queue and dlq work in both output formats', async () => {
  const w = await gantryJson<{ workers: { state: string; capacity: { cpu_cores: number; slots: number } }[] }>(['--data-dir', dataDir, 'workers']);
  assert.equal(w.workers.length, 1);
  assert.deepEqual([w.workers[0]!.state, w.workers[0]!.capacity.cpu_cores, w.workers[0]!.capacity.slots], ['online', 2, 4]);
  assert.match((await g('workers')).stdout, /^WORKER_ID\s+NAME\s+KIND\s+STATE\s+CPU\s+MEM_GB\s+GPUS\s+SLOTS/);
  const q = await gantryJson<{ queues: Record<string, unknown> }>(['--data-dir', dataDir, 'queue']);
  assert.ok(q.queues.normal);
  assert.match((await g('queue')).stdout, /PRIORITY\s+LENGTH\s+AVG_WAIT/);
  const dlq = await gantryJson<{ jobs: { job_id: string }[] }>(['--data-dir', dataDir, 'dlq']);
  assert.ok(dlq.jobs.some((j) => j.job_id === submitted[1]), 'the exit-3 job is dead-lettered');
});

test('status of an unknown job: one line naming NOT_FOUND, non-zero exit', async () => {
  const r = await g('status', 'job_nope');
  assert.equal(r.code, 1);
  assertOneLine(r.stderr);
  assert.match(r.stderr, /NOT_FOUND/);
});

test('a bad flag value exits 2 and names the field', async () => {
  const neg = await g('submit', '--cpu', '-1', '--', 'true');
  assert.equal(neg.code, 2);
  assertOneLine(neg.stderr);
  assert.match(neg.stderr, /VALIDATION_FAILED resources\.cpu_cores/);
  const nan = await g('submit', '--cpu=abc', '--', 'true');
  assert.equal(nan.code, 2);
  assertOneLine(nan.stderr);
  assert.match(nan.stderr, /--cpu/);
  const unknown = await g('submit', '--cpux', '1', '--', 'true');
  assert.equal(unknown.code, 2);
  assertOneLine(unknown.stderr);
});

test('without a token anywhere, one line says where it looked', async () => {
  const empty = tempDir();
  const r = await gantry(['--data-dir', empty, '--server', up.url, 'list']);
  assert.equal(r.code, 2);
  assertOneLine(r.stderr);
  assert.ok(r.stderr.includes(join(empty, 'admin-token')), r.stderr);
});

test('an unreachable server is one line', async () => {
  const r = await gantry(['--server', `http://127.0.0.1:${await freePort()}`, '--token', 'x', 'list']);
  assert.equal(r.code, 1);
  assertOneLine(r.stderr);
  assert.match(r.stderr, /cannot reach Gantry at http:\/\/127\.0\.0\.1:\d+/);
});

test('SIGTERM stops up cleanly with exit 0; a restart keeps the jobs and the token file', async () => {
  up.child.kill('SIGTERM');
  assert.equal(await up.exited, 0);
  assert.equal(existsSync(join(dataDir, 'gantry.pid')), false, 'pid lock released');
  const again = await startUp(dataDir);
  try {
    assert.doesNotMatch(again.stdout(), /Admin token:/);
    assert.match(again.stdout(), /Token file:\s+\S*admin-token/);
    const page = await gantryJson<{ jobs: { job_id: string }[] }>(['--data-dir', dataDir, 'list']);
    assert.ok(page.jobs.some((j) => j.job_id === submitted[0]));
  } finally {
    again.child.kill('SIGINT');
  }
  assert.equal(await again.exited, 0);
});
