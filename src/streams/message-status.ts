/**
 * Streams tied to messages: a message published with `Upstash-Courier-Stream`
 * reports its lifecycle to that stream as `status` events (author `courier`),
 * and each of its deliveries carries the stream's id, a write token and the
 * resume position (README "Streams tied to messages").
 *
 * The status events, from the bus (core/events.ts), data as JSON:
 *
 *   message.published      → queued     {status, messageId}                (creates the stream, tied to the message)
 *   attempt.started        → running    {status, messageId, attempt}       (attempt = retried + 1)
 *   message.retried        → retrying   {status, messageId, attempt, responseStatus? | error?, nextAttemptAt}
 *   message.delivered      → delivered  {status, messageId, attempt, responseStatus}          closes: ended
 *   message.dead-lettered  → failed     {status, messageId, attempt, dlqId, responseStatus?, error?}  closes: failed
 *                            preceded, in the same atomic append, by `error` {reason: "failed", messageId, dlqId, …}
 *                            unless the worker already closed the stream (wrote `end` or `error`): the worker's
 *                            own last word stands, and Courier adds only the final status
 *   message.canceled       → canceled   {status, messageId}                closes: failed
 *
 * Ordering: the bus is synchronous and must not wait on I/O, so every append
 * goes on a per-stream promise chain: a stream's appends are made one after
 * the other, in the order the events were emitted, while the delivery loop
 * goes on. A failed append is logged and the chain continues.
 *
 * The one wait: an attempt of a tied message is sent only once its `running`
 * status is stored (bounded by RUNNING_WAIT_MS), so the worker's events always
 * come after it, and the delivery can say where the attempt starts:
 * `Courier-Stream-Seq` is the seq of that `running` event. Everything at or
 * below it was there before this attempt began (earlier attempts' output and
 * statuses); the worker kit numbers its events from it, so a resent batch is
 * idempotent (writer seq), and a deterministic writer on a retry can read
 * what it wrote before and skip it.
 *
 * Cancel: a cancel request's store verb answers a count, and only some of the
 * messages it touched are canceled at once (an active one is only flagged and
 * its attempt's outcome decides), so the recorder reads which ones from the
 * log: the CANCELED events at the cancel's time. A flagged message's own
 * `message.canceled` (source `attempt`) carries its stream id.
 *
 * HAZARD: on a store shared by several nodes, the node that published
 * appends `queued` and the node that delivers appends `running`: the two
 * are not ordered with each other (a fast claim can put `running` first).
 * Every status append carries the message id, so whichever comes first
 * creates the stream tied to the message.
 *
 * HAZARD: these events are in-process. A node that dies between a settlement
 * and its append loses that status (the message's log, /v2/events, keeps the
 * truth); the stream then closes as idle under retention.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { CourierEvents, EventBus } from '../core/events.js';
import type { ClaimedMessage } from '../core/message.js';
import type { NewStreamEvent, StreamState } from '../core/stream.js';
import type { HistoryStore, StreamAppendResult, StreamStore } from '../store/port.js';
import { appendToStream } from './append.js';
import { mintStreamToken } from './tokens.js';

export const STREAM_STATUSES = ['queued', 'running', 'retrying', 'delivered', 'failed', 'canceled'] as const;
export type StreamStatus = (typeof STREAM_STATUSES)[number];

/** The delivery headers of a tied message's attempt. */
export const STREAM_HEADERS = { id: 'Courier-Stream-Id', token: 'Courier-Stream-Token', seq: 'Courier-Stream-Seq' } as const;

/**
 * A write token outlives its attempt's time-out by this much: the worker's
 * last batch may still be on the wire when the attempt is settled, and clocks
 * of nodes differ by a little. The stream's own close stops writes anyway.
 */
const TOKEN_MARGIN_MS = 60_000;
/**
 * How long an attempt waits for its `running` status to be stored. An append
 * takes milliseconds; past this the store is in trouble, and the attempt is
 * sent without `Courier-Stream-Seq` rather than held up further.
 */
const RUNNING_WAIT_MS = 2_000;
/** CANCELED log events read per page when a cancel request is resolved to its messages. */
const CANCEL_PAGE = 1_000;

export interface MessageStatusDeps {
  store: Pick<StreamStore, 'appendStreamEvents' | 'getStream'> & Pick<HistoryStore, 'listEvents'>;
  events: Pick<EventBus, 'on' | 'emit' | 'hasListeners'>;
  clock: Clock;
  logger: Logger;
  /** streams/tokens.ts streamTokenSecret(apiToken). */
  tokenSecret: Uint8Array;
  /** Events a stream may hold (the store refuses an append past it). */
  maxEvents: number;
}

export interface MessageStatusRecorder {
  /** The headers of one attempt of a tied message (the dispatcher's `streamHeaders`). Never rejects. */
  deliveryHeaders(claimed: ClaimedMessage, timeoutMs: number, now: number): Promise<Record<string, string>>;
  /** Resolves once every append queued so far is made (tests, shutdown). */
  idle(): Promise<void>;
  /** Unsubscribes and waits for the queued appends. */
  stop(): Promise<void>;
}

type Status = Record<string, unknown> & { status: StreamStatus; messageId: string };

export function recordMessageStatus(deps: MessageStatusDeps): MessageStatusRecorder {
  const { store, events, clock, logger } = deps;
  /** Per stream: the tail of its chain of appends. Removed once the chain is idle. */
  const chains = new Map<string, Promise<StreamAppendResult | undefined>>();
  /** Per attempt (message id): its `running` append, which the attempt's headers wait for. */
  const running = new Map<string, Promise<StreamAppendResult | undefined>>();
  /** Work outside the chains (cancel lookups), for idle(). */
  const side = new Set<Promise<void>>();

  function enqueue(streamId: string, label: Status, make: () => Promise<StreamAppendResult>): Promise<StreamAppendResult | undefined> {
    const previous = chains.get(streamId) ?? Promise.resolve(undefined);
    const next = previous.then(make).then(
      (result) => {
        if (result.kind !== 'appended') {
          logger.warn({ streamId, messageId: label.messageId, status: label.status, result: result.kind }, 'stream refused a message status');
        }
        return result;
      },
      (error: unknown) => {
        logger.error({ err: error, streamId, messageId: label.messageId, status: label.status }, 'appending a message status failed');
        return undefined;
      },
    );
    chains.set(streamId, next);
    void next.then(() => {
      if (chains.get(streamId) === next) chains.delete(streamId);
    });
    return next;
  }

  function append(streamId: string, status: Status, options: { closes?: Exclude<StreamState, 'open'> } = {}) {
    return enqueue(streamId, status, () =>
      appendToStream(
        { store, events },
        {
          streamId,
          events: [{ type: 'status', data: JSON.stringify(status), json: true }],
          at: clock.now(),
          author: 'courier',
          maxEvents: deps.maxEvents,
          ...(options.closes ? { closes: options.closes } : {}),
          // Every status ties the stream it may create: on a shared store another node's `running` can
          // land before this node's `queued`, and the stream must still be the message's.
          messageId: status.messageId,
        },
      ),
    );
  }

  /** The DLQ's close: `error` first unless the worker closed the stream, read just before (its writes all precede its answer). */
  function appendFailed(streamId: string, status: Status, failure: Record<string, unknown>) {
    return enqueue(streamId, status, async () => {
      const stream = await store.getStream(streamId);
      const events: NewStreamEvent[] = [];
      if (!stream?.writerClosed) events.push({ type: 'error', data: JSON.stringify({ reason: 'failed', ...failure }), json: true });
      events.push({ type: 'status', data: JSON.stringify(status), json: true });
      const { messageId } = status;
      return appendToStream({ store, events: deps.events }, { streamId, events, at: clock.now(), author: 'courier', maxEvents: deps.maxEvents, closes: 'failed', messageId });
    });
  }

  function outcome(payload: { status?: number; error?: string }): Record<string, unknown> {
    const fields: Record<string, unknown> = {};
    if (payload.status !== undefined) fields.responseStatus = payload.status;
    if (payload.error !== undefined) fields.error = payload.error;
    return fields;
  }

  async function resolveCanceled(payload: CourierEvents['message.canceled']): Promise<void> {
    let cursor: string | undefined;
    do {
      const page = await store.listEvents({
        states: ['CANCELED'],
        filter: { fromDate: payload.at, toDate: payload.at },
        ...(payload.messageIds ? { messageIds: payload.messageIds } : {}),
        count: CANCEL_PAGE,
        ...(cursor !== undefined ? { cursor } : {}),
      });
      for (const event of page.items) {
        const { streamId, messageId } = event.spec;
        if (streamId !== undefined) void append(streamId, { status: 'canceled', messageId }, { closes: 'failed' });
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
  }

  const unsubscribe = [
    events.on('message.published', ({ streamId, messageId }) => {
      if (streamId !== undefined) void append(streamId, { status: 'queued', messageId });
    }),
    events.on('attempt.started', ({ streamId, messageId, retried }) => {
      if (streamId === undefined) return;
      running.set(messageId, append(streamId, { status: 'running', messageId, attempt: retried + 1 }));
    }),
    // An attempt that never reached deliveryHeaders (its route failed it before sending) leaves its entry here.
    events.on('attempt.finished', ({ messageId }) => {
      running.delete(messageId);
    }),
    events.on('message.retried', (event) => {
      if (event.streamId === undefined) return;
      const status: Status = { status: 'retrying', messageId: event.messageId, attempt: event.retried + 1, ...outcome(event), nextAttemptAt: event.nextDeliveryAt };
      void append(event.streamId, status);
    }),
    events.on('message.delivered', (event) => {
      if (event.streamId === undefined) return;
      const status: Status = { status: 'delivered', messageId: event.messageId, attempt: event.retried + 1, responseStatus: event.status };
      void append(event.streamId, status, { closes: 'ended' });
    }),
    events.on('message.dead-lettered', (event) => {
      if (event.streamId === undefined) return;
      const failure = { messageId: event.messageId, dlqId: event.dlqId, ...outcome(event) };
      void appendFailed(event.streamId, { status: 'failed', attempt: event.retried + 1, ...failure }, failure);
    }),
    events.on('message.canceled', (event) => {
      if (event.source === 'attempt') {
        const messageId = event.messageIds?.[0];
        if (event.streamId !== undefined && messageId !== undefined) void append(event.streamId, { status: 'canceled', messageId }, { closes: 'failed' });
        return;
      }
      const work = resolveCanceled(event).catch((error: unknown) => logger.error({ err: error }, 'finding the streams of canceled messages failed'));
      side.add(work);
      void work.then(() => side.delete(work));
    }),
  ];

  async function startSeq(messageId: string): Promise<number | undefined> {
    const pending = running.get(messageId);
    running.delete(messageId);
    if (!pending) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), RUNNING_WAIT_MS)));
    try {
      const result = await Promise.race([pending, timeout]);
      if (result === undefined) return undefined;
      return result.kind === 'appended' || result.kind === 'closed' || result.kind === 'full' ? result.stream.lastSeq : undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async deliveryHeaders(claimed, timeoutMs, now) {
      const { streamId, messageId } = claimed.spec;
      if (streamId === undefined) return {};
      const headers: Record<string, string> = { [STREAM_HEADERS.id]: streamId };
      try {
        const seq = await startSeq(messageId);
        if (seq !== undefined) headers[STREAM_HEADERS.seq] = String(seq);
        headers[STREAM_HEADERS.token] = await mintStreamToken(deps.tokenSecret, { streamId, scope: 'write', expiresAt: now + timeoutMs + TOKEN_MARGIN_MS });
      } catch (error) {
        logger.error({ err: error, streamId, messageId }, 'minting a stream token failed; delivering without it');
      }
      return headers;
    },
    async idle() {
      // Appends may queue more (a cancel lookup queues its appends): settle until nothing is left.
      while (chains.size > 0 || side.size > 0) await Promise.all([...chains.values(), ...side]);
    },
    async stop() {
      for (const off of unsubscribe) off();
      await this.idle();
    },
  };
}
