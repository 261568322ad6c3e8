import { PRIORITIES, type Priority } from './types.ts';

/** Rank 0 is the most urgent. The queue index orders by (rank, sort_key). */
export function priorityRank(p: Priority): number {
  return PRIORITIES.indexOf(p);
}

const ALIASES: Readonly<Record<string, Priority>> = { urgent: 'critical' };

/** Accepts the five priorities and `urgent` (seed 002) as an alias of `critical`. */
export function parsePriority(value: string): Priority | null {
  const v = value.toLowerCase();
  if ((PRIORITIES as readonly string[]).includes(v)) return v as Priority;
  return ALIASES[v] ?? null;
}
