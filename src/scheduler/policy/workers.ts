/**
 * Workers within one cycle: free room that shrinks as jobs are admitted, best-fit placement (GPU
 * jobs onto the worker with the fewest free GPUs that fit, lowest GPU indices first, so whole
 * machines stay free for large jobs; CPU jobs onto the fullest machine, GPU machines last; handler
 * workers: the one with the most free slots), gangs all-or-nothing, and the earliest time a job
 * could start from running jobs' expected ends (for reservations and estimates).
 */
import { FitIndex } from './fitIndex.ts';
import type { TenantState } from './quota.ts';
import type { Placement, PendingJob, PolicyWorker, ResourceVector, RunningJob } from './types.ts';

const EPS = 1e-9;
const ZERO: ResourceVector = Object.freeze({ cpu_cores: 0, memory_gb: 0, gpu_count: 0 });

export interface CycleWorker {
  w: PolicyWorker;
  free: ResourceVector & { slots: number };
  free_gpus: number[];
  /** Room promised to jobs whose victims are stopping (preemption), and the room those victims hold. */
  claim: ResourceVector & { slots: number };
  going: ResourceVector & { slots: number };
  /** A reservation starts here then: only jobs that end before it may be placed. */
  reserved_at: number;
  /** Running jobs on it (room that comes free at their expected end): the first `nRunning` entries (the array is reused from cycle to cycle). */
  running: RunningJob[];
  nRunning: number;
  /**
   * Per running job (same index): its tenant's quota state and its priority rank, what a victim search
   * tests for each job on the worker — a pointer and a number instead of a map lookup by tenant id.
   */
  runningTenant: TenantState[];
  runningRank: number[];
  /** This cycle's admissions on it: room that comes free at `end`. */
  admitted: { end: number | null; res: ResourceVector }[];
}

export interface PlaceOptions {
  now: number;
  /** The job's estimated run time; null = unknown (cannot use a reserved worker). */
  duration: number | null;
}

function fitsRoom(cw: CycleWorker, room: ResourceVector & { slots: number }, res: ResourceVector): boolean {
  if (room.slots < 1) return false;
  if (cw.w.kind === 'handler') return true;
  return room.cpu_cores + EPS >= res.cpu_cores && room.memory_gb + EPS >= res.memory_gb && room.gpu_count >= res.gpu_count;
}

function setRoom(room: ResourceVector & { slots: number }, from: (ResourceVector & { slots: number }) | null): void {
  room.slots = from?.slots ?? 0;
  room.cpu_cores = from?.cpu_cores ?? 0;
  room.memory_gb = from?.memory_gb ?? 0;
  room.gpu_count = from?.gpu_count ?? 0;
}

function addRoom(room: ResourceVector & { slots: number }, res: ResourceVector, sign = 1): void {
  room.slots += sign;
  room.cpu_cores += sign * res.cpu_cores;
  room.memory_gb += sign * res.memory_gb;
  room.gpu_count += sign * res.gpu_count;
}

/** Free room minus what is promised to preempting jobs beyond what their victims will free. */
function roomNow(cw: CycleWorker): ResourceVector & { slots: number } {
  const r = { ...cw.free };
  for (const k of ['slots', 'cpu_cores', 'memory_gb', 'gpu_count'] as const) r[k] -= Math.max(0, cw.claim[k] - cw.going[k]);
  return r;
}

/**
 * The per-cycle objects (one CycleWorker per worker, its lists, the maps and the fit index) are
 * reused by the next cycle instead of being garbage: a cycle is synchronous and none of them
 * leaves it, so with 1,000 workers and ~14,000 running jobs this saves megabytes of allocation
 * (and the GC pauses that come with it) per cycle. A second CycleWorkers alive at the same time
 * (nested cycles) gets fresh objects.
 */
class Scratch {
  readonly cws: CycleWorker[] = [];
  readonly byId = new Map<string, CycleWorker>();
  readonly byQueue = new Map<string, CycleWorker[]>();
  readonly index = new FitIndex<CycleWorker>();
  inUse = false;
}
let shared = new Scratch();

export class CycleWorkers {
  readonly all: CycleWorker[] = [];
  readonly byId: Map<string, CycleWorker>;
  readonly #byQueue: Map<string, CycleWorker[]>;
  /** Best-fit index of the process workers (queue key ''). */
  readonly #index: FitIndex<CycleWorker>;
  readonly #scratch: Scratch;
  /** Scratch for earliestStart (reused across workers). */
  readonly #endsAt: number[] = [];
  readonly #endsRes: ResourceVector[] = [];
  /** Workers with at least one free slot and some free CPU. When 0, nothing more can start. */
  open = 0;

  /** The cycle's workers, with no running job yet: the caller files each running job with `addRunning`. */
  constructor(workers: readonly PolicyWorker[]) {
    const sc = shared.inUse ? new Scratch() : shared;
    sc.inUse = true;
    this.#scratch = sc;
    sc.byId.clear();
    for (const l of sc.byQueue.values()) l.length = 0;
    sc.index.clear();
    this.byId = sc.byId;
    this.#byQueue = sc.byQueue;
    this.#index = sc.index;
    let n = 0;
    for (let wi = 0; wi < workers.length; wi++) {
      const w = workers[wi]!;
      if (w.draining) continue;
      let cw = sc.cws[n];
      if (!cw) {
        const zero = () => ({ cpu_cores: 0, memory_gb: 0, gpu_count: 0, slots: 0 });
        sc.cws.push((cw = { w, free: zero(), free_gpus: [], claim: zero(), going: zero(), reserved_at: Infinity, running: [], nRunning: 0, runningTenant: [], runningRank: [], admitted: [] }));
      }
      n++;
      cw.w = w;
      setRoom(cw.free, w.free);
      const gpus = w.free_gpus;
      for (let i = 0; i < gpus.length; i++) cw.free_gpus[i] = gpus[i]!;
      cw.free_gpus.length = gpus.length;
      setRoom(cw.claim, null);
      setRoom(cw.going, null);
      cw.reserved_at = Infinity;
      cw.nRunning = 0;
      cw.admitted.length = 0;
      this.all.push(cw);
      this.byId.set(w.id, cw);
      for (const k of w.queue_keys) {
        let list = this.#byQueue.get(k);
        if (!list) this.#byQueue.set(k, (list = []));
        list.push(cw);
      }
      if (this.#isOpen(cw)) this.open++;
      if (w.kind === 'process' && w.queue_keys.includes('')) this.#index.update(cw);
    }
    for (let i = n; i < sc.cws.length; i++) {
      // Workers gone since an earlier cycle: drop what they point to.
      const l = sc.cws[i]!;
      l.running.length = 0;
      l.runningTenant.length = 0;
      l.nRunning = 0;
      l.admitted.length = 0;
    }
    for (const [k, l] of this.#byQueue) if (l.length === 0) this.#byQueue.delete(k);
  }

  /**
   * Files a running job on one of the workers it runs on (`cw`, found by its placement's `worker_id`
   * in `byId`); `tenant` and `rank` are kept beside it for victim searches. The cycle makes one pass
   * over the running jobs for this and for its quota ledger, not one each.
   */
  addRunning(cw: CycleWorker, r: RunningJob, tenant: TenantState, rank: number): void {
    const i = cw.nRunning++;
    cw.running[i] = r;
    cw.runningTenant[i] = tenant;
    cw.runningRank[i] = rank;
    if (r.terminating) addRoom(cw.going, r.resources);
  }

  /** The cycle is over: the next cycle may reuse this one's objects. */
  release(): void {
    this.#scratch.inUse = false;
  }

  #isOpen(cw: CycleWorker): boolean {
    return cw.free.slots >= 1 && (cw.w.kind === 'handler' || cw.free.cpu_cores > EPS || cw.free.memory_gb > EPS);
  }

  capable(queueKey: string): readonly CycleWorker[] {
    return this.#byQueue.get(queueKey) ?? [];
  }

  /** Largest capacity among the workers serving the queue (for "too big" explanations). */
  largest(queueKey: string): ResourceVector & { workers: number } {
    const out = { cpu_cores: 0, memory_gb: 0, gpu_count: 0, workers: 0 };
    for (const cw of this.capable(queueKey)) {
      if (cw.w.kind === 'handler') {
        out.cpu_cores = out.memory_gb = out.gpu_count = Infinity;
      } else {
        out.cpu_cores = Math.max(out.cpu_cores, cw.w.capacity.cpu_cores);
        out.memory_gb = Math.max(out.memory_gb, cw.w.capacity.memory_gb);
        out.gpu_count = Math.max(out.gpu_count, cw.w.capacity.gpu_count);
      }
      out.workers++;
    }
    return out;
  }

  /** Workers that could ever run the job (by total capacity). */
  everFits(job: PendingJob): number {
    let n = 0;
    const capable = this.capable(job.queue_key);
    for (let i = 0; i < capable.length; i++) if (fitsRoom(capable[i]!, capable[i]!.w.capacity, job.resources)) n++;
    return n;
  }

  #score(cw: CycleWorker, res: ResourceVector): number {
    if (cw.w.kind === 'handler') return -cw.free.slots;
    return (cw.free.gpu_count - res.gpu_count) * 1e6 + (res.gpu_count === 0 ? cw.w.capacity.gpu_count * 1e3 : 0) + (cw.free.cpu_cores - res.cpu_cores);
  }

  #usable(cw: CycleWorker, job: PendingJob, o: PlaceOptions): boolean {
    if (cw.reserved_at !== Infinity && (o.duration === null || o.now + o.duration > cw.reserved_at)) return false;
    return fitsRoom(cw, cw.claim.slots > 0 ? roomNow(cw) : cw.free, job.resources);
  }

  /**
   * Best-fit placement of every node of the job, or null (nothing changes). `blockedByReservation`
   * tells whether some worker had room but was reserved; for a gang, `nodes_with_room` how many had room.
   */
  place(job: PendingJob, o: PlaceOptions): { placements: Placement[]; backfilled: boolean } | { placements: null; blockedByReservation: boolean; nodes_with_room?: number } {
    const nodes = Math.max(1, job.nodes);
    let blockedByReservation = false;
    if (nodes === 1 && job.queue_key === '') {
      const best = this.#index.best(job.resources, (cw) => {
        if (this.#usable(cw, job, o)) return true;
        if (!blockedByReservation && cw.reserved_at !== Infinity && fitsRoom(cw, roomNow(cw), job.resources)) blockedByReservation = true;
        return false;
      });
      if (!best) return { placements: null, blockedByReservation };
      return { placements: [this.#take(best, job, o)], backfilled: best.reserved_at !== Infinity };
    }
    if (nodes === 1) {
      let best: CycleWorker | null = null;
      let bestScore = Infinity;
      for (const cw of this.capable(job.queue_key)) {
        if (!this.#usable(cw, job, o)) {
          if (!blockedByReservation && cw.reserved_at !== Infinity && fitsRoom(cw, roomNow(cw), job.resources)) blockedByReservation = true;
          continue;
        }
        const s = this.#score(cw, job.resources);
        if (s < bestScore) {
          best = cw;
          bestScore = s;
          if (s === 0) break;
        }
      }
      if (!best) return { placements: null, blockedByReservation };
      return { placements: [this.#take(best, job, o)], backfilled: best.reserved_at !== Infinity };
    }
    const fitting: { cw: CycleWorker; s: number }[] = [];
    for (const cw of this.capable(job.queue_key)) {
      if (this.#usable(cw, job, o)) fitting.push({ cw, s: this.#score(cw, job.resources) });
      else if (cw.reserved_at !== Infinity && fitsRoom(cw, roomNow(cw), job.resources)) blockedByReservation = true;
    }
    if (fitting.length < nodes) return { placements: null, blockedByReservation, nodes_with_room: fitting.length };
    fitting.sort((a, b) => a.s - b.s);
    const chosen = fitting.slice(0, nodes);
    return { placements: chosen.map((f) => this.#take(f.cw, job, o)), backfilled: chosen.some((f) => f.cw.reserved_at !== Infinity) };
  }

  #take(cw: CycleWorker, job: PendingJob, o: PlaceOptions): Placement {
    const wasOpen = this.#isOpen(cw);
    cw.free.slots -= 1;
    let gpus: number[] = [];
    if (cw.w.kind === 'process') {
      cw.free.cpu_cores -= job.resources.cpu_cores;
      cw.free.memory_gb -= job.resources.memory_gb;
      cw.free.gpu_count -= job.resources.gpu_count;
      gpus = cw.free_gpus.splice(0, job.resources.gpu_count);
    }
    cw.admitted.push({ end: o.duration === null ? null : o.now + o.duration, res: job.resources });
    if (wasOpen && !this.#isOpen(cw)) this.open--;
    if (cw.w.kind === 'process' && cw.w.queue_keys.includes('')) this.#index.update(cw);
    return { worker_id: cw.w.id, gpu_indices: gpus };
  }

  /** `res` is promised to a preempting job on `cw`; `victims` are stopping to make the room. */
  claimFor(cw: CycleWorker, res: ResourceVector, victims: readonly ResourceVector[]): void {
    addRoom(cw.claim, res);
    for (const v of victims) addRoom(cw.going, v);
  }

  /**
   * Earliest time each capable worker has room for the job, from expected ends (a job with an
   * unknown end never frees room). Returns the start of the earliest set of `nodes` workers,
   * or null when unknown.
   */
  earliestStart(job: PendingJob, now: number): { start_at: number; workers: CycleWorker[] } | null {
    const nodes = Math.max(1, job.nodes);
    const times: { cw: CycleWorker; t: number }[] = [];
    const ends = this.#endsAt;
    const frees = this.#endsRes;
    for (const cw of this.capable(job.queue_key)) {
      if (!fitsRoom(cw, cw.w.capacity, job.resources)) continue;
      if (fitsRoom(cw, roomNow(cw), job.resources)) {
        times.push({ cw, t: now });
        continue;
      }
      // Room that comes free, in order of expected end (insertion sort into reused arrays: a worker holds few jobs).
      let n = 0;
      const add = (end: number, res: ResourceVector) => {
        let i = n++;
        while (i > 0 && ends[i - 1]! > end) {
          ends[i] = ends[i - 1]!;
          frees[i] = frees[i - 1]!;
          i--;
        }
        ends[i] = end;
        frees[i] = res;
      };
      for (let i = 0; i < cw.admitted.length; i++) {
        const e = cw.admitted[i]!;
        if (e.end !== null) add(e.end, e.res);
      }
      for (let i = 0; i < cw.nRunning; i++) {
        const r = cw.running[i]!;
        if (r.expected_end !== null || r.terminating) add(r.expected_end ?? now, r.resources);
      }
      let slots = cw.free.slots;
      let cpu = cw.free.cpu_cores;
      let mem = cw.free.memory_gb;
      let gpu = cw.free.gpu_count;
      for (let i = 0; i < n; i++) {
        const res = frees[i]!;
        slots += 1;
        cpu += res.cpu_cores;
        mem += res.memory_gb;
        gpu += res.gpu_count;
        if (slots >= 1 && (cw.w.kind === 'handler' || (cpu + EPS >= job.resources.cpu_cores && mem + EPS >= job.resources.memory_gb && gpu >= job.resources.gpu_count))) {
          times.push({ cw, t: Math.max(now, ends[i]!) });
          break;
        }
      }
      frees.fill(ZERO, 0, n);
    }
    if (times.length < nodes) return null;
    times.sort((a, b) => a.t - b.t);
    const chosen = times.slice(0, nodes);
    return { start_at: chosen[nodes - 1]!.t, workers: chosen.map((c) => c.cw) };
  }

  /** Could the job ever fit on `cw` (by its total capacity)? */
  canEverFit(cw: CycleWorker, res: ResourceVector): boolean {
    return fitsRoom(cw, cw.w.capacity, res);
  }

  /**
   * `list` with the workers first where `res` fits once the jobs already stopping there have
   * stopped (free room plus room going, minus room promised): where a gang needs no new victim.
   */
  byRoomOnceGone(list: readonly CycleWorker[], res: ResourceVector): CycleWorker[] {
    const first: CycleWorker[] = [];
    const rest: CycleWorker[] = [];
    const room = { slots: 0, cpu_cores: 0, memory_gb: 0, gpu_count: 0 };
    for (let i = 0; i < list.length; i++) {
      const cw = list[i]!;
      setRoom(room, cw.free);
      for (const k of ['slots', 'cpu_cores', 'memory_gb', 'gpu_count'] as const) room[k] += cw.going[k] - cw.claim[k];
      (fitsRoom(cw, room, res) ? first : rest).push(cw);
    }
    return first.concat(rest);
  }

  /**
   * Would the job fit on `cw` if the first `n` entries of `freed` (all but `freed[skip]`; -1: all) came
   * free (free room minus promised room, ignoring reservations)? Called for every worker a victim
   * search looks at: sums in locals, no room object.
   */
  fitsWith(cw: CycleWorker, freed: readonly ResourceVector[], n: number, skip: number, res: ResourceVector): boolean {
    let slots = cw.free.slots;
    let cpu = cw.free.cpu_cores;
    let mem = cw.free.memory_gb;
    let gpu = cw.free.gpu_count;
    for (let i = 0; i < n; i++) {
      if (i === skip) continue;
      const f = freed[i]!;
      slots += 1;
      cpu += f.cpu_cores;
      mem += f.memory_gb;
      gpu += f.gpu_count;
    }
    slots -= cw.claim.slots;
    if (slots < 1) return false;
    if (cw.w.kind === 'handler') return true;
    cpu -= cw.claim.cpu_cores;
    mem -= cw.claim.memory_gb;
    gpu -= cw.claim.gpu_count;
    return cpu + EPS >= res.cpu_cores && mem + EPS >= res.memory_gb && gpu >= res.gpu_count;
  }
}
