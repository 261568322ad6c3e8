import type { Store } from '../store/store.ts';

/** How long a learned estimate is trusted before it is read again (ms). */
const TTL_MS = 30_000;
/** Completed runs a learned estimate looks at. */
const HISTORY = 50;

/**
 * Runtime estimates for the policy: the user's `expected_duration`, else the p90 of recent
 * completed runs of the same type (Slurm-style: a pessimistic estimate keeps backfill from delaying
 * the reserved job), else null. Learned values are cached per type for 30 s.
 */
export class RuntimeEstimates {
  readonly #store: Store;
  // The read in flight is cached too: a snapshot asks for all its pending jobs at once, and without
  // that its first cycle read the same type's history once per job (2,000 reads in W1's first cycle).
  readonly #cache = new Map<string, { at: number; p90: Promise<number | null> }>();

  constructor(store: Store) {
    this.#store = store;
  }

  /** Milliseconds, or null when nothing is known. */
  async estimateMs(type: string, expectedDurationS: number | null, now: number): Promise<number | null> {
    if (expectedDurationS !== null) return expectedDurationS * 1000;
    const hit = this.#cache.get(type);
    if (hit && now - hit.at < TTL_MS) return hit.p90;
    const p90 = this.#store.recentDurations(type, HISTORY).then((runs) => {
      const d = runs.sort((a, b) => a - b);
      return d.length === 0 ? null : d[Math.min(d.length - 1, Math.ceil(d.length * 0.9) - 1)]!;
    });
    p90.catch(() => this.#cache.delete(type));
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(type, { at: now, p90 });
    return p90;
  }
}
