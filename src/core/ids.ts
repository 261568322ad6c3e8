import { randomBytes } from 'node:crypto';

/** Time-ordered, URL-safe ids such as `job_m3x9k2a1b4c5d6e7f8`. */
export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
}
