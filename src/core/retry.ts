import type { RetryPolicy } from './types.ts';

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  max_attempts: 3,
  retry_delay: 1,
  backoff: 'exponential',
  max_delay: 300,
  jitter: 0,
};

/**
 * Retry policies by name (seed 003), selectable on submit as `retry_policy: "network_error"` or
 * `{name: "network_error", …overrides}`. Exponential from the lower bound to the upper bound, with
 * "equal jitter" (a random share of up to half of each delay taken away).
 */
export const NAMED_RETRY_POLICIES: Readonly<Record<string, RetryPolicy>> = {
  network_error: { name: 'network_error', max_attempts: 5, retry_delay: 2, backoff: 'exponential', max_delay: 120, jitter: 0.5 },
  resource_exhausted: { name: 'resource_exhausted', max_attempts: 3, retry_delay: 30, backoff: 'exponential', max_delay: 300, jitter: 0.5 },
  temporary_failure: { name: 'temporary_failure', max_attempts: 2, retry_delay: 5, backoff: 'exponential', max_delay: 30, jitter: 0.5 },
  critical_job: { name: 'critical_job', max_attempts: 5, retry_delay: 1, backoff: 'exponential', max_delay: 30, jitter: 0.5 },
};

/** The named policy, or undefined for a name Gantry does not know. */
export function namedRetryPolicy(name: string): RetryPolicy | undefined {
  return Object.hasOwn(NAMED_RETRY_POLICIES, name) ? NAMED_RETRY_POLICIES[name] : undefined;
}

/**
 * Seconds to wait before retry number `retry` (1 = the first retry).
 * fixed: retry_delay every time; exponential: retry_delay × 2^(retry−1), capped at max_delay.
 * Jitter j ∈ [0,1] takes a random share of up to j of the delay away ("equal jitter" at 0.5).
 */
export function retryDelaySeconds(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const base = policy.backoff === 'fixed' ? policy.retry_delay : policy.retry_delay * 2 ** Math.max(0, retry - 1);
  const capped = Math.min(base, policy.max_delay);
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  return capped * (1 - jitter * random());
}

/** Whether a job that has run `runs` times under this policy may run again. */
export function hasAttemptsLeft(policy: RetryPolicy, runs: number): boolean {
  return runs < policy.max_attempts;
}
