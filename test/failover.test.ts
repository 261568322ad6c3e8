/**
 * Workers and clients that know several servers on one database move to the next one when
 * theirs dies: URL-list parsing and bad input, which requests the client re-sends (real
 * sockets), and real processes — two `gantry server`s on one PostgreSQL, an SDK Worker and a
 * `gantry worker` given both URLs, the server they talk to SIGKILLed while their jobs run.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseServerList } from '../src/client/servers.ts';
import { compileClientConfig } from '../src/config.ts';
import { GantryApiError, GantryClient } from '../src/client/http.ts';
import { Worker } from '../src/client/worker.ts';
import { openStore } from '../src/store/store.ts';
import { freshDatabase } from './helpers/db.ts';
import { eventually } from './helpers/cluster.ts';
import { freePort, serverProc } from './chaos/procs.ts';

const GANTRY = fileURLToPath(new URL('../bin/gantry.js', import.meta.url));
const SDK_WORKER = fileURLToPath(new URL('./helpers/failoverSdkWorker.ts', import.meta.url));

describe('server lists', () => {
  it('accepts one URL, a comma-separated string or an array; trims, drops trailing slashes and duplicates', () => {
    assert.deepEqual(parseServerList('http://127.0.0.1:8084/'), ['http://127.0.0.1:8084']);
    assert.deepEqual(parseServerList(' http://a:1 , https://b:2/api/ ,http://a:1'), ['http://a:1', 'https://b:2/api']);
    assert.deepEqual(parseServerList(['http://a:1', 'http://b:2,http://c:3']), ['http://a:1', 'http://b:2', 'http://c:3']);
  });

  it('refuses an empty list and anything that is not an http(s) URL, naming where it came from', () => {
    assert.throws(() => parseServerList(''), /server is empty/);
    assert.throws(() => parseServerList(' , '), /server is empty/);
    assert.throws(() => parseServerList([]), /server is empty/);
    assert.throws(() => parseServerList('http://a:1,ftp://b'), /'ftp:\/\/b' must be an http:\/\/ or https:\/\/ URL/);
    assert.throws(() => parseServerList('127.0.0.1:8084'), /must be an http:\/\/ or https:\/\/ URL|is not a URL/);
    assert.throws(() => parseServerList('not a url', 'GANTRY_URL'), /GANTRY_URL: 'not a url' is not a URL/);
    assert.throws(() => parseServerList('http://a:1/?x=1'), /without \?query/);
    assert.throws(() => new Worker({ server: [], token: 't', handlers: { h: () => null } }), /server is empty/);
    assert.throws(() => new GantryClient({ server: 'mailto:x@y', token: 't' }), /must be an http/);
  });

  it('GANTRY_URL and --server take several servers; the flag wins; bad values name their source', () => {
    const none = () => null;
    const env = compileClientConfig({ token: 't' }, none, { GANTRY_URL: 'http://a:1, http://b:2' });
    assert.deepEqual(env.servers, ['http://a:1', 'http://b:2']);
    assert.equal(env.server, 'http://a:1,http://b:2');
    assert.deepEqual(compileClientConfig({ server: 'http://c:3', token: 't' }, none, { GANTRY_URL: 'http://a:1' }).servers, ['http://c:3']);
    assert.throws(() => compileClientConfig({ token: 't' }, none, { GANTRY_URL: '' }), /GANTRY_URL is empty/);
    assert.throws(() => compileClientConfig({ server: 'http://a:1,ws://b', token: 't' }, none, {}), /--server: 'ws:\/\/b' must be an http/);
  });

  it('the CLI refuses a bad --server with a usage error before connecting anywhere', async () => {
    const r = await runCli(['--server', 'http://127.0.0.1:1,gopher://x', '--token', 't', 'list']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /error: --server: 'gopher:\/\/x' must be an http:\/\/ or https:\/\/ URL/);
  });
});

/** A tiny HTTP server: `answer` decides per request (status and body, or 'reset' to cut the connection). */
async function fakeServer(answer: (req: IncomingMessage) => { status: number; body: unknown } | 'reset'): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const srv: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${body}`);
      const a = answer(req);
      if (a === 'reset') return req.socket.destroy();
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address() as { port: number };
  return { url: `http://127.0.0.1:${addr.port}`, seen, close: () => new Promise((r) => srv.close(() => r())) };
}

describe('GantryClient with several servers', () => {
  it('re-sends only what is safe after a connection reset or a 503, and moves on either way', async (t) => {
    const resetting = await fakeServer(() => 'reset');
    const busy = await fakeServer(() => ({ status: 503, body: { error: { code: 'STORE_UNAVAILABLE', message: 'database unavailable' } } }));
    const good = await fakeServer((req) => ({ status: 200, body: { job_id: 'job_1', path: req.url } }));
    t.after(() => Promise.all([resetting.close(), busy.close(), good.close()]));
    const switches: string[] = [];
    const client = (first: string) => new GantryClient({ server: [first, good.url], token: 't', onFailover: (from, to, why) => switches.push(`${from}→${to} ${why}`) });

    // A cancel may have reached the dead server: not re-sent, but the next call goes to the other one.
    const c1 = client(resetting.url);
    await assert.rejects(c1.cancel('job_1'), (e: GantryApiError) => e.code === 'UNREACHABLE' && e.message.includes(resetting.url));
    assert.equal(good.seen.length, 0, 'the cancel was not sent twice');
    assert.equal(c1.server, good.url);
    assert.equal((await c1.getJob('job_1')).job_id, 'job_1');
    assert.equal(switches.length, 1, 'the switch is reported once');

    // Reads, keyed submits and the worker protocol are re-sent at once.
    const c2 = client(resetting.url);
    assert.equal((await c2.submit({ command: ['true'], idempotency_key: 'k1' })).job_id, 'job_1');
    assert.equal((await client(resetting.url).heartbeat('wkr_1')) !== null, true);
    assert.equal((await client(resetting.url).report('wkr_1', [{ job_id: 'job_1', attempt_id: 'att_1', outcome: 'completed' }])) !== null, true);
    assert.equal((await client(busy.url).getJob('job_1')).job_id, 'job_1');
    assert.deepEqual(good.seen.map((s) => s.split(' ').slice(0, 2).join(' ')), [
      'GET /api/v1/jobs/job_1', 'POST /api/v1/jobs', 'POST /api/v1/workers/wkr_1/heartbeat', 'POST /api/v1/workers/wkr_1/report', 'GET /api/v1/jobs/job_1',
    ]);

    // A submit without a key answered 503 is not re-sent: the caller decides.
    await assert.rejects(client(busy.url).submit({ command: ['true'] }), (e: GantryApiError) => e.status === 503 && e.code === 'STORE_UNAVAILABLE');
    assert.equal(good.seen.length, 5);

    // A refused connection wrote nothing: any request goes to the next server.
    const closedPort = await freePort();
    assert.equal((await client(`http://127.0.0.1:${closedPort}`).cancel('job_1')).job_id, 'job_1');
  });
});

interface Spawned {
  child: ChildProcess;
  id: string;
  stderr(): string;
}

function spawnReady(argv: string[], ready: RegExp, what: string): Promise<Spawned> {
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, id: m[1]!, stderr: () => err });
      }
    });
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`${what} exited during start (${code}): ${err}`))));
  });
}

function runCli(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [GANTRY, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/**
 * Two `gantry server`s on one PostgreSQL; an SDK Worker and a `gantry worker` given both URLs,
 * server A first, run long jobs; then A dies (`SIGKILL`, A leads the scheduler) or hangs
 * (`SIGSTOP`, B leads, so B's lease reaper would declare silent workers lost).
 */
async function failoverScenario(t: TestContext, mode: 'kill' | 'freeze'): Promise<void> {
  // A database of its own: workers of another scenario, dead but not yet declared lost, must not get these jobs.
  const db = await freshDatabase('postgres');
  const setup = await openStore(db.url);
  const token = (await setup.createToken('failover', 'admin', null)).token;
  await setup.close();
  // A short lease: a worker that did not fail over would be declared lost long before its jobs end.
  const lease = 3000;
  const a = serverProc(`server-a-${mode}`, { database: db.url, port: await freePort(), dataDir: join(db.dir, `a-${mode}`), leaseTimeoutMs: lease });
  const b = serverProc(`server-b-${mode}`, { database: db.url, port: await freePort(), dataDir: join(db.dir, `b-${mode}`), leaseTimeoutMs: lease });
  const procs: ChildProcess[] = [];
  t.after(async () => {
    for (const c of procs) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await a.kill('SIGKILL');
    await b.kill('SIGKILL');
    await db.drop();
  });
  // The first server up leads the scheduler.
  for (const s of mode === 'kill' ? [a, b] : [b, a]) await s.start();
  const both = `${a.url},${b.url}`;
  const sdk = await spawnReady([SDK_WORKER, both, token, `sdk-${mode}`], /ready (wkr_\S+)/, 'sdk worker');
  procs.push(sdk.child);
  const agent = await spawnReady(
    [GANTRY, '--server', both, '--token', token, 'worker', '--cpu', '8', '--memory-gb', '8', '--gpus', '0', '--slots', '8', '--name', `agent-${mode}`, '--grace', '1'],
    /Gantry worker (wkr_\S+) connected/, 'gantry worker',
  );
  procs.push(agent.child);

  const viaA = new GantryClient({ server: a.url, token });
  const viaB = new GantryClient({ server: b.url, token });
  const long = 9000;
  const handlerJobs = await Promise.all([1, 2].map((i) => viaA.submit({ name: `nap-${mode}-${i}`, handler: 'nap', parameters: { ms: long } })));
  const commandJobs = await Promise.all([1, 2].map((i) => viaA.submit({ name: `sleep-${mode}-${i}`, command: ['sleep', String(long / 1000)], resources: { cpu_cores: 1, memory_gb: 0.1 } })));
  const ids = [...handlerJobs, ...commandJobs].map((j) => j.job_id);
  await eventually(async () => (await Promise.all(ids.map((id) => viaB.getJob(id)))).every((j) => j.status === 'RUNNING'), 20_000, 100);
  const before = new Map((await Promise.all(ids.map((id) => viaB.getJob(id)))).map((j) => [j.job_id, j.worker_id]));
  assert.deepEqual(ids.map((id) => before.get(id)), [sdk.id, sdk.id, agent.id, agent.id]);

  if (mode === 'kill') await a.kill('SIGKILL');
  else a.child!.kill('SIGSTOP');
  const failedAt = Date.now();

  // New work goes in through the surviving server and is run by the same two workers.
  const fresh = await Promise.all([
    ...[1, 2, 3].map((i) => viaB.submit({ name: `after-h-${mode}-${i}`, handler: 'nap', parameters: { ms: 10 } })),
    ...[1, 2, 3].map((i) => viaB.submit({ name: `after-c-${mode}-${i}`, command: ['true'], resources: { cpu_cores: 1, memory_gb: 0.1 } })),
  ]);
  for (const j of fresh) {
    const done = await viaB.waitFor(j.job_id, { timeout_ms: 30_000, interval_ms: 100 });
    assert.equal(done.status, 'COMPLETED', `${j.job_id} after the failure`);
    assert.equal(done.attempts?.length, 1);
    assert.ok([sdk.id, agent.id].includes(done.attempts![0]!.worker_id), `${j.job_id} ran on one of the two workers`);
  }

  for (const id of ids) {
    const j = await viaB.waitFor(id, { timeout_ms: 30_000, interval_ms: 100 });
    assert.equal(j.status, 'COMPLETED', `${id} completed`);
    assert.equal(j.attempts?.length, 1, `${id} was never requeued: one attempt`);
    assert.equal(j.attempts![0]!.outcome, 'completed');
    assert.equal(j.attempts![0]!.worker_id, before.get(id), `${id} completed by the worker that started it`);
    const { events } = await viaB.events(id);
    assert.equal(events.filter((e) => e.to === 'QUEUED').length, 1, `${id} queued once only`);
  }
  assert.ok(Date.now() - failedAt > lease, 'the jobs outlived the lease after the failure (a worker that did not fail over would have been declared lost)');
  assert.equal(((await viaB.getJob(handlerJobs[0]!.job_id)).result as { pid: number }).pid, sdk.child.pid);

  // Same worker ids (no re-registration as new workers), both still online; the switch away from
  // A logged once by each, although heartbeat, poll and report all failed there.
  const workers = (await viaB.workers()).workers.filter((w) => w.state !== 'offline');
  assert.deepEqual(workers.map((w) => w.worker_id).sort(), [sdk.id, agent.id].sort());
  assert.ok(workers.every((w) => w.state === 'online'));
  for (const w of [sdk, agent]) {
    const lines = w.stderr().split('\n').filter((l) => l.includes(`server ${a.url} failed`));
    assert.equal(lines.length, 1, `one switch line, got: ${w.stderr()}`);
    assert.ok(lines[0]!.includes(`switched to ${b.url}`), lines[0]);
  }
}

describe('workers fail over between servers on one PostgreSQL (real processes)', () => {
  it('SIGKILL of the server the workers use (the leader): running jobs finish on the same worker, not requeued; new jobs flow through the other server', (t) =>
    failoverScenario(t, 'kill'));

  it('a hung server (SIGSTOP): heartbeats time out within the lease, the workers switch and keep their jobs', (t) =>
    failoverScenario(t, 'freeze'));
});
