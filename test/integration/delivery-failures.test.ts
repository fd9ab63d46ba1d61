/**
 * Failed deliveries end to end (spec §11.2-11.6, §18): retries, their timing,
 * non-retryable errors, timeouts, resets and redirects, observed at a real
 * destination and through the SDK's `logs` and `dlq` views.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually, ok, sleep, startDestination, type Destination, type Script } from '../helpers/destination.js';

/** The log entry fields these tests read; the SDK's `Log` type omits the response ones. */
interface LogEntry {
  time: number;
  state: string;
  messageId: string;
  url: string;
  error?: string;
  nextDeliveryTime?: number;
  responseStatus?: number;
}

/** e^2.5 s, the documented delay before the first retry (spec §11.3). */
const FIRST_DEFAULT_BACKOFF_MS = Math.exp(2.5) * 1000;

const always =
  (status: number, headers?: Record<string, string>, body?: string): Script =>
  () => ({ status, headers, body });

describe('delivery failures', () => {
  let courier: TestCourier;
  const destinations: Destination[] = [];

  async function destination(script: Script): Promise<Destination> {
    const started = await startDestination(script);
    destinations.push(started);
    return started;
  }

  /** Every log entry of one message, oldest first. */
  async function logsOf(messageId: string): Promise<LogEntry[]> {
    const { logs } = await courier.client.logs({ messageIds: [messageId], count: 1000 });
    return (logs as unknown as LogEntry[]).slice().reverse();
  }

  async function logsUntil(messageId: string, state: string): Promise<LogEntry[]> {
    return eventually(async () => {
      const entries = await logsOf(messageId);
      return entries.some((entry) => entry.state === state) ? entries : undefined;
    }, 10_000, `${state} in the logs of ${messageId}`);
  }

  async function deadLetterOf(messageId: string) {
    return eventually(async () => {
      const { messages } = await courier.client.dlq.listMessages({ filter: { messageId } });
      return messages[0];
    }, 10_000, `a DLQ entry for ${messageId}`);
  }

  const gaps = (d: Destination) => d.arrivals.slice(1).map((arrival, i) => arrival.at - d.arrivals[i]!.at);

  before(async () => {
    courier = await startTestCourier();
  });
  after(async () => {
    // Destinations first: closing them ends any attempt still hanging, so the courier stops at once.
    await Promise.all(destinations.map((d) => d.close()));
    await courier.stop();
  });

  it('retries a destination that fails twice, with the same message id and Upstash-Retried 0, 1, 2, then logs DELIVERED', async () => {
    const d = await destination((_, index) => (index < 2 ? { status: 500, body: 'not yet' } : { status: 200, body: 'ok' }));
    const { messageId } = await courier.client.publishJSON({ url: d.url(), body: { n: 1 }, retries: 3, retryDelay: '0' });
    const arrivals = await d.waitFor(3);
    assert.deepEqual(
      arrivals.map((a) => a.headers['upstash-message-id']),
      [messageId, messageId, messageId],
    );
    assert.deepEqual(
      arrivals.map((a) => a.headers['upstash-retried']),
      ['0', '1', '2'],
    );
    assert.deepEqual(
      arrivals.map((a) => a.body.toString()),
      ['{"n":1}', '{"n":1}', '{"n":1}'],
    );

    const entries = await logsUntil(messageId, 'DELIVERED');
    assert.equal(entries[0]?.state, 'CREATED');
    assert.deepEqual(
      entries.map((e) => e.state).filter((s) => s !== 'CREATED' && s !== 'ACTIVE'),
      ['ERROR', 'RETRY', 'ERROR', 'RETRY', 'DELIVERED'],
    );
    const errors = entries.filter((e) => e.state === 'ERROR');
    assert.deepEqual(errors.map((e) => e.responseStatus), [500, 500]);
    for (const retry of entries.filter((e) => e.state === 'RETRY')) {
      assert.equal(typeof retry.nextDeliveryTime, 'number', 'a RETRY entry says when the next attempt is due');
      assert.ok(retry.nextDeliveryTime! >= retry.time);
      assert.ok(retry.nextDeliveryTime! - retry.time < 1000, 'retryDelay "0" retries at once');
    }
    await sleep(200);
    assert.equal(d.arrivals.length, 3, 'no attempt after the successful one');
  });

  it('applies the default backoff (e^2.5 s ≈ 12 s) after a failure when nothing else sets the delay', async () => {
    const d = await destination(always(500));
    const { messageId } = await courier.client.publish({ url: d.url(), body: 'x', retries: 3 });
    await d.waitFor(1);
    const entries = await logsUntil(messageId, 'RETRY');
    const retry = entries.find((e) => e.state === 'RETRY')!;
    const error = entries.find((e) => e.state === 'ERROR')!;
    assert.ok(error.time <= retry.time);
    const delay = retry.nextDeliveryTime! - retry.time;
    assert.ok(Math.abs(delay - FIRST_DEFAULT_BACKOFF_MS) < 1000, `next delivery ${delay} ms after the failure, want ~12182 ms`);
    assert.ok(retry.nextDeliveryTime! - d.arrivals[0]!.at > 11_000, 'measured from the failed attempt');
    assert.equal(d.arrivals.length, 1, 'no early retry');
    await courier.client.messages.cancel(messageId);
  });

  it('retries at once when the failed response says Retry-After: 0, ignoring the default backoff', async () => {
    const d = await destination((_, index) => (index === 0 ? { status: 503, headers: { 'Retry-After': '0' } } : { status: 200 }));
    const { messageId } = await courier.client.publish({ url: d.url(), body: 'x', retries: 3 });
    await d.waitFor(2, 5_000);
    assert.ok(gaps(d)[0]! < 2_000, `second attempt came ${gaps(d)[0]} ms later`);
    await logsUntil(messageId, 'DELIVERED');
  });

  it('waits about one second when the failed response says Retry-After: 1', async () => {
    const d = await destination((_, index) => (index === 0 ? { status: 429, headers: { 'Retry-After': '1' } } : { status: 200 }));
    const { messageId } = await courier.client.publish({ url: d.url(), body: 'x', retries: 3, retryDelay: '0' });
    await d.waitFor(2, 6_000);
    const [gap] = gaps(d);
    assert.ok(gap! >= 950 && gap! < 4_000, `second attempt came ${gap} ms later, want ~1000 ms`);
    const retry = (await logsUntil(messageId, 'DELIVERED')).find((e) => e.state === 'RETRY')!;
    assert.ok(Math.abs(retry.nextDeliveryTime! - retry.time - 1000) < 100, 'RETRY nextDeliveryTime is 1 s after the failure');
  });

  it('honours X-RateLimit-Reset on a failed response', async () => {
    const d = await destination((_, index) => (index === 0 ? { status: 429, headers: { 'X-RateLimit-Reset': '1' } } : { status: 200 }));
    const { messageId } = await courier.client.publish({ url: d.url(), body: 'x', retries: 3 });
    await d.waitFor(2, 6_000);
    const [gap] = gaps(d);
    assert.ok(gap! >= 950 && gap! < 4_000, `second attempt came ${gap} ms later, want ~1000 ms`);
    await logsUntil(messageId, 'DELIVERED');
  });

  it('falls back to the default backoff when Retry-After asks for more than a day', async () => {
    const d = await destination(always(503, { 'Retry-After': String(2 * 86_400) }));
    const { messageId } = await courier.client.publish({ url: d.url(), body: 'x', retries: 3 });
    await d.waitFor(1);
    const retry = (await logsUntil(messageId, 'RETRY')).find((e) => e.state === 'RETRY')!;
    const delay = retry.nextDeliveryTime! - retry.time;
    assert.ok(Math.abs(delay - FIRST_DEFAULT_BACKOFF_MS) < 1000, `next delivery ${delay} ms after the failure, want ~12182 ms`);
    await courier.client.messages.cancel(messageId);
  });

  it('spaces retries by the Upstash-Retry-Delay expression, evaluated with retried = 0, 1, …', async () => {
    const d = await destination((_, index) => (index < 2 ? { status: 500 } : { status: 200 }));
    const { messageId } = await courier.client.publish({ url: d.url(), body: 'x', retries: 3, retryDelay: '300 * (1 + retried)' });
    await d.waitFor(3, 8_000);
    const [first, second] = gaps(d);
    assert.ok(first! >= 290 && first! < 3_000, `first retry after ${first} ms, want ~300 ms`);
    assert.ok(second! >= 590 && second! < 3_000, `second retry after ${second} ms, want ~600 ms`);
    assert.ok(second! > first!, 'the delay grows with retried');
    const retries = (await logsUntil(messageId, 'DELIVERED')).filter((e) => e.state === 'RETRY');
    const delays = retries.map((e) => e.nextDeliveryTime! - e.time);
    assert.equal(delays.length, 2);
    assert.ok(Math.abs(delays[0]! - 300) <= 50 && Math.abs(delays[1]! - 600) <= 50, `RETRY delays ${delays.join(', ')} ms, want 300, 600`);
  });

  it('dead-letters a message after its retries run out: exactly retries + 1 attempts, last response kept, FAILED logged', async () => {
    const d = await destination(always(500, { 'X-Reason': 'broken' }, 'boom'));
    const { messageId } = await courier.client.publish({
      url: d.url('/exhaust?x=1'),
      body: 'payload-1',
      headers: { 'Content-Type': 'text/plain', 'X-Custom': 'kept' },
      retries: 2,
      retryDelay: '0',
    });
    const entry = await deadLetterOf(messageId);
    assert.equal(d.arrivals.length, 3);
    assert.deepEqual(
      d.arrivals.map((a) => a.headers['upstash-retried']),
      ['0', '1', '2'],
    );
    assert.equal(entry.messageId, messageId);
    assert.equal(entry.url, d.url('/exhaust?x=1'));
    assert.equal(entry.responseStatus, 500);
    assert.equal(entry.responseBody, 'boom');
    assert.equal(entry.body, 'payload-1');
    assert.equal(entry.maxRetries, 2);
    assert.deepEqual(entry.header?.['X-Custom'], ['kept']);
    assert.deepEqual(entry.header?.['Content-Type'], ['text/plain']);
    const responseHeader = Object.fromEntries(Object.entries(entry.responseHeader ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    assert.deepEqual(responseHeader['x-reason'], ['broken']);

    const entries = await logsUntil(messageId, 'FAILED');
    assert.equal(entries.at(-1)?.state, 'FAILED');
    assert.equal(entries.filter((e) => e.state === 'ERROR').length, 3);
    assert.equal(entries.filter((e) => e.state === 'RETRY').length, 2);
    assert.equal(entries.some((e) => e.state === 'DELIVERED'), false);
    await sleep(300);
    assert.equal(d.arrivals.length, 3, 'no attempt after the message failed');
  });

  it('sends a 489 with Upstash-NonRetryable-Error: true straight to the DLQ despite retries left', async () => {
    const d = await destination(always(489, { 'Upstash-NonRetryable-Error': 'true' }, 'do not retry'));
    const { messageId } = await courier.client.publish({ url: d.url(), body: 'x', retries: 3, retryDelay: '0' });
    const entry = await deadLetterOf(messageId);
    assert.equal(entry.responseStatus, 489);
    assert.equal(entry.responseBody, 'do not retry');
    const entries = await logsUntil(messageId, 'FAILED');
    assert.equal(entries.some((e) => e.state === 'RETRY'), false);
    await sleep(300);
    assert.equal(d.arrivals.length, 1);
  });

  it('retries a 489 that lacks the Upstash-NonRetryable-Error header', async () => {
    const d = await destination((_, index) => (index === 0 ? { status: 489 } : { status: 200 }));
    const { messageId } = await courier.client.publish({ url: d.url(), body: 'x', retries: 3, retryDelay: '0' });
    await d.waitFor(2);
    const entries = await logsUntil(messageId, 'DELIVERED');
    assert.deepEqual(
      entries.map((e) => e.state).filter((s) => s === 'ERROR' || s === 'RETRY' || s === 'DELIVERED' || s === 'FAILED'),
      ['ERROR', 'RETRY', 'DELIVERED'],
    );
  });

  it('gives up on an attempt after Upstash-Timeout, retries it, and dead-letters it with a timeout error', async () => {
    const d = await destination(() => ({ hang: true }));
    const { messageId } = await courier.client.publish({ url: d.url(), body: 'x', retries: 1, retryDelay: '0', timeout: 1 });
    const entry = await deadLetterOf(messageId);
    assert.equal(d.arrivals.length, 2, 'the timed-out attempt was retried once');
    const [gap] = gaps(d);
    assert.ok(gap! >= 900 && gap! < 5_000, `retry came ${gap} ms after the hanging attempt, want ~1 s`);
    assert.match(String((entry as { error?: string }).error), /timeout|timed out/i);
    const entries = await logsUntil(messageId, 'FAILED');
    const errors = entries.filter((e) => e.state === 'ERROR');
    assert.equal(errors.length, 2);
    for (const error of errors) assert.match(String(error.error), /timeout|timed out/i);
  });

  it('keeps delivering to a healthy destination while another one hangs', async () => {
    const hanging = await destination(() => ({ hang: true }));
    // The hanging attempt stays open until its 10 s timeout: if the healthy delivery waited behind
    // it, the hanging request would be closed by the time the healthy one arrives.
    const hangingOpenAtArrival: number[] = [];
    const healthy = await destination(() => {
      hangingOpenAtArrival.push(hanging.open);
      return { status: 200, body: 'ok' };
    });
    await courier.client.publish({ url: hanging.url(), body: 'slow', retries: 0, timeout: 10 });
    await hanging.waitFor(1);
    await courier.client.publish({ url: healthy.url(), body: 'fast', retries: 0 });
    await healthy.waitFor(1);
    assert.deepEqual(hangingOpenAtArrival, [1], 'the healthy destination was reached while the hanging attempt was still open');
    assert.equal(hanging.arrivals.length, 1, 'the hanging attempt is still the only one');
  });

  it('counts a connection reset by the destination as a failed attempt and retries it', async () => {
    const d = await destination((_, index) => (index === 0 ? { reset: true } : { status: 200 }));
    const { messageId } = await courier.client.publish({ url: d.url(), body: 'x', retries: 3, retryDelay: '0' });
    const arrivals = await d.waitFor(2);
    assert.deepEqual(
      arrivals.map((a) => [a.headers['upstash-message-id'], a.headers['upstash-retried']]),
      [
        [messageId, '0'],
        [messageId, '1'],
      ],
    );
    const entries = await logsUntil(messageId, 'DELIVERED');
    const error = entries.find((e) => e.state === 'ERROR');
    assert.ok(error, 'the reset attempt is logged as ERROR');
    assert.ok(error.error && error.error.length > 0, 'with an error message');
    assert.equal(error.responseStatus, undefined, 'and no response status');
  });

  it('does not follow a 3xx redirect and counts it as a failed attempt', async () => {
    const target = await destination(ok);
    const d = await destination(always(302, { Location: target.url('/moved') }, 'moved'));
    const { messageId } = await courier.client.publish({ url: d.url(), body: 'x', retries: 0 });
    const entry = await deadLetterOf(messageId);
    assert.equal(entry.responseStatus, 302);
    assert.equal(d.arrivals.length, 1);
    await sleep(200);
    assert.equal(target.arrivals.length, 0, 'the redirect target is never called');
    const entries = await logsUntil(messageId, 'FAILED');
    assert.equal(entries.some((e) => e.state === 'DELIVERED'), false);
  });
});
