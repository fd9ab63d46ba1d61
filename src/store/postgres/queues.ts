/** Queues on PostgreSQL: settings rows, lag, and deletion (admission is in claims.ts, inside claimDue). */
import type { QueueSettings } from '../../core/queue.js';
import { queueFromRow, SELECT_QUEUE, type QueueRow } from '../sql-common.js';
import type { QueueStore } from '../port.js';
import { exec, first, rows, type Pg } from './sql.js';
import { finishCanceled } from './settle.js';
import { appendEvents } from './writes.js';

/** The port's queue verbs. */
export function postgresQueues(pg: Pg): QueueStore {
  return {
    async upsertQueue(settings: QueueSettings, at: number) {
      const db = pg.sql;
      await exec(
        db,
        `INSERT INTO queues (name, parallelism, paused, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT (name) DO UPDATE SET parallelism = excluded.parallelism, paused = excluded.paused,
           updated_at = excluded.updated_at`,
        [settings.name, settings.parallelism, settings.paused, at],
      );
      pg.notifier.tell(at);
    },

    async getQueue(name: string) {
      const db = pg.sql;
      const row = await first<QueueRow>(db, `${SELECT_QUEUE} WHERE q.name = $1`, [name]);
      return row && queueFromRow(row);
    },

    async listQueues() {
      const db = pg.sql;
      return (await rows<QueueRow>(db, `${SELECT_QUEUE} ORDER BY q.name COLLATE "C"`)).map(queueFromRow);
    },

    async setQueuePaused(name: string, paused: boolean, at: number) {
      const db = pg.sql;
      const found = (await exec(db, 'UPDATE queues SET paused = $1, updated_at = $2 WHERE name = $3', [paused, at, name])) > 0;
      if (found && !paused) pg.notifier.tell(at);
      return found;
    },

    /** Waiting messages are canceled (logged, not dropped); admitted ones keep their slot and finish. Runs in a transaction. */
    async deleteQueue(name: string, at: number) {
      return pg.transaction(async (db) => {
        // Deleting takes the row lock claimDue's admission takes, so no admission of this queue is in progress meanwhile.
        if ((await exec(db, 'DELETE FROM queues WHERE name = $1', [name])) === 0) return false;
        const waiting = await rows<{ seq: number }>(
          db,
          `SELECT seq FROM messages WHERE state = 'waiting' AND queue_name = $1 ORDER BY due_at, seq FOR UPDATE`,
          [name],
        );
        if (waiting.length === 0) return true;
        await finishCanceled(db, waiting.map((w) => w.seq), at);
        await appendEvents(
          db,
          waiting.flatMap(({ seq }) => [
            { seq, time: at, state: 'CANCEL_REQUESTED' },
            { seq, time: at, state: 'CANCELED' },
          ]),
        );
        return true;
      });
    },
  };
}
