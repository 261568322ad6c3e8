import type { JobState } from './types.ts';
import { GantryError } from './errors.ts';

/**
 * The one transition table of a job. Nothing writes a state that this table refuses.
 *
 *  SUBMITTED ⇄ QUEUED → SCHEDULED → RUNNING → COMPLETED   (SUBMITTED: waiting for dependencies)
 *                 ↑         │          │  ↘ FAILED / TIMEOUT → RETRYING → QUEUED (backoff)
 *                 │         │          ↕ PAUSED
 *                 └── worker lost / preempted (attempt recorded)
 *  any non-final → CANCELLED; FAILED, TIMEOUT, CANCELLED → QUEUED by a manual retry.
 */
export const TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  SUBMITTED: ['QUEUED', 'CANCELLED'],
  // QUEUED → SUBMITTED: a queued job gained dependencies it must wait for (POST /jobs/{id}/dependencies).
  QUEUED: ['SCHEDULED', 'CANCELLED', 'QUEUED', 'SUBMITTED'],
  SCHEDULED: ['RUNNING', 'QUEUED', 'CANCELLED'],
  RUNNING: ['COMPLETED', 'FAILED', 'TIMEOUT', 'RETRYING', 'PAUSED', 'CANCELLED', 'QUEUED'],
  PAUSED: ['RUNNING', 'CANCELLED', 'QUEUED', 'FAILED', 'TIMEOUT', 'RETRYING', 'COMPLETED'],
  RETRYING: ['QUEUED', 'CANCELLED'],
  TIMEOUT: ['RETRYING', 'QUEUED'],
  FAILED: ['QUEUED'],
  CANCELLED: ['QUEUED'],
  COMPLETED: [],
};

/** States a job never leaves on its own. TIMEOUT is final unless it moves on to RETRYING at once. */
export const FINAL_STATES: ReadonlySet<JobState> = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT']);
/** States in which a job holds resources on a worker. */
export const ACTIVE_STATES: ReadonlySet<JobState> = new Set(['SCHEDULED', 'RUNNING', 'PAUSED']);

export function canTransition(from: JobState, to: JobState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Throws INVALID_TRANSITION (HTTP 409) when the table refuses `from → to`. */
export function assertTransition(jobId: string, from: JobState, to: JobState): void {
  if (!canTransition(from, to)) {
    throw new GantryError('INVALID_TRANSITION', `job ${jobId} cannot go from ${from} to ${to}`, {
      job_id: jobId,
      from,
      to,
    });
  }
}

export function isFinal(state: JobState): boolean {
  return FINAL_STATES.has(state);
}
