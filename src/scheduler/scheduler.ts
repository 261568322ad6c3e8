import type { Store, Assignment, QueueCursor } from '../store/store.ts';
import { CHANNELS } from '../store/store.ts';
import { buildWorkerViews, place, reserve, type WorkerSlotView } from './placement.ts';
import { BreakerGate, breakerKeysOf } from '../core/breakers.ts';

export interface SchedulerOptions {
  /** A worker silent this long is declared lost and its jobs requeued (ms). */
  lease_timeout_ms: number;
  /** How often the lease reaper looks (ms). */
  reap_interval_ms: number;
  /** A safety-net cycle even without wake-ups (ms). */
  idle_cycle_ms: number;
  /** How many queued jobs one cycle looks at, at most (keyset pages of 500). */
  scan_limit: number;
  /** How often a follower tries to become leader (ms). */
  leader_poll_ms: number;
  /** How long a breaker's probe may run before another probe is allowed (ms). */
  breaker_open_ms: number;
  log?: (msg: string, data?: Record<string, unknown>) => void;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = {
  lease_timeout_ms: 5000,
  reap_interval_ms: 1000,
  idle_cycle_ms: 1000,
  scan_limit: 5000,
  leader_poll_ms: 1000,
  breaker_open_ms: 30_000,
};

const PAGE = 500;

/**
 * The scheduler loop. Exactly one server runs it (the leader: an advisory lock on PostgreSQL,
 * the only server on SQLite). A cycle runs on wake-ups (submit, finish, worker join) and on a
 * slow timer, reads the queue in priority order and admits everything that fits, writing all
 * of a cycle's decisions in one transaction, then wakes the workers that got work.
 * Also runs the timers: lease reaper and retry backoff.
 */
export class Scheduler {
  readonly #store: Store;
  readonly #opts: SchedulerOptions;
  #leader = false;
  #running = false;
  #again = false;
  #stopped = false;
  #timers: NodeJS.Timeout[] = [];
  #retryTimer: NodeJS.Timeout | null = null;
  #unlisten: (() => void) | null = null;
  #cycleDone: Promise<void> = Promise.resolve();
  /** Counters for tests and metrics. */
  readonly stats = { cycles: 0, assigned: 0, requeued_lost: 0 };

  constructor(store: Store, opts: Partial<SchedulerOptions> = {}) {
    this.#store = store;
    this.#opts = { ...DEFAULT_SCHEDULER_OPTIONS, ...opts };
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  async start(): Promise<void> {
    this.#unlisten = this.#store.listen(CHANNELS.SCHEDULE, (payload) => {
      if (payload === 'retry') this.#checkRetries();
      this.requestCycle();
    });
    await this.#tryLead();
    this.#every(this.#opts.leader_poll_ms, () => this.#tryLead());
    this.#every(this.#opts.reap_interval_ms, () => this.#reap());
    this.#every(this.#opts.idle_cycle_ms, () => this.requestCycle());
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#unlisten?.();
    await this.#cycleDone;
    // Hand over at once rather than when the connection closes: another server's next try wins.
    if (this.#leader) {
      this.#leader = false;
      await this.#store.releaseLeadership().catch((err) => this.#log('releasing leadership failed', err));
    }
  }

  #every(ms: number, fn: () => Promise<void> | void): void {
    const t = setInterval(() => {
      if (!this.#stopped) void Promise.resolve(fn()).catch((err) => this.#log('timer failed', err));
    }, ms);
    t.unref();
    this.#timers.push(t);
  }

  #log(msg: string, err?: unknown): void {
    this.#opts.log?.(msg, err ? { error: (err as Error).message } : undefined);
  }

  async #tryLead(): Promise<void> {
    const was = this.#leader;
    this.#leader = await this.#store.tryLeadership();
    if (this.#leader && !was) {
      this.#log('became scheduler leader');
      // A new leader rebuilds everything from the store: nothing is carried in memory across cycles.
      this.#checkRetries();
      this.requestCycle();
    }
  }

  /** Asks for a cycle; wake-ups that arrive during a cycle fold into one more. */
  requestCycle(): void {
    if (!this.#leader || this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    this.#cycleDone = (async () => {
      try {
        do {
          this.#again = false;
          await this.cycle();
        } while (this.#again && !this.#stopped);
      } catch (err) {
        this.#log('scheduling cycle failed', err);
      } finally {
        this.#running = false;
      }
    })();
  }

  /** One scheduling cycle. Returns how many jobs were assigned. */
  async cycle(now = Date.now()): Promise<number> {
    this.stats.cycles++;
    const workers = (await this.#store.listWorkers()).filter((w) => w.state === 'online');
    if (workers.length === 0) return 0;
    const views = buildWorkerViews(workers, await this.#store.workerUsage());
    // One queue per executor kind ('' = commands, else a handler name); read only those some worker with room serves.
    const roomFor = (key: string) =>
      views.some((v) => v.free.slots > 0 && (key === '' ? v.kind === 'process' : v.kind === 'handler' && v.handlers.has(key)));
    // Open circuit breakers: their queues are not read at all; a breaker due a probe lets one job through.
    const gate = new BreakerGate(await this.#store.listBreakers(true), now);
    const keys = new Set<string>();
    for (const v of views) {
      if (v.free.slots <= 0) continue;
      if (v.kind === 'process') keys.add('');
      else for (const h of v.handlers) keys.add(h);
    }
    for (const key of keys) if (gate.blocks(key === '' ? 'executor:process' : `handler:${key}`)) keys.delete(key);
    if (keys.size === 0) return 0;
    const lanes = await Promise.all(
      [...keys].map(async (key) => ({ key, page: await this.#store.queuedJobs(PAGE, null, key), pos: 0, done: false })),
    );
    const assignments: Assignment[] = [];
    let scanned = 0;
    // Merge the queues in scheduling order (priority class, position, seq).
    while (scanned < this.#opts.scan_limit) {
      let best: (typeof lanes)[number] | null = null;
      for (const lane of lanes) {
        const head = lane.page[lane.pos];
        if (!head || !roomFor(lane.key)) continue;
        const b = best?.page[best.pos];
        if (!b || head.priority_rank < b.priority_rank || (head.priority_rank === b.priority_rank && (head.sort_key < b.sort_key || (head.sort_key === b.sort_key && head.seq < b.seq)))) {
          best = lane;
        }
      }
      if (!best) break;
      const j = best.page[best.pos++]!;
      scanned++;
      if (best.pos >= best.page.length && best.page.length === PAGE) {
        const cursor: QueueCursor = { priority_rank: j.priority_rank, sort_key: j.sort_key, seq: j.seq };
        best.page = await this.#store.queuedJobs(PAGE, cursor, best.key);
        best.pos = 0;
      }
      const spot = place(views, j);
      if (!spot || !gate.admit(j.id, breakerKeysOf(j))) continue;
      reserve(spot.worker, j, spot.gpu_indices);
      assignments.push({ job_id: j.id, worker_id: spot.worker.id, gpu_indices: spot.gpu_indices });
    }
    if (assignments.length === 0) return 0;
    const done = await this.#store.assignJobs(assignments, now);
    await this.#store.startProbes(gate.probes(new Set(done.map((a) => a.job_id))), this.#opts.breaker_open_ms, now);
    this.stats.assigned += done.length;
    for (const w of new Set(done.map((a) => a.worker_id))) this.#store.notify(CHANNELS.WORKER, w);
    return done.length;
  }

  async #reap(): Promise<void> {
    if (!this.#leader) return;
    const now = Date.now();
    const { workers, jobs } = await this.#store.reapLostWorkers(now - this.#opts.lease_timeout_ms, now);
    if (workers.length > 0) {
      this.stats.requeued_lost += jobs.length;
      this.#opts.log?.('workers lost; their jobs requeued', { workers, jobs: jobs.length });
      this.requestCycle();
    }
  }

  /** Moves due retries to the queue and arms a timer for the next one. */
  #checkRetries(): void {
    if (!this.#leader || this.#stopped) return;
    void this.#store
      .promoteDueRetries()
      .then(({ moved, next_due }) => {
        if (moved > 0) this.requestCycle();
        if (this.#retryTimer) clearTimeout(this.#retryTimer);
        this.#retryTimer = null;
        if (next_due !== null && !this.#stopped) {
          this.#retryTimer = setTimeout(() => this.#checkRetries(), Math.max(5, next_due - Date.now()));
          this.#retryTimer.unref();
        }
      })
      .catch((err) => this.#log('retry promotion failed', err));
  }
}

export type { WorkerSlotView };
