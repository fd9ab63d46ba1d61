/** Schedule rows on SQLite; firing (which also enqueues) is in the store, next to enqueue. */
import type { ScheduleDefinition, ScheduleRecord, ScheduleRun } from '../../core/schedule.js';
import type { Sql } from './sql.js';
import { scheduleFromRow, scheduleRunFromRow, templateJson, toBuffer, type ScheduleRow, type ScheduleRunRow } from '../rows.js';

export class SqliteSchedules {
  constructor(private readonly sql: Sql) {}

  save(definition: ScheduleDefinition, nextAt: number | undefined, at: number): void {
    const { template } = definition;
    this.sql
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
  }

  get(id: string): ScheduleRecord | undefined {
    const row = this.sql.stmt('SELECT * FROM schedules WHERE id = ?').get(id) as ScheduleRow | undefined;
    return row && scheduleFromRow(row);
  }

  list(): ScheduleRecord[] {
    return (this.sql.stmt('SELECT * FROM schedules ORDER BY created_at, id').all() as ScheduleRow[]).map(scheduleFromRow);
  }

  targeting(group: string): string[] {
    return this.sql.stmt('SELECT id FROM schedules WHERE destination = ? ORDER BY id').pluck().all(group) as string[];
  }

  delete(id: string): boolean {
    return this.sql.stmt('DELETE FROM schedules WHERE id = ?').run(id).changes > 0;
  }

  setPaused(id: string, paused: boolean, nextAt: number | undefined, at: number): boolean {
    return (
      this.sql
        .stmt('UPDATE schedules SET paused = ?, next_at = ?, updated_at = ? WHERE id = ?')
        .run(paused ? 1 : 0, paused ? null : (nextAt ?? null), at, id).changes > 0
    );
  }

  due(now: number, limit: number): ScheduleRecord[] {
    const rows = this.sql
      .stmt('SELECT * FROM schedules WHERE paused = 0 AND next_at IS NOT NULL AND next_at <= ? ORDER BY next_at LIMIT ?')
      .all(now, limit) as ScheduleRow[];
    return rows.map(scheduleFromRow);
  }

  nextAt(): number | undefined {
    const at = this.sql.stmt('SELECT min(next_at) FROM schedules WHERE paused = 0 AND next_at IS NOT NULL').pluck().get() as
      | number
      | null;
    return at ?? undefined;
  }

  /** Records a firing; false when it must not happen (see ScheduleFiring). */
  recordFiring(
    firing: { scheduleId: string; expectedNextAt?: number; nextAt?: number; error?: string },
    messageIds: string[],
    at: number,
  ): boolean {
    const ids = JSON.stringify(messageIds);
    const error = firing.error ?? null;
    if (firing.expectedNextAt === undefined) {
      return (
        this.sql
          .stmt('UPDATE schedules SET last_at = ?, last_message_ids = ?, last_error = ? WHERE id = ?')
          .run(at, ids, error, firing.scheduleId).changes > 0
      );
    }
    return (
      this.sql
        .stmt(`UPDATE schedules SET next_at = ?, last_at = ?, last_message_ids = ?, last_error = ?
               WHERE id = ? AND paused = 0 AND next_at = ?`)
        .run(firing.nextAt ?? null, at, ids, error, firing.scheduleId, firing.expectedNextAt).changes > 0
    );
  }

  runs(scheduleId: string, count: number): ScheduleRun[] {
    const rows = this.sql
      .stmt(`SELECT m.id, m.url, m.state, m.created_at, m.finished_at, m.retried,
               json_extract(m.spec, '$.scheduleTrigger') AS trigger,
               (SELECT e.detail FROM events e WHERE e.message_seq = m.seq AND e.state IN ('DELIVERED', 'ERROR')
                ORDER BY e.seq DESC LIMIT 1) AS last_attempt
             FROM messages m WHERE m.schedule_id = ? ORDER BY m.seq DESC LIMIT ?`)
      .all(scheduleId, count) as ScheduleRunRow[];
    return rows.map(scheduleRunFromRow);
  }
}
