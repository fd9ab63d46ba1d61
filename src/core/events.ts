/**
 * The domain events of one Courier process, as one typed map, and the tiny
 * synchronous bus they travel on. Emitters (the dispatcher, the message,
 * DLQ and schedule services, the gateway's balancer) say what happened;
 * consumers (the per-delivery log lines of delivery/delivery-log.ts, and
 * later metrics, task streams, the dashboard feed) subscribe on the bus the
 * composition root creates and exposes as `server.events`.
 *
 * Semantics:
 * - Events describe what this process did or saw, after the store agreed
 *   (a delivery is announced once its settlement is stored). They are not
 *   durable and not shared between nodes: the store's log (/v2/events) is
 *   the record; this bus is for reacting in-process.
 * - Listeners run synchronously, inside the emitter's call, in the order
 *   they subscribed. They must be cheap: a listener that does I/O should
 *   hand the work off (queue it) instead of holding up the delivery loop.
 * - A listener that throws (or returns a promise that rejects) is isolated:
 *   the other listeners still run and the emitter never sees the error. It
 *   goes to `onListenerError` (the roots pass their logger; the default is
 *   console.error). It is not an event on this bus: a failing listener is a
 *   bug in a consumer, not something that happened to a message, and an
 *   `error` listener that failed in turn would have nowhere to report.
 * - Emitting an event nobody listens to costs one map lookup. A hot path
 *   that builds a payload guards it with `hasListeners(name)`, so it does
 *   not allocate the payload either.
 *
 * Glossary: `at` is the clock's time (ms) when the event happened; `url` is
 * the message's destination as published (a `group:` URL stays one);
 * `retried` counts the attempts before this one, as `Upstash-Retried` does.
 */
import type { StreamEvent, StreamRecord } from './stream.js';

/** How one attempt ended, once its settlement was stored. */
export const ATTEMPT_OUTCOMES = ['delivered', 'retry', 'deadLetter', 'leaseLost', 'canceled'] as const;
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];

/** Why an instance of a group became usable or unusable. */
export type HealthChangeReason =
  /** Outlier detection: too many failed attempts in a row. */
  | 'ejected'
  /** An ejection ran out; slow start counts from now. */
  | 'readmitted'
  /** Active health checks: the fall threshold of failed probes was reached. */
  | 'check-failed'
  /** Active health checks: the rise threshold of passed probes was reached. */
  | 'check-passed';

export interface CourierEvents {
  /**
   * A message was stored: published, fired by a schedule, or replayed from
   * the DLQ (`replayOf`). Not emitted for a publish deduplicated onto an
   * earlier message: nothing new was stored.
   */
  'message.published': {
    messageId: string;
    url: string;
    queueName?: string;
    scheduleId?: string;
    /** The DLQ entry this message replays. */
    replayOf?: string;
    /** The task stream the message reports on (Upstash-Courier-Stream). */
    streamId?: string;
    at: number;
  };
  /** An attempt begins (the request is about to be sent, or routing failed it before sending). */
  'attempt.started': { messageId: string; url: string; retried: number; streamId?: string; at: number };
  /** An attempt's settlement was stored (or refused: leaseLost). One per `attempt.started` that the process saw through. */
  'attempt.finished': {
    messageId: string;
    url: string;
    retried: number;
    /** The destination's HTTP status; absent when there was no response (timeout, refused). */
    status?: number;
    durationMs: number;
    outcome: AttemptOutcome;
    /** Why the attempt failed, for a failed one. */
    error?: string;
    /** When the next attempt falls due, for outcome `retry`. */
    nextDeliveryAt?: number;
    at: number;
  };
  /** A failed attempt was stored with retries left; the next one is due at `nextDeliveryAt`. */
  'message.retried': {
    messageId: string;
    url: string;
    retried: number;
    status?: number;
    error?: string;
    nextDeliveryAt: number;
    streamId?: string;
    at: number;
  };
  /** The destination answered 2xx and the message is delivered. */
  'message.delivered': { messageId: string; url: string; retried: number; status: number; streamId?: string; at: number };
  /** Retries ran out (or the answer was non-retryable): the message failed into DLQ entry `dlqId`. */
  'message.dead-lettered': {
    messageId: string;
    url: string;
    retried: number;
    dlqId: string;
    status?: number;
    error?: string;
    streamId?: string;
    at: number;
  };
  /**
   * Messages were canceled. `source: 'cancel'`: a cancel request affected
   * `count` messages (pending ones are canceled at once; one in flight is
   * only flagged, and its attempt's outcome decides). `source: 'attempt'`:
   * a flagged message's failed attempt settled it as canceled.
   * `messageIds` is set when the cancel named them (some may have been unknown: `count` says how many counted).
   * `streamId`: for `source: 'attempt'`, the stream its one message reports on. A cancel request's
   * store verb answers a count only, so which of its messages were tied to streams is in the log
   * (CANCELED events at `at`), which is where streams/message-status.ts looks.
   */
  'message.canceled': { messageIds?: string[]; count: number; source: 'cancel' | 'attempt'; streamId?: string; at: number };
  /** DLQ entries were removed by request. `dlqIds` is set when the request named them. */
  'dead-letter.deleted': { dlqIds?: string[]; count: number; at: number };
  /** A DLQ entry left the queue as the new message `messageId` (its `message.published` carries `replayOf`). */
  'dead-letter.replayed': { dlqId: string; messageId: string; url: string; at: number };
  /** A schedule ran (its cron tick, or "run now") and enqueued `messageIds`; `error` when the run could not publish. */
  'schedule.fired': { scheduleId: string; trigger: 'cron' | 'manual'; messageIds: string[]; error?: string; at: number };
  /** An instance of a group became usable (`healthy`) or not; `detail` says what the last probe saw, for checks. */
  'instance.health-changed': {
    group: string;
    instanceId: string;
    healthy: boolean;
    reason: HealthChangeReason;
    detail?: string;
    /** Until when an ejected instance is left out. */
    ejectedUntil?: number;
    at: number;
  };
  /**
   * Events were stored in a task stream (by the API, a worker or a message's
   * lifecycle). This node's followers are fed from it with no store read;
   * other nodes learn of it through the store's watchStreams.
   */
  'stream.appended': { stream: StreamRecord; events: StreamEvent[]; at: number };
}

export type EventName = keyof CourierEvents;
/** A listener may be async: the bus catches its rejection as it catches a throw. */
export type EventListener<N extends EventName> = (payload: CourierEvents[N]) => unknown;

export interface EventBus {
  /** Subscribes; returns the function that unsubscribes (calling it twice is harmless). */
  on<N extends EventName>(name: N, listener: EventListener<N>): () => void;
  emit<N extends EventName>(name: N, payload: CourierEvents[N]): void;
  /** Whether `emit(name, …)` would call anyone: guard a payload built on a hot path with it. */
  hasListeners(name: EventName): boolean;
}

/** What an emitter needs: services and loops take this, never the whole bus. */
export type EventSink = Pick<EventBus, 'emit' | 'hasListeners'>;

export interface EventBusOptions {
  /** Where a listener's error goes; the listener's event is named. Default: console.error. */
  onListenerError?: (error: unknown, name: EventName) => void;
}

export function createEventBus(options: EventBusOptions = {}): EventBus {
  const report =
    options.onListenerError ?? ((error: unknown, name: EventName) => console.error(`a listener of "${name}" failed`, error));
  // Copy-on-write arrays: subscribing or unsubscribing replaces a name's array, so emit
  // iterates a snapshot without copying it, even when a listener unsubscribes mid-emit.
  const listeners = new Map<EventName, readonly EventListener<never>[]>();

  function call(listener: EventListener<never>, payload: unknown, name: EventName): void {
    try {
      const result: unknown = (listener as (payload: unknown) => unknown)(payload);
      // An async listener's rejection would otherwise be an unhandled rejection, which ends the process.
      if (result instanceof Promise) result.catch((error: unknown) => report(error, name));
    } catch (error) {
      report(error, name);
    }
  }

  return {
    on(name, listener) {
      const entry = listener as EventListener<never>;
      listeners.set(name, [...(listeners.get(name) ?? []), entry]);
      let subscribed = true;
      return () => {
        if (!subscribed) return;
        subscribed = false;
        const current = listeners.get(name) ?? [];
        // Only this subscription: the same function subscribed twice stays subscribed once.
        const index = current.indexOf(entry);
        if (index === -1) return;
        const left = [...current.slice(0, index), ...current.slice(index + 1)];
        if (left.length === 0) listeners.delete(name);
        else listeners.set(name, left);
      };
    },
    emit(name, payload) {
      const current = listeners.get(name);
      if (current === undefined) return;
      for (const listener of current) call(listener, payload, name);
    },
    hasListeners(name) {
      return listeners.has(name);
    },
  };
}
