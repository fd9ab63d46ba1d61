/**
 * The per-delivery log lines, written from `attempt.finished` events
 * (core/events.ts): one line per settled attempt, with the messages, levels
 * and fields the dispatcher used to write itself, so log searches keep
 * working. `outcome` in the line keeps the store's word for a delivery,
 * `ack` (the event says `delivered`).
 *
 *   info 'delivered'                                 a 2xx (even one whose lease was lost)
 *   warn 'attempt finished after its lease was lost' a failure whose settlement was refused
 *   warn 'attempt failed; will retry'                a failure with retries left (outcome retry, or canceled mid-attempt)
 *   warn 'attempt failed'                            a failure into the DLQ
 */
import type { Logger } from 'pino';
import type { AttemptOutcome, CourierEvents, EventBus } from '../core/events.js';
import { isSuccess } from './attempt.js';

/** Subscribes the lines to `events`; returns the function that unsubscribes. */
export function logDeliveryEvents(events: Pick<EventBus, 'on'>, logger: Pick<Logger, 'info' | 'warn'>): () => void {
  return events.on('attempt.finished', (event) => writeLine(event, logger));
}

const LOGGED_OUTCOME: Record<AttemptOutcome, string> = {
  delivered: 'ack',
  retry: 'retry',
  deadLetter: 'deadLetter',
  leaseLost: 'leaseLost',
  canceled: 'canceled',
};

function writeLine(event: CourierEvents['attempt.finished'], logger: Pick<Logger, 'info' | 'warn'>): void {
  // Key order is the line's field order: keep it.
  const line = {
    messageId: event.messageId,
    url: event.url,
    retried: event.retried,
    status: event.status,
    durationMs: event.durationMs,
    outcome: LOGGED_OUTCOME[event.outcome],
  };
  if (isSuccess({ status: event.status, durationMs: event.durationMs })) logger.info(line, 'delivered');
  else if (event.outcome === 'leaseLost') logger.warn(line, 'attempt finished after its lease was lost');
  else {
    // Only a retry settlement can end canceled (a cancel requested mid-attempt): it was logged as a retry.
    const willRetry = event.outcome === 'retry' || event.outcome === 'canceled';
    logger.warn({ ...line, error: event.error }, willRetry ? 'attempt failed; will retry' : 'attempt failed');
  }
}
