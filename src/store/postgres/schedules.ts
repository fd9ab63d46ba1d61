/** Schedule rows on PostgreSQL; a firing (which also enqueues) is recorded here and enqueued by the store. */
import type { PublishOptions } from '../../core/publish-options.js';
import type { ScheduleDefinition, ScheduleRecord, ScheduleRun } from '../../core/schedule.js';
import type { ScheduleFiring } from '../port.js';
import type { ResponseDetail } from '../rows.js';
import { exec, first, rows, type Db } from './sql.js';

interface ScheduleRow {
  id: string;
  cron: string;
  destination: string;
  template: string;
  body: Buffer;
  paused: boolean;
  created_at: number;
  updated_at: number;
  next_at: number | null;
  last_at: number | null;
  last_message_ids: string;
  last_error: string | null;
}

/** The template minus destination and body, which have their own columns. */
interface StoredTemplate {
  options: PublishOptions;
  queueName?: string;
  callerIp: string;
}

function scheduleFromRow(row: ScheduleRow): ScheduleRecord {
  const stored = JSON.parse(row.template) as StoredTemplate;
  const record: ScheduleRecord = {
    scheduleId: row.id,
    cron: row.cron,
    template: {
      destination: row.destination,
      options: stored.options,
      body: new Uint8Array(row.body.buffer, row.body.byteOffset, row.body.byteLength),
      callerIp: stored.callerIp,
    },
    paused: row.paused,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastMessageIds: JSON.parse(row.last_message_ids) as string[],
  };
  if (stored.queueName !== undefined) record.template.queueName = stored.queueName;
  if (row.next_at !== null) record.nextAt = row.next_at;
  if (row.last_at !== null) record.lastAt = row.last_at;
  if (row.last_error !== null) record.lastError = row.last_error;
  return record;
}

const RUN_STATES: Record<string, ScheduleRun['state']> = {
  waiting: 'IN_PROGRESS',
  pending: 'IN_PROGRESS',
  active: 'IN_PROGRESS',
  delivered: 'SUCCESS',
  failed: 'FAIL',
  canceled: 'CANCELED',
};

export async function saveSchedule(db: Db, definition: ScheduleDefinition, nextAt: number | undefined, at: number): Promise<void> {
  const { template } = definition;
  const stored: StoredTemplate = { options: template.options, callerIp: template.callerIp };
  if (template.queueName !== undefined) stored.queueName = template.queueName;
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
      JSON.stringify(stored),
      Buffer.from(template.body.buffer, template.body.byteOffset, template.body.byteLength),
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
  const found = await rows<{
    id: string;
    url: string;
    state: string;
    created_at: number;
    finished_at: number | null;
    retried: number;
    trigger: string | null;
    last_attempt: string | null;
  }>(
    db,
    `SELECT m.id, m.url, m.state, m.created_at, m.finished_at, m.retried,
       m.spec::jsonb ->> 'scheduleTrigger' AS trigger,
       (SELECT e.detail FROM events e WHERE e.message_seq = m.seq AND e.state IN ('DELIVERED', 'ERROR')
        ORDER BY e.seq DESC LIMIT 1) AS last_attempt
     FROM messages m WHERE m.schedule_id = $1 ORDER BY m.seq DESC LIMIT $2`,
    [scheduleId, count],
  );
  return found.map((row) => {
    const run: ScheduleRun = {
      messageId: row.id,
      url: row.url,
      trigger: row.trigger === 'manual' ? 'manual' : 'cron',
      state: RUN_STATES[row.state] ?? 'IN_PROGRESS',
      createdAt: row.created_at,
      retried: row.retried,
    };
    if (row.finished_at !== null) run.finishedAt = row.finished_at;
    if (row.last_attempt) {
      const detail = JSON.parse(row.last_attempt) as ResponseDetail;
      if (detail.status !== undefined) run.responseStatus = detail.status;
      if (detail.durationMs !== undefined) run.durationMs = detail.durationMs;
      if (detail.error !== undefined) run.error = detail.error;
    }
    return run;
  });
}
