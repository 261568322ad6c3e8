/**
 * Gantry's policy and the baselines the simulator compares it with. All run the same cycle
 * (`engine.ts`) with a different ordering, so the comparison measures the policy, not the code.
 */
import { runCycle, type Ordering } from './engine.ts';
import type { Policy } from './types.ts';

const policy = (name: string, ord: Ordering): Policy => ({ name, decide: (snap, cfg) => runCycle(snap, cfg, ord) });

/**
 * Gantry: priority class, then (with aging) jobs under nominal quota before borrowing ones, then
 * weighted dominant share of decayed usage, FIFO within a tenant; no head-of-line blocking;
 * conservative backfill around the top blocked job; preemption by priority and quota reclaim.
 */
export const gantryPolicy = policy('gantry', { priority: true, fair_share: 'decayed', aging: true, nominal_first: true, strict: false, backfill: true, preemption: true });

/** Kueue StrictFIFO: priority then queue time; a tenant's first job that cannot start blocks the rest of its queue. */
export const strictFifoPolicy = policy('strict-fifo', { priority: true, fair_share: 'none', aging: false, nominal_first: false, strict: true, backfill: false, preemption: false });

/** Kueue BestEffortFIFO: priority then queue time; a job that cannot start is passed over. */
export const bestEffortFifoPolicy = policy('best-effort-fifo', { priority: true, fair_share: 'none', aging: false, nominal_first: false, strict: false, backfill: false, preemption: false });

/** Dominant Resource Fairness (Ghodsi et al.): the tenant with the lowest current dominant share goes next, no priorities. */
export const drfPolicy = policy('drf', { priority: false, fair_share: 'current', aging: false, nominal_first: false, strict: false, backfill: false, preemption: false });

/** Slurm-style FIFO with backfill: priority then queue time; the top blocked job holds a reservation. */
export const backfillPolicy = policy('backfill', { priority: true, fair_share: 'none', aging: false, nominal_first: false, strict: false, backfill: true, preemption: false });

export const POLICIES: ReadonlyMap<string, Policy> = new Map([gantryPolicy, strictFifoPolicy, bestEffortFifoPolicy, drfPolicy, backfillPolicy].map((p) => [p.name, p]));
export const POLICY_NAMES = [...POLICIES.keys()];
