/**
 * A read that many callers share — the queue status a dashboard polls, counted over the whole backlog.
 * Callers that come while a read is under way get that read. A later caller gets a new read, unless
 * the last one was slow (took `slow_ms` or more: a big backlog) and is still young: at most
 * `min_age_ms` old, or `age_factor` times what it took — so however many callers poll, such reads
 * take at most about 1/`age_factor` of the time. Each answer carries `at`, the time its read started:
 * what it is exact as of. Reads quicker than `slow_ms` are made afresh for every caller.
 */
export interface SharedReadOptions {
  slow_ms: number;
  min_age_ms: number;
  age_factor: number;
}

/**
 * For counts over the backlog (queue status, a tenant's load): one that took 10 ms or more (tens of
 * thousands of queued jobs) is reused while it is at most 1 s old, or ten times what it took (1M
 * queued: a few seconds) — any number of dashboards polling cost at most about a tenth of one core's
 * time, or of the database's, in counting.
 */
export const SLOW_COUNT_REUSE: SharedReadOptions = { slow_ms: 10, min_age_ms: 1000, age_factor: 10 };

export class SharedRead<T> {
  readonly #read: (now: number) => Promise<T>;
  readonly #opts: SharedReadOptions;
  #running: Promise<{ value: T; at: number }> | null = null;
  #last: { value: T; at: number; took: number } | null = null;

  constructor(read: (now: number) => Promise<T>, opts: SharedReadOptions) {
    this.#read = read;
    this.#opts = opts;
  }

  get(now = Date.now()): Promise<{ value: T; at: number }> {
    if (this.#running) return this.#running;
    const last = this.#last;
    if (last && last.took >= this.#opts.slow_ms && now >= last.at && now - last.at <= Math.max(this.#opts.min_age_ms, this.#opts.age_factor * last.took)) {
      return Promise.resolve({ value: last.value, at: last.at });
    }
    const t0 = performance.now();
    const running = (this.#running = this.#read(now)
      .then((value) => {
        this.#last = { value, at: now, took: performance.now() - t0 };
        return { value, at: now };
      })
      .finally(() => {
        if (this.#running === running) this.#running = null;
      }));
    return running;
  }
}
