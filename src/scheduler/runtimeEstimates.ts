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
  readonly #cache = new Map<string, { at: number; p90: number | null }>();

  constructor(store: Store) {
    this.#store = store;
  }

  /** Milliseconds, or null when nothing is known. */
  async estimateMs(type: string, expectedDurationS: number | null, now: number): Promise<number | null> {
    if (expectedDurationS !== null) return expectedDurationS * 1000;
    const hit = this.#cache.get(type);
    if (hit && now - hit.at < TTL_MS) return hit.p90;
    const d = (await this.#store.recentDurations(type, HISTORY)).sort((a, b) => a - b);
    const p90 = d.length === 0 ? null : d[Math.min(d.length - 1, Math.ceil(d.length * 0.9) - 1)]!;
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(type, { at: now, p90 });
    return p90;
  }
}
