/**
 * Kueue-style quota accounting within one cycle: per tenant what it holds, per cohort how much
 * idle nominal quota its members lend and how much they borrow. Updates are O(1) per admission.
 */
import { RESOURCE_NAMES, type PolicyTenant, type ResourceName, type ResourceVector } from './types.ts';
import { zeroVector } from './usage.ts';

export const DEFAULT_TENANT = (id: string): PolicyTenant => ({
  id,
  cohort: null,
  weight: 1,
  quota: {
    cpu_cores: { nominal: Infinity, borrowing_limit: null, lending_limit: null },
    memory_gb: { nominal: Infinity, borrowing_limit: null, lending_limit: null },
    gpu_count: { nominal: Infinity, borrowing_limit: null, lending_limit: null },
  },
  max_running: null,
  paused: false,
  allowed_priorities: ['emergency', 'critical', 'high', 'normal', 'low'],
});

export interface TenantState {
  tenant: PolicyTenant;
  /** Who its running jobs share quota with: its cohort, or the tenant alone (`\0` + its id, so it matches no cohort name). */
  group: string;
  /** Held now (running + admitted this cycle), per resource; gang jobs count every node. */
  alloc: ResourceVector;
  running: number;
  /** Bumped by every change of `alloc`: a key computed from this state at the same version still holds. */
  version: number;
}

export type QuotaVerdict =
  | { ok: true; borrowing: boolean }
  | { ok: false; resource: ResourceName; used: number; need: number; limit: number; cohort_idle: number };

const EPS = 1e-9;
// Shared verdicts: a check per considered job allocates nothing when it passes.
const OK_NOMINAL: QuotaVerdict = Object.freeze({ ok: true, borrowing: false });
const OK_BORROWING: QuotaVerdict = Object.freeze({ ok: true, borrowing: true });

function lendable(t: TenantState, r: ResourceName): number {
  const q = t.tenant.quota[r];
  if (!Number.isFinite(q.nominal)) return 0;
  const idle = Math.max(0, q.nominal - t.alloc[r]);
  return q.lending_limit === null ? idle : Math.min(idle, q.lending_limit);
}

function borrowed(t: TenantState, r: ResourceName): number {
  const q = t.tenant.quota[r];
  return Number.isFinite(q.nominal) ? Math.max(0, t.alloc[r] - q.nominal) : 0;
}

export class QuotaLedger {
  readonly tenants = new Map<string, TenantState>();
  /** Per cohort, per resource: Σ lendable and Σ borrowed of its members. */
  readonly #cohorts = new Map<string, { lend: ResourceVector; borrow: ResourceVector }>();

  constructor(tenants: ReadonlyMap<string, PolicyTenant>) {
    for (const t of tenants.values()) this.#add(t);
  }

  #add(t: PolicyTenant): TenantState {
    const s: TenantState = { tenant: t, group: t.cohort ?? `\0${t.id}`, alloc: zeroVector(), running: 0, version: 0 };
    this.tenants.set(t.id, s);
    if (t.cohort !== null) {
      let c = this.#cohorts.get(t.cohort);
      if (!c) this.#cohorts.set(t.cohort, (c = { lend: zeroVector(), borrow: zeroVector() }));
      for (const r of RESOURCE_NAMES) c.lend[r] += lendable(s, r);
    }
    return s;
  }

  get(id: string): TenantState {
    return this.tenants.get(id) ?? this.#add(DEFAULT_TENANT(id));
  }

  /** Adds (sign 1) or removes (sign -1) a job's resources to a tenant's holding. */
  charge(id: string, res: ResourceVector, nodes: number, sign: 1 | -1): void {
    this.chargeOf(this.get(id), res, nodes, sign);
  }

  /** `charge` for a tenant whose state the caller holds (no lookup by id). */
  chargeOf(s: TenantState, res: ResourceVector, nodes: number, sign: 1 | -1): void {
    const k = sign * nodes;
    this.#hold(s, { cpu_cores: res.cpu_cores * k, memory_gb: res.memory_gb * k, gpu_count: res.gpu_count * k }, sign);
  }

  /** Adds a tenant's whole holding at once (`alloc` already summed over its jobs and nodes; `jobs` running jobs). */
  hold(id: string, alloc: ResourceVector, jobs: number): void {
    this.#hold(this.get(id), alloc, jobs);
  }

  #hold(s: TenantState, alloc: ResourceVector, jobs: number): void {
    const c = s.tenant.cohort === null ? undefined : this.#cohorts.get(s.tenant.cohort);
    for (let i = 0; i < RESOURCE_NAMES.length; i++) {
      const r = RESOURCE_NAMES[i]!;
      if (c) {
        c.lend[r] -= lendable(s, r);
        c.borrow[r] -= borrowed(s, r);
      }
      s.alloc[r] += alloc[r];
      if (c) {
        c.lend[r] += lendable(s, r);
        c.borrow[r] += borrowed(s, r);
      }
    }
    s.running += jobs;
    s.version++;
  }

  /** Idle quota the rest of the cohort could lend to `s` now. */
  cohortIdle(s: TenantState, r: ResourceName): number {
    if (s.tenant.cohort === null) return 0;
    const c = this.#cohorts.get(s.tenant.cohort)!;
    return Math.max(0, c.lend[r] - lendable(s, r) - (c.borrow[r] - borrowed(s, r)));
  }

  /** Would admitting `res × nodes` for tenant `id` respect its quota, and would it borrow? */
  check(id: string, res: ResourceVector, nodes: number): QuotaVerdict {
    return this.checkOf(this.get(id), res, nodes);
  }

  /** `check` for a tenant whose state the caller holds (no lookup by id). */
  checkOf(s: TenantState, res: ResourceVector, nodes: number): QuotaVerdict {
    let borrowing = false;
    for (let i = 0; i < RESOURCE_NAMES.length; i++) {
      const r = RESOURCE_NAMES[i]!;
      const need = res[r] * nodes;
      if (need <= 0) continue;
      const q = s.tenant.quota[r];
      if (!Number.isFinite(q.nominal)) continue;
      const after = s.alloc[r] + need;
      if (after <= q.nominal + EPS) continue;
      const idle = this.cohortIdle(s, r);
      const over = after - q.nominal;
      const cap = q.borrowing_limit === null ? idle : Math.min(idle, q.borrowing_limit);
      if (over > cap + EPS) {
        return { ok: false, resource: r, used: s.alloc[r], need, limit: q.nominal + cap, cohort_idle: idle };
      }
      borrowing = true;
    }
    return borrowing ? OK_BORROWING : OK_NOMINAL;
  }

  /** Is the tenant above nominal on any resource now? */
  isBorrowing(id: string): boolean {
    return QuotaLedger.isBorrowingOf(this.get(id));
  }

  static isBorrowingOf(s: TenantState): boolean {
    return borrowed(s, 'cpu_cores') > EPS || borrowed(s, 'memory_gb') > EPS || borrowed(s, 'gpu_count') > EPS;
  }

  /** Would the tenant stay within nominal on every resource after adding `res × nodes`? */
  withinNominal(id: string, res: ResourceVector, nodes: number): boolean {
    return QuotaLedger.withinNominalOf(this.get(id), res, nodes);
  }

  static withinNominalOf(s: TenantState, res: ResourceVector, nodes: number): boolean {
    const q = s.tenant.quota;
    return (
      s.alloc.cpu_cores + res.cpu_cores * nodes <= q.cpu_cores.nominal + EPS &&
      s.alloc.memory_gb + res.memory_gb * nodes <= q.memory_gb.nominal + EPS &&
      s.alloc.gpu_count + res.gpu_count * nodes <= q.gpu_count.nominal + EPS
    );
  }
}
