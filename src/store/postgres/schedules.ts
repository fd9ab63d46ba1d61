/** Schedule rows on PostgreSQL; a firing (which also enqueues) is recorded here and enqueued by the store. */
import type { ScheduleDefinition, ScheduleRecord, ScheduleRun } from '../../core/schedule.js';
import type { ScheduleFiring } from '../port.js';
import { scheduleFromRow, scheduleRunFromRow, templateJson, toBuffer, type ScheduleRow, type ScheduleRunRow } from '../rows.js';
import { exec, first, rows, type Db } from './sql.js';

export async function saveSchedule(db: Db, definition: ScheduleDefinition, nextAt: number | undefined, at: number): Promise<void> {
  const { template } = definition;
  await exec(
    db,
    `INSERT INTO schedules (id, cron, destination, template, body, created_at, updated_at, next_at)
     VALUES ($1, $2, $3, $4, $5, $6, $6, $7)
     ON CONFLICT (id) DO UPDATE SET cron = excluded.cron, destination = excluded.destination,
       template = excluded.template, body = excluded.body, updated_at = excluded.updated_at,
       next_at = CASE WHEN schedules.paused THEN NULL ELSE excluded.next_at END`,
    [
      definition.scheduleId,
      definition.cron,
      template.destination,
      templateJson(template),
      toBuffer(template.body),
      at,
      nextAt ?? null,
    ],
  );
}

export async function getSchedule(db: Db, id: string): Promise<ScheduleRecord | undefined> {
  const row = await first<ScheduleRow>(db, 'SELECT * FROM schedules WHERE id = $1', [id]);
  return row && scheduleFromRow(row);
}

export async function listSchedules(db: Db): Promise<ScheduleRecord[]> {
  return (await rows<ScheduleRow>(db, 'SELECT * FROM schedules ORDER BY created_at, id COLLATE "C"')).map(scheduleFromRow);
}

export async function schedulesTargeting(db: Db, group: string): Promise<string[]> {
  return (await rows<{ id: string }>(db, 'SELECT id FROM schedules WHERE destination = $1 ORDER BY id COLLATE "C"', [group])).map(
    (row) => row.id,
  );
}

export async function deleteSchedule(db: Db, id: string): Promise<boolean> {
  return (await exec(db, 'DELETE FROM schedules WHERE id = $1', [id])) > 0;
}

export async function setSchedulePaused(db: Db, id: string, paused: boolean, nextAt: number | undefined, at: number): Promise<boolean> {
  return (
    (await exec(db, 'UPDATE schedules SET paused = $1, next_at = $2, updated_at = $3 WHERE id = $4', [
      paused,
      paused ? null : (nextAt ?? null),
      at,
      id,
    ])) > 0
  );
}

export async function dueSchedules(db: Db, now: number, limit: number): Promise<ScheduleRecord[]> {
  const found = await rows<ScheduleRow>(
    db,
    'SELECT * FROM schedules WHERE paused = false AND next_at IS NOT NULL AND next_at <= $1 ORDER BY next_at LIMIT $2',
    [now, limit],
  );
  return found.map(scheduleFromRow);
}

export async function nextScheduleAt(db: Db): Promise<number | undefined> {
  const row = await first<{ at: number | null }>(
    db,
    'SELECT min(next_at) AS at FROM schedules WHERE paused = false AND next_at IS NOT NULL',
  );
  return row?.at ?? undefined;
}

/**
 * Records a firing; false when it must not happen (see ScheduleFiring). A
 * cron tick is a compare-and-set on next_at: of several nodes firing one
 * tick, the first UPDATE wins and the others, after waiting for its row lock,
 * re-check the condition against the new next_at and change nothing.
 */
export async function recordFiring(db: Db, firing: ScheduleFiring, messageIds: string[], at: number): Promise<boolean> {
  const ids = JSON.stringify(messageIds);
  const error = firing.error ?? null;
  if (firing.expectedNextAt === undefined) {
    return (
      (await exec(db, 'UPDATE schedules SET last_at = $1, last_message_ids = $2, last_error = $3 WHERE id = $4', [
        at,
        ids,
        error,
        firing.scheduleId,
      ])) > 0
    );
  }
  return (
    (await exec(
      db,
      `UPDATE schedules SET next_at = $1, last_at = $2, last_message_ids = $3, last_error = $4
       WHERE id = $5 AND paused = false AND next_at = $6`,
      [firing.nextAt ?? null, at, ids, error, firing.scheduleId, firing.expectedNextAt],
    )) > 0
  );
}

export async function listScheduleRuns(db: Db, scheduleId: string, count: number): Promise<ScheduleRun[]> {
  const found = await rows<ScheduleRunRow>(
    db,
    `SELECT m.id, m.url, m.state, m.created_at, m.finished_at, m.retried,
       m.spec::jsonb ->> 'scheduleTrigger' AS trigger,
       (SELECT e.detail FROM events e WHERE e.message_seq = m.seq AND e.state IN ('DELIVERED', 'ERROR')
        ORDER BY e.seq DESC LIMIT 1) AS last_attempt
     FROM messages m WHERE m.schedule_id = $1 ORDER BY m.seq DESC LIMIT $2`,
    [scheduleId, count],
  );
  return found.map(scheduleRunFromRow);
}
