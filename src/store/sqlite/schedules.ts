/** Schedules on SQLite: their rows, their runs, and firing (which enqueues their messages in the same transaction). */
import type { ScheduleDefinition, ScheduleRecord, ScheduleRun } from '../../core/schedule.js';
import type { ScheduleStore } from '../port.js';
import { insertMessage } from './messages.js';
import type { Sql } from './sql.js';
import { scheduleFromRow, scheduleRunFromRow, templateJson, toBuffer, type ScheduleRow, type ScheduleRunRow } from '../rows.js';

/** Records a firing; false when it must not happen (see ScheduleFiring). */
export function recordFiring(sql: Sql, 
  firing: { scheduleId: string; expectedNextAt?: number; nextAt?: number; error?: string },
  messageIds: string[],
  at: number,
): boolean {
  const ids = JSON.stringify(messageIds);
  const error = firing.error ?? null;
  if (firing.expectedNextAt === undefined) {
    return (
      sql
        .stmt('UPDATE schedules SET last_at = ?, last_message_ids = ?, last_error = ? WHERE id = ?')
        .run(at, ids, error, firing.scheduleId).changes > 0
    );
  }
  return (
    sql
      .stmt(`UPDATE schedules SET next_at = ?, last_at = ?, last_message_ids = ?, last_error = ?
             WHERE id = ? AND paused = 0 AND next_at = ?`)
      .run(firing.nextAt ?? null, at, ids, error, firing.scheduleId, firing.expectedNextAt).changes > 0
  );
}

/** The port's schedule verbs. */
export function sqliteSchedules(sql: Sql): ScheduleStore {
  return {
    async saveSchedule(definition: ScheduleDefinition, nextAt: number | undefined, at: number) {
      const { template } = definition;
      sql
        .stmt(`INSERT INTO schedules (id, cron, destination, template, body, created_at, updated_at, next_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET cron = excluded.cron, destination = excluded.destination,
                 template = excluded.template, body = excluded.body, updated_at = excluded.updated_at,
                 next_at = CASE WHEN paused = 1 THEN NULL ELSE excluded.next_at END`)
        .run(
          definition.scheduleId,
          definition.cron,
          template.destination,
          templateJson(template),
          toBuffer(template.body),
          at,
          at,
          nextAt ?? null,
        );
    },

    async getSchedule(id: string) {
      const row = sql.stmt('SELECT * FROM schedules WHERE id = ?').get(id) as ScheduleRow | undefined;
      return row && scheduleFromRow(row);
    },

    async listSchedules() {
      return (sql.stmt('SELECT * FROM schedules ORDER BY created_at, id').all() as ScheduleRow[]).map(scheduleFromRow);
    },

    async schedulesTargeting(group: string) {
      return sql.stmt('SELECT id FROM schedules WHERE destination = ? ORDER BY id').pluck().all(group) as string[];
    },

    async deleteSchedule(id: string) {
      return sql.stmt('DELETE FROM schedules WHERE id = ?').run(id).changes > 0;
    },

    async setSchedulePaused(id: string, paused: boolean, nextAt: number | undefined, at: number) {
      return (
        sql
          .stmt('UPDATE schedules SET paused = ?, next_at = ?, updated_at = ? WHERE id = ?')
          .run(paused ? 1 : 0, paused ? null : (nextAt ?? null), at, id).changes > 0
      );
    },

    async dueSchedules(now: number, limit: number) {
      const rows = sql
        .stmt('SELECT * FROM schedules WHERE paused = 0 AND next_at IS NOT NULL AND next_at <= ? ORDER BY next_at LIMIT ?')
        .all(now, limit) as ScheduleRow[];
      return rows.map(scheduleFromRow);
    },

    async nextScheduleAt() {
      const at = sql.stmt('SELECT min(next_at) FROM schedules WHERE paused = 0 AND next_at IS NOT NULL').pluck().get() as
        | number
        | null;
      return at ?? undefined;
    },

    async fireSchedules(firings, at) {
      return sql.transaction(() =>
        firings.map((firing) => {
          const messageIds = firing.messages.map((message) => message.spec.messageId);
          if (!recordFiring(sql, firing, messageIds, at)) return undefined;
          return firing.messages.map((message) => insertMessage(sql, message, at));
        }),
      );
    },

    async listScheduleRuns(scheduleId: string, count: number) {
      const rows = sql
        .stmt(`SELECT m.id, m.url, m.state, m.created_at, m.finished_at, m.retried,
                 json_extract(m.spec, '$.scheduleTrigger') AS trigger,
                 (SELECT e.detail FROM events e WHERE e.message_seq = m.seq AND e.state IN ('DELIVERED', 'ERROR')
                  ORDER BY e.seq DESC LIMIT 1) AS last_attempt
               FROM messages m WHERE m.schedule_id = ? ORDER BY m.seq DESC LIMIT ?`)
        .all(scheduleId, count) as ScheduleRunRow[];
      return rows.map(scheduleRunFromRow);
    },
  };
}
