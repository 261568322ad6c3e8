/**
 * Payloads of the scheduler's wake-up channel (`CHANNELS.SCHEDULE`). Why a cycle was asked for
 * tells the scheduler what it may keep from its last reads (workers, tenants, and the circuit
 * breakers while none is held): a submit changes only the queue; a report changes jobs, and with a
 * failed or timed-out attempt in it may open a breaker, but never changes workers or tenants; any
 * other wake-up (a worker joined, drained or left, a tenant or breaker was edited, a payload it does
 * not know) may have changed anything, so the next cycle reads everything again.
 */
export const WAKE = {
  SUBMIT: 'submit',
  /**
   * A report without failed or timed-out attempts (with no breaker held, none can become held) that
   * put no job back in the queue: it only frees room, so when the last cycle found the served queues
   * empty there is nothing to schedule and the scheduler skips the cycle.
   */
  REPORT: 'report',
  /** A report that put a job back in the queue (preempted, interrupted): a cycle must run. */
  REQUEUE: 'requeue',
  /** A report with a failed or timed-out attempt: breakers are read again. */
  FAILURE: 'failure',
  /** A failure report that moved a job to RETRYING: also look for due retries. */
  RETRY: 'retry',
} as const;

/** What a wake-up may have made stale: nothing, the breakers, or everything. */
export function staleAfter(reason: string): 'nothing' | 'breakers' | 'everything' {
  if (reason === WAKE.SUBMIT || reason === WAKE.REPORT || reason === WAKE.REQUEUE) return 'nothing';
  if (reason === WAKE.FAILURE || reason === WAKE.RETRY) return 'breakers';
  return 'everything';
}
