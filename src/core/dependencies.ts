import type { DependencyType, JobState } from './types.ts';

/**
 * When a job with dependencies may run — a pure function of its dependency type and its
 * upstream jobs' states, used when dependencies are added, when an upstream ends
 * (src/store/ops/dependencies.ts) and to explain a waiting job (GET /jobs/{id}).
 *
 * | type | runs when | can never run when |
 * |---|---|---|
 * | all_complete | every upstream COMPLETED | one ended FAILED, TIMEOUT or CANCELLED |
 * | any_complete | one upstream COMPLETED | all ended, none COMPLETED |
 * | all_done | every upstream ended (any outcome) | — |
 * | any_failed | one upstream FAILED or TIMEOUT | all ended, none FAILED or TIMEOUT |
 *
 * "Ended" = a final state (COMPLETED, FAILED, TIMEOUT, CANCELLED); a failure that will be retried
 * is RETRYING, not final, so it does not count yet.
 */
export interface Upstream {
  id: string;
  state: JobState;
}

export interface DependencyVerdict {
  verdict: 'wait' | 'run' | 'never';
  /** Upstream jobs not yet final. */
  waiting_for: string[];
  /** Plain words: why it waits, why it runs, or why it never will. */
  reason: string;
}

const FINAL: ReadonlySet<JobState> = new Set(['COMPLETED', 'FAILED', 'TIMEOUT', 'CANCELLED']);
const isFailure = (s: JobState) => s === 'FAILED' || s === 'TIMEOUT';

export function decideDependencies(type: DependencyType, upstream: readonly Upstream[]): DependencyVerdict {
  const waiting_for = upstream.filter((u) => !FINAL.has(u.state)).map((u) => u.id);
  const done = upstream.filter((u) => FINAL.has(u.state));
  const completed = done.filter((u) => u.state === 'COMPLETED');
  const failed = done.filter((u) => isFailure(u.state));
  const list = (ids: readonly string[]) => (ids.length <= 5 ? ids.join(', ') : `${ids.slice(0, 5).join(', ')} and ${ids.length - 5} more`);
  const wait = (): DependencyVerdict => ({
    verdict: 'wait', waiting_for,
    reason: `waiting for ${waiting_for.length} of ${upstream.length} dependencies (${type}): ${list(waiting_for)}`,
  });
  switch (type) {
    case 'all_complete': {
      const bad = done.find((u) => u.state !== 'COMPLETED');
      if (bad) return { verdict: 'never', waiting_for, reason: `dependency ${bad.id} ended ${bad.state}; all_complete needs every dependency COMPLETED` };
      return waiting_for.length ? wait() : { verdict: 'run', waiting_for, reason: `all ${upstream.length} dependencies COMPLETED` };
    }
    case 'any_complete':
      if (completed[0]) return { verdict: 'run', waiting_for, reason: `dependency ${completed[0].id} COMPLETED (any_complete)` };
      return waiting_for.length ? wait() : { verdict: 'never', waiting_for, reason: `no dependency COMPLETED (${list(done.map((u) => `${u.id} ${u.state}`))}); any_complete needs one` };
    case 'all_done':
      return waiting_for.length ? wait() : { verdict: 'run', waiting_for, reason: `all ${upstream.length} dependencies ended (all_done)` };
    case 'any_failed':
      if (failed[0]) return { verdict: 'run', waiting_for, reason: `dependency ${failed[0].id} ended ${failed[0].state} (any_failed)` };
      return waiting_for.length ? wait() : { verdict: 'never', waiting_for, reason: `no dependency FAILED or TIMEOUT; any_failed runs only after a failure` };
  }
}
