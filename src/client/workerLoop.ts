import { newId } from '../core/ids.ts';
import { GantryApiError, type Assignment, type AttemptReport, type CheckpointData, type Control, type GantryClient, type LogUpload } from './http.ts';

/** What an executor tells the loop about a job it runs. */
export interface JobContext {
  /** The job really began (process spawned, handler called): the server moves it to RUNNING. */
  started(): void;
  /** The final outcome (exactly once), or `paused` / `resumed`. */
  report(r: Omit<AttemptReport, 'job_id' | 'attempt_id'>): void;
  log(stream: 'stdout' | 'stderr', data: string): void;
  progress(fraction: number): void;
  /** Saves a checkpoint; the next attempt of this job (retry, lost worker, shutdown) receives the last one. */
  checkpoint(c: CheckpointData): void;
}

/** Runs jobs of one kind: child processes (gantry worker) or in-process handlers (SDK Worker). */
export interface Executor {
  start(job: Assignment, ctx: JobContext): void;
  control(jobId: string, control: Exclude<Control['control'], 'start'>): void;
  /** Stops every running job at once (lease lost, or shutdown past its deadline); their last checkpoints are reported first. */
  stopAll(): Promise<void>;
}

export interface WorkerRegistration {
  id?: string;
  name: string;
  kind: 'process' | 'handler';
  handlers?: string[];
  capacity: { cpu_cores?: number; memory_gb?: number; gpu_count?: number; slots: number };
  labels?: Record<string, string>;
}

export interface WorkerLoopOptions {
  /** Heartbeat interval (ms); unset = what the server says when the worker registers. */
  heartbeat_ms?: number;
  poll_wait_ms: number;
  /** Called for protocol trouble worth a line in the log. */
  onError?: (err: Error) => void;
}

const FINAL = new Set(['completed', 'failed', 'timeout', 'cancelled', 'preempted']);
const MAX_LOG_CHUNK = 64 * 1024;

/**
 * The worker side of the protocol: register, heartbeat (the lease on every job it holds),
 * long-poll for assignments and controls, and report results and logs in batches — whatever
 * piles up while one report is in flight goes in the next, so load makes batches, not requests.
 */
export class WorkerLoop {
  readonly #client: GantryClient;
  readonly #reg: WorkerRegistration;
  readonly #exec: Executor;
  readonly #opts: WorkerLoopOptions;
  #id: string | null = null;
  #running = new Map<string, Assignment>();
  #reports: AttemptReport[] = [];
  #logs: LogUpload[] = [];
  #flushing: Promise<void> | null = null;
  #flushQueued = false;
  /** A report request is on its way (not just a flush waiting for its batch to fill). */
  #reporting = false;
  /** The server refused a poll that carried reports (one that predates it): reports go by /report only. */
  #noCarry = false;
  #stopped = false;
  #stopping: Promise<void> | null = null;
  #polling: Promise<void> | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  #heartbeatTimeout: number | undefined;
  #idle: (() => void)[] = [];
  /** Attempts that ended here but whose final report the server has not acknowledged yet. */
  #settling = new Set<string>();
  /**
   * `started` reports not sent yet, by attempt id: a final report that comes before they leave
   * takes its attempt's out (it says it all), so a job that starts and ends between two batches
   * sends one report. They go out ahead of `#reports` (an attempt's start precedes all else about it).
   */
  readonly #starts = new Map<string, AttemptReport>();
  /** The poll in flight: aborted by stop(), and when the client moves to another server (the next poll starts there at once). */
  #pollAbort: AbortController | null = null;
  /**
   * Gang members held here, not started, until the server's `start` control (every member of the
   * gang is on its worker: the start barrier, src/store/ops/gangs.ts). By attempt id (member token).
   */
  readonly #awaitingStart = new Map<string, { start: () => void; ctx: JobContext }>();

  constructor(client: GantryClient, reg: WorkerRegistration, exec: Executor, opts: WorkerLoopOptions) {
    this.#client = client;
    this.#reg = reg;
    this.#exec = exec;
    this.#opts = opts;
    // Several servers on one database: on a connection error or a 503 the client moves to the
    // next one (heartbeat, poll and report alike, see GantryClient.request). The worker keeps its
    // id — every server shares the database — and registers again only if the new server says it
    // is unknown or lost; reports waiting in the outbox are re-sent there by #flush.
    client.onFailover((from, to, reason) => {
      this.#opts.onError?.(new Error(`server ${from} failed (${reason}); switched to ${to}`));
      this.#pollAbort?.abort();
    });
  }

  get id(): string | null {
    return this.#id;
  }
  get runningCount(): number {
    return this.#running.size;
  }

  async start(): Promise<string> {
    // The id is chosen here, so registering is an upsert the client may re-send to another server.
    const r = await this.#client.registerWorker({ ...this.#reg, id: this.#reg.id ?? this.#id ?? newId('wkr') });
    this.#id = r.worker_id;
    const interval = this.#opts.heartbeat_ms ?? r.heartbeat_interval_ms ?? 1000;
    // With somewhere else to go, a heartbeat a hung server sits on gives up after 3/4 of an
    // interval: the beat after the last good one then lands elsewhere within 1.75 intervals,
    // inside the lease (at least two). One server: nowhere to go, the usual timeout.
    if (this.#client.servers.length > 1) this.#heartbeatTimeout = Math.max(200, Math.floor(interval * 0.75));
    this.#heartbeat = setInterval(() => void this.#beat(), interval);
    this.#polling = this.#pollLoop();
    return r.worker_id;
  }

  async #beat(): Promise<void> {
    // Beats on while a stopping worker lets its jobs finish (the interval is cleared at the end).
    if (!this.#id) return;
    try {
      await this.#client.heartbeat(this.#id, this.#heartbeatTimeout);
    } catch (err) {
      if (err instanceof GantryApiError && err.status === 404) {
        // Declared lost: our jobs were requeued elsewhere. Stop them here and come back fresh.
        this.#opts.onError?.(new Error(`worker ${this.#id} lost its lease; stopping ${this.#running.size} jobs and registering again`));
        this.#running.clear();
        this.#awaitingStart.clear();
        await this.#exec.stopAll();
        if (this.#stopped) return;
        try {
          await this.#client.registerWorker({ ...this.#reg, id: this.#id });
        } catch (e) {
          this.#opts.onError?.(e as Error);
        }
      } else {
        this.#opts.onError?.(err as Error);
      }
    }
  }

  async #pollLoop(): Promise<void> {
    while (!this.#stopped) {
      const pollAbort = new AbortController();
      this.#pollAbort = pollAbort;
      const carry = this.#takeEnded();
      try {
        const { jobs, controls, results } = await this.#client.poll(
          this.#id!,
          this.#opts.poll_wait_ms,
          this.#held(carry),
          pollAbort.signal,
          carry ? { reports: carry, logs: [] } : undefined,
        );
        if (carry && results) this.#settled(carry);
        if (this.#stopped) break;
        for (const c of controls) {
          if (this.#running.get(c.job_id)?.attempt_id !== c.attempt_id) continue;
          const held = this.#awaitingStart.get(c.attempt_id);
          if (held) {
            // A gang member still at the barrier: start it, or end it unstarted.
            if (c.control === 'start' || c.control === 'cancel' || c.control === 'preempt') this.#awaitingStart.delete(c.attempt_id);
            if (c.control === 'start') held.start();
            else if (c.control === 'cancel') held.ctx.report({ outcome: 'cancelled' });
            else if (c.control === 'preempt') held.ctx.report({ outcome: 'preempted' });
          } else if (c.control !== 'start') {
            this.#exec.control(c.job_id, c.control);
          }
        }
        for (const j of jobs) this.#launch(j);
      } catch (err) {
        // Refused with the reports on board: poll again at once without them (they go by /report).
        if (carry && this.#carryFailed(carry, err) && !this.#stopped) continue;
        if (this.#stopped) break;
        // Cut short by a switch to another server: poll there at once.
        if (pollAbort.signal.aborted) continue;
        this.#opts.onError?.(err as Error);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  #launch(job: Assignment): void {
    if (this.#running.get(job.job_id)?.attempt_id === job.attempt_id || this.#settling.has(job.attempt_id)) return;
    this.#running.set(job.job_id, job);
    let done = false;
    let started = false;
    const ctx: JobContext = {
      started: () => {
        if (done || started) return;
        started = true;
        // Rides in the next batch; if the job ends before that batch leaves, the final report alone says it all.
        this.#starts.set(job.attempt_id, { job_id: job.job_id, attempt_id: job.attempt_id, outcome: 'started' });
        this.#flush();
      },
      report: (r) => {
        if (done) return;
        if (FINAL.has(r.outcome)) {
          done = true;
          this.#starts.delete(job.attempt_id);
          // Until the server has this report the job is still SCHEDULED/RUNNING there: keep claiming it.
          this.#settling.add(job.attempt_id);
          // Logs written before the end go out first, in the same batch.
          this.#running.delete(job.job_id);
          if (this.#running.size === 0 && this.#idle.length > 0) for (const f of this.#idle.splice(0)) f();
        }
        // The report's own fields first (a plain copy), the loop's ids last (they win).
        this.#reports.push({ ...r, job_id: job.job_id, attempt_id: job.attempt_id });
        this.#flush();
      },
      log: (stream, data) => {
        for (let i = 0; i < data.length; i += MAX_LOG_CHUNK) {
          this.#logs.push({ job_id: job.job_id, attempt: job.attempt, stream, data: data.slice(i, i + MAX_LOG_CHUNK), at: Date.now() });
        }
        this.#flush();
      },
      progress: (p) => {
        if (done) return;
        this.#reports.push({ job_id: job.job_id, attempt_id: job.attempt_id, outcome: 'progress', progress: Math.min(1, Math.max(0, p)) });
        this.#flush();
      },
      checkpoint: (c) => {
        // Also after a shutdown stopped the job (done stays false then): the next attempt starts from it.
        if (done) return;
        this.#reports.push({ job_id: job.job_id, attempt_id: job.attempt_id, outcome: 'checkpoint', checkpoint: { data: c.data ?? null, file: c.file ?? null } });
        this.#flush();
      },
    };
    const start = () => {
      try {
        this.#exec.start(job, ctx);
      } catch (err) {
        ctx.report({ outcome: 'failed', error: `could not start: ${(err as Error).message}`, non_retryable: true });
      }
    };
    // A gang member waits for `start` (the next poll lists it as held, which tells the server it is here).
    if (job.gang) this.#awaitingStart.set(job.attempt_id, { start, ctx });
    else start();
  }

  /**
   * Everything waiting to be reported, to ride along with the next poll — only when it is all
   * about attempts that ended here (nothing more will be said about them, so no later report can
   * overtake it) and no report request is on its way (nothing said earlier is still in flight).
   * A handler that finishes before the worker polls again (short jobs) then costs one request,
   * not a poll and a report. Null: the flush sends them as usual.
   */
  #takeEnded(): AttemptReport[] | null {
    // Log chunks (a flush sends them ahead of their job's end) keep the usual way.
    // A queued `started` report is of an attempt still running (its final report would have taken it out).
    if (this.#noCarry || this.#reporting || this.#reports.length === 0 || this.#logs.length > 0 || this.#starts.size > 0) return null;
    const reports = this.#reports;
    // Usually every report is final (W1: 500 of them): no set of ended attempts needed.
    if (!reports.every((r) => FINAL.has(r.outcome))) {
      const ended = new Set(reports.filter((r) => FINAL.has(r.outcome)).map((r) => r.attempt_id));
      if (!reports.every((r) => ended.has(r.attempt_id))) return null;
    }
    this.#reports = [];
    return reports;
  }

  /**
   * The attempts to list as held in a poll: running here or not yet settled, except those whose
   * final reports this poll carries — the server applies them before it looks, and an ended
   * attempt is never handed out again (a W1 poll would otherwise list the 500 it reports). A gang
   * member's token (`attempt.rank`) stays listed: its job may still run on other workers.
   */
  #held(carry: readonly AttemptReport[] | null): string[] {
    const held: string[] = [];
    for (const j of this.#running.values()) held.push(j.attempt_id);
    if (!carry) {
      for (const a of this.#settling) held.push(a);
      return held;
    }
    const reported = new Set<string>();
    for (const r of carry) if (FINAL.has(r.outcome) && !r.attempt_id.includes('.')) reported.add(r.attempt_id);
    for (const a of this.#settling) if (!reported.has(a)) held.push(a);
    return held;
  }

  /** The server has these reports (applied, or stale there): their attempts no longer need holding. */
  #settled(reports: readonly AttemptReport[]): void {
    for (const r of reports) if (FINAL.has(r.outcome)) this.#settling.delete(r.attempt_id);
  }

  /**
   * A poll that carried reports failed: they go back to the outbox and out by /report — maybe
   * applied already, but a report names its attempt, so a second copy is recorded stale, never
   * applied twice. A 4xx (a server that predates carried reports refuses the fields; or a bad
   * report, which /report then refuses and drops as usual) also stops carrying for good.
   * Returns whether it was a 4xx.
   */
  #carryFailed(carry: readonly AttemptReport[], err: unknown): boolean {
    this.#reports.unshift(...carry);
    this.#flush();
    const refused = err instanceof GantryApiError && err.status >= 400 && err.status < 500;
    if (refused) this.#noCarry = true;
    return refused;
  }

  /** Reports or log chunks wait to be sent. */
  #pending(): boolean {
    return this.#starts.size > 0 || this.#reports.length > 0 || this.#logs.length > 0;
  }

  /** The queued reports, `started` ones first, taken out of the outbox. */
  #takeQueued(): AttemptReport[] {
    const reports = this.#starts.size > 0 ? [...this.#starts.values(), ...this.#reports] : this.#reports;
    this.#starts.clear();
    this.#reports = [];
    return reports;
  }

  /** Sends what has piled up; one request in flight at a time. */
  #flush(): void {
    if (this.#flushing) {
      this.#flushQueued = true;
      return;
    }
    this.#flushing = (async () => {
      // Let same-tick reports join this batch.
      await new Promise((r) => setImmediate(r));
      do {
        this.#flushQueued = false;
        const reports = this.#takeQueued();
        const logs = this.#logs.splice(0);
        if (reports.length === 0 && logs.length === 0) break;
        // Until this batch has landed (or was given up), nothing may overtake it in a poll.
        this.#reporting = true;
        try {
          for (let tries = 0; ; tries++) {
            try {
              await this.#client.report(this.#id!, reports, logs);
              this.#settled(reports);
              break;
            } catch (err) {
              // A rejected batch (4xx) will not get better; anything else is retried until it lands.
              if (err instanceof GantryApiError && err.status >= 400 && err.status < 500) {
                this.#opts.onError?.(err);
                for (const r of reports) this.#settling.delete(r.attempt_id);
                break;
              }
              if (this.#stopped && tries > 20) break;
              await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** tries)));
            }
          }
        } finally {
          this.#reporting = false;
        }
      } while (this.#flushQueued || this.#pending());
      this.#flushing = null;
    })();
  }

  /**
   * Stops taking work; running jobs get `grace_ms` to finish, then are stopped. Pending
   * reports are flushed and the worker deregisters.
   */
  async stop(grace_ms = 0): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#stopping = (async () => {
      this.#stopped = true;
      this.#pollAbort?.abort();
      // Draining: the scheduler gives this worker nothing new. The heartbeat goes on while jobs
      // finish, so a grace period longer than the lease does not get them declared lost.
      // Not awaited: a server that is slow to answer must not eat into the grace period.
      const draining = this.#id ? this.#client.drainWorker(this.#id).catch(() => {}) : Promise.resolve();
      // Gang members that never started have nothing to finish: deregistering requeues their gangs.
      for (const [attemptId] of this.#awaitingStart) {
        for (const [jobId, j] of this.#running) if (j.attempt_id === attemptId) this.#running.delete(jobId);
      }
      this.#awaitingStart.clear();
      if (this.#running.size > 0 && grace_ms > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([new Promise<void>((r) => this.#idle.push(r)), new Promise((r) => (timer = setTimeout(r, grace_ms)))]);
        clearTimeout(timer);
      }
      if (this.#running.size > 0) await this.#exec.stopAll();
      // The aborted poll has ended (reports it carried are back in the outbox) before the last flush.
      await this.#polling?.catch(() => {});
      while (this.#flushing || this.#pending()) {
        if (!this.#flushing) this.#flush();
        await this.#flushing;
      }
      if (this.#heartbeat) clearInterval(this.#heartbeat);
      await draining;
      // Deregistering returns every job still held to the queue at once, its attempt recorded
      // as interrupted (not counted against the retry budget), its checkpoint kept.
      if (this.#id) await this.#client.deregister(this.#id).catch(() => {});
    })();
    return this.#stopping;
  }
}
