/**
 * A lower bound on the mean JCT that *any* policy can reach on a trace while the p99 queueing
 * delay of one priority class (critical) stays under a cap — computed from the trace's arrivals,
 * so "no policy can win both columns" is a number, not prose.
 *
 * The relaxation (every real schedule satisfies it, so its optimum bounds every policy from
 * below): the cluster is a fluid of K units of one resource (its total capacity; packing onto
 * workers, quotas and rigid placement are ignored, work may be paused and resumed for free).
 * For a cap D on the protected class, all but the allowed 1% of its jobs (the p99) start within D
 * of arrival; such a job i has done at least rate_i·min(d_i, t − s_i − D) work by t. Then at t:
 * - work processed so far ≤ min over τ ≤ t of (work arrived by τ + K·(t − τ));
 * - so the other jobs' processed work ≤ that − the protected class's forced work C_D(t)
 *   (minus the largest works of the exempt 1%, taken as large as they could be);
 * - their unfinished work U(t) ≥ work arrived − that bound, and it is held by at least k(t) jobs:
 *   the fewest arrived jobs whose whole works sum to U(t) (the largest ones);
 * - a job is in the system at least while it runs: jobs in system ≥ max(k(t), jobs within
 *   [submit, submit + duration] at t).
 * - all unfinished work (arrived − processable) is held by at least k_all(t) jobs of any class.
 * Σ JCT = ∫ jobs in system dt ≥ ∫ max(k_all, max(k, active) + active_protected) dt, on a 1 s grid
 * with each step's values taken at their least (so the grid does not loosen the bound's validity).
 * The bound is computed for every resource the trace uses, and the largest is kept.
 *
 * Monotone in D (a looser cap never raises it), so the least cap compatible with a mean JCT is
 * found by bisection.
 */
import { PRIORITY_RANK } from '../scheduler/policy/engine.ts';
import { RESOURCE_NAMES, type ResourceName } from '../scheduler/policy/types.ts';
import type { Priority } from '../core/types.ts';
import type { ClusterSpec, TraceJob } from './trace.ts';

const STEP_MS = 1000;
const MAX_STEPS = 20_000_000;

export interface BoundOptions {
  /** The class whose queueing delay is capped. */
  priority: Priority;
  /** The percentile the cap applies to (99: all but 1% of the class's jobs). */
  percentile: number;
}

const DEFAULTS: BoundOptions = { priority: 'critical', percentile: 99 };

/** Fenwick tree over jobs sorted by work, largest first: "fewest arrived jobs holding U". */
class LargestFirst {
  readonly #n: number;
  readonly #cnt: Float64Array;
  readonly #sum: Float64Array;
  #top = 1;

  constructor(n: number) {
    this.#n = n;
    this.#cnt = new Float64Array(n + 1);
    this.#sum = new Float64Array(n + 1);
    while (this.#top * 2 <= n) this.#top *= 2;
  }

  add(pos: number, work: number): void {
    for (let i = pos + 1; i <= this.#n; i += i & -i) {
      this.#cnt[i]! += 1;
      this.#sum[i]! += work;
    }
  }

  /** The fewest added jobs (largest works first) whose works sum to at least `u`. */
  fewestHolding(u: number): number {
    if (u <= 0) return 0;
    let pos = 0;
    let sum = 0;
    let cnt = 0;
    for (let step = this.#top; step > 0; step >>= 1) {
      const next = pos + step;
      if (next <= this.#n && sum + this.#sum[next]! < u) {
        pos = next;
        sum += this.#sum[next]!;
        cnt += this.#cnt[next]!;
      }
    }
    return cnt + 1;
  }
}

interface Prepared {
  capacity: number;
  /** Protected jobs: rate, submit, duration. */
  prot: { rate: number; s: number; d: number }[];
  /** Sum of the largest works the exempt jobs of the protected class could have. */
  exemptWork: number;
  /** Other jobs by submit time, with their rank by work (largest first). */
  others: { s: number; d: number; w: number; pos: number }[];
  /** All jobs by submit time, with their rank by work among all (for the capacity bound and k of all jobs). */
  all: { s: number; w: number; pos: number }[];
  otherEnds: Float64Array;
  /** Protected jobs' submit times and ends, sorted. */
  protStarts: Float64Array;
  protEnds: Float64Array;
  jobs: number;
  t0: number;
}

function prepare(trace: readonly TraceJob[], spec: ClusterSpec, r: ResourceName, o: BoundOptions): Prepared | null {
  const capacity = spec.workers.reduce((n, g) => n + g.count * g[r], 0);
  if (capacity <= 0) return null;
  const rate = (j: TraceJob) => j[r] * Math.max(1, j.nodes);
  if (!trace.some((j) => rate(j) > 0)) return null;
  const rank = PRIORITY_RANK[o.priority];
  const protJobs = trace.filter((j) => PRIORITY_RANK[j.priority] === rank);
  const prot = protJobs.map((j) => ({ rate: rate(j), s: j.submit_ms, d: j.duration_ms }));
  const exempt = protJobs.length - Math.ceil((o.percentile / 100) * protJobs.length);
  const works = prot.map((p) => p.rate * p.d).sort((a, b) => b - a);
  const exemptWork = works.slice(0, Math.max(0, exempt)).reduce((a, b) => a + b, 0);
  const rest = trace.filter((j) => PRIORITY_RANK[j.priority] !== rank).map((j) => ({ s: j.submit_ms, d: j.duration_ms, w: rate(j) * j.duration_ms, pos: 0 }));
  [...rest].sort((a, b) => b.w - a.w).forEach((x, i) => (x.pos = i));
  rest.sort((a, b) => a.s - b.s);
  const all = trace.map((j) => ({ s: j.submit_ms, w: rate(j) * j.duration_ms, pos: 0 }));
  [...all].sort((a, b) => b.w - a.w).forEach((x, i) => (x.pos = i));
  all.sort((a, b) => a.s - b.s);
  return {
    capacity,
    prot,
    exemptWork,
    others: rest,
    all,
    otherEnds: Float64Array.from(rest.map((x) => x.s + x.d)).sort(),
    protStarts: Float64Array.from(prot.map((x) => x.s)).sort(),
    protEnds: Float64Array.from(prot.map((x) => x.s + x.d)).sort(),
    jobs: trace.length,
    t0: Math.min(...trace.map((j) => j.submit_ms)),
  };
}

/** Σ JCT lower bound (ms·jobs) for cap `capMs` on one resource; Infinity when no schedule meets the cap. */
function boundSum(p: Prepared, capMs: number): number {
  const K = p.capacity;
  // The protected class's forced work C(t): piecewise linear, slope changes at s+D and s+D+d.
  const ramps: { t: number; dslope: number }[] = [];
  if (Number.isFinite(capMs)) {
    for (const j of p.prot) {
      ramps.push({ t: j.s + capMs, dslope: j.rate }, { t: j.s + capMs + j.d, dslope: -j.rate });
    }
    ramps.sort((a, b) => a.t - b.t);
  }
  const tree = new LargestFirst(p.others.length);
  const treeAll = new LargestFirst(p.all.length);
  let ri = 0;
  let slope = 0;
  let forced = 0;
  let forcedAt = p.t0;
  let ai = 0; // next of `all` not yet arrived
  // min over grid τ of (work arrived before τ − K·τ): what is processed by τ arrived before it.
  let minSlack = -K * p.t0;
  let arrivedBefore = 0;
  let bi = 0;
  let oi = 0; // next of `others` not yet arrived (by b)
  let arrivedOthersA = 0; // work of others arrived by a
  let oa = 0; // next of `others` not yet counted in arrivedOthersA
  let endsBefore = 0; // others with s + d < b
  let arrivedAllA = 0; // work of all jobs arrived by a
  let aa = 0;
  let protStarted = 0; // protected jobs with s <= a
  let protEnded = 0; // protected jobs with s + d < b
  let sum = 0;
  const lastSubmit = p.all[p.all.length - 1]!.s;
  let a = p.t0 - STEP_MS;
  for (let steps = 0; steps < MAX_STEPS; steps++) {
    a += STEP_MS;
    const b = a + STEP_MS;
    // Capacity bound at b.
    while (ai < p.all.length && p.all[ai]!.s <= b) {
      const x = p.all[ai++]!;
      treeAll.add(x.pos, x.w);
    }
    while (aa < p.all.length && p.all[aa]!.s <= a) arrivedAllA += p.all[aa++]!.w;
    while (bi < p.all.length && p.all[bi]!.s < b) arrivedBefore += p.all[bi++]!.w;
    minSlack = Math.min(minSlack, arrivedBefore - K * b);
    const processable = minSlack + K * b;
    // Forced work of the protected class at b.
    while (ri < ramps.length && ramps[ri]!.t <= b) {
      forced += slope * (ramps[ri]!.t - forcedAt);
      forcedAt = ramps[ri]!.t;
      slope += ramps[ri++]!.dslope;
    }
    forced += slope * (b - forcedAt);
    forcedAt = b;
    const forcedNet = Math.max(0, forced - p.exemptWork);
    if (forcedNet > processable + 1e-6 * K) return Infinity;
    // Other jobs: arrived by b enter the tree; arrived by a count toward U.
    while (oi < p.others.length && p.others[oi]!.s <= b) {
      const x = p.others[oi++]!;
      tree.add(x.pos, x.w);
    }
    while (oa < p.others.length && p.others[oa]!.s <= a) arrivedOthersA += p.others[oa++]!.w;
    let arrivedOthersB = arrivedOthersA;
    for (let i = oa; i < oi; i++) arrivedOthersB += p.others[i]!.w;
    const doneMax = Math.min(arrivedOthersB, processable - forcedNet);
    const unfinished = Math.max(0, arrivedOthersA - doneMax);
    const k = tree.fewestHolding(unfinished * (1 - 1e-12));
    while (endsBefore < p.otherEnds.length && p.otherEnds[endsBefore]! < b) endsBefore++;
    const active = Math.max(0, oa - endsBefore);
    while (protStarted < p.protStarts.length && p.protStarts[protStarted]! <= a) protStarted++;
    while (protEnded < p.protEnds.length && p.protEnds[protEnded]! < b) protEnded++;
    const activeProt = Math.max(0, protStarted - protEnded);
    // All unfinished work, whoever holds it, is held by at least kAll jobs.
    const kAll = treeAll.fewestHolding(Math.max(0, arrivedAllA - processable) * (1 - 1e-12));
    sum += Math.max(kAll, Math.max(k, active) + activeProt) * STEP_MS;
    if (b > lastSubmit && arrivedAllA - processable <= 0 && endsBefore >= p.otherEnds.length && protEnded >= p.protEnds.length) return sum;
  }
  return sum;
}

function prepared(trace: readonly TraceJob[], spec: ClusterSpec, o: BoundOptions): Prepared[] {
  return RESOURCE_NAMES.map((r) => prepare(trace, spec, r, o)).filter((p): p is Prepared => p !== null);
}

/**
 * Least mean JCT (s) any policy can have while the class's p`percentile` queueing delay is at
 * most `capS` seconds (Infinity = no cap); Infinity when no policy can meet the cap.
 */
export function meanJctLowerBound(trace: readonly TraceJob[], spec: ClusterSpec, capS: number, o: Partial<BoundOptions> = {}): number {
  const ps = prepared(trace, spec, { ...DEFAULTS, ...o });
  if (ps.length === 0 || trace.length === 0) return NaN;
  return Math.max(...ps.map((p) => boundSum(p, capS * 1000))) / trace.length / 1000;
}

/**
 * Least p`percentile` queueing delay (s) of the class that any policy with a mean JCT of at most
 * `meanJctS` can have (to within 1 s); 0 when the bound allows any cap.
 */
export function criticalDelayLowerBound(trace: readonly TraceJob[], spec: ClusterSpec, meanJctS: number, o: Partial<BoundOptions> = {}): number {
  const ps = prepared(trace, spec, { ...DEFAULTS, ...o });
  if (ps.length === 0 || trace.length === 0) return NaN;
  const lb = (capS: number) => Math.max(...ps.map((p) => boundSum(p, capS * 1000))) / trace.length / 1000;
  if (lb(0) <= meanJctS) return 0;
  let lo = 0;
  let hi = 1;
  while (lb(hi) > meanJctS) {
    lo = hi;
    hi *= 2;
    if (hi > 1e9) return Infinity;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (lb(mid) > meanJctS) lo = mid;
    else hi = mid;
  }
  return hi;
}
