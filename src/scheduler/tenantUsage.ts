import type { Store, ActiveRow } from '../store/store.ts';
import type { DecayedUsage, ResourceVector } from './policy/types.ts';

const ZERO = (): ResourceVector => ({ cpu_cores: 0, memory_gb: 0, gpu_count: 0 });

/**
 * Decayed usage per tenant (resource-milliseconds, halved every `half_life_ms`), which weighted
 * fair share is computed from. Kept in memory by the leader and advanced every cycle by what each
 * tenant holds; a new leader rebuilds it from the store's attempts (runs that ended within the
 * last ten half-lives, and the ones still running), so nothing is lost across a failover.
 */
export class TenantUsage {
  readonly #halfLife: number;
  readonly #usage = new Map<string, DecayedUsage>();
  #at = 0;

  constructor(half_life_ms: number) {
    this.#halfLife = half_life_ms;
  }

  #decay(u: DecayedUsage, to: number): void {
    if (to <= u.at) return;
    const f = Math.pow(0.5, (to - u.at) / this.#halfLife);
    u.value.cpu_cores *= f;
    u.value.memory_gb *= f;
    u.value.gpu_count *= f;
    u.at = to;
  }

  #add(tenant: string, r: ResourceVector, ms: number, at: number): void {
    let u = this.#usage.get(tenant);
    if (!u) this.#usage.set(tenant, (u = { value: ZERO(), at }));
    this.#decay(u, at);
    u.value.cpu_cores += r.cpu_cores * ms;
    u.value.memory_gb += r.memory_gb * ms;
    u.value.gpu_count += r.gpu_count * ms;
  }

  /** Rebuilds from the store (on becoming leader). Each run's use is counted at its midpoint, decayed from there. */
  async rebuild(store: Store, now: number): Promise<void> {
    this.#usage.clear();
    const since = now - 10 * this.#halfLife;
    const runs = (await store.usageHistory(since)).sort((a, b) => (a.ended_at ?? now) - (b.ended_at ?? now));
    for (const r of runs) {
      const end = r.ended_at ?? now;
      const start = Math.max(r.started_at, since);
      if (end <= start) continue;
      this.#add(r.tenant, r, end - start, Math.round((start + end) / 2));
    }
    for (const u of this.#usage.values()) this.#decay(u, now);
    this.#at = now;
  }

  /** Adds what the active jobs held since the last advance, and decays everything to `now`. */
  advance(active: readonly ActiveRow[], now: number): void {
    const dt = this.#at === 0 ? 0 : Math.max(0, now - this.#at);
    this.#at = now;
    for (const u of this.#usage.values()) this.#decay(u, now);
    if (dt === 0) return;
    for (const j of active) {
      if (j.state === 'SCHEDULED') continue;
      this.#add(j.tenant, j, dt, now);
    }
  }

  snapshot(): ReadonlyMap<string, DecayedUsage> {
    const out = new Map<string, DecayedUsage>();
    for (const [t, u] of this.#usage) out.set(t, { value: { ...u.value }, at: u.at });
    return out;
  }
}
