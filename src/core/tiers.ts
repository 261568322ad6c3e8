import type { Priority } from './types.ts';
import { PRIORITIES } from './types.ts';

/**
 * Tenant tiers (seed 000: Enterprise Plus, Enterprise, Premium, …) and their defaults. A tenant
 * row stores only what it overrides; `effectiveTenant` fills the rest from its tier, so a change
 * of tier defaults reaches every tenant that did not override them.
 */
export const TIERS = ['enterprise_plus', 'enterprise', 'premium', 'basic', 'free'] as const;
export type Tier = (typeof TIERS)[number];

/** The resources quotas are kept for (storage is not scheduled). */
export const QUOTA_RESOURCES = ['cpu_cores', 'memory_gb', 'gpu_count'] as const;
export type QuotaResource = (typeof QUOTA_RESOURCES)[number];
/** A value per resource; a missing resource means "no limit" for limits, "not overridden" for overrides. */
export type ResourceAmounts = Partial<Record<QuotaResource, number>>;

export interface TierDefaults {
  /** Nominal quota per resource: what the tenant is guaranteed within its cohort. */
  nominal_quota: Record<QuotaResource, number>;
  /** How much more than nominal it may borrow from idle cohort quota (missing = unlimited). */
  borrowing_limit: ResourceAmounts;
  /** How much of its idle nominal quota others may borrow (missing = all of it). */
  lending_limit: ResourceAmounts;
  /** Jobs of this tenant on workers at once; null = no limit. */
  max_running_jobs: number | null;
  /** Weight in weighted fair share (higher = larger share). */
  fair_share_weight: number;
  /** Priorities its jobs may use. */
  allowed_priorities: readonly Priority[];
}

const ALL: readonly Priority[] = PRIORITIES;
const NO_EMERGENCY: readonly Priority[] = ['critical', 'high', 'normal', 'low'];

export const TIER_DEFAULTS: Readonly<Record<Tier, TierDefaults>> = {
  enterprise_plus: {
    nominal_quota: { cpu_cores: 2048, memory_gb: 16384, gpu_count: 128 },
    borrowing_limit: {}, lending_limit: {}, max_running_jobs: null, fair_share_weight: 8, allowed_priorities: ALL,
  },
  enterprise: {
    nominal_quota: { cpu_cores: 1024, memory_gb: 8192, gpu_count: 64 },
    borrowing_limit: {}, lending_limit: {}, max_running_jobs: null, fair_share_weight: 4, allowed_priorities: ALL,
  },
  premium: {
    nominal_quota: { cpu_cores: 128, memory_gb: 1024, gpu_count: 16 },
    borrowing_limit: {}, lending_limit: {}, max_running_jobs: 200, fair_share_weight: 2, allowed_priorities: NO_EMERGENCY,
  },
  basic: {
    nominal_quota: { cpu_cores: 32, memory_gb: 128, gpu_count: 4 },
    borrowing_limit: { cpu_cores: 32, memory_gb: 128, gpu_count: 4 }, lending_limit: {}, max_running_jobs: 50,
    fair_share_weight: 1, allowed_priorities: ['high', 'normal', 'low'],
  },
  free: {
    nominal_quota: { cpu_cores: 4, memory_gb: 8, gpu_count: 0 },
    borrowing_limit: { cpu_cores: 0, memory_gb: 0, gpu_count: 0 }, lending_limit: {}, max_running_jobs: 2,
    fair_share_weight: 0.5, allowed_priorities: ['normal', 'low'],
  },
};

/** A tenant as stored: its tier and only the settings it overrides (null = the tier's default). */
export interface TenantRecord {
  id: string;
  name: string;
  tier: Tier;
  cohort: string;
  nominal_quota: ResourceAmounts;
  borrowing_limit: ResourceAmounts;
  lending_limit: ResourceAmounts;
  max_running_jobs: number | null;
  fair_share_weight: number | null;
  allowed_priorities: Priority[] | null;
  paused: boolean;
  created_at: number;
  updated_at: number;
}

/** What the scheduler enforces for a tenant: tier defaults with the tenant's overrides applied. */
export interface EffectiveTenant {
  id: string;
  tier: Tier;
  cohort: string;
  /** false for a tenant that has no record (it runs under the default tier). */
  registered: boolean;
  nominal_quota: Record<QuotaResource, number>;
  borrowing_limit: ResourceAmounts;
  lending_limit: ResourceAmounts;
  max_running_jobs: number | null;
  fair_share_weight: number;
  allowed_priorities: readonly Priority[];
  paused: boolean;
}

/** The cohort tenants without a record, and tenants created without one, belong to. */
export const DEFAULT_COHORT = 'default';

export function isTier(v: string): v is Tier {
  return (TIERS as readonly string[]).includes(v);
}

/**
 * Resolves a tenant's effective settings. `record` null = a tenant nobody registered: it runs
 * under `defaultTier` in the default cohort (see docs: unregistered tenants).
 */
export function effectiveTenant(id: string, record: TenantRecord | null, defaultTier: Tier): EffectiveTenant {
  const tier = record?.tier ?? defaultTier;
  const d = TIER_DEFAULTS[tier];
  return {
    id,
    tier,
    cohort: record?.cohort ?? DEFAULT_COHORT,
    registered: record !== null,
    nominal_quota: { ...d.nominal_quota, ...record?.nominal_quota },
    borrowing_limit: { ...d.borrowing_limit, ...record?.borrowing_limit },
    lending_limit: { ...d.lending_limit, ...record?.lending_limit },
    max_running_jobs: record?.max_running_jobs ?? d.max_running_jobs,
    fair_share_weight: record?.fair_share_weight ?? d.fair_share_weight,
    allowed_priorities: record?.allowed_priorities ?? d.allowed_priorities,
    paused: record?.paused ?? false,
  };
}
