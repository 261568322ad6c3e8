/**
 * Best-fit lookup over process workers without scanning them all: workers grouped by (free GPUs,
 * GPUs installed), each group bucketed by whole free cores. The best fit for a job is the first
 * usable worker in the lowest group that has enough free GPUs (for CPU-only jobs: machines
 * without GPUs first), in the lowest bucket with enough cores — the order of the best-fit score
 * in workers.ts, found in O(groups × buckets) instead of O(workers).
 */
import type { ResourceVector } from './types.ts';

interface Entry {
  free: { cpu_cores: number; gpu_count: number; slots: number };
  w: { capacity: { gpu_count: number } };
}

interface Group<T> {
  free_gpu: number;
  cap_gpu: number;
  buckets: Set<T>[];
}

const MAX_BUCKET = 4095;
const bucketOf = (cpu: number) => Math.max(0, Math.min(MAX_BUCKET, Math.floor(cpu + 1e-9)));

export class FitIndex<T extends Entry> {
  readonly #groups = new Map<number, Group<T>>();
  #sorted: Group<T>[] = [];
  readonly #where = new Map<T, { g: Group<T>; b: number }>();

  #group(freeGpu: number, capGpu: number): Group<T> {
    const key = freeGpu * 65536 + capGpu;
    let g = this.#groups.get(key);
    if (!g) {
      g = { free_gpu: freeGpu, cap_gpu: capGpu, buckets: [] };
      this.#groups.set(key, g);
      this.#sorted = [...this.#groups.values()].sort((a, b) => a.free_gpu - b.free_gpu || a.cap_gpu - b.cap_gpu);
    }
    return g;
  }

  /** Empties the index, keeping its groups and buckets for reuse. */
  clear(): void {
    for (const g of this.#sorted) for (const b of g.buckets) b?.clear();
    this.#where.clear();
  }

  /** (Re-)files a worker after its free room changed; a worker without a free slot leaves the index. */
  update(cw: T): void {
    const at = this.#where.get(cw);
    if (at) at.g.buckets[at.b]!.delete(cw);
    if (cw.free.slots < 1) {
      this.#where.delete(cw);
      return;
    }
    const g = this.#group(cw.free.gpu_count, cw.w.capacity.gpu_count);
    const b = bucketOf(cw.free.cpu_cores);
    (g.buckets[b] ??= new Set()).add(cw);
    this.#where.set(cw, { g, b });
  }

  /** The best-fitting worker for which `usable` holds, or null. */
  best(res: ResourceVector, usable: (cw: T) => boolean): T | null {
    const cpuJob = res.gpu_count === 0;
    let best: T | null = null;
    let bestLevel = Infinity;
    let bestCpu = Infinity;
    for (const g of this.#sorted) {
      if (g.free_gpu < res.gpu_count) continue;
      if (g.free_gpu > bestLevel) break;
      for (let b = bucketOf(res.cpu_cores); b < g.buckets.length; b++) {
        if (b > bestCpu) break;
        const set = g.buckets[b];
        if (!set || set.size === 0) continue;
        let found: T | null = null;
        for (const cw of set) {
          if (usable(cw) && (found === null || cw.free.cpu_cores < found.free.cpu_cores)) found = cw;
        }
        if (found && (best === null || found.free.cpu_cores < best.free.cpu_cores)) {
          best = found;
          bestLevel = g.free_gpu;
          bestCpu = b;
        }
        if (found) break;
      }
      // CPU-only jobs: the first group with a fit wins (fewest free GPUs, then machines without GPUs).
      if (best && cpuJob) return best;
    }
    return best;
  }
}
