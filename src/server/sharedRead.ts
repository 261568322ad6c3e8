/**
 * A read that many callers share — the queue status a dashboard polls, counted over the whole backlog.
 * Callers that come while a read is under way get that read. A later caller gets a new read, unless
 * the last one was slow (took `slow_ms` or more: a big backlog) and is at most `max_age_ms` old: then
 * it gets that one, so any number of pollers cost at most one long count per `max_age_ms`. Each answer
 * carries `at`, the time its read started — what it is exact as of. Cheap reads are always fresh.
 */
export class SharedRead<T> {
  readonly #read: (now: number) => Promise<T>;
  readonly #slowMs: number;
  readonly #maxAgeMs: number;
  #running: Promise<{ value: T; at: number }> | null = null;
  #last: { value: T; at: number; took: number } | null = null;

  constructor(read: (now: number) => Promise<T>, opts: { slow_ms: number; max_age_ms: number }) {
    this.#read = read;
    this.#slowMs = opts.slow_ms;
    this.#maxAgeMs = opts.max_age_ms;
  }

  get(now = Date.now()): Promise<{ value: T; at: number }> {
    if (this.#running) return this.#running;
    const last = this.#last;
    if (last && last.took >= this.#slowMs && now >= last.at && now - last.at <= this.#maxAgeMs) return Promise.resolve(last);
    const at = now;
    const t0 = performance.now();
    const running = (this.#running = this.#read(at).then(
      (value) => {
        this.#last = { value, at, took: performance.now() - t0 };
        return { value, at };
      },
    ).finally(() => {
      if (this.#running === running) this.#running = null;
    }));
    return running;
  }
}
