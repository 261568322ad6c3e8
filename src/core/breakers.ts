/**
 * Circuit breakers: one state machine per key, a plain string so any grouping works —
 * `executor:process` (the command-job queue), `handler:<name>` (one handler's queue),
 * `template:<name>` (jobs made from one template, once jobs carry a template name).
 *
 *   closed ──N consecutive failures──▶ open ──probe_at passed──▶ half_open (one probe job runs)
 *     ▲                                  ▲                            │
 *     └──────────── any success ─────────┴──── probe fails ───────────┘
 *
 * What counts as a failure: an attempt that ends `failed` or `timeout` with a retryable error
 * (job or executor trouble alike — from the server both look the same). Not counted: cancels,
 * non-retryable failures (the job's own input is bad, the executor is fine) and lost workers
 * (the lease reaper handles a dead machine; it says nothing about the queue's code).
 * While open, the scheduler leaves the key's jobs QUEUED with a pending reason, so they do not
 * burn attempts; once `probe_at` passes it lets exactly one job through as the probe. A probe
 * that ends without a verdict (cancelled, its worker lost) makes way for the next one at once.
 */
export const BREAKER_STATES = ['closed', 'open', 'half_open'] as const;
export type BreakerState = (typeof BREAKER_STATES)[number];

export interface Breaker {
  key: string;
  state: BreakerState;
  consecutive_failures: number;
  opened_at: number | null;
  /** open: when a probe may run; half_open: when another probe may run if this one never reports. */
  probe_at: number | null;
  probe_job_id: string | null;
  last_error: string | null;
  last_failure_at: number | null;
  updated_at: number;
  /** half_open: whether the probe job is still on a worker (false: it was cancelled, lost or requeued — probe again). */
  probe_live?: boolean;
}

export interface BreakerOptions {
  /** Consecutive failures that open a breaker; 0 turns breakers off. */
  threshold: number;
  /** How long a breaker stays open before a probe (ms). */
  open_ms: number;
  /**
   * Also keep a breaker for the command-job queue (`executor:process`). Off by default: every
   * command job shares that one queue, and one failing script says nothing about the others —
   * command jobs get their breaker from their template instead.
   */
  command_queue: boolean;
}

export const DEFAULT_BREAKER_OPTIONS: BreakerOptions = { threshold: 5, open_ms: 30_000, command_queue: false };

/**
 * The breakers a job is subject to: its executor queue (`handler:<name>`, or `executor:process`
 * for command jobs when `command_queue` is on), and its template when it has one.
 */
export function breakerKeysOf(job: { handler: string | null; template?: string | null }, opts: { command_queue: boolean } = { command_queue: true }): string[] {
  const keys: string[] = [];
  if (job.handler !== null) keys.push(`handler:${job.handler}`);
  else if (opts.command_queue) keys.push('executor:process');
  if (job.template) keys.push(`template:${job.template}`);
  return keys;
}

export function closedBreaker(key: string, now: number): Breaker {
  return { key, state: 'closed', consecutive_failures: 0, opened_at: null, probe_at: null, probe_job_id: null, last_error: null, last_failure_at: null, updated_at: now };
}

/** The one transition function of a breaker: what an attempt's end does to it. */
export function afterAttempt(b: Breaker, ok: boolean, error: string | null, opts: BreakerOptions, now: number): Breaker {
  if (ok) return closedBreaker(b.key, now);
  const failures = b.consecutive_failures + 1;
  const base = { ...b, consecutive_failures: failures, last_error: error, last_failure_at: now, updated_at: now };
  // A failed probe reopens at once; a closed breaker opens at the threshold; an open one stays open.
  if (b.state === 'half_open' || (b.state === 'closed' && failures >= opts.threshold)) {
    return { ...base, state: 'open', opened_at: now, probe_at: now + opts.open_ms, probe_job_id: null };
  }
  return base;
}

/** What the scheduler may do with a key's jobs now: run them, run one probe, or leave them queued. */
export function admission(b: Breaker | undefined, now: number): 'run' | 'probe' | 'wait' {
  if (!b || b.state === 'closed') return 'run';
  if (b.state === 'half_open' && b.probe_live === false) return 'probe';
  return b.probe_at !== null && b.probe_at <= now ? 'probe' : 'wait';
}

/** The pending reason of a job held back by open breakers, or null. */
export function breakerPendingReason(breakers: readonly Breaker[], now: number): string | null {
  const held = breakers.filter((b) => admission(b, now) !== 'run');
  if (held.length === 0) return null;
  return held
    .map((b) =>
      b.state === 'half_open'
        ? `circuit half-open for ${b.key}: waiting for probe job ${b.probe_job_id ?? '?'}`
        : `circuit open for ${b.key} after ${b.consecutive_failures} consecutive failures, probe at ${new Date(b.probe_at ?? now).toISOString()}`,
    )
    .join('; ');
}

/**
 * One scheduling cycle's view of the breakers: which queues to skip, and the probes it let
 * through (at most one job per key that is due a probe).
 */
export class BreakerGate {
  readonly #byKey: Map<string, Breaker>;
  readonly #now: number;
  readonly #probes = new Map<string, string>();

  constructor(breakers: readonly Breaker[], now: number) {
    this.#byKey = new Map(breakers.map((b) => [b.key, b]));
    this.#now = now;
  }

  /** No job with this key may run this cycle (open and not yet due a probe, or its probe taken). */
  blocks(key: string): boolean {
    const a = admission(this.#byKey.get(key), this.#now);
    return a === 'wait' || (a === 'probe' && this.#probes.has(key));
  }

  /** Whether a job with these keys may run; a key due a probe takes this job as its probe. */
  admit(jobId: string, keys: readonly string[]): boolean {
    if (keys.some((k) => this.blocks(k))) return false;
    for (const k of keys) if (admission(this.#byKey.get(k), this.#now) === 'probe') this.#probes.set(k, jobId);
    return true;
  }

  /** Probes taken this cycle, for the jobs that were really assigned. */
  probes(assigned: ReadonlySet<string>): { key: string; job_id: string }[] {
    return [...this.#probes].filter(([, j]) => assigned.has(j)).map(([key, job_id]) => ({ key, job_id }));
  }
}
