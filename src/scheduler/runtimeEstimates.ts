import type { Store } from '../store/store.ts';

/** How long a type's history is trusted before it is read again (ms)… */
const TTL_MS = 10_000;
/** …and how long "no history yet" is (a type's first runs should count soon, not 10 s later). */
const EMPTY_TTL_MS = 1000;
/** Completed runs of a type read per refresh (newest first); the narrower histories are picked from them. */
const WINDOW = 500;
/** Runs a history is learned from at most (the newest). */
const HISTORY = 50;
/** A narrower history (same tenant, same template) is used once it has this many runs. */
const MIN_RUNS = 3;

/** What a runtime estimate is keyed by: the user's own figure, else the job's template, type and tenant. */
export interface RuntimeKey {
  type: string;
  template: string | null;
  tenant: string;
  /** Seconds, given by the user; null = learn it. */
  expected_duration: number | null;
}

/**
 * Gantry's one runtime estimator, used by the scheduling policy (reservations, backfill, expected
 * ends), explanations, and the queue insight on submit and GET /jobs/{id}: the user's
 * `expected_duration`, else the p90 (Slurm-style: pessimistic, so backfill does not delay the
 * reserved job) of the newest completed runs of the same template and tenant, then the same
 * template (or type) and tenant, then the template, then the type across tenants — the first of
 * these with at least 3 runs; else null. One instance per store (`runtimeEstimatesFor`), history
 * cached per type for 10 s (1 s while a type has none).
 */
export class RuntimeEstimates {
  readonly #store: Store;
  readonly #cache = new Map<string, { at: number; runs: Promise<{ tenant: string; template: string | null; ms: number }[]>; p90: Map<string, number | null>; empty: boolean }>();

  constructor(store: Store) {
    this.#store = store;
  }

  /** Milliseconds, or null when nothing is known. */
  async estimateMs(k: RuntimeKey, now: number): Promise<number | null> {
    if (k.expected_duration !== null) return k.expected_duration * 1000;
    let hit = this.#cache.get(k.type);
    if (!hit || now - hit.at >= (hit.empty ? EMPTY_TTL_MS : TTL_MS) || now < hit.at - TTL_MS) {
      if (this.#cache.size > 10_000) this.#cache.clear();
      const runs = this.#store.recentRuns(k.type, WINDOW);
      const entry = { at: now, runs, p90: new Map<string, number | null>(), empty: false };
      hit = entry;
      this.#cache.set(k.type, entry);
      runs.then((r) => (entry.empty = r.length === 0), () => this.#cache.delete(k.type));
    }
    const key = `${k.tenant}\u0000${k.template ?? ''}`;
    const known = hit.p90.get(key);
    if (known !== undefined) return known;
    const runs = await hit.runs;
    const sets = [
      k.template ? runs.filter((r) => r.template === k.template && r.tenant === k.tenant) : [],
      runs.filter((r) => r.tenant === k.tenant),
      k.template ? runs.filter((r) => r.template === k.template) : [],
      runs,
    ];
    const chosen = sets.find((s) => s.length >= MIN_RUNS) ?? sets.find((s) => s.length > 0) ?? [];
    const value = p90(chosen.slice(0, HISTORY).map((r) => r.ms));
    hit.p90.set(key, value);
    return value;
  }
}

function p90(d: number[]): number | null {
  if (d.length === 0) return null;
  d.sort((a, b) => a - b);
  return d[Math.min(d.length - 1, Math.ceil(d.length * 0.9) - 1)]!;
}

const shared = new WeakMap<Store, RuntimeEstimates>();

/** The store's one estimator (the scheduler, explanations and submit answers share its cache). */
export function runtimeEstimatesFor(store: Store): RuntimeEstimates {
  let e = shared.get(store);
  if (!e) shared.set(store, (e = new RuntimeEstimates(store)));
  return e;
}
