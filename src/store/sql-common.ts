/**
 * SQL that the PostgreSQL and SQLite adapters share word for word: the same
 * text is valid in both dialects here, so it lives once. Placeholders,
 * booleans and collations differ between the two and stay in each adapter.
 */
import type { QueueRecord } from '../core/queue.js';
import type { Credentials, MessageFilter, SigningKeys } from './port.js';

/** The message filters that are a plain "column IN (values)" over `messages m`. */
export const MESSAGE_FILTER_COLUMNS: Record<Exclude<keyof MessageFilter, 'fromDate' | 'toDate' | 'label'>, string> = {
  url: 'm.url',
  topicName: 'm.topic_name',
  scheduleId: 'm.schedule_id',
  queueName: 'm.queue_name',
  flowControlKey: 'm.flow_control_key',
  callerIp: 'm.caller_ip',
  host: 'm.host',
  path: 'm.path',
};

/** The filter columns with their keys, for the adapters to turn into conditions. */
export const messageFilterColumns = Object.entries(MESSAGE_FILTER_COLUMNS) as [keyof typeof MESSAGE_FILTER_COLUMNS, string][];

/** A queue with its lag: messages waiting plus messages holding a slot. */
export const SELECT_QUEUE = `SELECT q.name, q.parallelism, q.paused, q.created_at, q.updated_at,
  (SELECT count(*) FROM messages m WHERE m.state = 'waiting' AND m.queue_name = q.name)
  + (SELECT count(*) FROM messages m WHERE m.queue_slot = q.name) AS lag
  FROM queues q`;

export interface QueueRow {
  name: string;
  parallelism: number;
  /** A boolean on PostgreSQL, 0/1 on SQLite. */
  paused: boolean | number;
  created_at: number;
  updated_at: number;
  lag: number;
}

export function queueFromRow(row: QueueRow): QueueRecord {
  return {
    name: row.name,
    parallelism: row.parallelism,
    paused: row.paused === true || row.paused === 1,
    lag: row.lag,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export const INSTANCE_COLUMNS = 'group_name, id, registration, last_heartbeat, registered_at, health';
export const GROUP_COLUMNS = 'name, settings, created_at, updated_at';

/** How a dialect writes the n-th (1-based) positional parameter: `?` on SQLite, `$n` on PostgreSQL. */
export type Placeholder = (position: number) => string;

/** The one credentials row (id 1): written once, its signing keys rotated in place. */
export function credentialStatements(p: Placeholder) {
  return {
    insertUnlessPresent: `INSERT INTO credentials (id, token, current_signing_key, next_signing_key) VALUES (1, ${p(1)}, ${p(2)}, ${p(3)})
      ON CONFLICT (id) DO NOTHING`,
    select: 'SELECT token, current_signing_key, next_signing_key FROM credentials WHERE id = 1',
    rotate: `UPDATE credentials SET current_signing_key = next_signing_key, next_signing_key = ${p(1)} WHERE id = 1
      RETURNING current_signing_key, next_signing_key`,
  };
}

export interface CredentialRow {
  token: string;
  current_signing_key: string;
  next_signing_key: string;
}

export const credentialsFromRow = (row: CredentialRow): Credentials => ({
  token: row.token,
  currentSigningKey: row.current_signing_key,
  nextSigningKey: row.next_signing_key,
});

export function signingKeysFromRow(row: Omit<CredentialRow, 'token'> | undefined): SigningKeys {
  if (!row) throw new Error('rotateSigningKeys: no credentials stored yet');
  return { current: row.current_signing_key, next: row.next_signing_key };
}

export const STATS = `SELECT (SELECT count(*) FROM messages WHERE state IN ('waiting', 'pending')) AS pending,
  (SELECT count(*) FROM messages WHERE state = 'active') AS active,
  (SELECT count(*) FROM dead_letters) AS dead_letters`;

/**
 * Retention, in the order it must run: DLQ entries first, then finished
 * messages (with their events) that no DLQ entry still points at, then
 * dedup keys. A message's log goes with it: a pending, active or
 * dead-lettered message keeps all its events.
 */
export function purgeStatements(p: Placeholder) {
  const purgeable = `SELECT seq FROM messages m WHERE m.finished_at IS NOT NULL AND m.finished_at < ${p(1)}
    AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.message_seq = m.seq)`;
  return {
    deadLetters: `DELETE FROM dead_letters WHERE created_at < ${p(1)}`,
    events: `DELETE FROM events WHERE message_seq IN (${purgeable})`,
    messages: `DELETE FROM messages WHERE seq IN (${purgeable})`,
    dedupKeys: `DELETE FROM dedup_keys WHERE expires_at < ${p(1)}`,
    workKeys: `DELETE FROM work_keys WHERE expires_at < ${p(1)}`,
  };
}
