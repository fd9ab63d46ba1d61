/**
 * SQL that the PostgreSQL and SQLite adapters share word for word: the same
 * text is valid in both dialects here, so it lives once. Placeholders,
 * booleans and collations differ between the two and stay in each adapter.
 */
import type { QueueRecord } from '../core/queue.js';
import type { MessageFilter } from './port.js';

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
