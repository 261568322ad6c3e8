/**
 * Payloads of the scheduler's wake-up channel (`CHANNELS.SCHEDULE`). Why a cycle was asked for
 * tells the scheduler what it may keep from its last reads: a submit changes only the queue; a
 * report changes jobs and circuit breakers but never workers or tenants; any other wake-up (a
 * worker joined, drained or left, a tenant changed, a payload it does not know) may have changed
 * anything, so the next cycle reads everything again.
 */
export const WAKE = {
  SUBMIT: 'submit',
  REPORT: 'report',
  /** A report that moved a job to RETRYING: also look for due retries. */
  RETRY: 'retry',
} as const;
