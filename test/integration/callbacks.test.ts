/**
 * Callbacks, failure callbacks (spec §11.7, §11.8) and signing-key rotation
 * (spec §10, §12): what arrives at the callback URL, how it is signed, and
 * that receivers keep verifying across a rotation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Receiver } from '@upstash/qstash';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually, ok, sleep, startDestination, type Arrival, type Destination, type Script } from '../helpers/destination.js';

/** The callback body of spec §11.7 (plus `dlqId` for failure callbacks, §11.8). */
interface CallbackBody {
  status: number;
  header: Record<string, string[]>;
  body: string;
  retried: number;
  maxRetries: number;
  sourceMessageId: string;
  url: string;
  method: string;
  sourceHeader: Record<string, string[]>;
  sourceBody: string;
  createdAt: number;
  notBefore: number;
  dlqId?: string;
}

const fromBase64 = (value: string) => Buffer.from(value, 'base64').toString('utf8');
const parse = (arrival: Arrival) => JSON.parse(arrival.body.toString('utf8')) as CallbackBody;
/** Header maps may be keyed in any case; look one up the way HTTP does. */
const headerValue = (headers: Record<string, string[]>, name: string) =>
  Object.entries(headers).find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];

describe('callbacks', () => {
  let courier: TestCourier;
  const destinations: Destination[] = [];

  async function destination(script: Script = ok): Promise<Destination> {
    const started = await startDestination(script);
    destinations.push(started);
    return started;
  }

  async function verify(arrival: Arrival, url: string): Promise<boolean> {
    return courier.receiver().verify({
      signature: String(arrival.headers['upstash-signature']),
      body: arrival.body.toString('utf8'),
      url,
    });
  }

  async function waitForState(messageId: string, state: string): Promise<void> {
    await eventually(async () => {
      const { logs } = await courier.client.logs({ messageIds: [messageId] });
      return logs.some((entry) => entry.state === state) ? true : undefined;
    }, 10_000, `${state} for ${messageId}`);
  }

  before(async () => {
    courier = await startTestCourier();
  });
  after(async () => {
    await Promise.all(destinations.map((d) => d.close()));
    await courier.stop();
  });

  it('calls the callback URL once per attempt with the outcome, signed for the callback URL', async () => {
    const target = await destination((_, index) =>
      index === 0
        ? { status: 500, headers: { 'X-Attempt': 'first' }, body: 'first failed' }
        : { status: 201, headers: { 'X-Attempt': 'second' }, body: 'created' },
    );
    const cb = await destination();
    const callbackUrl = cb.url('/cb?kind=result');
    const { messageId } = await courier.client.publish({
      url: target.url('/work'),
      body: 'source body',
      headers: {
        'Content-Type': 'text/plain',
        'X-Source': 'yes',
        'Upstash-Callback-Method': 'PUT',
        'Upstash-Callback-Forward-X-Trace': 'trace-123',
      },
      retries: 2,
      retryDelay: '0',
      callback: callbackUrl,
    });
    await target.waitFor(2);
    const arrivals = await cb.waitFor(2);
    await sleep(300);
    assert.equal(cb.arrivals.length, 2, 'one callback per attempt, no more');

    const bodies = arrivals.map(parse).sort((a, b) => a.retried - b.retried);
    const [failed, succeeded] = bodies as [CallbackBody, CallbackBody];
    assert.equal(failed.status, 500);
    assert.equal(fromBase64(failed.body), 'first failed');
    assert.deepEqual(headerValue(failed.header, 'X-Attempt'), ['first']);
    assert.equal(failed.retried, 0);
    assert.equal(succeeded.status, 201);
    assert.equal(fromBase64(succeeded.body), 'created');
    assert.deepEqual(headerValue(succeeded.header, 'X-Attempt'), ['second']);
    assert.equal(succeeded.retried, 1);

    for (const body of bodies) {
      assert.equal(body.maxRetries, 2);
      assert.equal(body.sourceMessageId, messageId);
      assert.equal(body.url, target.url('/work'));
      assert.equal(body.method, 'POST');
      assert.equal(fromBase64(body.sourceBody), 'source body');
      assert.deepEqual(headerValue(body.sourceHeader, 'X-Source'), ['yes']);
      assert.deepEqual(headerValue(body.sourceHeader, 'Content-Type'), ['text/plain']);
      assert.equal(typeof body.createdAt, 'number');
      assert.equal(typeof body.notBefore, 'number');
      assert.ok(body.notBefore >= body.createdAt);
    }

    for (const arrival of arrivals) {
      assert.equal(arrival.method, 'PUT', 'Upstash-Callback-Method applies');
      assert.equal(arrival.path, '/cb?kind=result');
      assert.equal(arrival.headers['x-trace'], 'trace-123', 'Upstash-Callback-Forward-* headers are sent');
      assert.equal(arrival.headers['content-type'], 'application/json');
      assert.equal(arrival.headers['x-source'], undefined, "the source message's headers are not forwarded to the callback");
      assert.equal(await verify(arrival, callbackUrl), true);
      await assert.rejects(verify(arrival, target.url('/work')), 'the signature is for the callback URL, not the source URL');
    }
  });

  it("shows the destination's response headers under canonical (Go-style) names in the callback body", async () => {
    const target = await destination(() => ({ status: 200, headers: { 'x-request-id': 'abc' } }));
    const cb = await destination();
    await courier.client.publish({ url: target.url(), body: 'x', callback: cb.url('/cb') });
    const [arrival] = await cb.waitFor(1);
    const { header } = parse(arrival!);
    assert.deepEqual(header['X-Request-Id'], ['abc'], `got keys ${Object.keys(header).join(', ')}`);
  });

  it('fires the failure callback exactly once, after the final failure, with the dlqId of the DLQ entry', async () => {
    const target = await destination(() => ({ status: 500, body: 'always broken' }));
    const fcb = await destination();
    const failureCallbackUrl = fcb.url('/failed');
    const { messageId } = await courier.client.publish({
      url: target.url(),
      body: 'will fail',
      retries: 1,
      retryDelay: '0',
      failureCallback: failureCallbackUrl,
      headers: { 'Upstash-Failure-Callback-Forward-X-Why': 'dlq' },
    });
    const dlqEntry = await eventually(async () => {
      const { messages } = await courier.client.dlq.listMessages({ filter: { messageId } });
      return messages[0];
    }, 10_000, 'the DLQ entry');
    const [arrival] = await fcb.waitFor(1);
    await sleep(300);
    assert.equal(target.arrivals.length, 2);
    assert.equal(fcb.arrivals.length, 1, 'fired once, not per attempt');
    assert.ok(arrival!.at >= target.arrivals[1]!.at, 'after the final attempt');

    const body = parse(arrival!);
    assert.equal(body.dlqId, dlqEntry.dlqId);
    assert.equal(body.status, 500);
    assert.equal(fromBase64(body.body), 'always broken');
    assert.equal(body.retried, 1);
    assert.equal(body.maxRetries, 1);
    assert.equal(body.sourceMessageId, messageId);
    assert.equal(fromBase64(body.sourceBody), 'will fail');
    assert.equal(arrival!.headers['x-why'], 'dlq');
    assert.equal(await verify(arrival!, failureCallbackUrl), true);
  });

  it('does not fire the failure callback when a later attempt succeeds', async () => {
    const target = await destination((_, index) => (index === 0 ? { status: 500 } : { status: 200 }));
    const fcb = await destination();
    const { messageId } = await courier.client.publish({
      url: target.url(),
      body: 'recovers',
      retries: 2,
      retryDelay: '0',
      failureCallback: fcb.url('/failed'),
    });
    await target.waitFor(2);
    await waitForState(messageId, 'DELIVERED');
    await sleep(500);
    assert.equal(fcb.arrivals.length, 0);
  });

  it('fires the failure callback for a non-retryable 489 without further attempts', async () => {
    const target = await destination(() => ({ status: 489, headers: { 'Upstash-NonRetryable-Error': 'true' } }));
    const fcb = await destination();
    await courier.client.publish({ url: target.url(), body: 'x', retries: 3, retryDelay: '0', failureCallback: fcb.url('/failed') });
    const [arrival] = await fcb.waitFor(1);
    assert.equal(parse(arrival!).status, 489);
    assert.equal(parse(arrival!).retried, 0);
    await sleep(300);
    assert.equal(target.arrivals.length, 1);
    assert.equal(fcb.arrivals.length, 1);
  });
});

describe('signing-key rotation', () => {
  let courier: TestCourier;
  let target: Destination;
  before(async () => {
    courier = await startTestCourier();
    target = await startDestination();
  });
  after(async () => {
    await target.close();
    await courier.stop();
  });

  it('signs with the old next key after one rotation, so receivers with the old pair keep verifying', async () => {
    const before = (await (await courier.api('/v2/keys')).json()) as { current: string; next: string };
    assert.match(before.current, /\S/);
    assert.notEqual(before.current, before.next);
    const oldPair = new Receiver({ currentSigningKey: before.current, nextSigningKey: before.next });

    const rotation = await courier.api('/v2/keys/rotate', { method: 'POST' });
    assert.equal(rotation.status, 200);
    const rotated = (await rotation.json()) as { current: string; next: string };
    assert.equal(rotated.current, before.next, 'the old next key becomes current');
    assert.notEqual(rotated.next, before.next);
    assert.notEqual(rotated.next, before.current);
    const listed = (await (await courier.api('/v2/keys')).json()) as { current: string; next: string };
    assert.deepEqual(listed, rotated, 'GET /v2/keys returns the new pair');

    const url = target.url('/after-rotation');
    await courier.client.publish({ url, body: 'signed after rotation' });
    const [arrival] = await target.waitFor(1);
    const request = { signature: String(arrival!.headers['upstash-signature']), body: arrival!.body.toString(), url };
    assert.equal(await oldPair.verify(request), true);
    const oldCurrentOnly = new Receiver({ currentSigningKey: before.current, nextSigningKey: before.current });
    await assert.rejects(oldCurrentOnly.verify(request), 'the old current key no longer signs');
    const newPair = new Receiver({ currentSigningKey: rotated.current, nextSigningKey: rotated.next });
    assert.equal(await newPair.verify(request), true);
  });
});
