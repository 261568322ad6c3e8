/**
 * The chaos run: N mixed jobs (handler jobs in SDK Workers, process jobs on `gantry worker`
 * agents; some fail, some are slow) across S servers and W workers, while a driver SIGKILLs
 * random workers and the leader server at random moments (bounded count and time) and restarts
 * them. Afterwards the store's invariants are checked (invariants.ts) and the counts reported.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openStore } from '../../src/store/store.ts';
import { GantryClient, type JobRequest } from '../../src/client/http.ts';
import { agentProc, freePort, sdkProc, serverProc, type Proc } from './procs.ts';
import { activeWithoutLease, checkInvariants, rawDb, readMarkers, type InvariantReport } from './invariants.ts';
import { rng } from '../../src/sim/generate.ts';

export interface ChaosOptions {
  /** postgres://… or sqlite:PATH */
  database: string;
  /** Scratch directory (data dirs, marker files). */
  dir: string;
  jobs: number;
  servers: number;
  /** Worker processes: every third (from the first) is a `gantry worker` agent, the rest SDK Workers. */
  workers: number;
  /** At most this many SIGKILLs… */
  maxKills: number;
  /** …all within this long after the start (ms). */
  killWindowMs: number;
  /** The run does not end before this many kills (unless the kill window closes first). */
  minKills?: number;
  /** Kill the scheduler leader server too (else only workers). */
  killServers: boolean;
  leaseTimeoutMs: number;
  /** Give up waiting for every job to end after this long (ms). */
  finishTimeoutMs: number;
  /** Spread the submissions over this long (ms) so kills land among running jobs; 0 = as fast as possible. */
  submitOverMs?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface Kill {
  kind: 'agent' | 'sdk' | 'server';
  name: string;
  leader: boolean;
  at: number;
  /** The killed incarnation's worker id (workers). */
  worker_id: string | null;
  /** Back up and serving (restart done) after this long (ms). */
  restarted_after_ms: number | null;
  /** Server kills: a server leads the scheduler again after this long (ms). */
  takeover_ms: number | null;
  /** Worker kills: first requeue of its jobs after this long (ms), null if it held none. */
  detection_to_requeue_ms: number | null;
}

export interface ChaosReport {
  jobs: number;
  submitted: number;
  submit_retries: number;
  kills: Kill[];
  kills_by_kind: Record<string, number>;
  recoveries: number;
  requeued_after_loss: number;
  max_detection_to_requeue_ms: number | null;
  max_takeover_ms: number | null;
  duration_ms: number;
  lease_samples: number;
  invariants: InvariantReport;
}


/** The i-th job of the mix: ~15% process jobs, the rest handler jobs; ~12% fail, ~5% slow. */
function chaosJob(i: number, r: () => number, procMarker: string): JobRequest {
  const retry_policy = { max_attempts: 2, retry_delay: 0.2, backoff: 'fixed' as const, jitter: 0 };
  const slow = r() < 0.05;
  const f = r();
  const fail = f < 0.07 ? 'always' : f < 0.12 ? 'first' : 'never';
  if (r() < 0.15) {
    const secs = slow ? (1 + r() * 2).toFixed(2) : '0';
    const exit = fail === 'always' ? 'exit 3' : fail === 'first' ? '[ "$GANTRY_ATTEMPT" = 1 ] && exit 3; exit 0' : 'exit 0';
    return {
      name: `chaos-proc-${i}`, type: 'chaos-proc', idempotency_key: `chaos-${i}`, retry_policy,
      resources: { cpu_cores: 0.5, memory_gb: 0.1 },
      command: ['sh', '-c', `echo "$GANTRY_JOB_ID $GANTRY_ATTEMPT" >> '${procMarker}'; sleep ${secs}; ${exit}`],
    };
  }
  const ms = slow ? Math.round(1000 + r() * 2000) : Math.round(r() * 20);
  return { name: `chaos-h-${i}`, type: 'chaos-handler', idempotency_key: `chaos-${i}`, retry_policy, handler: 'chaos', parameters: { ms, fail } };
}

async function leaderOf(servers: readonly (Proc & { url: string })[], token: string): Promise<(Proc & { url: string }) | null> {
  for (const s of servers) {
    if (!s.alive()) continue;
    try {
      const ready = await new GantryClient({ server: s.url, token }).request<{ scheduler_leader: boolean }>('GET', '/ready');
      if (ready.scheduler_leader) return s;
    } catch {
      /* down or not ready */
    }
  }
  return null;
}

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? (() => {});
  const r = rng(o.seed ?? 42);
  const t0 = Date.now();
  // The token exists before any server starts, so every server starts the same way.
  const setup = await openStore(o.database);
  const token = (await setup.createToken('chaos', 'admin', null)).token;
  await setup.close();

  const servers: (Proc & { url: string })[] = [];
  for (let i = 0; i < o.servers; i++) {
    servers.push(serverProc(`server-${i}`, { database: o.database, port: await freePort(), dataDir: join(o.dir, `server-${i}`), leaseTimeoutMs: o.leaseTimeoutMs }));
  }
  const workers: Proc[] = [];
  const markers = [join(o.dir, 'marker-proc.txt')];
  for (let i = 0; i < o.workers; i++) {
    const url = servers[i % servers.length]!.url;
    if (i % 3 === 0) workers.push(agentProc(`agent-${i}`, url, token, 16));
    else {
      markers.push(join(o.dir, `marker-sdk-${i}.txt`));
      workers.push(sdkProc(`sdk-${i}`, url, token, markers.at(-1)!, 32, 32));
    }
  }
  const db = await rawDb(o.database);
  const kills: Kill[] = [];
  let recoveries = 0;
  let submitted = 0;
  let submitRetries = 0;
  let leaseSamples = 0;
  const leaseViolations: string[] = [];
  let done = false;
  try {
    for (const s of servers) await s.start();
    await Promise.all(workers.map((w) => w.start()));
    log(`chaos: ${o.servers} server(s), ${o.workers} worker(s) up after ${Date.now() - t0} ms; submitting ${o.jobs} jobs`);

    // Submission: batches of 250 round-robin over the servers, idempotency keys make a retry after a kill safe.
    const submitting = (async () => {
      const BATCH = o.submitOverMs ? 50 : 250;
      const gap = o.submitOverMs ? o.submitOverMs / Math.ceil(o.jobs / BATCH) : 0;
      for (let i = 0, b = 0; i < o.jobs; i += BATCH, b++) {
        if (gap) await sleep(gap);
        const batch: JobRequest[] = [];
        for (let k = i; k < Math.min(o.jobs, i + BATCH); k++) batch.push(chaosJob(k, r, markers[0]!));
        for (let tries = 0; ; tries++) {
          const s = servers[(b + tries) % servers.length]!;
          try {
            await new GantryClient({ server: s.url, token }).submitBatch(batch);
            break;
          } catch (err) {
            if (tries > 200) throw new Error(`submit kept failing: ${(err as Error).message}`);
            submitRetries++;
            await sleep(100);
          }
        }
        submitted += batch.length;
      }
    })();

    // The kill driver: bounded count and time; each victim is restarted before the next kill.
    const killing = (async () => {
      let retry = false;
      while (kills.length < o.maxKills && Date.now() - t0 < o.killWindowMs && !done) {
        await sleep(retry ? 200 : 1000 + r() * 2500);
        retry = false;
        if (done) break;
        // The first kill is a worker and the second the leader (so even a short run has both), later ones by chance.
        const leaderKill = o.killServers && kills.length > 0 && (kills.length === 1 || r() < 0.3);
        const victim = leaderKill ? await leaderOf(servers, token) : workers[Math.floor(r() * workers.length)]!;
        if (!victim || !victim.alive()) {
          retry = true; // no leader right now (a takeover in progress, or a busy server): look again soon
          continue;
        }
        const k: Kill = { kind: victim.kind, name: victim.name, leader: leaderKill, at: Date.now(), worker_id: victim.id, restarted_after_ms: null, takeover_ms: null, detection_to_requeue_ms: null };
        await victim.kill('SIGKILL');
        kills.push(k);
        // Leadership is watched from the kill on, in parallel with the restart: another server may take over first.
        const takeover = victim.kind === 'server'
          ? (async () => {
              while (Date.now() - k.at < 60_000) {
                if (await leaderOf(servers, token)) return Date.now() - k.at;
                await sleep(50);
              }
              return null;
            })()
          : null;
        log(`chaos: SIGKILL ${victim.name}${leaderKill ? ' (scheduler leader)' : ''}${victim.id ? ` ${victim.id}` : ''} at +${k.at - t0} ms`);
        await sleep(300 + r() * 1200);
        await victim.start();
        k.restarted_after_ms = Date.now() - k.at;
        recoveries++;
        if (takeover) {
          k.takeover_ms = await takeover;
          log(`chaos: a leader again after ${k.takeover_ms} ms; ${victim.name} back after ${k.restarted_after_ms} ms`);
        }
      }
    })();

    // Meanwhile: no job may stay active on a worker whose lease lapsed (beyond the reaper's reach).
    const sampling = (async () => {
      while (!done) {
        await sleep(2000);
        const bad = await activeWithoutLease(db, Date.now() - o.leaseTimeoutMs - 8000).catch(() => []);
        leaseSamples++;
        leaseViolations.push(...bad.slice(0, 5));
      }
    })();

    await submitting;
    log(`chaos: ${submitted} jobs submitted after ${Date.now() - t0} ms (${submitRetries} batch retries)`);
    const deadline = Date.now() + o.finishTimeoutMs;
    for (;;) {
      const [row] = await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM jobs WHERE state NOT IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT')`);
      const open = Number(row?.n ?? 0);
      if (open === 0) break;
      if (Date.now() > deadline) {
        log(`chaos: ${open} jobs still open after the finish timeout`);
        break;
      }
      await sleep(500);
    }
    // A short run still gets its planned kills (within the kill window) before it ends.
    while (kills.length < (o.minKills ?? 0) && Date.now() - t0 < o.killWindowMs) await sleep(200);
    done = true;
    await killing;
    await sampling;
    const duration_ms = Date.now() - t0;

    for (const k of kills) {
      if (!k.worker_id) continue;
      const [row] = await db.query<{ at: number | null }>(`SELECT MIN(at) AS at FROM job_events WHERE reason LIKE ? AND to_state = 'QUEUED' AND at >= ?`, [`worker ${k.worker_id} lost%`, k.at]);
      if (row?.at != null) k.detection_to_requeue_ms = Number(row.at) - k.at;
    }
    const invariants = await checkInvariants(db, { markers: readMarkers(markers), expectFinal: true, leaseCutoff: Date.now() - o.leaseTimeoutMs, expectJobs: o.jobs });
    invariants.violations.push(...leaseViolations.map((s) => `during the run: ${s}`));
    const kills_by_kind: Record<string, number> = {};
    for (const k of kills) {
      const key = k.kind === 'server' ? (k.leader ? 'leader server' : 'server') : k.kind === 'agent' ? 'gantry worker' : 'SDK worker';
      kills_by_kind[key] = (kills_by_kind[key] ?? 0) + 1;
    }
    const max = (xs: (number | null)[]) => (xs.some((x) => x !== null) ? Math.max(...xs.filter((x): x is number => x !== null)) : null);
    return {
      jobs: invariants.jobs,
      submitted,
      submit_retries: submitRetries,
      kills,
      kills_by_kind,
      recoveries,
      requeued_after_loss: invariants.lost_attempts,
      max_detection_to_requeue_ms: max(kills.map((k) => k.detection_to_requeue_ms)),
      max_takeover_ms: max(kills.map((k) => k.takeover_ms)),
      duration_ms,
      lease_samples: leaseSamples,
      invariants,
    };
  } finally {
    done = true;
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await Promise.all(servers.map((s) => s.kill('SIGTERM')));
    await db.close();
  }
}

/** The report in a few lines. */
export function formatChaos(rep: ChaosReport): string {
  const kinds = Object.entries(rep.kills_by_kind).map(([k, n]) => `${n} ${k}`).join(', ') || 'none';
  return [
    `jobs: ${rep.jobs} (${Object.entries(rep.invariants.by_state).map(([s, n]) => `${s} ${n}`).join(', ')}); ${rep.invariants.attempts} attempts, ${rep.invariants.events} events`,
    `kills: ${rep.kills.length} (${kinds}); recoveries (restarted and serving): ${rep.recoveries}; attempts requeued after a loss: ${rep.requeued_after_loss}; late reports refused: ${rep.invariants.late_reports}`,
    `max detection-to-requeue (SIGKILL of a worker → its jobs requeued): ${rep.max_detection_to_requeue_ms ?? 'n/a'} ms; max leader takeover after a server kill: ${rep.max_takeover_ms ?? 'n/a'} ms`,
    `duration: ${(rep.duration_ms / 1000).toFixed(1)} s; lease samples during the run: ${rep.lease_samples}; submit batch retries: ${rep.submit_retries}`,
    `invariants: ${rep.invariants.violations.length === 0 ? 'all hold' : `${rep.invariants.violations.length} violations:\n  ${rep.invariants.violations.join('\n  ')}`}`,
  ].join('\n');
}
