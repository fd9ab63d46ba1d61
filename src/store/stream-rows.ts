/**
 * What the two SQL stream adapters share: the append rules of the port
 * (StreamAppend, StreamAppendResult) as one pure function, so SQLite and
 * PostgreSQL cannot drift apart, and the row ↔ record mapping. Each adapter
 * reads the stream's row (locked, on PostgreSQL) inside its transaction,
 * asks `planAppend`, and writes what it answers.
 */
import type { StreamEvent, StreamRecord } from '../core/stream.js';
import type { StreamAppend, StreamAppendResult, StreamStore } from './port.js';

type StreamExpiry = Parameters<StreamStore['expireStreams']>[0];

export interface AppendPlan {
  result: StreamAppendResult;
  /** The stream's row after the append and the events (at least one) to insert; absent when nothing is written. */
  write?: { stream: StreamRecord; events: StreamEvent[] };
}

/** The record an append creates: open and empty until its events are counted in. */
export function newStream(append: StreamAppend): StreamRecord {
  return {
    id: append.streamId,
    state: 'open',
    lastSeq: 0,
    firstSeq: 0,
    createdAt: append.at,
    updatedAt: append.at,
    ...(append.messageId !== undefined ? { messageId: append.messageId } : {}),
    writerClosed: false,
  };
}

/**
 * The port's rules, in the order they are decided:
 * 1. writer seqs: each event's seq is compared with the last seq *including
 *    the batch's earlier events* (so a seq repeated within a batch is skipped
 *    too); a gap is only reported once the stream is known to be writable;
 * 2. nothing left to store → appended with no events, whatever the state
 *    (a writer's resend after a crash is a success), and nothing is written:
 *    an unknown stream stays unknown (the answer shows the stream it would be);
 * 3. closed (or, for a writer, closed to writers) → closed, before gap and
 *    full: no resend can help;
 * 4. gap, then full (events held = lastSeq − firstSeq + 1 once any is stored);
 * 5. otherwise the events are stored from lastSeq + 1, and `closes` ends an
 *    untied stream, or a tied one when Courier writes it; a writer's
 *    `closes` on a tied stream only sets writerClosed.
 * `current` undefined means the stream does not exist yet.
 */
export function planAppend(current: StreamRecord | undefined, append: StreamAppend): AppendPlan {
  const stream = current ?? newStream(append);
  const events: StreamEvent[] = [];
  let next = stream.lastSeq + 1;
  let gap: number | undefined;
  for (const event of append.events) {
    if (event.seq !== undefined && event.seq < next) continue;
    if (event.seq !== undefined && event.seq > next) {
      gap = next;
      break;
    }
    events.push({ seq: next, type: event.type, data: event.data, json: event.json, at: append.at });
    next += 1;
  }
  if (events.length === 0 && gap === undefined) return { result: { kind: 'appended', stream, events: [] } };
  const closedToAuthor = stream.state !== 'open' || (append.author === 'writer' && stream.writerClosed);
  if (closedToAuthor) return { result: { kind: 'closed', stream } };
  if (gap !== undefined) return { result: { kind: 'gap', expectedSeq: gap } };
  const held = stream.firstSeq === 0 ? 0 : stream.lastSeq - stream.firstSeq + 1;
  if (held + events.length > append.maxEvents) return { result: { kind: 'full', stream } };

  const after: StreamRecord = { ...stream, lastSeq: next - 1, firstSeq: stream.firstSeq || 1, updatedAt: append.at };
  if (append.closes !== undefined) {
    if (stream.messageId !== undefined && append.author === 'writer') after.writerClosed = true;
    else {
      after.state = append.closes;
      after.endedAt = append.at;
    }
  }
  return { result: { kind: 'appended', stream: after, events }, write: { stream: after, events } };
}

/**
 * The idle close as an append by Courier: it is stored even on a stream its
 * writer closed, fails a tied stream too, and is never refused as full (a
 * full stream must still end).
 */
export function idleAppend(streamId: string, request: StreamExpiry): StreamAppend {
  return {
    streamId,
    events: [request.idleEvent],
    at: request.at,
    author: 'courier',
    closes: 'failed',
    maxEvents: Number.MAX_SAFE_INTEGER,
  };
}

/** A `streams` row as both SQL stores return it (SQLite answers 0/1 for booleans). */
export interface StreamRow {
  id: string;
  state: StreamRecord['state'];
  last_seq: number;
  first_seq: number;
  created_at: number;
  updated_at: number;
  ended_at: number | null;
  message_id: string | null;
  writer_closed: number | boolean;
}

export const STREAM_COLUMNS = 'id, state, last_seq, first_seq, created_at, updated_at, ended_at, message_id, writer_closed';

export function streamFromRow(row: StreamRow): StreamRecord {
  return {
    id: row.id,
    state: row.state,
    lastSeq: row.last_seq,
    firstSeq: row.first_seq,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    ...(row.ended_at !== null ? { endedAt: row.ended_at } : {}),
    ...(row.message_id !== null ? { messageId: row.message_id } : {}),
    writerClosed: Boolean(row.writer_closed),
  };
}

/** A `stream_events` row; PostgreSQL keeps `data` as UTF-8 bytes (see its migration), SQLite as text. */
export interface StreamEventRow {
  seq: number;
  type: string;
  data: string | Buffer;
  json: number | boolean;
  at: number;
}

export function streamEventFromRow(row: StreamEventRow): StreamEvent {
  return {
    seq: row.seq,
    type: row.type,
    data: typeof row.data === 'string' ? row.data : row.data.toString('utf8'),
    json: Boolean(row.json),
    at: row.at,
  };
}
