/**
 * Gang jobs (`nodes: N > 1`) end to end on each store: real server, real `gantry worker`
 * processes running shell jobs (and SDK Workers for handlers). All or nothing, started together,
 * one attempt for the whole gang.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STORE_KINDS } from './helpers/db.ts';
import { startCluster, eventually, type TestCluster } from './helpers/cluster.ts';
import { runGantry } from './helpers/cli.ts';
import { GantryApiError } from '../src/client/http.ts';
import { Worker } from '../src/client/worker.ts';

const wait = { interval_ms: 25, timeout_ms: 20_000 };

/** A worker driven by the test through the HTTP protocol: it heartbeats, and polls only when told. */
async function testDrivenWorker(cl: TestCluster, name: string) {
  const { worker_id: id } = await cl.client.registerWorker({ name, kind: 'process', capacity: { cpu_cores: 2, memory_gb: 4, slots: 4 } });
  const beat = setInterval(() => void cl.client.heartbeat(id).catch(() => {}), 300);
  return { id, stop: async () => { clearInterval(beat); await cl.client.deregister(id).catch(() => {}); } };
}

for (const kind of STORE_KINDS) {
  describe(`gang jobs on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind, { lease_timeout_ms: 1500 });
    });
    after(() => cl.close());

    test('a 2-node gang starts on two workers together, each member knows its rank and the gang, and the job completes when both do', async () => {
      const a = await cl.startWorker({ cpu: 2, slots: 4 });
      const b = await cl.startWorker({ cpu: 2, slots: 4 });
      const dir = cl.db.dir;
      const script = `date +%s%3N > "${dir}/start-$GANTRY_GANG_RANK"; echo "$GANTRY_GANG_RANK $GANTRY_GANG_SIZE $GANTRY_GANG_WORKERS $GANTRY_GANG_WORKER_IDS" > "${dir}/gang-$GANTRY_GANG_RANK"; sleep 0.5; echo "rank $GANTRY_GANG_RANK done"`;
      const sub = await cl.client.submit({ name: 'gang', command: ['sh', '-c', script], nodes: 2, resources: { cpu_cores: 2 } });
      const done = await cl.client.waitFor(sub.job_id, wait);
      assert.equal(done.status, 'COMPLETED');
      assert.equal(done.nodes, 2);
      assert.deepEqual(done.attempts?.map((x) => x.outcome), ['completed'], 'one attempt for the whole gang');

      const got = [0, 1].map((r) => readFileSync(join(dir, `gang-${r}`), 'utf8').trim().split(' '));
      assert.deepEqual(got.map((g) => g.slice(0, 2)), [['0', '2'], ['1', '2']]);
      assert.equal(got[0]![2], got[1]![2], 'both members see the same member list');
      const ids = got[0]![3]!.split(',');
      assert.deepEqual([...ids].sort(), [a.id, b.id].sort(), 'one member on each worker');
      const starts = [0, 1].map((r) => Number(readFileSync(join(dir, `start-${r}`), 'utf8')));
      assert.ok(Math.abs(starts[0]! - starts[1]!) < 2000, `members started together (${starts[1]! - starts[0]!} ms apart)`);

      // GET /jobs/{id} names the workers of each rank.
      assert.ok(done.gang);
      assert.equal(done.gang.size, 2);
      assert.deepEqual(done.gang.members.map((m) => [m.rank, m.worker_id, m.state]), [[0, ids[0], 'completed'], [1, ids[1], 'completed']]);
      const events = (await cl.client.events(sub.job_id)).events;
      assert.match(events.find((e) => e.to === 'SCHEDULED')?.reason ?? '', /gang of 2/);
      assert.ok(events.some((e) => e.from === 'SCHEDULED' && e.to === 'RUNNING' && /all 2 gang members started/.test(e.reason)));
      assert.equal(events.at(-1)?.to, 'COMPLETED');
      // Fencing: a member's token is its own; the other worker reporting it (or anyone after the end) changes nothing.
      const token = `${done.attempts![0]!.attempt_id}.1`;
      const late = await cl.client.report(ids[0]!, [{ job_id: sub.job_id, attempt_id: token, outcome: 'failed', exit_code: 1 }]);
      assert.equal(late.results[0]?.status, 'stale');
      assert.equal((await cl.client.getJob(sub.job_id)).status, 'COMPLETED');
      const logs = (await cl.client.logs(sub.job_id)).logs.map((l) => l.data).join('');
      // Both members write to the job's one log; each line says which member wrote it.
      assert.match(logs, /^\[rank 0\] rank 0 done$/m);
      assert.match(logs, /^\[rank 1\] rank 1 done$/m);
    });

    test('a gang that cannot be placed waits with the reason and does not hold back smaller jobs', async () => {
      // Two workers (from the test above): a 3-node gang can never start, a 2-node gang whose nodes do not fit waits for room.
      const big = await cl.client.submit({ name: 'too-many-nodes', command: ['true'], nodes: 3, resources: { cpu_cores: 1 } });
      const small = await cl.client.submit({ name: 'small', command: ['true'], resources: { cpu_cores: 1 } });
      assert.equal((await cl.client.waitFor(small.job_id, wait)).status, 'COMPLETED');
      const j = await cl.client.getJob(big.job_id);
      assert.equal(j.status, 'QUEUED');
      assert.match(j.pending_reason ?? '', /needs 3 workers at once but only 2 can hold one node/);
      const why = await cl.client.explain(big.job_id);
      assert.ok(why.reasons.some((r) => r.kind === 'too_big' && r.resource === 'nodes'), JSON.stringify(why.reasons));
      await cl.client.cancel(big.job_id);
    });

    test('one member failing ends the attempt for all: the other member is stopped and the whole gang retries', async () => {
      const dir = cl.db.dir;
      // Attempt 1: rank 1 fails after a moment while rank 0 runs on (and records that it was stopped). Attempt 2: both succeed.
      const script = `
        if [ "$GANTRY_ATTEMPT" = 1 ]; then
          if [ "$GANTRY_GANG_RANK" = 1 ]; then sleep 0.3; echo "rank 1 broke" >&2; exit 3; fi
          trap 'echo stopped > "${dir}/stopped-$GANTRY_GANG_RANK"; exit 143' TERM
          while true; do sleep 0.1; done
        fi
        echo "attempt $GANTRY_ATTEMPT rank $GANTRY_GANG_RANK ok"`;
      const sub = await cl.client.submit({
        name: 'flaky-gang', command: ['sh', '-c', script], nodes: 2, resources: { cpu_cores: 2 }, grace_period: 5,
        retry_policy: { max_attempts: 2, retry_delay: 0.1 },
      });
      const done = await cl.client.waitFor(sub.job_id, wait).catch(async (err) => {
        const j = await cl.client.getJob(sub.job_id);
        throw new Error(`${(err as Error).message}: ${JSON.stringify(j.gang)} ${JSON.stringify(j.attempts)} ${JSON.stringify((await cl.client.events(sub.job_id)).events.map((e) => [e.at, e.from, e.to, e.reason]))}`);
      });
      assert.equal(done.status, 'COMPLETED');
      assert.deepEqual(done.attempts?.map((x) => x.outcome), ['failed', 'completed'], 'the failed gang attempt counted once');
      assert.match(done.attempts?.[0]?.error ?? '', /^gang member 1 on worker wkr_\S+: exited with code 3/);
      assert.ok(existsSync(join(dir, 'stopped-0')), 'rank 0 was stopped when rank 1 failed');
      const events = (await cl.client.events(sub.job_id)).events;
      const retry = events.find((e) => e.to === 'RETRYING');
      assert.ok(retry, JSON.stringify(events.map((e) => [e.from, e.to, e.reason])));
      assert.match(retry.reason, /gang member 1 .*retry 2\/2/);
    });

    test('pause and resume reach every member of a gang', async () => {
      const dir = cl.db.dir;
      // Each member counts ticks into its own file: while paused, neither count moves.
      const script = `i=0; while true; do i=$((i+1)); echo $i > "${dir}/tick-$GANTRY_GANG_RANK"; sleep 0.05; done`;
      const sub = await cl.client.submit({ name: 'pause-gang', command: ['sh', '-c', script], nodes: 2, resources: { cpu_cores: 2 } });
      await eventually(async () => (await cl.client.getJob(sub.job_id)).status === 'RUNNING');
      const ticks = () => [0, 1].map((r) => Number(readFileSync(join(dir, `tick-${r}`), 'utf8')));
      await eventually(async () => ticks().every((t) => t > 0));
      await cl.client.pause(sub.job_id);
      await eventually(async () => (await cl.client.getJob(sub.job_id)).status === 'PAUSED');
      await new Promise((r) => setTimeout(r, 300));
      const frozen = ticks();
      await new Promise((r) => setTimeout(r, 400));
      assert.deepEqual(ticks(), frozen, 'both members are stopped');
      await cl.client.resume(sub.job_id);
      await eventually(async () => (await cl.client.getJob(sub.job_id)).status === 'RUNNING');
      await eventually(async () => ticks().every((t, i) => t > frozen[i]!), 5000);
      await cl.client.cancel(sub.job_id);
      assert.equal((await cl.client.waitFor(sub.job_id, wait)).status, 'CANCELLED');
    });

    test('cancelling a running gang stops every member', async () => {
      const dir = cl.db.dir;
      const script = `trap 'echo cancelled > "${dir}/cancel-$GANTRY_GANG_RANK"; exit 143' TERM; echo up; while true; do sleep 0.1; done`;
      await cl.client.createTenant({ id: 'gangs', tier: 'enterprise' });
      const sub = await cl.client.submit({ name: 'cancel-gang', command: ['sh', '-c', script], nodes: 2, resources: { cpu_cores: 2 }, tenant: 'gangs' });
      await eventually(async () => (await cl.client.getJob(sub.job_id)).status === 'RUNNING').catch(async (err) => {
        throw new Error(`${(err as Error).message}: ${JSON.stringify(await cl.client.getJob(sub.job_id))} ${JSON.stringify(await cl.client.explain(sub.job_id))} ${JSON.stringify(await cl.client.workers())}`);
      });
      const load = (await cl.client.getTenant('gangs')).load;
      assert.deepEqual([load?.running_jobs, load?.held.cpu_cores], [1, 4], 'the tenant holds 2 cpu on each of the 2 nodes');
      await cl.client.cancel(sub.job_id);
      assert.equal((await cl.client.waitFor(sub.job_id, wait)).status, 'CANCELLED');
      await eventually(async () => existsSync(join(dir, 'cancel-0')) && existsSync(join(dir, 'cancel-1')));
      // Both workers' room is free again: a 2-cpu job fits on each.
      const next = await Promise.all([0, 1].map(() => cl.client.submit({ command: ['true'], resources: { cpu_cores: 2 } })));
      for (const n of next) assert.equal((await cl.client.waitFor(n.job_id, wait)).status, 'COMPLETED');
    });

    test('emergency work preempts a running gang: every member is stopped, the gang is requeued whole and runs again', async () => {
      const dir = cl.db.dir;
      const script = `
        if [ "$GANTRY_ATTEMPT" = 1 ]; then
          trap 'echo preempted > "${dir}/preempt-$GANTRY_GANG_RANK"; exit 143' TERM
          while true; do sleep 0.1; done
        fi
        echo "rank $GANTRY_GANG_RANK rerun"`;
      const gang = await cl.client.submit({ name: 'low-gang', command: ['sh', '-c', script], nodes: 2, priority: 'low', resources: { cpu_cores: 2 }, grace_period: 5 });
      await eventually(async () => (await cl.client.getJob(gang.job_id)).status === 'RUNNING');
      const urgent = await cl.client.submit({ command: ['sh', '-c', 'echo urgent'], priority: 'emergency', resources: { cpu_cores: 2 } });
      assert.equal((await cl.client.waitFor(urgent.job_id, wait)).status, 'COMPLETED');
      const done = await cl.client.waitFor(gang.job_id, wait);
      assert.equal(done.status, 'COMPLETED');
      assert.deepEqual(done.attempts?.map((x) => x.outcome), ['preempted', 'completed']);
      assert.ok(existsSync(join(dir, 'preempt-0')) && existsSync(join(dir, 'preempt-1')), 'both members got SIGTERM');
      const requeued = (await cl.client.events(gang.job_id)).events.find((e) => e.from === 'RUNNING' && e.to === 'QUEUED');
      assert.match(requeued?.reason ?? '', /^preempted: /);
      assert.equal(requeued?.data?.preempted_by_job, urgent.job_id);
    });

    test('a lost worker requeues the whole gang (not counted as a failure), stops the surviving member, and the gang runs again elsewhere', async () => {
      const dir = cl.db.dir;
      const script = `
        if [ "$GANTRY_ATTEMPT" = 1 ]; then
          trap 'echo stopped > "${dir}/lost-stopped-$GANTRY_GANG_RANK"; exit 143' TERM
          echo "on $GANTRY_GANG_WORKER_IDS"
          # The member on the SIGKILLed worker is killed by that worker's reaper; should it outlive it, it
          # ends by itself once the test writes lost-release or its directory is gone (no process left behind).
          while [ -d "${dir}" ] && [ ! -e "${dir}/lost-release" ]; do sleep 0.1; done; exit 143
        fi
        echo "rerun rank $GANTRY_GANG_RANK"`;
      const sub = await cl.client.submit({
        name: 'lost-gang', command: ['sh', '-c', script], nodes: 2, resources: { cpu_cores: 2 }, retry_policy: { max_attempts: 1 },
      });
      const running = await eventually(async () => {
        const j = await cl.client.getJob(sub.job_id);
        return j.status === 'RUNNING' ? j : null;
      });
      const victim = running.gang!.members[1]!.worker_id;
      const survivor = running.gang!.members[0]!.worker_id;
      const proc = cl.workers().find((w) => w.id === victim)!;
      proc.child.kill('SIGKILL');
      const c = await cl.startWorker({ cpu: 2, slots: 4 });
      const done = await cl.client.waitFor(sub.job_id, wait);
      assert.equal(done.status, 'COMPLETED');
      assert.deepEqual(done.attempts?.map((x) => x.outcome), ['lost', 'completed'], 'a lost worker does not use up the retry budget (max_attempts 1)');
      await eventually(async () => existsSync(join(dir, `lost-stopped-0`)));
      const events = (await cl.client.events(sub.job_id)).events;
      assert.ok(events.some((e) => e.to === 'QUEUED' && new RegExp(`worker ${victim} lost.*gang member 1.*whole gang requeued`).test(e.reason)));
      const members = done.gang!.members.map((m) => m.worker_id).sort();
      assert.ok(!members.includes(victim), 'the rerun avoided the lost worker');
      assert.deepEqual(members, [survivor, c.id].sort());
      writeFileSync(join(dir, 'lost-release'), '');
    });

    test('SDK handler gangs: each member gets job.gang, rank 0 gives the result', async () => {
      const token = cl.server.admin_token!;
      const seen: { rank: number; size: number; workers: string[] }[] = [];
      const handlers = {
        allreduce: async (job: { gang: { rank: number; size: number; workers: { name: string }[] } | null }) => {
          assert.ok(job.gang);
          seen.push({ rank: job.gang.rank, size: job.gang.size, workers: job.gang.workers.map((w) => w.name) });
          await new Promise((r) => setTimeout(r, 100));
          return { rank: job.gang.rank };
        },
      };
      const ws = ['sdk-a', 'sdk-b'].map((name) => new Worker({ server: cl.server.url, token, name, handlers, concurrency: 2 }));
      await Promise.all(ws.map((w) => w.start()));
      try {
        const sub = await cl.client.submit({ handler: 'allreduce', nodes: 2, resources: { cpu_cores: 0.5 } });
        const done = await cl.client.waitFor(sub.job_id, wait);
        assert.equal(done.status, 'COMPLETED');
        assert.deepEqual(done.result, { rank: 0 });
        assert.deepEqual(seen.map((s) => s.rank).sort(), [0, 1]);
        assert.ok(seen.every((s) => s.size === 2 && s.workers.join() === seen[0]!.workers.join() && [...s.workers].sort().join() === 'sdk-a,sdk-b'), JSON.stringify(seen));
      } finally {
        await Promise.all(ws.map((w) => w.stop()));
      }
    });

    test('gantry submit --nodes runs a gang; gantry status names the worker of each rank; a bad --nodes names its flag', async () => {
      const alive = cl.workers().filter((w) => w.child.exitCode === null && w.child.signalCode === null);
      for (let i = alive.length; i < 2; i++) await cl.startWorker({ cpu: 2, slots: 4 });
      const sub = await runGantry(cl, ['submit', '--nodes', '2', '--cpu', '1', '--output', 'json', '--', 'sh', '-c', 'echo "hello from $GANTRY_GANG_RANK"']);
      assert.equal(sub.code, 0, sub.stderr);
      const id = (JSON.parse(sub.stdout) as { job_id: string }).job_id;
      const done = await cl.client.waitFor(id, wait);
      assert.equal(done.status, 'COMPLETED');
      const status = await runGantry(cl, ['status', id]);
      assert.equal(status.code, 0, status.stderr);
      const line = status.stdout.split('\n').find((l) => /^gang\b/.test(l.trim()));
      assert.ok(line, status.stdout);
      for (const m of done.gang!.members) assert.ok(line.includes(`${m.rank}=${m.worker_id}`), line);
      assert.match(line, /2 nodes/);
      const logs = await runGantry(cl, ['logs', id]);
      assert.equal(logs.code, 0, logs.stderr);
      assert.match(logs.stdout, /\[rank 0\] hello from 0/);
      assert.match(logs.stdout, /\[rank 1\] hello from 1/);
      const bad = await runGantry(cl, ['submit', '--nodes', '0', '--', 'true']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /VALIDATION_FAILED nodes: .*\(--nodes\)/);
    });

    test('bad nodes values are refused naming the field', async () => {
      for (const nodes of [0, 65, 1.5]) {
        await assert.rejects(cl.client.submit({ command: ['true'], nodes }), (err: unknown) => {
          assert.ok(err instanceof GantryApiError);
          assert.equal(err.code, 'VALIDATION_FAILED');
          assert.equal(err.field, 'nodes');
          return true;
        });
      }
    });
  });
}

for (const kind of STORE_KINDS) {
  describe(`gang preemption on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind);
    });
    after(() => cl.close());

    test('a critical 2-node gang preempts normal jobs on two workers: each victim gets its grace period, is requeued with the reason, and runs again', async () => {
      const dir = cl.db.dir;
      const workers = [await cl.startWorker({ cpu: 2, slots: 4 }), await cl.startWorker({ cpu: 2, slots: 4 })];
      // Each victim traps TERM, uses its grace period (writes its own file, then a moment more) and exits; its rerun just says so.
      const victimScript = (name: string) => `
        if [ -f "${dir}/term-${name}" ]; then echo "${name} rerun"; exit 0; fi
        trap 'echo "$GANTRY_ATTEMPT" > "${dir}/term-${name}"; while [ ! -e "${dir}/wind-down" ]; do sleep 0.05; done; echo "${name} wound down"; exit 143' TERM
        echo "${name} started"; while true; do sleep 0.1; done`;
      const victims: { job_id: string }[] = [];
      for (const name of ['v1', 'v2']) {
        victims.push(await cl.client.submit({
          name, command: ['sh', '-c', victimScript(name)], priority: 'normal', grace_period: 60, resources: { cpu_cores: 2 }, retry_policy: { max_attempts: 1 },
        }));
      }
      const placed = await eventually(async () => {
        const js = await Promise.all(victims.map((v) => cl.client.getJob(v.job_id)));
        return js.every((j) => j.status === 'RUNNING') ? js : null;
      });
      assert.deepEqual(placed.map((j) => j.worker_id).sort(), workers.map((w) => w.id).sort(), 'one victim on each worker');

      const gang = await cl.client.submit({ name: 'critical-gang', command: ['sh', '-c', 'echo "rank $GANTRY_GANG_RANK ran"'], nodes: 2, priority: 'critical', resources: { cpu_cores: 2 } });
      // Both victims got SIGTERM and are in their grace period (they wait for the test): the gang says what it waits for.
      await eventually(async () => ['v1', 'v2'].every((n) => existsSync(join(dir, `term-${n}`))));
      const why = await runGantry(cl, ['why', gang.job_id]);
      assert.equal(why.code, 0, why.stderr);
      assert.match(why.stdout, /room is coming free on workers wkr_\S+, wkr_\S+: preempted jobs are stopping/);
      for (const w of workers) assert.ok(why.stdout.includes(w.id), why.stdout);
      assert.equal((await cl.client.getJob(gang.job_id)).status, 'QUEUED', 'the gang waits for its victims to stop');
      writeFileSync(join(dir, 'wind-down'), '');
      const done = await cl.client.waitFor(gang.job_id, wait);
      assert.equal(done.status, 'COMPLETED');
      assert.deepEqual(done.gang!.members.map((m) => m.worker_id).sort(), workers.map((w) => w.id).sort(), 'the gang ran on the two freed workers');

      for (const v of victims) {
        const j = await cl.client.waitFor(v.job_id, wait);
        assert.equal(j.status, 'COMPLETED', 'the victim ran again');
        assert.deepEqual(j.attempts?.map((a) => a.outcome), ['preempted', 'completed']);
        assert.equal(j.retries_used, 1, 'the preempted attempt is not counted against max_attempts 1');
        const events = (await cl.client.events(v.job_id)).events;
        const asked = events.find((e) => /^preemption requested/.test(e.reason));
        assert.ok(asked, JSON.stringify(events.map((e) => [e.from, e.to, e.reason])));
        assert.equal(asked.data?.preempted_by_job, gang.job_id);
        const requeued = events.find((e) => e.from === 'RUNNING' && e.to === 'QUEUED');
        assert.match(requeued?.reason ?? '', new RegExp(`^preempted: preempted by critical job ${gang.job_id} of tenant default \\(higher priority than normal\\); requeued$`));
        assert.equal(requeued?.data?.preempted_by_job, gang.job_id);
        // The grace period was used: the trap wrote its file and wound down before the job was requeued.
        const logs = (await cl.client.logs(v.job_id)).logs.map((l) => l.data).join('');
        assert.match(logs, new RegExp(`${j.name} wound down[\\s\\S]*${j.name} rerun`));
        // The gang started only after its victims had stopped.
        assert.ok(Date.parse(done.started_at!) >= Date.parse(requeued!.at), `gang started ${done.started_at}, victim requeued ${requeued!.at}`);
      }
      const gangEvents = (await cl.client.events(gang.job_id)).events;
      assert.ok(gangEvents.some((e) => e.from === 'SCHEDULED' && e.to === 'RUNNING' && /all 2 gang members started/.test(e.reason)));
    });
  });
}

for (const kind of STORE_KINDS) {
  describe(`gang start resent on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind);
    });
    after(() => cl.close());

    test('a `start` lost in flight comes again: each poll that still holds the member unstarted gets it, until its `started` report', async () => {
      const x = await testDrivenWorker(cl, 'x');
      const y = await testDrivenWorker(cl, 'y');
      try {
        const sub = await cl.client.submit({ name: 'lost-start', command: ['true'], nodes: 2, resources: { cpu_cores: 2 } });
        const take = async (w: { id: string }) => (await cl.client.poll(w.id, 0, [])).jobs.find((j) => j.job_id === sub.job_id)!;
        const onX = await eventually(() => take(x));
        const onY = await eventually(() => take(y));
        assert.ok(onX.gang && onY.gang);
        // x claims its member (nothing to start yet); y's claim completes the set and y's answer carries its `start`.
        assert.deepEqual((await cl.client.poll(x.id, 0, [onX.attempt_id])).controls, []);
        const start = [{ job_id: sub.job_id, attempt_id: onY.attempt_id, control: 'start' }];
        assert.deepEqual((await cl.client.poll(y.id, 0, [onY.attempt_id])).controls, start);
        // That answer is lost (y never reads it): y's next polls still hold the member unstarted, and get `start` again.
        assert.deepEqual((await cl.client.poll(y.id, 0, [onY.attempt_id])).controls, start, 'sent again');
        assert.deepEqual((await cl.client.poll(y.id, 0, [onY.attempt_id])).controls, start, 'and again');
        assert.equal((await cl.client.getJob(sub.job_id)).gang!.members.find((m) => m.worker_id === y.id)!.state, 'released');
        await cl.client.report(y.id, [{ job_id: sub.job_id, attempt_id: onY.attempt_id, outcome: 'started' }]);
        assert.deepEqual((await cl.client.poll(y.id, 0, [onY.attempt_id])).controls, [], 'a started member is not told to start');
        // x gets its own `start` on its next poll; both complete.
        assert.deepEqual((await cl.client.poll(x.id, 0, [onX.attempt_id])).controls, [{ job_id: sub.job_id, attempt_id: onX.attempt_id, control: 'start' }]);
        for (const [w, m] of [[x, onX], [y, onY]] as const) {
          await cl.client.report(w.id, [{ job_id: sub.job_id, attempt_id: m.attempt_id, outcome: 'started' }, { job_id: sub.job_id, attempt_id: m.attempt_id, outcome: 'completed', exit_code: 0 }]);
        }
        assert.equal((await cl.client.waitFor(sub.job_id, wait)).status, 'COMPLETED');
      } finally {
        await x.stop();
        await y.stop();
      }
    });
  });

  describe(`gang start barrier on ${kind}`, () => {
    let cl: TestCluster;
    before(async () => {
      cl = await startCluster(kind, { config: { gang_start_timeout_ms: 4000 } });
    });
    after(() => cl.close());

    const manualWorker = (name: string) => testDrivenWorker(cl, name);

    test('a member waits on its worker until every member has been taken by its own worker, then all start', async () => {
      const dir = cl.db.dir;
      const a = await cl.startWorker({ cpu: 2, slots: 4 });
      const x = await manualWorker('slow-x');
      try {
        const sub = await cl.client.submit({ name: 'barrier', command: ['sh', '-c', `echo "rank $GANTRY_GANG_RANK ran" > "${dir}/barrier-$GANTRY_GANG_RANK"`], nodes: 2, resources: { cpu_cores: 2 } });
        // The member on the real worker is taken (claimed) but does not start while the other worker has not taken its own.
        const waiting = await eventually(async () => {
          const j = await cl.client.getJob(sub.job_id);
          return j.gang?.members.find((m) => m.worker_id === a.id)?.state === 'claimed' ? j : null;
        });
        assert.equal(waiting.status, 'SCHEDULED');
        assert.equal(waiting.gang!.members.find((m) => m.worker_id === a.id)!.started_at, null);
        assert.ok(!existsSync(join(dir, `barrier-${waiting.gang!.members.find((m) => m.worker_id === a.id)!.rank}`)), 'the member did not run');

        // The slow worker takes its member: its next poll (listing it as held) gets `start`, and the other member starts too.
        const got = await cl.client.poll(x.id, 0, []);
        const mine = got.jobs.find((j) => j.job_id === sub.job_id)!;
        assert.ok(mine.gang, JSON.stringify(got));
        const claimedAt = Date.now();
        const next = await cl.client.poll(x.id, 0, [mine.attempt_id]);
        assert.deepEqual(next.controls, [{ job_id: sub.job_id, attempt_id: mine.attempt_id, control: 'start' }]);
        await cl.client.report(x.id, [{ job_id: sub.job_id, attempt_id: mine.attempt_id, outcome: 'started' }, { job_id: sub.job_id, attempt_id: mine.attempt_id, outcome: 'completed', exit_code: 0 }]);
        const done = await cl.client.waitFor(sub.job_id, wait);
        assert.equal(done.status, 'COMPLETED');
        const onA = done.gang!.members.find((m) => m.worker_id === a.id)!;
        assert.ok(existsSync(join(dir, `barrier-${onA.rank}`)));
        assert.ok(Date.parse(String(onA.started_at)) >= claimedAt || Number(onA.started_at) >= claimedAt, `the member on ${a.id} started (${onA.started_at}) only after the last member was taken (${claimedAt})`);
      } finally {
        await x.stop();
      }
    });

    test('a gang whose member is never taken is requeued after the start timeout without using a retry; its other member never ran', async () => {
      const dir = cl.db.dir;
      const x = await manualWorker('never-polls');
      let stopped = false;
      try {
        const sub = await cl.client.submit({
          name: 'stuck', command: ['sh', '-c', `touch "${dir}/stuck-$GANTRY_ATTEMPT-$GANTRY_GANG_RANK"`], nodes: 2, resources: { cpu_cores: 2 },
          retry_policy: { max_attempts: 1 },
        });
        const timedOut = await eventually(async () => {
          const ev = (await cl.client.events(sub.job_id)).events.find((e) => e.from === 'SCHEDULED' && e.to === 'QUEUED');
          return ev ?? null;
        }, 20_000);
        assert.match(timedOut.reason, new RegExp(`^gang start timed out: member \\d on worker ${x.id} was not taken within 4 s; the whole gang requeued$`));
        await x.stop();
        stopped = true;
        const b = await cl.startWorker({ cpu: 2, slots: 4 });
        const done = await cl.client.waitFor(sub.job_id, wait);
        assert.equal(done.status, 'COMPLETED');
        const outcomes = done.attempts!.map((t) => t.outcome);
        assert.equal(outcomes.at(-1), 'completed');
        assert.ok(outcomes.length >= 2 && outcomes.slice(0, -1).every((o) => o === 'interrupted'), outcomes.join());
        assert.match(done.attempts![0]!.error ?? '', /gang start timed out/);
        // Only the last attempt ran anywhere: the members taken in the timed-out attempts were cancelled unstarted.
        const last = done.attempts!.length;
        for (let n = 1; n < last; n++) for (const r of [0, 1]) assert.ok(!existsSync(join(dir, `stuck-${n}-${r}`)), `attempt ${n} rank ${r} ran`);
        assert.ok(existsSync(join(dir, `stuck-${last}-0`)) && existsSync(join(dir, `stuck-${last}-1`)));
        assert.ok(done.gang!.members.some((m) => m.worker_id === b.id));
      } finally {
        if (!stopped) await x.stop();
      }
    });

    test('an SDK worker starts a gang member at once, not behind its prefetched jobs', async () => {
      const token = cl.server.admin_token!;
      let release!: () => void;
      const blocked = new Promise<void>((r) => (release = r));
      const entered = new Set<number>();
      const handlers = {
        block: async () => {
          await blocked;
          return 'unblocked';
        },
        // Each member waits (up to 10 s) for the other to be running too.
        meet: async (job: { gang: { rank: number } | null }) => {
          entered.add(job.gang!.rank);
          for (let i = 0; i < 400 && entered.size < 2; i++) await new Promise((r) => setTimeout(r, 25));
          if (entered.size < 2) throw new Error(`rank ${job.gang!.rank}: the other member never started`);
          return { rank: job.gang!.rank };
        },
      };
      const busy = new Worker({ server: cl.server.url, token, name: 'sdk-busy', handlers, concurrency: 1, prefetch: 1 });
      const idle = new Worker({ server: cl.server.url, token, name: 'sdk-idle', handlers: { meet: handlers.meet }, concurrency: 1 });
      await Promise.all([busy.start(), idle.start()]);
      try {
        const blocker = await cl.client.submit({ handler: 'block' });
        await eventually(async () => (await cl.client.getJob(blocker.job_id)).status === 'RUNNING');
        const gang = await cl.client.submit({ handler: 'meet', nodes: 2, retry_policy: { max_attempts: 1 } });
        const done = await cl.client.waitFor(gang.job_id, wait);
        assert.equal(done.status, 'COMPLETED', JSON.stringify(done.attempts));
        assert.equal((await cl.client.getJob(blocker.job_id)).status, 'RUNNING', 'the gang ran while the busy worker still ran its other job');
        release();
        assert.equal((await cl.client.waitFor(blocker.job_id, wait)).status, 'COMPLETED');
      } finally {
        release();
        await Promise.all([busy.stop(), idle.stop()]);
      }
    });
  });
}
