/** Queues on PostgreSQL: settings rows, lag, and deletion (admission is in claims.ts, inside claimDue). */
import type { QueueRecord, QueueSettings } from '../../core/queue.js';
import { queueFromRow, SELECT_QUEUE, type QueueRow } from '../sql-common.js';
import { exec, first, rows, type Db } from './sql.js';
import { finishCanceled } from './settle.js';
import { appendEvents } from './writes.js';

export async function upsertQueue(db: Db, settings: QueueSettings, at: number): Promise<void> {
  await exec(
    db,
    `INSERT INTO queues (name, parallelism, paused, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
     ON CONFLICT (name) DO UPDATE SET parallelism = excluded.parallelism, paused = excluded.paused,
       updated_at = excluded.updated_at`,
    [settings.name, settings.parallelism, settings.paused, at],
  );
}

export async function getQueue(db: Db, name: string): Promise<QueueRecord | undefined> {
  const row = await first<QueueRow>(db, `${SELECT_QUEUE} WHERE q.name = $1`, [name]);
  return row && queueFromRow(row);
}

export async function listQueues(db: Db): Promise<QueueRecord[]> {
  return (await rows<QueueRow>(db, `${SELECT_QUEUE} ORDER BY q.name COLLATE "C"`)).map(queueFromRow);
}

export async function setQueuePaused(db: Db, name: string, paused: boolean, at: number): Promise<boolean> {
  return (await exec(db, 'UPDATE queues SET paused = $1, updated_at = $2 WHERE name = $3', [paused, at, name])) > 0;
}

/** Waiting messages are canceled (logged, not dropped); admitted ones keep their slot and finish. Runs in a transaction. */
export async function deleteQueue(db: Db, name: string, at: number): Promise<boolean> {
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
}
