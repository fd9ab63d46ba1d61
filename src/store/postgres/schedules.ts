/** Schedules on PostgreSQL: their rows, their runs, and firing (which enqueues their messages in the same transaction). */
import type { ScheduleDefinition, ScheduleRecord, ScheduleRun } from '../../core/schedule.js';
import type { EnqueueResult, ScheduleFiring, ScheduleStore } from '../port.js';
import { scheduleFromRow, scheduleRunFromRow, templateJson, toBuffer, type ScheduleRow, type ScheduleRunRow } from '../rows.js';
import { earliest, exec, first, rows, type Db, type Pg } from './sql.js';
import { insertMessages } from './writes.js';

/**
 * Records a firing; false when it must not happen (see ScheduleFiring). A
 * cron tick is a compare-and-set on next_at: of several nodes firing one
 * tick, the first UPDATE wins and the others, after waiting for its row lock,
 * re-check the condition against the new next_at and change nothing.
 */
async function recordFiring(db: Db, firing: ScheduleFiring, messageIds: string[], at: number): Promise<boolean> {
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

/** The port's schedule verbs. */
export function postgresSchedules(pg: Pg): ScheduleStore {
  return {
    async saveSchedule(definition: ScheduleDefinition, nextAt: number | undefined, at: number) {
      const db = pg.sql;
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
    },

    async getSchedule(id: string) {
      const db = pg.sql;
      const row = await first<ScheduleRow>(db, 'SELECT * FROM schedules WHERE id = $1', [id]);
      return row && scheduleFromRow(row);
    },

    async listSchedules() {
      const db = pg.sql;
      return (await rows<ScheduleRow>(db, 'SELECT * FROM schedules ORDER BY created_at, id COLLATE "C"')).map(scheduleFromRow);
    },

    async schedulesTargeting(group: string) {
      const db = pg.sql;
      return (await rows<{ id: string }>(db, 'SELECT id FROM schedules WHERE destination = $1 ORDER BY id COLLATE "C"', [group])).map(
        (row) => row.id,
      );
    },

    async deleteSchedule(id: string) {
      const db = pg.sql;
      return (await exec(db, 'DELETE FROM schedules WHERE id = $1', [id])) > 0;
    },

    async setSchedulePaused(id: string, paused: boolean, nextAt: number | undefined, at: number) {
      const db = pg.sql;
      return (
        (await exec(db, 'UPDATE schedules SET paused = $1, next_at = $2, updated_at = $3 WHERE id = $4', [
          paused,
          paused ? null : (nextAt ?? null),
          at,
          id,
        ])) > 0
      );
    },

    async dueSchedules(now: number, limit: number) {
      const db = pg.sql;
      const found = await rows<ScheduleRow>(
        db,
        'SELECT * FROM schedules WHERE paused = false AND next_at IS NOT NULL AND next_at <= $1 ORDER BY next_at LIMIT $2',
        [now, limit],
      );
      return found.map(scheduleFromRow);
    },

    async nextScheduleAt() {
      const db = pg.sql;
      const row = await first<{ at: number | null }>(
        db,
        'SELECT min(next_at) AS at FROM schedules WHERE paused = false AND next_at IS NOT NULL',
      );
      return row?.at ?? undefined;
    },

    async fireSchedules(firings, at) {
      if (firings.length === 0) return [];
      const fired = await pg.transaction(async (tx) => {
        const results: (EnqueueResult[] | undefined)[] = [];
        let dueAt: number | undefined;
        for (const firing of firings) {
          const messageIds = firing.messages.map((message) => message.spec.messageId);
          if (!(await recordFiring(tx, firing, messageIds, at))) {
            results.push(undefined);
            continue;
          }
          const inserted = await insertMessages(tx, firing.messages, at);
          results.push(inserted.results);
          dueAt = earliest(dueAt, inserted.dueAt);
        }
        return { results, dueAt };
      });
      pg.notifier.tell(fired.dueAt);
      return fired.results;
    },

    async listScheduleRuns(scheduleId: string, count: number) {
      const db = pg.sql;
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
    },
  };
}
