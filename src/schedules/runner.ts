/**
 * The schedule runner: on the scheduler leader only, fires every enabled schedule at its cron
 * times (a timer armed for the next one), catches up missed times by each schedule's policy,
 * and starts buffered fires (overlap buffer_one) once the previous target ends. The clock and
 * the leadership test are injectable so tests drive it with a fake clock.
 */
import type { Store } from '../store/store.ts';
import type { Schedule } from '../store/ops/schedules.ts';
import { CronSchedule } from './cron.ts';

export interface ScheduleRunnerOptions {
  now?: () => number;
  isLeader: () => boolean;
  /** A fire time older than this when found is "missed" (catch-up rules apply), ms. */
  grace_ms?: number;
  /** Longest sleep between looks (new or edited schedules wake the runner at once anyway), ms. */
  max_sleep_ms?: number;
  log?: (msg: string, data?: Record<string, unknown>) => void;
}

/** Most fire times one schedule handles in one look (a per-second cron after a long outage). */
const MAX_FIRES_PER_TICK = 1000;

/**
 * Which of the due fire times (cursor, now] to fire. none: only those still within the grace
 * period (missed ones are dropped); last: the latest one; all: every one within the window.
 */
export function fireTimesDue(s: Pick<Schedule, 'cron' | 'timezone' | 'catchup' | 'catchup_window' | 'cursor_at'>, now: number, graceMs: number): { fire: number[]; cursor: number | null } {
  const cron = new CronSchedule(s.cron, s.timezone);
  if (s.catchup === 'all') {
    const from = Math.max(s.cursor_at, now - s.catchup_window * 1000);
    const fire = cron.between(from, now, MAX_FIRES_PER_TICK);
    const last = fire[fire.length - 1];
    return { fire, cursor: last ?? latestDue(cron, s.cursor_at, now) };
  }
  const latest = latestDue(cron, s.cursor_at, now);
  if (latest === null) return { fire: [], cursor: null };
  if (s.catchup === 'last') return { fire: latest >= now - s.catchup_window * 1000 ? [latest] : [], cursor: latest };
  return { fire: latest >= now - graceMs ? [latest] : [], cursor: latest };
}

/** The latest fire time in (from, to], looking back in widening windows so a busy cron costs little. */
function latestDue(cron: CronSchedule, from: number, to: number): number | null {
  for (const back of [60_000, 3_600_000, 86_400_000, 31 * 86_400_000, Number.POSITIVE_INFINITY]) {
    const start = Math.max(from, to - back);
    let t = cron.next(start);
    if (t === null || t > to) {
      if (start === from) return null;
      continue;
    }
    // Walk forward to the last one (bounded: the window is small unless nothing fired lately).
    for (let n = 0; n < 100_000; n++) {
      const nx = cron.next(t);
      if (nx === null || nx > to) return t;
      t = nx;
    }
    return t;
  }
  return null;
}

export class ScheduleRunner {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #opts: Required<Omit<ScheduleRunnerOptions, 'now' | 'log'>> & Pick<ScheduleRunnerOptions, 'log'>;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #stopped = true;
  readonly stats = { fires: 0, skipped: 0 };

  constructor(store: Store, opts: ScheduleRunnerOptions) {
    this.#store = store;
    this.#now = opts.now ?? Date.now;
    this.#opts = { isLeader: opts.isLeader, grace_ms: opts.grace_ms ?? 60_000, max_sleep_ms: opts.max_sleep_ms ?? 60_000, log: opts.log };
  }

  /** Starts looking (catch-up of missed fire times happens in the first look). */
  start(): void {
    this.#stopped = false;
    this.wake();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  /** Look now (a schedule was created or changed, or a target ended). */
  wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          const next = await this.tick();
          this.#arm(next);
        } while (this.#again && !this.#stopped);
      } catch (err) {
        this.#opts.log?.('schedule tick failed', { error: (err as Error).message });
        this.#arm(null);
      } finally {
        this.#running = null;
      }
    })();
  }

  #arm(next: number | null): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    const wait = Math.min(this.#opts.max_sleep_ms, next === null ? Number.POSITIVE_INFINITY : Math.max(0, next - this.#now()));
    this.#timer = setTimeout(() => this.wake(), wait);
    this.#timer.unref();
  }

  /**
   * One look at every schedule: fires what is due and releases buffered fires. Returns when
   * the next look is needed (epoch ms), or null. Fires nothing on a follower.
   */
  async tick(now = this.#now()): Promise<number | null> {
    // A follower looks again soon: if it becomes leader it takes over within a second.
    if (!this.#opts.isLeader()) return now + 1000;
    let next: number | null = null;
    const soon = (t: number | null) => {
      if (t !== null && (next === null || t < next)) next = t;
    };
    for (const s of await this.#store.listSchedules()) {
      if (!s.enabled) continue;
      try {
        if (s.buffered_fire !== null) {
          const r = await this.#store.releaseBufferedFire(s.id, now);
          if (r) this.stats.fires++;
          // The previous target may still run: look again soon.
          else soon(now + 1000);
        }
        const due = fireTimesDue(s, now, this.#opts.grace_ms);
        for (const t of due.fire) {
          const r = await this.#store.fireSchedule(s.id, t, now - t > this.#opts.grace_ms ? 'catchup' : 'scheduled', now);
          if (r.outcome === 'started') this.stats.fires++;
          else if (r.outcome === 'skipped') this.stats.skipped++;
          if (r.outcome === 'buffered') soon(now + 1000);
        }
        if (due.cursor !== null) await this.#store.advanceScheduleCursor(s.id, due.cursor);
        soon(new CronSchedule(s.cron, s.timezone).next(Math.max(now, due.cursor ?? 0)));
      } catch (err) {
        this.#opts.log?.('schedule failed to fire', { schedule: s.name, error: (err as Error).message });
      }
    }
    return next;
  }

  /**
   * Backfill: fires every cron time in [from, to] that has not fired yet (kind `backfill`,
   * overlap `allow`). Returns what each did.
   */
  async backfill(id: string, from: number, to: number, max = 1000): Promise<{ fire_time: number; outcome: string; target_id: string | null }[]> {
    const s = await this.#store.getSchedule(id);
    if (!s) return [];
    const times = new CronSchedule(s.cron, s.timezone).between(from - 1, to, max);
    const out: { fire_time: number; outcome: string; target_id: string | null }[] = [];
    for (const t of times) {
      const r = await this.#store.fireSchedule(s.id, t, 'backfill', this.#now(), 'allow');
      out.push({ fire_time: t, outcome: r.outcome, target_id: r.target_id });
    }
    return out;
  }
}
