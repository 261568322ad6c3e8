import type { JobSpec } from '../core/types.ts';
import type { DirectPlacement, Store, SubmitResult } from '../store/store.ts';
import { CHANNELS } from '../store/store.ts';
import { WAKE } from '../scheduler/wakeReasons.ts';

interface Waiting {
  spec: JobSpec;
  actor: string;
  resolve: (r: SubmitResult) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for single-job submits (`POST /api/v1/jobs`): a submit that arrives while
 * `max_in_flight` submit transactions are already running waits for one of them to end and then
 * goes with every other submit that arrived meanwhile, in one transaction — one commit and one
 * wake-up of the scheduler for all of them, instead of one each. An idle server submits at once,
 * so a lone submit pays nothing. Each caller still gets its own job, or its own error: a combined
 * transaction that fails is run again one submit at a time, so one bad submit (a dependency on a
 * job that does not exist, say) never fails the others. Two submits with the same idempotency
 * key never share a transaction, so the second one finds the first's job.
 *
 * Where the store sends statements in turns (PostgreSQL, SqlDriver.holdTurn) and the scheduler is
 * idle, the scheduling cycle a submit calls for starts as its write is issued (`cycle_behind`): the
 * cycle's reads go out in the same pipeline, behind the write, and see the new jobs — a job's way to
 * a waiting worker is two round trips (the write with the reads, the admission), not three. The
 * wake-up after the commit is then not sent: that cycle has the jobs.
 *
 * A lone submit where the scheduler allows it (`direct`: SQLite, the scheduler idle with nothing queued
 * for its workers — Scheduler.directPlacement) places its job itself, in its own transaction, on a worker
 * whose poll waits here (src/store/ops/placeSubmitted.ts): the poll answers with it after the one commit,
 * and no scheduling cycle runs for it. When the rules leave it QUEUED, the wake-up goes as usual.
 */
export class SubmitCoalescer {
  readonly #store: Store;
  readonly #maxInFlight: number;
  readonly #maxBatch: number;
  readonly #cycleBehind: (() => boolean) | undefined;
  readonly #direct: (() => DirectPlacement | null) | undefined;
  readonly #placed: ((n: number) => void) | undefined;
  #waiting: Waiting[] = [];
  #inFlight = 0;
  /** Batches started so far (a batch's number tells whether another started while it was being written). */
  #started = 0;
  /** The writes in flight: each settles when its batch's write has committed or failed. */
  readonly #writing = new Set<Promise<unknown>>();

  constructor(
    store: Store,
    opts: { max_in_flight?: number; max_batch?: number; cycle_behind?: () => boolean; direct?: () => DirectPlacement | null; placed?: (n: number) => void } = {},
  ) {
    this.#store = store;
    this.#cycleBehind = opts.cycle_behind;
    this.#direct = opts.direct;
    this.#placed = opts.placed;
    this.#maxInFlight = opts.max_in_flight ?? 2;
    this.#maxBatch = opts.max_batch ?? 500;
  }

  submit(spec: JobSpec, actor: string): Promise<SubmitResult> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ spec, actor, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#inFlight < this.#maxInFlight && this.#waiting.length > 0) {
      const batch = this.#take();
      this.#inFlight++;
      void this.#run(batch).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }

  /** The next batch: one actor (events record who submitted), no idempotency key twice. */
  #take(): Waiting[] {
    const first = this.#waiting[0]!;
    const batch: Waiting[] = [];
    const rest: Waiting[] = [];
    const keys = new Set<string>();
    for (const w of this.#waiting) {
      const key = w.spec.idempotency_key === null ? null : `${w.spec.tenant}\u0000${w.spec.idempotency_key}`;
      if (batch.length >= this.#maxBatch || w.actor !== first.actor || (key !== null && keys.has(key))) {
        rest.push(w);
        continue;
      }
      if (key !== null) keys.add(key);
      batch.push(w);
    }
    this.#waiting = rest;
    return batch;
  }

  /**
   * A batch's write, tracked until it settles. Queue positions are only right when counted with every
   * write that overlapped this one committed: two batches in flight on PostgreSQL are two connections,
   * and which of them draws the lower `seq` (and so comes first in the queue among jobs of the same
   * millisecond) is not the order they started in. So a batch answers only once the writes in flight
   * when its own ended have settled (its callers count after that), and keeps the positions counted
   * inside its statement only if no other write was in flight at any time during its own.
   */
  async #write(specs: JobSpec[], actor: string): Promise<{ results: SubmitResult[]; scheduled: boolean; placed: boolean }> {
    const number = ++this.#started;
    const alone = this.#writing.size === 0;
    const place = specs.length === 1 ? (this.#direct?.() ?? undefined) : undefined;
    const held = !place && this.#cycleBehind !== undefined && this.#store.holdTurnForSubmit(specs);
    const write = this.#store.submitJobs(specs, actor, Date.now(), { positions: alone, place });
    // Started in the same turn as the write and after it: its reads follow the write (holdTurn).
    const scheduled = held && this.#cycleBehind!();
    this.#writing.add(write);
    try {
      const results = await write;
      const overlapped = !alone || this.#started !== number;
      const placed = place !== undefined && results[0]!.created && results[0]!.job.state === 'SCHEDULED';
      if (placed) this.#placed?.(1);
      return { results: overlapped ? results.map(({ queue_position: _, ...r }) => r) : results, scheduled, placed };
    } finally {
      this.#writing.delete(write);
      await Promise.allSettled([...this.#writing]);
    }
  }

  async #run(batch: Waiting[]): Promise<void> {
    try {
      const { results, scheduled, placed } = await this.#write(batch.map((w) => w.spec), batch[0]!.actor);
      if (results.some((r) => r.created)) {
        if (!scheduled && !placed) this.#store.notify(CHANNELS.SCHEDULE, WAKE.SUBMIT);
        // The scheduling cycle this wake-up starts goes first: on SQLite it runs to its end (and
        // hands the job to a waiting worker) within this turn of the event loop, before the submit
        // answers are built and written (queue position, estimate — several hundred µs). So does the
        // answer of the poll a direct placement woke.
        await new Promise((r) => setImmediate(r));
      }
      batch.forEach((w, i) => w.resolve(results[i]!));
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      // Someone's submit is bad: find out whose, each on its own.
      for (const w of batch) {
        try {
          const { results: [r], scheduled, placed } = await this.#write([w.spec], w.actor);
          if (r!.created && !scheduled && !placed) this.#store.notify(CHANNELS.SCHEDULE, WAKE.SUBMIT);
          w.resolve(r!);
        } catch (e) {
          w.reject(e);
        }
      }
    }
  }
}
