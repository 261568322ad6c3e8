/**
 * Decayed usage and dominant shares for fair share. A tenant's past usage (resource-milliseconds)
 * decays with a half-life, so what it ran an hour ago counts half as much as what it runs now.
 */
import { RESOURCE_NAMES, type DecayedUsage, type ResourceVector } from './types.ts';

export const zeroVector = (): ResourceVector => ({ cpu_cores: 0, memory_gb: 0, gpu_count: 0 });

/** `u` decayed to `now`. */
export function decayUsage(u: DecayedUsage | undefined, now: number, halfLifeMs: number): DecayedUsage {
  if (!u) return { value: zeroVector(), at: now };
  const f = Math.pow(2, -Math.max(0, now - u.at) / halfLifeMs);
  return { value: { cpu_cores: u.value.cpu_cores * f, memory_gb: u.value.memory_gb * f, gpu_count: u.value.gpu_count * f }, at: now };
}

/**
 * Adds holding `alloc` from `u.at` to `now` (exact integral under decay) and decays the rest.
 * Call it whenever a tenant's allocation changes, with the allocation it had until then.
 */
export function accrueUsage(u: DecayedUsage | undefined, alloc: ResourceVector, now: number, halfLifeMs: number): DecayedUsage {
  const from = u?.at ?? now;
  const decayed = decayUsage(u, now, halfLifeMs);
  const dt = Math.max(0, now - from);
  if (dt === 0) return decayed;
  const tau = halfLifeMs / Math.LN2;
  const gain = tau * (1 - Math.pow(2, -dt / halfLifeMs));
  for (const r of RESOURCE_NAMES) decayed.value[r] += alloc[r] * gain;
  return decayed;
}

/**
 * A tenant's dominant share: the largest over resources of (decayed usage normalised to "fraction
 * of the cluster held for ever" + fraction held now), divided by its weight.
 */
export function dominantShare(hist: ResourceVector, alloc: ResourceVector, capacity: ResourceVector, halfLifeMs: number, weight: number): number {
  const tau = halfLifeMs / Math.LN2;
  let s = 0;
  for (let i = 0; i < RESOURCE_NAMES.length; i++) {
    const r = RESOURCE_NAMES[i]!;
    const cap = capacity[r];
    if (cap <= 0) continue;
    const v = hist[r] / (cap * tau) + alloc[r] / cap;
    if (v > s) s = v;
  }
  return s / Math.max(weight, 1e-9);
}
