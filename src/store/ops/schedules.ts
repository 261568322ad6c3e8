/**
 * Cron schedules: create, read, update, delete, and their fire history.
 * Firing itself is in fireSchedule.ts.
 */
import { newId } from '../../core/ids.ts';
import { GantryError, notFound } from '../../core/errors.ts';
import type { Row, SqlExecutor } from '../driver.ts';

export const CATCHUP_POLICIES = ['none', 'last', 'all'] as const;
export const OVERLAP_POLICIES = ['skip', 'buffer_one', 'allow', 'cancel_other'] as const;
export type CatchupPolicy = (typeof CATCHUP_POLICIES)[number];
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

/** What a schedule starts: a job (a job request as POST /jobs takes it) or a workflow run. */
export type ScheduleTarget =
  | { kind: 'job'; job: Record<string, unknown> }
  | { kind: 'workflow'; workflow: string; parameters: Record<string, unknown> };

export interface Schedule {
  id: string;
  name: string;
  cron: string;
  timezone: string;
  target: ScheduleTarget;
  catchup: CatchupPolicy;
  /** Seconds: how far back `catchup: all` (and `last`) look for missed fire times. */
  catchup_window: number;
  overlap: OverlapPolicy;
  enabled: boolean;
  /** Fire times up to here are handled (fired, skipped or buffered). */
  cursor_at: number;
  /** buffer_one: a fire time waiting for the previous target to finish. */
  buffered_fire: number | null;
  /** The job or run the latest fire started. */
  last_target_id: string | null;
  created_at: number;
  updated_at: number;
}

export interface ScheduleFire {
  schedule_id: string;
  fire_time: number;
  /** scheduled | catchup | backfill */
  kind: string;
  /** started | skipped | buffered | failed (the target could not start) */
  outcome: string;
  target_id: string | null;
  created_at: number;
}

export function scheduleFromRow(r: Row): Schedule {
  const target = JSON.parse(String(r.target)) as Record<string, unknown>;
  return {
    id: String(r.id), name: String(r.name), cron: String(r.cron), timezone: String(r.timezone),
    target: { kind: r.target_kind, ...target } as ScheduleTarget,
    catchup: r.catchup as CatchupPolicy, catchup_window: Number(r.catchup_window), overlap: r.overlap as OverlapPolicy,
    enabled: Number(r.enabled) === 1, cursor_at: Number(r.cursor_at), buffered_fire: r.buffered_fire === null ? null : Number(r.buffered_fire),
    last_target_id: r.last_target_id === null ? null : String(r.last_target_id), created_at: Number(r.created_at), updated_at: Number(r.updated_at),
  };
}

export type ScheduleInput = Pick<Schedule, 'name' | 'cron' | 'timezone' | 'target' | 'catchup' | 'catchup_window' | 'overlap' | 'enabled'>;

function targetJson(t: ScheduleTarget): string {
  const { kind: _kind, ...rest } = t;
  return JSON.stringify(rest);
}

/** Creates a schedule; it fires from `now` on (earlier times are never "missed"). Names are unique. */
export async function createSchedule(tx: SqlExecutor, s: ScheduleInput, now: number): Promise<Schedule> {
  const dup = await tx.query('SELECT id FROM schedules WHERE name = ?', [s.name]);
  if (dup[0]) throw new GantryError('CONFLICT', `a schedule named '${s.name}' exists (${String(dup[0].id)}); update it with PUT`, { field: 'name', id: String(dup[0].id) });
  const id = newId('sch');
  await tx.run(
    `INSERT INTO schedules (id, name, cron, timezone, target_kind, target, catchup, catchup_window, overlap, enabled, cursor_at, buffered_fire, last_target_id, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)`,
    [id, s.name, s.cron, s.timezone, s.target.kind, targetJson(s.target), s.catchup, s.catchup_window, s.overlap, s.enabled ? 1 : 0, now, now, now],
  );
  return (await getSchedule(tx, id))!;
}

/** A schedule by id or name. */
export async function getSchedule(tx: SqlExecutor, ref: string): Promise<Schedule | null> {
  const rows = await tx.query('SELECT * FROM schedules WHERE id = ? OR name = ?', [ref, ref]);
  return rows[0] ? scheduleFromRow(rows[0]) : null;
}

export async function listSchedules(tx: SqlExecutor): Promise<Schedule[]> {
  return (await tx.query('SELECT * FROM schedules ORDER BY name')).map(scheduleFromRow);
}

/** Replaces a schedule's settings. Re-enabling a paused schedule starts it from `now` unless it catches up. */
export async function updateSchedule(tx: SqlExecutor, ref: string, s: ScheduleInput, now: number): Promise<Schedule> {
  const cur = await getSchedule(tx, ref);
  if (!cur) throw notFound('schedule', ref);
  const clash = await tx.query('SELECT id FROM schedules WHERE name = ? AND id != ?', [s.name, cur.id]);
  if (clash[0]) throw new GantryError('CONFLICT', `a schedule named '${s.name}' exists (${String(clash[0].id)})`, { field: 'name' });
  const restart = !cur.enabled && s.enabled && s.catchup === 'none';
  await tx.run(
    `UPDATE schedules SET name = ?, cron = ?, timezone = ?, target_kind = ?, target = ?, catchup = ?, catchup_window = ?, overlap = ?, enabled = ?,
       cursor_at = ?, updated_at = ? WHERE id = ?`,
    [s.name, s.cron, s.timezone, s.target.kind, targetJson(s.target), s.catchup, s.catchup_window, s.overlap, s.enabled ? 1 : 0,
      restart ? now : cur.cursor_at, now, cur.id],
  );
  return (await getSchedule(tx, cur.id))!;
}

export async function deleteSchedule(tx: SqlExecutor, ref: string): Promise<Schedule> {
  const cur = await getSchedule(tx, ref);
  if (!cur) throw notFound('schedule', ref);
  await tx.run('DELETE FROM schedules WHERE id = ?', [cur.id]);
  await tx.run('DELETE FROM schedule_fires WHERE schedule_id = ?', [cur.id]);
  return cur;
}

/** A schedule's fires, newest first. */
export async function scheduleFires(tx: SqlExecutor, id: string, limit: number): Promise<ScheduleFire[]> {
  const rows = await tx.query('SELECT * FROM schedule_fires WHERE schedule_id = ? ORDER BY fire_time DESC LIMIT ?', [id, limit]);
  return rows.map((r) => ({
    schedule_id: String(r.schedule_id), fire_time: Number(r.fire_time), kind: String(r.kind), outcome: String(r.outcome),
    target_id: r.target_id === null ? null : String(r.target_id), created_at: Number(r.created_at),
  }));
}
