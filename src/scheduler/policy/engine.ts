/**
 * One scheduling cycle, shared by Gantry's policy and the baselines; they differ only in the
 * `Ordering` (how queue heads are ranked, whether a blocked head stops the cycle, whether
 * backfill and preemption apply).
 *
 * Data structures (a cycle must stay well under 50 ms with 100k pending jobs): the snapshot gives
 * each tenant's pending jobs already in FIFO order (priority rank, queue time), so the cycle keeps
 * one cursor per (tenant, priority class) — a few hundred — in a heap ranked by the ordering's key.
 * Keys that depend on what was admitted (fair share, borrowing) are re-evaluated lazily when a
 * cursor reaches the top. A job shape that found no room is remembered for the rest of the cycle
 * (room only shrinks within a cycle), so jobs that cannot fit cost O(1) each and never block
 * other shapes; the cycle stops early once no worker has room.
 */
import { PRIORITIES, type Priority } from '../../core/types.ts';
import { Heap } from './heap.ts';
import { QuotaLedger, type QuotaVerdict, type TenantState } from './quota.ts';
import {
  RESOURCE_NAMES,
  type Admission,
  type ClusterSnapshot,
  type Decisions,
  type Explanation,
  type PendingJob,
  type PendingReasonData,
  type PolicyConfig,
  type Preemption,
  type Reservation,
  type ResourceVector,
  type RunningJob,
} from './types.ts';
import { decayUsage, dominantShare, zeroVector } from './usage.ts';
import { CycleWorkers, type CycleWorker } from './workers.ts';

export const PRIORITY_RANK: Readonly<Record<Priority, number>> = Object.fromEntries(PRIORITIES.map((p, i) => [p, i])) as Record<Priority, number>;

export interface Ordering {
  /** Rank by priority class first. */
  priority: boolean;
  /** Within a class: 'decayed' = weighted dominant share of decayed + current usage; 'current' = of current holding only (DRF); 'none' = FIFO. */
  fair_share: 'decayed' | 'current' | 'none';
  /** Waiting raises the class (config.aging_step_ms, config.max_wait_ms). */
  aging: boolean;
  /** Jobs that fit under nominal quota go before jobs that must borrow. */
  nominal_first: boolean;
  /** The first job of a tenant that cannot be admitted holds back the rest of that tenant's queue (head-of-line blocking). */
  strict: boolean;
  backfill: boolean;
  preemption: boolean;
}

/** What a cycle learned about one tenant, shared by its cursors. */
interface TenantCycle {
  /** Nothing more of the tenant starts this cycle, and why. */
  blocked: PendingReasonData | null;
  /** Shapes its quota already refused this cycle (usage only grows within a cycle: they fail again). */
  fails: Map<ShapeKey, QuotaVerdict> | null;
}

/** One (tenant, priority class) run of a tenant's queue, ranked in the heap by its head's key. */
interface Cursor {
  tenant: string;
  /** The tenant's quota state (looked up once per cycle, not per job). */
  state: TenantState;
  learned: TenantCycle;
  base: number;
  jobs: readonly PendingJob[];
  i: number;
  end: number;
  // The head's key, compared in this order (fields rather than an array: no garbage per job).
  rank: number;
  borrow: number;
  share: number;
  queued_at: number;
  seq: number;
  /** `state.version` when the key was computed: the key depends on nothing else that changes within a cycle. */
  keyed: number;
}

const lessKey = (a: Cursor, b: Cursor): boolean =>
  a.rank !== b.rank ? a.rank < b.rank
  : a.borrow !== b.borrow ? a.borrow < b.borrow
  : a.share !== b.share ? a.share < b.share
  : a.queued_at !== b.queued_at ? a.queued_at < b.queued_at
  : a.seq < b.seq;

/** Index of the first job with rank >= r in a list sorted by rank. */
function lowerBound(jobs: readonly PendingJob[], r: number): number {
  let lo = 0;
  let hi = jobs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (PRIORITY_RANK[jobs[mid]!.priority] < r) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A job's shape (queue, resources, nodes) as a map key. The common shape — default queue, one
 * node, small whole numbers — packs into one small integer (no string built per job); others
 * get a string.
 */
type ShapeKey = number | string;
const smallInt = (x: number, bits: number): boolean => (x | 0) === x && x >= 0 && x < 1 << bits;
const shapeKey = (j: PendingJob): ShapeKey => {
  const r = j.resources;
  if (j.nodes <= 1 && j.queue_key === '' && smallInt(r.cpu_cores, 8) && smallInt(r.gpu_count, 6) && smallInt(r.memory_gb, 16)) {
    return r.cpu_cores | (r.gpu_count << 8) | (r.memory_gb << 14);
  }
  return `${j.queue_key}|${r.cpu_cores}|${r.memory_gb}|${r.gpu_count}|${Math.max(1, j.nodes)}`;
};

/** After the cluster is full, look at this many more jobs (for preemption and explanations). */
const FULL_EXTRA = 200;
const MAX_RESERVATIONS = 1;
/** A preemption search looks at most this many more workers once it has found some victim set. */
const PREEMPT_SCAN_AFTER_FIRST = 32;
/** Aging lifts a job at most to this rank (high). */
const AGING_CEILING = 2;

export function runCycle(snap: ClusterSnapshot, cfg: PolicyConfig, ord: Ordering): Decisions {
  const workers = new CycleWorkers(snap.workers);
  try {
    return cycle(snap, cfg, ord, workers);
  } finally {
    workers.release();
  }
}

/** A tenant's running jobs, gathered in the cycle's one pass over them. */
interface Holding {
  state: TenantState;
  alloc: ResourceVector;
  jobs: number;
  /** Its group's number in this cycle (with preemption on), or -1. */
  group: number;
}

function cycle(snap: ClusterSnapshot, cfg: PolicyConfig, ord: Ordering, workers: CycleWorkers): Decisions {
  const now = snap.now;
  const ledger = new QuotaLedger(snap.tenants);
  const capacity = zeroVector();
  for (const w of snap.workers) for (const r of RESOURCE_NAMES) capacity[r] += w.capacity[r];
  const preemption = ord.preemption && cfg.preemption;
  const runningByRank = [0, 0, 0, 0, 0];
  // One pass over the ~14,000 running jobs (each visit of a job and its placements is a few cache misses):
  // each tenant's holding (one ledger update per tenant, not per job), each worker's jobs with their
  // tenant's state and rank (for victim searches), and with preemption each job's group (cohort, or a
  // tenant without one alone) by number — a group's jobs are listed only if a search needs them.
  const held = new Map<string, Holding>();
  const running = snap.running;
  const groupNumbers = new Map<string, number>();
  const groupOfRunning = preemption ? new Int32Array(running.length) : null;
  // Index loops, not for…of, over the running jobs: an optimised for…of still allocates per element here.
  for (let i = 0; i < running.length; i++) {
    const r = running[i]!;
    let h = held.get(r.tenant);
    if (!h) {
      const state = ledger.get(r.tenant);
      let group = -1;
      if (preemption) {
        group = groupNumbers.get(state.group) ?? groupNumbers.size;
        groupNumbers.set(state.group, group);
      }
      held.set(r.tenant, (h = { state, alloc: zeroVector(), jobs: 0, group }));
    }
    const pl = r.placements;
    const n = pl.length;
    h.alloc.cpu_cores += r.resources.cpu_cores * n;
    h.alloc.memory_gb += r.resources.memory_gb * n;
    h.alloc.gpu_count += r.resources.gpu_count * n;
    h.jobs++;
    const rank = PRIORITY_RANK[r.priority];
    runningByRank[rank]!++;
    if (groupOfRunning) groupOfRunning[i] = h.group;
    for (let pi = 0; pi < n; pi++) {
      const cw = workers.byId.get(pl[pi]!.worker_id);
      if (cw) workers.addRunning(cw, r, h.state, rank);
    }
  }
  for (const [t, h] of held) ledger.hold(t, h.alloc, h.jobs);
  const hist = new Map<string, ResourceVector>();
  if (ord.fair_share === 'decayed') for (const [t, u] of snap.usage) hist.set(t, decayUsage(u, now, cfg.half_life_ms).value);
  const noHist = zeroVector();

  const backfill = ord.backfill && cfg.backfill;
  const explainAll = cfg.explain === 'considered';
  const explainIds = Array.isArray(cfg.explain) ? new Set<string>(cfg.explain as readonly string[]) : null;

  const admissions: Admission[] = [];
  const preemptions: Preemption[] = [];
  const reservations: Reservation[] = [];
  const explanations = new Map<string, Explanation>();
  /** This cycle's victims (the objects: a lookup by object needs no read of the job's id). */
  const stopping = new Set<RunningJob>();
  const pendingByRank = [0, 0, 0, 0, 0];
  const admittedByRank = [0, 0, 0, 0, 0];

  const shareOf = (c: Cursor): number => {
    if (ord.fair_share === 'none') return 0;
    const s = c.state;
    return dominantShare(hist.get(c.tenant) ?? noHist, s.alloc, capacity, cfg.half_life_ms, s.tenant.weight);
  };
  const effRank = (j: PendingJob, base: number): number => effRankAt(j.queued_at, base);
  const effRankAt = (queuedAt: number, base: number): number => {
    if (!ord.aging || base <= 1) return base;
    const wait = now - queuedAt;
    if (wait >= cfg.max_wait_ms) return 0.5; // past the bound on wait: first after emergency
    // Aging lifts low and normal jobs up to `high`, never over critical work.
    return cfg.aging_step_ms > 0 ? Math.max(AGING_CEILING, base - Math.floor(wait / cfg.aging_step_ms)) : base;
  };
  /** Aging within a class (high and above): waited past `class_fifo_after_ms`, the job goes by arrival, ahead of the class. */
  const classFifo = (j: PendingJob, rank: number): boolean =>
    ord.aging && cfg.class_fifo_after_ms > 0 && rank <= AGING_CEILING && now - j.queued_at >= cfg.class_fifo_after_ms;
  /** Sets the cursor's key from its head job. */
  const keyOf = (c: Cursor): void => {
    const j = c.jobs[c.i]!;
    const rank = ord.priority ? effRank(j, c.base) : 0;
    c.rank = rank;
    c.keyed = c.state.version;
    c.queued_at = j.queued_at;
    c.seq = j.seq;
    if (classFifo(j, rank)) {
      // Waited past the class's bound: ahead of the class's other jobs, oldest first.
      c.borrow = -1;
      c.share = 0;
      return;
    }
    c.borrow = ord.nominal_first && !QuotaLedger.withinNominalOf(c.state, j.resources, j.nodes) ? 1 : 0;
    c.share = shareOf(c);
  };

  const heap = new Heap<Cursor>(lessKey);
  for (const [tenant, jobs] of snap.pending) {
    let start = 0;
    const state = ledger.get(tenant);
    const learned: TenantCycle = { blocked: null, fails: null };
    for (let r = 0; r < PRIORITIES.length; r++) {
      const end = lowerBound(jobs, r + 1);
      pendingByRank[r]! += end - start;
      if (end > start) {
        const c: Cursor = { tenant, state, learned, base: r, jobs, i: start, end, rank: 0, borrow: 0, share: 0, queued_at: 0, seq: 0, keyed: -1 };
        keyOf(c);
        heap.push(c);
      }
      start = end;
    }
  }

  /** Is the job's explanation wanted? (Checked before building reasons: most cycles want none.) */
  const wants = (j: PendingJob): boolean => explainAll || explainIds?.has(j.id) === true;
  const explain = (j: PendingJob, reasons: PendingReasonData[], estimated: number | null = null): void => {
    if (!wants(j)) return;
    const rank = PRIORITY_RANK[j.priority];
    let ahead = 0;
    for (let r = 0; r < rank; r++) ahead += pendingByRank[r]! - admittedByRank[r]!;
    if (ahead > 0) reasons.push({ kind: 'higher_ahead', count: ahead });
    explanations.set(j.id, { job_id: j.id, reasons, estimated_start: estimated });
  };

  /**
   * Reclaim takes a job of the reclaimer's own class only below `high`: from `high` up, aging
   * within the class orders jobs by waiting time, and reclaiming a same-class job would requeue a
   * job that waited longer — which then preempts to borrow again (a preemption ping-pong).
   */
  const sameClassExempt = (rank: number): boolean => ord.aging && cfg.class_fifo_after_ms > 0 && rank <= AGING_CEILING;

  let preemptAttempts = 0;
  /** The lowest priority (highest rank) among running jobs: one victim of it is the cheapest possible set. */
  let lowestRunning = 0;
  for (let r = 0; r < runningByRank.length; r++) if (runningByRank[r]! > 0) lowestRunning = r;
  const runningByGroup = new Map<string, RunningJob[]>();
  /** A group's running jobs in victim order (listed and sorted once per cycle, when first needed). */
  const groupVictims = (group: string): readonly RunningJob[] => {
    let list = runningByGroup.get(group);
    if (!list) {
      list = [];
      const g = groupNumbers.get(group);
      if (g !== undefined && groupOfRunning) {
        for (let i = 0; i < running.length; i++) if (groupOfRunning[i] === g) list.push(running[i]!);
        runningByGroup.set(group, list);
      }
      // Sort keys computed once per job (not per comparison: a cohort holds thousands of running jobs).
      const borrowing = new Map<string, number>();
      const keyed = list.map((v) => {
        let b = borrowing.get(v.tenant);
        if (b === undefined) borrowing.set(v.tenant, (b = ledger.isBorrowing(v.tenant) ? 0 : 1));
        return { v, b, r: PRIORITY_RANK[v.priority], s: v.started_at };
      });
      keyed.sort((x, y) => x.b - y.b || y.r - x.r || y.s - x.s);
      for (let i = 0; i < keyed.length; i++) list[i] = keyed[i]!.v;
    }
    return list;
  };
  /**
   * Victims for `j`, Kueue-style: the minimal set on one worker that makes room (borrowing
   * tenants first, then lowest priority, then newest) — for a gang (`nodes: N`), such a set on
   * each of N distinct workers, or nothing at all (all or nothing: no victim anywhere unless N
   * workers can be made free). When `j` is held back by quota (its cohort's quota is in use),
   * victims of its own cohort come first since they free quota too, and more lower-priority jobs
   * of the cohort are added until the quota admits it. The room is promised to `j` for the rest
   * of the cycle. Null when no such set exists.
   *
   * Bounded work: at most `max_preemption_attempts` searches per cycle; a search stops once it
   * has N workers whose sets are as cheap as any can be (one victim of the lowest running
   * priority, or none) and looks at most `PREEMPT_SCAN_AFTER_FIRST` more workers once it has N sets.
   */
  const tryPreempt = (j: PendingJob, quotaBlocked: boolean): { victims: string[]; workers: string[] } | null => {
    const rank = PRIORITY_RANK[j.priority];
    const nodes = Math.max(1, j.nodes);
    // Emergency jobs are not held back by the cycle's victim budget (the issue: they preempt at once).
    const budget = rank === 0 ? Infinity : cfg.max_preemptions;
    if (preemptAttempts >= cfg.max_preemption_attempts || preemptions.length >= budget) return null;
    const byPriority = (rank === 0 || (rank === 1 && now - j.queued_at >= cfg.critical_preempt_after_ms)) && lowestRunning > rank;
    const tenant = ledger.get(j.tenant);
    const reclaim = !quotaBlocked && tenant.tenant.cohort !== null && ledger.withinNominal(j.tenant, j.resources, j.nodes);
    if (!byPriority && !reclaim) return null;
    preemptAttempts++;
    const emergency = rank === 0;
    const group = tenant.group;
    // A victim that aging ranks in a higher class than `j` goes back into the queue ahead of it: it
    // would retake the room (and quota) before `j` could use them, and be preempted again, for ever.
    // Within a class from `high` up, a job waiting past `class_fifo_after_ms` goes by arrival: an older such victim is ahead too.
    const jRank = ord.priority ? effRank(j, rank) : rank;
    const jFifo = classFifo(j, jRank);
    /** `vr`: the victim's priority rank. */
    const returnsAhead = (v: RunningJob, vr: number): boolean => {
      if (!ord.aging || v.queued_at === undefined) return false;
      const vRank = effRankAt(v.queued_at, vr);
      return vRank < jRank || (vRank === jRank && jFifo && v.queued_at < j.queued_at);
    };
    const eligible = (v: RunningJob) => !v.terminating && !stopping.has(v) && (v.preemptible || emergency) && PRIORITY_RANK[v.priority] > rank && !returnsAhead(v, PRIORITY_RANK[v.priority]);
    const kindOf = (v: RunningJob): 'priority' | 'reclaim' => (byPriority && PRIORITY_RANK[v.priority] > rank ? 'priority' : 'reclaim');
    const floor = 100 + (PRIORITIES.length - lowestRunning);

    const sets: { cw: CycleWorker; victims: RunningJob[]; cost: number }[] = [];
    let cheapest = 0;
    let afterEnough = 0;
    // Per worker looked at (a reclaim search may look at all of them), in arrays reused from worker to
    // worker (their first `nFreed`, `nCands`, `nChosen` entries; set to length 0, an array drops its
    // storage): `freed` = the resources of the jobs already stopping there, then of the chosen victims;
    // the candidates in victim order with their sort keys; the chosen ones (indices into the candidates).
    const freed: ResourceVector[] = [];
    const cands: RunningJob[] = [];
    const candKey: number[] = [];
    const candRank: number[] = [];
    const candStart: number[] = [];
    const chosen: number[] = [];
    let nFreed = 0;
    let nCands = 0;
    let nChosen = 0;
    /** A single job keeps only its cheapest set (no object per worker looked at); a gang keeps them all. */
    const keepSet = (cw: CycleWorker, cost: number): void => {
      if (nodes === 1 && sets.length > 0 && cost >= sets[0]!.cost) return;
      const victims: RunningJob[] = [];
      for (let i = 0; i < nChosen; i++) victims.push(cands[chosen[i]!]!);
      if (nodes > 1) sets.push({ cw, victims, cost });
      else sets[0] = { cw, victims, cost };
    };
    const capable = workers.capable(j.queue_key);
    // A gang first looks where room is free or already coming free (its victims of earlier cycles
    // still stopping): those need no new victim, and a scan cut short must not pass them by.
    const order = nodes > 1 ? workers.byRoomOnceGone(capable, j.resources) : capable;
    for (let wi = 0; wi < order.length; wi++) {
      const cw = order[wi]!;
      if (sets.length >= nodes && ++afterEnough > PREEMPT_SCAN_AFTER_FIRST) break;
      if (!workers.canEverFit(cw, j.resources)) continue;
      nFreed = 0;
      nCands = 0;
      nChosen = 0;
      const states = cw.runningTenant;
      const ranks = cw.runningRank;
      for (let vi = 0; vi < cw.nRunning; vi++) {
        const v = cw.running[vi]!;
        if (v.terminating || stopping.has(v)) {
          freed[nFreed++] = v.resources;
          continue;
        }
        if (!v.preemptible && !emergency) continue;
        const vr = ranks[vi]!;
        // The tenant's state, not its id: no map lookup per running job (`vs !== tenant` ⇔ another tenant).
        const vs = states[vi]!;
        const candidate = (byPriority && vr > rank) ||
          (reclaim && vs !== tenant && (vr > rank || (vr === rank && !sameClassExempt(rank))) && vs.group === group && QuotaLedger.isBorrowingOf(vs));
        // returnsAhead last: it is the dearest test, and most running jobs fail a cheaper one (a reclaim
        // looks at every running job of every capable worker, and most are the job's own tenant's).
        if (!candidate || returnsAhead(v, vr)) continue;
        // Victim order: held back by quota, its own cohort's jobs first (they free quota as well as
        // room); then borrowing tenants' jobs, then lowest priority, then newest; ties in the order
        // found. Kept sorted as found (a stable insertion: a worker holds a few jobs).
        const key = (quotaBlocked && vs.group === group ? 0 : 2) + (QuotaLedger.isBorrowingOf(vs) ? 0 : 1);
        const start = v.started_at;
        let at = nCands++;
        while (at > 0) {
          const k = candKey[at - 1]!;
          const r = candRank[at - 1]!;
          if (!(key < k || (key === k && (vr > r || (vr === r && start > candStart[at - 1]!))))) break;
          cands[at] = cands[at - 1]!;
          candKey[at] = k;
          candRank[at] = r;
          candStart[at] = candStart[at - 1]!;
          at--;
        }
        cands[at] = v;
        candKey[at] = key;
        candRank[at] = vr;
        candStart[at] = start;
      }
      const nGoing = nFreed;
      if (workers.fitsWith(cw, freed, nFreed, -1, j.resources)) {
        keepSet(cw, -1);
        if (++cheapest >= nodes) break;
        continue;
      }
      if (nCands === 0) continue;
      let fits = false;
      for (let ci = 0; ci < nCands && !fits; ci++) {
        chosen[nChosen++] = ci;
        freed[nFreed++] = cands[ci]!.resources;
        fits = workers.fitsWith(cw, freed, nFreed, -1, j.resources);
      }
      if (!fits) continue;
      // Minimal set: drop any victim (last chosen first) the job fits without.
      for (let i = nChosen - 1; i >= 0 && nChosen > 1; i--) {
        if (!workers.fitsWith(cw, freed, nFreed, nGoing + i, j.resources)) continue;
        for (let k = i + 1; k < nChosen; k++) {
          chosen[k - 1] = chosen[k]!;
          freed[nGoing + k - 1] = freed[nGoing + k]!;
        }
        nChosen--;
        nFreed--;
      }
      // Held back by quota: a victim of another cohort frees room but no quota, so more victims elsewhere follow.
      let cost = 0;
      for (let i = 0; i < nChosen; i++) {
        const ci = chosen[i]!;
        cost += 100 + (PRIORITIES.length - candRank[ci]!) + (candKey[ci]! >= 2 && quotaBlocked ? 50 : 0);
      }
      keepSet(cw, cost);
      if (cost <= floor && ++cheapest >= nodes) break;
    }
    // All or nothing: fewer than `nodes` workers can be made free, so nobody is preempted.
    if (sets.length < nodes) return null;
    // The cheapest sets (a stable sort: on equal cost the worker found first).
    if (sets.length > 1) sets.sort((a, b) => a.cost - b.cost);
    sets.length = nodes;
    // One victim may stand on several of the chosen workers (a gang): it is stopped once.
    let roomVictims = sets[0]!.victims;
    if (nodes > 1) {
      const seen = new Set<string>();
      roomVictims = [];
      for (const s of sets) {
        for (const v of s.victims) {
          if (seen.has(v.id)) continue;
          seen.add(v.id);
          roomVictims.push(v);
        }
      }
    }
    // Quota: the room victims of its cohort free quota too; add more cohort victims while it still does not fit.
    const quotaVictims: RunningJob[] = [];
    if (quotaBlocked) {
      for (const v of roomVictims) ledger.charge(v.tenant, v.resources, v.placements.length, -1);
      const picked = new Set(roomVictims);
      // Quota that stopping jobs of the cohort hold is about to come free (and what earlier preemptors
      // of this cycle claimed of it is charged to them): count it, or every cycle of a grace period
      // would pick more victims for the same job.
      const list = groupVictims(group);
      const leaving: RunningJob[] = [];
      for (let vi = 0; vi < list.length; vi++) {
        const v = list[vi]!;
        if ((v.terminating || stopping.has(v)) && !picked.has(v)) {
          leaving.push(v);
          ledger.charge(v.tenant, v.resources, v.placements.length, -1);
        }
      }
      let verdict = ledger.check(j.tenant, j.resources, j.nodes);
      if (!verdict.ok) {
        for (let vi = 0; vi < list.length; vi++) {
          const v = list[vi]!;
          // Only jobs holding the resource the quota lacks: stopping others frees nothing the job needs.
          if (verdict.ok || quotaVictims.length >= budget) break;
          if (picked.has(v) || !eligible(v) || v.resources[verdict.resource] <= 0) continue;
          // Stopping a job of a tenant within its nominal quota frees nothing lasting: that tenant's own
          // pending jobs retake its nominal quota first (it is guaranteed), and the preemptor is left
          // short again — a preemption loop. Only the job's own tenant and borrowers give up quota.
          if (v.tenant !== j.tenant && !ledger.isBorrowing(v.tenant)) continue;
          quotaVictims.push(v);
          ledger.charge(v.tenant, v.resources, v.placements.length, -1);
          verdict = ledger.check(j.tenant, j.resources, j.nodes);
        }
      }
      const ok = ledger.check(j.tenant, j.resources, j.nodes).ok;
      for (const v of [...roomVictims, ...quotaVictims, ...leaving]) ledger.charge(v.tenant, v.resources, v.placements.length, 1);
      if (!ok) return null;
    }
    for (const s of sets) workers.claimFor(s.cw, j.resources, s.victims.map((v) => v.resources));
    // The job claims its quota for the rest of the cycle, so lower jobs cannot take what its victims free.
    ledger.charge(j.tenant, j.resources, j.nodes, 1);
    const all = [...quotaVictims.map((v) => ({ v, kind: 'priority' as const })), ...roomVictims.map((v) => ({ v, kind: kindOf(v) }))];
    for (const { v, kind } of all) {
      stopping.add(v);
      preemptions.push({
        victim_id: v.id,
        victim_tenant: v.tenant,
        for_job_id: j.id,
        for_tenant: j.tenant,
        kind,
        reason:
          kind === 'priority'
            ? `preempted by ${j.priority} job ${j.id} of tenant ${j.tenant} (higher priority than ${v.priority})`
            : `preempted by job ${j.id}: tenant ${j.tenant} reclaims its nominal quota that tenant ${v.tenant} borrowed`,
      });
    }
    return { victims: all.map((x) => x.v.id), workers: sets.map((x) => x.cw.w.id) };
  };

  const tooBig = new Map<ShapeKey, PendingReasonData | null>();
  let anyTooBig = false;
  const noRoom = new Set<ShapeKey>();
  const quiet = !explainAll;
  let considered = 0;
  /**
   * Moves the cursor past the jobs at its head that fail for sure, by what this cycle already learned
   * (and no preemption could help them), without heap work; each counts as considered. A cursor
   * walks thousands of such jobs per cycle: what holds for all of them is decided once.
   */
  const skipKnownFailures = (c: Cursor): void => {
    const fails = c.learned.fails;
    const roomFails = !backfill && noRoom.size > 0;
    if (!anyTooBig && !fails && !roomFails) return; // nothing learned that could apply: no key needed
    // A cursor's jobs are all of its class: preemption may help critical and emergency jobs past quota and room.
    const mayPreempt = c.base <= 1 && preemption;
    if (mayPreempt && !anyTooBig) return;
    const jobs = c.jobs;
    let i = c.i;
    /** The shape of the job skipped last: the next job of the same shape fails the same way. */
    let skipped: ShapeKey | null = null;
    while (i < c.end && considered < cfg.max_considered) {
      const j = jobs[i]!;
      if (explainIds?.has(j.id)) break;
      const skey = shapeKey(j);
      if (skey !== skipped) {
        const fail = (anyTooBig && tooBig.get(skey)) || (!mayPreempt && (fails?.has(skey) === true || (roomFails && noRoom.has(skey))));
        if (!fail) break;
        skipped = skey;
      }
      i++;
      considered++;
    }
    c.i = i;
  };
  let fullExtra = 0;
  let lastAdmitAt = 0;
  let strictBlocked = false;

  while (heap.size > 0) {
    if (admissions.length >= cfg.max_admissions || considered >= cfg.max_considered) break;
    if (workers.open === 0 && ++fullExtra > FULL_EXTRA) break;
    // Room is fragmented past use: this many jobs in a row found nothing, stop looking.
    if (considered - lastAdmitAt > cfg.max_fruitless) break;
    const c = heap.pop()!;
    // Stale only if its tenant's holding changed since it was keyed (an admission from another of the
    // tenant's cursors, a preemption's claim); W1's one cursor is keyed once per job, not twice.
    if (c.keyed !== c.state.version) keyOf(c);
    const top = heap.peek();
    if (top && lessKey(top, c)) {
      heap.push(c);
      continue;
    }
    const j = c.jobs[c.i]!;
    considered++;
    const learned = c.learned;
    const blocked = learned.blocked;
    if (blocked) {
      explain(j, [blocked]);
      continue; // drop the cursor: nothing of this tenant can start this cycle
    }
    const t = c.state;
    if (t.tenant.paused || (t.tenant.max_running !== null && t.running >= t.tenant.max_running)) {
      const why: PendingReasonData = t.tenant.paused
        ? { kind: 'tenant_paused', tenant: j.tenant }
        : { kind: 'max_running', tenant: j.tenant, running: t.running, limit: t.tenant.max_running! };
      learned.blocked = why;
      explain(j, [why]);
      continue;
    }
    let outcome: 'admitted' | 'blocked' | 'skip' = 'skip';
    const skey = shapeKey(j);
    if (!t.tenant.allowed_priorities.includes(j.priority)) {
      explain(j, [{ kind: 'priority_not_allowed', tenant: j.tenant, priority: j.priority }]);
    } else {
      let big = tooBig.get(skey);
      if (big === undefined) {
        big = null;
        const nodes = Math.max(1, j.nodes);
        if (workers.capable(j.queue_key).length === 0) big = { kind: 'no_worker_for_queue', queue_key: j.queue_key };
        else if (workers.everFits(j) < nodes) {
          const l = workers.largest(j.queue_key);
          const r = RESOURCE_NAMES.find((x) => j.resources[x] > l[x] + 1e-9);
          big = r ? { kind: 'too_big', resource: r, need: j.resources[r], largest: l[r] } : { kind: 'too_big', resource: 'nodes', need: nodes, largest: l.workers };
        }
        tooBig.set(skey, big);
        if (big) anyTooBig = true;
      }
      if (big) {
        explain(j, [big]);
      } else {
        const q = learned.fails?.get(skey) ?? ledger.checkOf(t, j.resources, j.nodes);
        if (!q.ok) {
          // Usage only grows within a cycle: the same shape fails again.
          (learned.fails ??= new Map()).set(skey, q);
          const victims = preemption && PRIORITY_RANK[j.priority] <= 1 ? tryPreempt(j, true) : null;
          if (wants(j)) {
            const why: PendingReasonData = { kind: 'quota', tenant: j.tenant, resource: q.resource, used: q.used, need: q.need, limit: q.limit, nominal: t.tenant.quota[q.resource].nominal, cohort: t.tenant.cohort, cohort_idle: q.cohort_idle };
            explain(j, victims ? [why, { kind: 'preempting', victims: victims.victims, workers: victims.workers }] : [why]);
          }
          outcome = 'blocked';
        } else {
          const placed = noRoom.has(skey) ? null : workers.place(j, { now, duration: j.expected_duration_ms });
          if (placed && placed.placements) {
            admissions.push({ job_id: j.id, tenant: j.tenant, placements: placed.placements, borrowing: q.borrowing, backfilled: placed.backfilled });
            ledger.chargeOf(t, j.resources, placed.placements.length, 1);
            admittedByRank[PRIORITY_RANK[j.priority]]!++;
            lastAdmitAt = considered;
            outcome = 'admitted';
          } else {
            if (placed && !placed.blockedByReservation) noRoom.add(skey);
            outcome = 'blocked';
            const victims = preemption ? tryPreempt(j, false) : null;
            let reserved: Reservation | null = null;
            const holder = reservations[0];
            if (!victims && backfill && reservations.length < MAX_RESERVATIONS) {
              const r = workers.earliestStart(j, now);
              if (r) {
                for (const cw of r.workers) cw.reserved_at = Math.min(cw.reserved_at, r.start_at);
                reservations.push((reserved = { job_id: j.id, start_at: r.start_at, worker_ids: r.workers.map((cw) => cw.w.id) }));
              }
            }
            if (wants(j)) {
              const noRoomWhy: PendingReasonData = placed && placed.nodes_with_room !== undefined
                ? { kind: 'no_room', need: j.resources, nodes: Math.max(1, j.nodes), nodes_with_room: placed.nodes_with_room }
                : { kind: 'no_room', need: j.resources, nodes: Math.max(1, j.nodes) };
              if (victims) explain(j, [{ kind: 'preempting', victims: victims.victims, workers: victims.workers }]);
              else if (reserved) explain(j, [noRoomWhy, { kind: 'reservation', start_at: reserved.start_at }], reserved.start_at);
              else if (holder) explain(j, [noRoomWhy, { kind: 'blocked_by_reservation', job_id: holder.job_id, start_at: holder.start_at }]);
              else explain(j, [noRoomWhy]);
            }
          }
        }
      }
    }
    if (outcome === 'blocked' && ord.strict) {
      // Kueue StrictFIFO: the blocked head holds back everything behind it in its tenant's queue.
      learned.blocked = { kind: 'not_considered' };
      strictBlocked = true;
      continue;
    }
    c.i++;
    // Skip, without heap work, the jobs of this cursor that must fail the same way.
    if (quiet && outcome !== 'admitted') skipKnownFailures(c);
    if (c.i < c.end) {
      keyOf(c);
      heap.push(c);
    }
  }

  if (explainIds) explainRest(snap, explainIds, explanations, workers, ledger, pendingByRank, admittedByRank, strictBlocked);
  return { admissions, preemptions, reservations, explanations, stats: { considered, admitted: admissions.length, preempted: preemptions.length } };
}

/** Explanations asked for by id that the cycle did not reach. */
function explainRest(
  snap: ClusterSnapshot,
  ids: ReadonlySet<string>,
  out: Map<string, Explanation>,
  workers: CycleWorkers,
  ledger: QuotaLedger,
  pendingByRank: number[],
  admittedByRank: number[],
  strictBlocked: boolean,
): void {
  for (const jobs of snap.pending.values()) {
    for (const j of jobs) {
      if (!ids.has(j.id) || out.has(j.id)) continue;
      const reasons: PendingReasonData[] = [];
      const t = ledger.get(j.tenant);
      if (t.tenant.paused) reasons.push({ kind: 'tenant_paused', tenant: j.tenant });
      if (!t.tenant.allowed_priorities.includes(j.priority)) reasons.push({ kind: 'priority_not_allowed', tenant: j.tenant, priority: j.priority });
      const q = ledger.check(j.tenant, j.resources, j.nodes);
      if (!q.ok) {
        reasons.push({ kind: 'quota', tenant: j.tenant, resource: q.resource, used: q.used, need: q.need, limit: q.limit, nominal: t.tenant.quota[q.resource].nominal, cohort: t.tenant.cohort, cohort_idle: q.cohort_idle });
      }
      const est = workers.earliestStart(j, snap.now);
      if (!est) reasons.push({ kind: 'no_room', need: j.resources, nodes: Math.max(1, j.nodes) });
      const rank = PRIORITY_RANK[j.priority];
      let ahead = 0;
      for (let r = 0; r < rank; r++) ahead += pendingByRank[r]! - admittedByRank[r]!;
      if (ahead > 0) reasons.push({ kind: 'higher_ahead', count: ahead });
      if (reasons.length === 0) reasons.push({ kind: strictBlocked ? 'not_considered' : 'cycle_limit' });
      out.set(j.id, { job_id: j.id, reasons, estimated_start: est?.start_at ?? null });
    }
  }
}
