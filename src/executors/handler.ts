import type { Assignment, CheckpointData, Control, GangInfo, SavedCheckpoint } from '../client/http.ts';
import type { Executor, JobContext } from '../client/workerLoop.ts';
import { rankTagged } from './rankTagged.ts';

/** Throw this from a handler to fail the job without retries. */
export class NonRetryableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NonRetryableError';
  }
}

/** What a handler receives. */
export interface HandlerJob {
  id: string;
  name: string;
  type: string;
  tenant: string;
  attempt: number;
  parameters: Record<string, unknown>;
  labels: Record<string, string>;
  /** Aborted on cancel, timeout, preemption or shutdown: long handlers should watch it (the reason says which). */
  signal: AbortSignal;
  /** Reports progress 0..1. */
  progress(fraction: number): void;
  /** Writes a line to the job's log. */
  log(line: string): void;
  /**
   * Saves a checkpoint (a small JSON value, ≤ 64 KB, or `{file}` pointing at bigger state). If
   * this attempt fails, its worker is lost or shuts down, the next attempt gets the last one as
   * `lastCheckpoint`.
   */
  checkpoint(data: unknown, opts?: { file?: string }): void;
  /** The last checkpoint an earlier attempt saved (`data`, `file`, `attempt`, `saved_at`), or null on a fresh start. */
  lastCheckpoint: SavedCheckpoint | null;
  /** A gang job (nodes > 1): this member's rank, the gang's size and its members' workers in rank order; null otherwise. */
  gang: GangInfo | null;
}

export type Handler = (job: HandlerJob) => unknown | Promise<unknown>;

/**
 * Runs handler jobs inside this process, `concurrency` at a time; jobs handed out beyond that
 * (the worker's prefetch) wait here, still SCHEDULED on the server, until a place frees up.
 * The handler's return value (JSON) is the job's result. A timeout or cancel aborts the job's
 * signal and reports at once — JavaScript cannot be killed from outside, so a handler that
 * ignores its signal keeps running in the background.
 */
export class HandlerExecutor implements Executor {
  readonly #handlers: Record<string, Handler>;
  readonly #concurrency: number;
  readonly #waiting: { job: Assignment; ctx: JobContext }[] = [];
  readonly #running = new Map<string, {
    id: string; abort: AbortController; settle: (r: Parameters<JobContext['report']>[0]) => void; preempted: boolean; grace_ms: number;
  }>();
  readonly #preemptGraceMs: number;

  /** `preempt_grace_ms`: how long a preempted handler may take to wind down (unless the job sets `grace_period`). */
  constructor(handlers: Record<string, Handler>, concurrency = Infinity, preempt_grace_ms = 30_000) {
    this.#handlers = handlers;
    this.#concurrency = concurrency;
    this.#preemptGraceMs = preempt_grace_ms;
  }

  start(job: Assignment, ctx: JobContext): void {
    if (!job.handler || !this.#handlers[job.handler]) {
      ctx.report({ outcome: 'failed', error: `no handler named '${job.handler}' in this worker`, non_retryable: true });
      return;
    }
    if (job.gang) ctx = rankTagged(ctx, job.gang.rank);
    // A gang member starts now, not behind prefetched jobs: its gang's other members start now too
    // (the start barrier). It holds a slot the scheduler gave it, so at most concurrency + prefetch run.
    if (job.gang) return this.#run(job, ctx);
    this.#waiting.push({ job, ctx });
    this.#pump();
  }

  #pump(): void {
    while (this.#running.size < this.#concurrency && this.#waiting.length > 0) {
      const { job, ctx } = this.#waiting.shift()!;
      this.#run(job, ctx);
    }
  }

  #run(job: Assignment, ctx: JobContext): void {
    const fn = this.#handlers[job.handler!]!;
    const abort = new AbortController();
    let settled = false;
    let timer: NodeJS.Timeout | null = null;
    const settle = (r: Parameters<JobContext['report']>[0]) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      this.#running.delete(job.job_id);
      ctx.report(r);
      this.#pump();
    };
    const entry = { id: job.job_id, abort, settle, preempted: false, grace_ms: job.grace_period != null ? job.grace_period * 1000 : this.#preemptGraceMs };
    this.#running.set(job.job_id, entry);
    if (job.timeout !== null) {
      timer = setTimeout(() => {
        abort.abort(new Error('timeout'));
        settle({ outcome: 'timeout', error: `timed out after ${job.timeout}s` });
      }, job.timeout * 1000);
    }
    const hj: HandlerJob = {
      id: job.job_id, name: job.name, type: job.type, tenant: job.tenant, attempt: job.attempt,
      parameters: job.parameters, labels: job.labels, signal: abort.signal,
      progress: (p) => ctx.progress(p),
      log: (line) => ctx.log('stdout', line.endsWith('\n') ? line : line + '\n'),
      checkpoint: (data, opts) => ctx.checkpoint({ data, file: opts?.file ?? null } satisfies CheckpointData),
      lastCheckpoint: job.checkpoint ?? null,
      gang: job.gang ?? null,
    };
    let out: unknown;
    try {
      out = fn(hj);
    } catch (err) {
      settle(failure(err));
      return;
    }
    if (out instanceof Promise) {
      // Still running: the server hears it started. A handler that returned a value (or threw) has ended
      // before anything could be sent, and its final report says it all (the job passes through RUNNING).
      ctx.started();
      // A preempted handler that winds down (returns or throws on its aborted signal) is requeued, not completed or failed.
      out.then(
        (result) => settle(entry.preempted ? { outcome: 'preempted' } : { outcome: 'completed', result: result ?? null }),
        (err) => settle(entry.preempted ? { outcome: 'preempted' } : failure(err)),
      );
    } else {
      settle({ outcome: 'completed', result: out ?? null });
    }
  }

  control(jobId: string, control: Control['control']): void {
    if (control === 'preempt') return this.#preempt(jobId);
    if (control !== 'cancel') return; // pause/resume have no meaning inside a JS function
    const w = this.#waiting.findIndex((x) => x.job.job_id === jobId);
    if (w >= 0) {
      const [x] = this.#waiting.splice(w, 1);
      x!.ctx.report({ outcome: 'cancelled' });
      return;
    }
    const r = this.#running.get(jobId);
    if (!r) return;
    r.abort.abort(new Error('cancelled'));
    r.settle({ outcome: 'cancelled' });
  }

  /** Aborts the job's signal; it is reported preempted when the handler settles or its grace period ends. */
  #preempt(jobId: string): void {
    const w = this.#waiting.findIndex((x) => x.job.job_id === jobId);
    if (w >= 0) {
      const [x] = this.#waiting.splice(w, 1);
      x!.ctx.report({ outcome: 'preempted' });
      return;
    }
    const r = this.#running.get(jobId);
    if (!r || r.preempted) return;
    r.preempted = true;
    r.abort.abort(new Error('preempted'));
    setTimeout(() => r.settle({ outcome: 'preempted' }), r.grace_ms).unref();
  }

  async stopAll(): Promise<void> {
    // Not reported: the server requeues these jobs when this worker deregisters or is declared lost.
    this.#waiting.length = 0;
    for (const r of [...this.#running.values()]) {
      r.abort.abort(new Error('shutdown'));
      this.#running.delete(r.id);
    }
  }
}

function failure(err: unknown): { outcome: 'failed'; error: string; non_retryable: boolean } {
  const e = err instanceof Error ? err : new Error(String(err));
  return { outcome: 'failed', error: e.message, non_retryable: e instanceof NonRetryableError || e.name === 'NonRetryableError' };
}
