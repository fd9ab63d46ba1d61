/** Queues on SQLite: settings rows, and FIFO admission of waiting messages into free slots. */
import type { QueueRecord, QueueSettings } from '../../core/queue.js';
import { queueFromRow, SELECT_QUEUE, type QueueRow } from '../sql-common.js';
import type { Sql } from './sql.js';

export class SqliteQueues {
  constructor(private readonly sql: Sql) {}

  /** Enqueueing into an unknown queue creates it (spec §3.1). */
  ensure(name: string, at: number): void {
    this.sql
      .stmt(`INSERT INTO queues (name, parallelism, paused, created_at, updated_at) VALUES (?, 1, 0, ?, ?)
             ON CONFLICT (name) DO NOTHING`)
      .run(name, at, at);
  }

  upsert(settings: QueueSettings, at: number): void {
    this.sql
      .stmt(`INSERT INTO queues (name, parallelism, paused, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET parallelism = excluded.parallelism, paused = excluded.paused,
               updated_at = excluded.updated_at`)
      .run(settings.name, settings.parallelism, settings.paused ? 1 : 0, at, at);
  }

  get(name: string): QueueRecord | undefined {
    const row = this.sql.stmt(`${SELECT_QUEUE} WHERE q.name = ?`).get(name) as QueueRow | undefined;
    return row && queueFromRow(row);
  }

  list(): QueueRecord[] {
    return (this.sql.stmt(`${SELECT_QUEUE} ORDER BY q.name`).all() as QueueRow[]).map(queueFromRow);
  }

  setPaused(name: string, paused: boolean, at: number): boolean {
    return this.sql.stmt('UPDATE queues SET paused = ?, updated_at = ? WHERE name = ?').run(paused ? 1 : 0, at, name).changes > 0;
  }

  /** Waiting messages are canceled (logged, not dropped); admitted ones keep their slot and finish. */
  delete(name: string, at: number): boolean {
    if (this.sql.stmt('DELETE FROM queues WHERE name = ?').run(name).changes === 0) return false;
    const waiting = this.sql
      .stmt(`SELECT seq FROM messages WHERE state = 'waiting' AND queue_name = ? ORDER BY due_at, seq`)
      .pluck()
      .all(name) as number[];
    for (const seq of waiting) this.sql.cancelNow(seq, at);
    return true;
  }

  /**
   * Moves the oldest due waiting messages of each unpaused queue into its free
   * slots (waiting → pending, holding the slot). Runs inside claimDue's transaction.
   */
  admit(now: number): void {
    const queues = this.sql
      .stmt(`SELECT q.name, q.parallelism FROM queues q WHERE q.paused = 0 AND EXISTS (
               SELECT 1 FROM messages m WHERE m.state = 'waiting' AND m.queue_name = q.name AND m.due_at <= ?)`)
      .all(now) as { name: string; parallelism: number }[];
    for (const queue of queues) {
      const busy = this.sql.stmt('SELECT count(*) FROM messages WHERE queue_slot = ?').pluck().get(queue.name) as number;
      const free = queue.parallelism - busy;
      if (free <= 0) continue;
      this.sql
        .stmt(`UPDATE messages SET state = 'pending', queue_slot = queue_name WHERE seq IN (
                 SELECT seq FROM messages WHERE state = 'waiting' AND queue_name = ? AND due_at <= ?
                 ORDER BY due_at, seq LIMIT ?)`)
        .run(queue.name, now, free);
    }
  }

  /** The earliest future due time of a waiting message in an unpaused queue. */
  nextDueAt(now: number): number | undefined {
    const at = this.sql
      .stmt(`SELECT min((SELECT min(m.due_at) FROM messages m
               WHERE m.state = 'waiting' AND m.queue_name = q.name AND m.due_at > ?)) FROM queues q WHERE q.paused = 0`)
      .pluck()
      .get(now) as number | null;
    return at ?? undefined;
  }
}
