/**
 * Task streams' domain service: what the API may do with a stream.
 *
 * - append: validates a writer's events (ids, types, data, batch size, no
 *   event after a closing one), decides whether the batch closes the
 *   stream, and writes through `appendToStream`, the one write path; the
 *   store's answer becomes `{seq, state}` or a coded error.
 * - read: a stream's state, its events as pages, the list; delete.
 * - follow: an SSE follow (follow.ts) on this node's hub.
 * - tokens: mints read/write tokens of one stream and checks them
 *   (tokens.ts: signed, never stored).
 * - expire: the retention sweep's part (idle streams failed, closed ones purged).
 *
 * Bad input is refused here with a 400 (413 for data over the limit)
 * naming the field, before the store is asked anything: nothing changes.
 */
import type { Clock } from '../core/clock.js';
import type { StreamSettings } from '../core/config.js';
import { CourierError, invalid } from '../core/errors.js';
import type { EventSink } from '../core/events.js';
import type { Page } from '../core/queries.js';
import { CLOSING_TYPES, STREAM_EVENT_TYPE, STREAM_ID, STREAM_STATES, type NewStreamEvent, type StreamEvent, type StreamRecord, type StreamState } from '../core/stream.js';
import type { StreamStore } from '../store/port.js';
import { appendToStream } from './append.js';
import { openFollow, type FollowPosition, type FollowStart } from './follow.js';
import type { StreamHub } from './hub.js';
import { mintStreamToken, verifyStreamToken, type StreamScope } from './tokens.js';

/** Types the SSE protocol itself sends without an id; a stored event may not take them. */
const RESERVED_TYPES: ReadonlySet<string> = new Set(['connected', 'gap']);
const EVENT_KEYS: ReadonlySet<string> = new Set(['type', 'data', 'seq']);
const MAX_PAGE = 1000;
const DEFAULT_PAGE = 100;
/** Streams closed as idle per sweep; the next sweep takes the rest. */
const EXPIRE_BATCH = 1000;
export const IDLE_EVENT = { type: 'error', data: JSON.stringify({ reason: 'idle' }), json: true } as const;

export interface StreamServiceDeps {
  store: Pick<StreamStore, 'appendStreamEvents' | 'getStream' | 'listStreams' | 'readStreamEvents' | 'deleteStream' | 'expireStreams'>;
  events: EventSink;
  clock: Clock;
  hub: Pick<StreamHub, 'attach' | 'end' | 'poke'>;
  settings: StreamSettings;
  tokenSecret: Uint8Array;
}

export class StreamService {
  constructor(private readonly deps: StreamServiceDeps) {}

  get settings(): StreamSettings {
    return this.deps.settings;
  }

  /** A stream id from the path; 400 naming `streamId` when it is not one. */
  checkId(id: string): string {
    if (!STREAM_ID.test(id)) throw invalid('streamId', `"${truncate(id)}" is not a stream id: 1 to 128 of A-Z a-z 0-9 . _ : -`);
    return id;
  }

  /** Appends one event (an object) or a batch (an array) a writer sent. */
  async append(streamId: string, body: unknown): Promise<{ seq: number; state: StreamState }> {
    this.checkId(streamId);
    const events = this.parseEvents(body);
    const last = events[events.length - 1]!;
    const closes = CLOSING_TYPES[last.type];
    const result = await appendToStream(this.deps, {
      streamId,
      events,
      at: this.deps.clock.now(),
      author: 'writer',
      ...(closes === undefined ? {} : { closes }),
      maxEvents: this.deps.settings.maxEvents,
    });
    switch (result.kind) {
      case 'appended':
        return { seq: result.stream.lastSeq, state: result.stream.state };
      case 'closed':
        throw new CourierError('STREAM_CLOSED', `stream "${streamId}" is ${result.stream.state === 'open' ? 'closed to writers' : result.stream.state}: it takes no more events`, 'streamId');
      case 'gap':
        throw new CourierError('STREAM_SEQ_GAP', `seq: the stream's next seq is ${result.expectedSeq}; an event's seq may not skip past it`, 'seq');
      case 'full':
        throw new CourierError(
          'STREAM_FULL',
          `stream "${streamId}" holds ${result.stream.lastSeq} events; it may hold at most ${this.deps.settings.maxEvents} (COURIER_STREAM_MAX_EVENTS)`,
          'streamId',
        );
    }
  }

  /** The batch a writer sent, checked whole: the first problem is refused, naming its field. */
  parseEvents(body: unknown): NewStreamEvent[] {
    const { maxBatch } = this.deps.settings;
    const batch = Array.isArray(body);
    const items: unknown[] = batch ? body : [body];
    if (items.length === 0 || items.length > maxBatch) {
      throw invalid('body', `an array must hold 1 to ${maxBatch} events (COURIER_STREAM_MAX_BATCH), got ${items.length}`);
    }
    const events = items.map((item, index) => this.parseEvent(item, batch ? `[${index}]` : ''));
    const closing = events.findIndex((event) => CLOSING_TYPES[event.type] !== undefined);
    if (closing !== -1 && closing < events.length - 1) {
      throw invalid(`[${closing + 1}]`, `comes after the closing "${events[closing]!.type}" event at [${closing}]; a closing event must be the batch's last`);
    }
    return events;
  }

  private parseEvent(item: unknown, at: string): NewStreamEvent {
    const field = (name: string) => (at === '' ? name : `${at}.${name}`);
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      throw invalid(at === '' ? 'body' : at, 'must be an event object {"type", "data", "seq"?}');
    }
    const record = item as Record<string, unknown>;
    for (const key of Object.keys(record)) if (!EVENT_KEYS.has(key)) throw invalid(field(key), 'unknown field; an event has type, data and seq');
    const { type, data, seq } = record;
    if (typeof type !== 'string' || !STREAM_EVENT_TYPE.test(type)) {
      throw invalid(field('type'), `must be a lower-case type such as content, status, end or error ([a-z][a-z0-9_-]{0,31}), got ${describe(type)}`);
    }
    if (RESERVED_TYPES.has(type)) throw invalid(field('type'), `"${type}" is reserved for the SSE protocol's own frames`);
    if (seq !== undefined && (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1)) {
      throw invalid(field('seq'), `must be a whole number from 1, got ${describe(seq)}`);
    }
    const json = data !== undefined && typeof data !== 'string';
    const text = data === undefined ? '' : typeof data === 'string' ? data : JSON.stringify(data);
    const bytes = Buffer.byteLength(text);
    if (bytes > this.deps.settings.maxDataBytes) {
      throw new CourierError(
        'PAYLOAD_TOO_LARGE',
        `${field('data')}: ${bytes} bytes, over the ${this.deps.settings.maxDataBytes}-byte limit of an event's data (COURIER_STREAM_MAX_DATA_BYTES)`,
        field('data'),
      );
    }
    return { type, data: text, json, ...(seq === undefined ? {} : { seq: seq }) };
  }

  async get(streamId: string): Promise<StreamRecord> {
    const stream = await this.deps.store.getStream(this.checkId(streamId));
    if (!stream) throw new CourierError('STREAM_NOT_FOUND', `stream "${streamId}" not found: nothing has written to it`, 'streamId');
    return stream;
  }

  /** Events after `after`, for clients that poll: `cursor` is the `after` of the next call. */
  async events(streamId: string, after: number, limit: number): Promise<{ stream: StreamRecord; events: StreamEvent[]; cursor: number }> {
    const stream = await this.get(streamId);
    const events = await this.deps.store.readStreamEvents(streamId, after, Math.min(limit, MAX_PAGE));
    return { stream, events, cursor: events.length > 0 ? events[events.length - 1]!.seq : after };
  }

  async list(query: { state?: string; cursor?: string; count?: number }): Promise<Page<StreamRecord>> {
    let state: StreamState | undefined;
    if (query.state !== undefined) {
      if (!(STREAM_STATES as readonly string[]).includes(query.state)) throw invalid('state', `must be one of ${STREAM_STATES.join(', ')}, got "${truncate(query.state)}"`);
      state = query.state as StreamState;
    }
    return this.deps.store.listStreams({
      ...(state === undefined ? {} : { state }),
      ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
      count: query.count ?? DEFAULT_PAGE,
    });
  }

  async delete(streamId: string): Promise<void> {
    if (!(await this.deps.store.deleteStream(this.checkId(streamId)))) {
      throw new CourierError('STREAM_NOT_FOUND', `stream "${streamId}" not found`, 'streamId');
    }
    this.deps.hub.end(streamId);
  }

  /**
   * The follow position from, in order, the Last-Event-ID header, the
   * `lastEventId` query parameter and `from`; a position that is not a
   * whole number is a 400 naming where it came from.
   */
  position(header: string | undefined, query: string | null, from: string | null): FollowPosition {
    const seq = (value: string, name: string): FollowPosition => {
      if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) {
        throw invalid(name, `must be the seq of an event (a whole number from 0), got "${truncate(value)}"`);
      }
      return { after: Number(value) };
    };
    // EventSource sends no header before it has seen an id; an empty one means the same.
    if (header !== undefined && header !== '') return seq(header, 'Last-Event-ID');
    if (query !== null) return seq(query, 'lastEventId');
    if (from === null || from === 'earliest' || from === 'latest') return { from: from ?? 'earliest' };
    throw invalid('from', `must be earliest or latest, got "${truncate(from)}"`);
  }

  follow(streamId: string, position: FollowPosition, signal: AbortSignal): Promise<FollowStart> {
    return openFollow({ store: this.deps.store, hub: this.deps.hub, retryMs: this.deps.settings.retryMs }, this.checkId(streamId), position, signal);
  }

  /** A token for one stream, valid `ttlSeconds` (1 s up to COURIER_STREAM_TOKEN_MAX_TTL). */
  async mintToken(streamId: string, request: { ttlSeconds: number; scope: StreamScope }): Promise<{ token: string; expiresAt: number }> {
    this.checkId(streamId);
    const maxSeconds = Math.floor(this.deps.settings.maxTokenTtlMs / 1000);
    if (!Number.isSafeInteger(request.ttlSeconds) || request.ttlSeconds < 1 || request.ttlSeconds > maxSeconds) {
      throw invalid('ttlSeconds', `must be a whole number of seconds from 1 to ${maxSeconds} (COURIER_STREAM_TOKEN_MAX_TTL)`);
    }
    // Whole seconds: what the token says (`exp`) is exactly what the answer says.
    const expiresAt = (Math.floor(this.deps.clock.now() / 1000) + request.ttlSeconds) * 1000;
    const token = await mintStreamToken(this.deps.tokenSecret, { streamId, scope: request.scope, expiresAt });
    return { token, expiresAt };
  }

  /**
   * Lets a request through that carries the API token, or a stream token
   * for this stream with at least `need`; 401 naming `token` otherwise.
   */
  async authorize(streamId: string, apiToken: boolean, token: string | undefined, need: StreamScope): Promise<void> {
    if (apiToken) return;
    if (token === undefined || token === '') {
      throw new CourierError('UNAUTHORIZED', `missing token: send the API token, or a ${need} token of this stream as ?token= or Authorization: Bearer`, 'token');
    }
    const verdict = await verifyStreamToken(this.deps.tokenSecret, token, streamId, need, this.deps.clock.now());
    if (!verdict.ok) throw new CourierError('UNAUTHORIZED', `token: ${verdict.reason === 'invalid' ? 'not a valid token' : verdict.reason === 'read only' ? 'a read token cannot write' : verdict.reason === 'expired' ? 'expired' : 'a token of another stream'}`, 'token');
  }

  /** The retention sweep: fails open streams idle past COURIER_STREAM_IDLE, purges closed ones past COURIER_STREAM_RETENTION. */
  async expire(): Promise<{ closedIdle: number; removed: number }> {
    const now = this.deps.clock.now();
    const result = await this.deps.store.expireStreams({
      idleBefore: now - this.deps.settings.idleMs,
      closedBefore: now - this.deps.settings.closedRetentionMs,
      at: now,
      idleEvent: IDLE_EVENT,
      limit: EXPIRE_BATCH,
    });
    // Appended by the store, not through the bus: the hub reads them for this node's followers.
    for (const id of result.closedIdle) this.deps.hub.poke(id);
    return { closedIdle: result.closedIdle.length, removed: result.removed };
  }
}

function truncate(value: string): string {
  return value.length > 64 ? `${value.slice(0, 64)}…` : value;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `"${truncate(value)}"`;
  if (value === undefined) return 'nothing';
  return truncate(JSON.stringify(value) ?? String(value));
}
