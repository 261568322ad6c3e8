import { randomFillSync } from 'node:crypto';

const POOL = Buffer.alloc(6 * 1024);
let offset = POOL.length;

/** Six random bytes as hex, from a pool refilled 1,024 ids at a time (one system call, not one per id). */
function random12(): string {
  if (offset + 6 > POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  const s = POOL.toString('hex', offset, offset + 6);
  offset += 6;
  return s;
}

/** Time-ordered, URL-safe ids such as `job_m3x9k2a1b4c5d6e7f8`. */
export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${random12()}`;
}
