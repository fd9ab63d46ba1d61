/**
 * Task streams: per-task, append-only logs of events that clients follow
 * over Server-Sent Events and resume exactly (see the README's "Task
 * streams"). A stream's sequence numbers are the store's, so a position is
 * the same on every node.
 */

/** The user's task id, e.g. `task_1234567890_abcdef123`. */
export const STREAM_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** `content`, `status`, `end`, `error`, or a user type. */
export const STREAM_EVENT_TYPE = /^[a-z][a-z0-9_-]{0,31}$/;

export const STREAM_STATES = ['open', 'ended', 'failed'] as const;
export type StreamState = (typeof STREAM_STATES)[number];

/** The types that close a stream: `end` → ended, `error` → failed. */
export const CLOSING_TYPES: Readonly<Record<string, Exclude<StreamState, 'open'>>> = { end: 'ended', error: 'failed' };

export interface StreamEvent {
  /** 1, 2, 3, … per stream; never reused while the stream exists. */
  seq: number;
  type: string;
  /** Sent as SSE `data:` exactly: a string as given, or JSON text when `json`. */
  data: string;
  /** The data was JSON (an object, array, number, …) and is JSON text here. */
  json: boolean;
  at: number;
}

export interface StreamRecord {
  id: string;
  state: StreamState;
  /** The last seq written; 0 before the first event. */
  lastSeq: number;
  /** The oldest seq still stored (retention may trim the start); 0 when none is. */
  firstSeq: number;
  createdAt: number;
  updatedAt: number;
  endedAt?: number;
  /** The message the stream reports on (a publish with Upstash-Courier-Stream). */
  messageId?: string;
  /**
   * A stream tied to a message: its worker has written `end` or `error`, so
   * the writer may write no more; Courier still appends the message's final
   * status, which closes the stream.
   */
  writerClosed: boolean;
}

export interface NewStreamEvent {
  type: string;
  data: string;
  json: boolean;
  /** The writer's own number for this event: a seq already stored is skipped (idempotent resend). */
  seq?: number;
}
