/**
 * How callers select messages, log events and DLQ entries (spec §5.3, §6,
 * §9): the shapes the API parses requests into and the store answers, so
 * they belong to neither and live here.
 */
import type { LogState } from './message.js';

/** Filters shared by logs, DLQ and bulk cancel (spec §5.3, §6, §9). Values within a key are OR'd, keys AND'd. */
export interface MessageFilter {
  url?: string[];
  topicName?: string[];
  scheduleId?: string[];
  queueName?: string[];
  label?: string[];
  flowControlKey?: string[];
  callerIp?: string[];
  host?: string[];
  path?: string[];
  /** Inclusive bounds on the message's creation time (logs: the event's time; DLQ: when the entry was made). */
  fromDate?: number;
  toDate?: number;
}

export type CancelSelection =
  | { messageIds: string[] }
  | { filter: MessageFilter; limit?: number }
  | { all: true; limit?: number };

export interface Page<T> {
  items: T[];
  /** Absent on the last page. Opaque to callers. */
  cursor?: string;
}

export interface EventQuery {
  messageIds?: string[];
  filter?: MessageFilter;
  /** `IN_PROGRESS` matches ACTIVE, RETRY and ERROR. */
  states?: (LogState | 'IN_PROGRESS')[];
  cursor?: string;
  count: number;
}

export interface DeadLetterFilter extends MessageFilter {
  messageId?: string[];
  responseStatus?: number[];
}

export type DeadLetterSelection =
  | { dlqIds: string[] }
  | { filter: DeadLetterFilter; cursor?: string; count: number };
