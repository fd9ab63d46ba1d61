/**
 * The Server-Sent Events frames of a task stream (WHATWG HTML §9.2).
 *
 * Only stored events carry `id:`: `connected`, `gap`, the slow-consumer
 * `error` and keep-alive comments never do, so they never move a client's
 * Last-Event-ID (control frames with synthetic ids make clients skip real
 * events, a common bug of SSE servers).
 *
 * Data is split on every line break the spec's parser knows (CRLF, LF, CR),
 * one `data:` line each; the client joins them with LF, so a CR or CRLF in
 * a string arrives as LF. That is SSE's own limit: JSON data never has one.
 */
import type { StreamEvent } from '../core/stream.js';

const LINE_BREAK = /\r\n|\r|\n/;

function dataLines(data: string): string {
  // `data: ` followed by an empty value still dispatches the event (with data ""); no line at all would not.
  return data
    .split(LINE_BREAK)
    .map((line) => `data: ${line}\n`)
    .join('');
}

export function eventFrame(event: StreamEvent): string {
  return `id: ${event.seq}\nevent: ${event.type}\n${dataLines(event.data)}\n`;
}

/** The first frame of every response: the reconnection hint and `connected`, which says where the replay starts. */
export function connectedFrame(retryMs: number, payload: { streamId: string; after: number; lastSeq: number; state: string }): string {
  return `retry: ${retryMs}\nevent: connected\ndata: ${JSON.stringify(payload)}\n\n`;
}

/** The position asked for is gone or never existed: the replay restarts at `firstAvailable`. */
export function gapFrame(requested: number, firstAvailable: number): string {
  return `event: gap\ndata: ${JSON.stringify({ requested, firstAvailable })}\n\n`;
}

/** Sent instead of events a follower could not take fast enough; the connection closes after it. */
export const SLOW_CONSUMER_FRAME = `event: error\ndata: ${JSON.stringify({ reason: 'slow consumer' })}\n\n`;

/** A comment: it dispatches nothing and keeps proxies from dropping an idle connection. */
export const KEEP_ALIVE_FRAME = ':\n\n';
