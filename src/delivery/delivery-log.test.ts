/**
 * The per-delivery log lines, read back as pino writes them: the messages,
 * levels and fields (in order) the dispatcher wrote before the events.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createEventBus, type CourierEvents } from '../core/events.js';
import { logDeliveryEvents } from './delivery-log.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n')) if (text) lines.push(JSON.parse(text) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ level: 'info', base: undefined, timestamp: false }, stream);
  return { lines, logger };
}

const base = { messageId: 'msg_1', url: 'http://a.test/hook', retried: 2, durationMs: 12, at: 1_000 };

/** One event in, the line it wrote (its keys in order) out. */
function lineFor(event: CourierEvents['attempt.finished']): Record<string, unknown> {
  const { lines, logger } = capture();
  const bus = createEventBus();
  const off = logDeliveryEvents(bus, logger);
  bus.emit('attempt.finished', event);
  off();
  bus.emit('attempt.finished', event);
  assert.equal(lines.length, 1, 'one line per event, none after unsubscribing');
  return lines[0]!;
}

describe('delivery log lines', () => {
  it('logs a delivery at info as "delivered", with the store\'s outcome word', () => {
    const line = lineFor({ ...base, status: 200, outcome: 'delivered' });
    assert.deepEqual(Object.entries(line), Object.entries({ level: 30, messageId: 'msg_1', url: 'http://a.test/hook', retried: 2, status: 200, durationMs: 12, outcome: 'ack', msg: 'delivered' }));
  });

  it('logs a 2xx whose lease was lost as "delivered" too', () => {
    const line = lineFor({ ...base, status: 204, outcome: 'leaseLost' });
    assert.equal(line.msg, 'delivered');
    assert.equal(line.level, 30);
    assert.equal(line.outcome, 'leaseLost');
  });

  it('logs a failure whose lease was lost at warn, without its error', () => {
    const line = lineFor({ ...base, status: 500, outcome: 'leaseLost', error: '500 Internal Server Error' });
    assert.deepEqual(Object.entries(line), Object.entries({ level: 40, messageId: 'msg_1', url: 'http://a.test/hook', retried: 2, status: 500, durationMs: 12, outcome: 'leaseLost', msg: 'attempt finished after its lease was lost' }));
  });

  it('logs a failure with retries left at warn as "attempt failed; will retry", with its error', () => {
    const line = lineFor({ ...base, status: 500, outcome: 'retry', error: '500 Internal Server Error', nextDeliveryAt: 5_000 });
    assert.deepEqual(Object.entries(line), Object.entries({
      level: 40, messageId: 'msg_1', url: 'http://a.test/hook', retried: 2, status: 500, durationMs: 12, outcome: 'retry',
      error: '500 Internal Server Error', msg: 'attempt failed; will retry',
    }));
  });

  it('logs a retry canceled mid-attempt as a retry, with outcome canceled', () => {
    const line = lineFor({ ...base, status: 503, outcome: 'canceled', error: '503 Service Unavailable' });
    assert.equal(line.msg, 'attempt failed; will retry');
    assert.equal(line.outcome, 'canceled');
  });

  it('logs a failure into the DLQ as "attempt failed"; no response leaves status out', () => {
    const line = lineFor({ ...base, outcome: 'deadLetter', error: 'connect ECONNREFUSED' });
    assert.deepEqual(Object.entries(line), Object.entries({
      level: 40, messageId: 'msg_1', url: 'http://a.test/hook', retried: 2, durationMs: 12, outcome: 'deadLetter',
      error: 'connect ECONNREFUSED', msg: 'attempt failed',
    }));
  });
});
