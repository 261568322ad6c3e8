import { hostname } from 'node:os';
import { GantryClient } from './http.ts';
import { WorkerLoop } from './workerLoop.ts';
import { HandlerExecutor, type Handler } from '../executors/handler.ts';

export interface WorkerOptions {
  /**
   * The Gantry server URL, or several servers on one database (an array or a comma-separated
   * string). On a connection error or a 503 the worker moves to the next at once, keeping its
   * id and its running jobs; the switch is reported through `onError`.
   */
  server: string | readonly string[];
  token: string;
  /** Handler jobs run at once. Default 10. */
  concurrency?: number;
  /**
   * Jobs taken ahead of time and queued in this process, beyond `concurrency`, so the next ones
   * start without a round trip (like graphile-worker's local queue). They stay SCHEDULED — not
   * started — until a place frees. Default 0; raise it for many short jobs on one worker.
   */
  prefetch?: number;
  handlers: Record<string, Handler>;
  name?: string;
  labels?: Record<string, string>;
  /** How long a preempted handler may take to wind down after its signal is aborted, unless the job sets `grace_period` (ms). Default 30 000. */
  preempt_grace_ms?: number;
  /** Lease renewal interval (ms). Default: what the server says at registration (1000 unless GANTRY_HEARTBEAT_MS). */
  heartbeat_ms?: number;
  onError?: (err: Error) => void;
}

/**
 * Runs your own TypeScript handlers as Gantry jobs, inside your process:
 *
 * ```ts
 * const w = new Worker({ server, token, concurrency: 50, handlers: { 'send-email': async (job) => ({ sent: true }) } });
 * await w.start();
 * ```
 * It registers as a worker with `concurrency` slots; handler jobs are scheduled like any other.
 */
export class Worker {
  readonly #loop: WorkerLoop;

  constructor(opts: WorkerOptions) {
    const concurrency = opts.concurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a whole number ≥ 1, got ${concurrency}`);
    const prefetch = opts.prefetch ?? 0;
    if (!Number.isInteger(prefetch) || prefetch < 0) throw new RangeError(`prefetch must be a whole number ≥ 0, got ${prefetch}`);
    const handlers = Object.keys(opts.handlers);
    if (handlers.length === 0) throw new RangeError('a Worker needs at least one handler');
    this.#loop = new WorkerLoop(
      new GantryClient({ server: opts.server, token: opts.token }),
      { name: opts.name ?? `sdk@${hostname()}:${process.pid}`, kind: 'handler', handlers, capacity: { slots: concurrency + prefetch }, labels: opts.labels ?? {} },
      new HandlerExecutor(opts.handlers, concurrency, opts.preempt_grace_ms),
      { heartbeat_ms: opts.heartbeat_ms, poll_wait_ms: 20_000, onError: opts.onError },
    );
  }

  /** Registers and starts taking jobs. Resolves with the worker id. */
  start(): Promise<string> {
    return this.#loop.start();
  }

  get id(): string | null {
    return this.#loop.id;
  }

  /**
   * Graceful shutdown: tells the server this worker is draining (no new jobs), lets running
   * handlers finish for up to `grace_ms`, then aborts the rest (their `signal` fires) and
   * returns them to the queue at once — the attempt recorded as interrupted, not counted
   * against the retry budget, the last checkpoint kept for the next attempt.
   */
  stop(grace_ms = 10_000): Promise<void> {
    return this.#loop.stop(grace_ms);
  }

  /** The same as `stop(grace_ms)`. */
  close(grace_ms = 10_000): Promise<void> {
    return this.#loop.stop(grace_ms);
  }
}
