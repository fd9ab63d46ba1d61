/** Queues on SQLite: settings rows, and FIFO admission of waiting messages into free slots. */
import type { QueueRecord, QueueSettings } from '../../core/queue.js';
import { queueFromRow, SELECT_QUEUE, type QueueRow } from '../sql-common.js';
import type { QueueStore } from '../port.js';
import type { Sql } from './sql.js';

/** Enqueueing into an unknown queue creates it (spec §3.1). */
export function ensureQueue(sql: Sql, name: string, at: number): void {
  sql
    .stmt(`INSERT INTO queues (name, parallelism, paused, created_at, updated_at) VALUES (?, 1, 0, ?, ?)
           ON CONFLICT (name) DO NOTHING`)
    .run(name, at, at);
}

/**
 * Moves the oldest due waiting messages of each unpaused queue into its free
 * slots (waiting → pending, holding the slot). Runs inside claimDue's transaction.
 */
export function admitWaiting(sql: Sql, now: number): void {
  const queues = sql
    .stmt(`SELECT q.name, q.parallelism FROM queues q WHERE q.paused = 0 AND EXISTS (
             SELECT 1 FROM messages m WHERE m.state = 'waiting' AND m.queue_name = q.name AND m.due_at <= ?)`)
    .all(now) as { name: string; parallelism: number }[];
  for (const queue of queues) {
    const busy = sql.stmt('SELECT count(*) FROM messages WHERE queue_slot = ?').pluck().get(queue.name) as number;
    const free = queue.parallelism - busy;
    if (free <= 0) continue;
    sql
      .stmt(`UPDATE messages SET state = 'pending', queue_slot = queue_name WHERE seq IN (
               SELECT seq FROM messages WHERE state = 'waiting' AND queue_name = ? AND due_at <= ?
               ORDER BY due_at, seq LIMIT ?)`)
      .run(queue.name, now, free);
  }
}

/** The earliest future due time of a waiting message in an unpaused queue. */
export function queuesNextDueAt(sql: Sql, now: number): number | undefined {
  const at = sql
    .stmt(`SELECT min((SELECT min(m.due_at) FROM messages m
             WHERE m.state = 'waiting' AND m.queue_name = q.name AND m.due_at > ?)) FROM queues q WHERE q.paused = 0`)
    .pluck()
    .get(now) as number | null;
  return at ?? undefined;
}

/** The port's queue verbs. */
export function sqliteQueues(sql: Sql): QueueStore {
  return {
    async upsertQueue(settings: QueueSettings, at: number) {
      sql
        .stmt(`INSERT INTO queues (name, parallelism, paused, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET parallelism = excluded.parallelism, paused = excluded.paused,
                 updated_at = excluded.updated_at`)
        .run(settings.name, settings.parallelism, settings.paused ? 1 : 0, at, at);
    },

    async getQueue(name: string) {
      const row = sql.stmt(`${SELECT_QUEUE} WHERE q.name = ?`).get(name) as QueueRow | undefined;
      return row && queueFromRow(row);
    },

    async listQueues() {
      return (sql.stmt(`${SELECT_QUEUE} ORDER BY q.name`).all() as QueueRow[]).map(queueFromRow);
    },

    async setQueuePaused(name: string, paused: boolean, at: number) {
      return sql.stmt('UPDATE queues SET paused = ?, updated_at = ? WHERE name = ?').run(paused ? 1 : 0, at, name).changes > 0;
    },

    /** Waiting messages are canceled (logged, not dropped); admitted ones keep their slot and finish. */
    async deleteQueue(name: string, at: number) {
      if (sql.stmt('DELETE FROM queues WHERE name = ?').run(name).changes === 0) return false;
      const waiting = sql
        .stmt(`SELECT seq FROM messages WHERE state = 'waiting' AND queue_name = ? ORDER BY due_at, seq`)
        .pluck()
        .all(name) as number[];
      for (const seq of waiting) sql.cancelNow(seq, at);
      return true;
    },
  };
}
