import { randomFillSync } from 'node:crypto';

const POOL = Buffer.alloc(6 * 1024);
let hex = '';
let offset = 0;

/**
 * Six random bytes as hex, from a pool refilled 1,024 ids at a time: one system call and one hex
 * conversion per refill, not one per id.
 */
function random12(): string {
  if (offset + 12 > hex.length) {
    randomFillSync(POOL);
    hex = POOL.toString('hex');
    offset = 0;
  }
  const s = hex.slice(offset, offset + 12);
  offset += 12;
  return s;
}

/** The time part of ids made within one millisecond (a batch's ids) is converted once. */
let lastMs = 0;
let lastTime = '';

/** Time-ordered, URL-safe ids such as `job_m3x9k2a1b4c5d6e7f8`. */
export function newId(prefix: string): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastTime = ms.toString(36);
  }
  return `${prefix}_${lastTime}${random12()}`;
}
