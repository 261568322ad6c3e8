/**
 * Cron expressions with time zones, through `croner` (no dependencies, IANA zones and DST
 * handled, 5- or 6-field patterns with seconds, `L`/`W`/`#` and nicknames like `@hourly`).
 */
import { Cron } from 'croner';
import { validationError } from '../core/errors.ts';

/** A checked cron expression in a time zone. */
export class CronSchedule {
  readonly #cron: Cron;
  constructor(expr: string, timezone: string, field = 'cron') {
    try {
      this.#cron = new Cron(expr, { timezone, paused: true });
    } catch (err) {
      throw validationError(field, `invalid cron expression '${expr}': ${(err as Error).message}`);
    }
    try {
      this.#cron.nextRun(new Date(0));
    } catch (err) {
      throw validationError('timezone', `unknown time zone '${timezone}' (use an IANA name such as Europe/Berlin or UTC)`);
    }
  }

  /** The first fire time strictly after `t` (epoch ms), or null if there is none. */
  next(t: number): number | null {
    const d = this.#cron.nextRun(new Date(t));
    return d ? d.getTime() : null;
  }

  /** Fire times in (from, to], oldest first, at most `max`. */
  between(from: number, to: number, max: number): number[] {
    const out: number[] = [];
    let t = this.next(from);
    while (t !== null && t <= to && out.length < max) {
      out.push(t);
      t = this.next(t);
    }
    return out;
  }
}
