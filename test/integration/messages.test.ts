/** GET and DELETE /v2/messages (spec §5): the message object, single and bulk cancel in every SDK and legacy form. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QstashError } from '@upstash/qstash';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { arrivalsAt, eventually, sleep, startDestination, uniquePath, type Destination } from '../helpers/destination.js';

const isNotFound = (error: unknown) => error instanceof QstashError && error.status === 404;

/** Publishes `count` messages far in the future, so they stay pending until cancelled. */
async function publishPending(courier: TestCourier, destination: Destination, count: number, label?: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const request = { url: destination.url(uniquePath('pending')), body: `pending ${i}`, delay: 600 };
    const { messageId } = await courier.client.publish(label === undefined ? request : { ...request, label });
    ids.push(messageId);
  }
  return ids;
}

async function exists(courier: TestCourier, messageId: string): Promise<boolean> {
  const response = await courier.api(`/v2/messages/${messageId}`);
  await response.arrayBuffer();
  if (response.status === 200) return true;
  assert.equal(response.status, 404);
  return false;
}

describe('messages (spec §5)', () => {
  let courier: TestCourier;
  let destination: Destination;

  before(async () => {
    courier = await startTestCourier();
    destination = await startDestination((arrival) => {
      if (arrival.path.startsWith('/slow-fail')) return { status: 500, body: 'no', delayMs: 300 };
      if (arrival.path.startsWith('/slow-ok')) return { status: 200, body: 'ok', delayMs: 300 };
      return { status: 200, body: 'ok' };
    });
  });
  after(async () => {
    await courier.stop();
    await destination.close();
  });

  describe('GET /v2/messages/{id}', () => {
    it('returns every applicable field of a pending message, headers canonical with string[] values', async () => {
      const url = destination.url(`${uniquePath('get')}?q=1`);
      const before = Date.now();
      const { messageId } = await courier.client.publish({
        url,
        method: 'PUT',
        body: 'hello message',
        headers: { 'x-custom-thing': 'v1', 'Content-Type': 'text/plain' },
        delay: 600,
        retries: 5,
        retryDelay: '1000 * (1 + retried)',
        timeout: 30,
        label: ['alpha', 'beta'],
        callback: destination.url('/cb'),
        failureCallback: destination.url('/fcb'),
      });
      const after = Date.now();
      const message = await courier.client.messages.get(messageId);

      assert.equal(message.messageId, messageId);
      assert.equal(message.url, url);
      assert.equal(message.method, 'PUT');
      assert.deepEqual(message.header, { 'X-Custom-Thing': ['v1'], 'Content-Type': ['text/plain'] }, 'only forwarded headers and Content-Type, canonical keys');
      assert.equal(message.body, 'hello message');
      assert.equal(message.bodyBase64, undefined);
      assert.equal(message.maxRetries, 5);
      assert.equal(message.retryDelayExpression, '1000 * (1 + retried)');
      assert.ok(message.createdAt >= before && message.createdAt <= after, 'createdAt is the publish time in ms');
      assert.equal(message.notBefore, message.createdAt + 600_000);
      assert.equal(message.callerIp, '127.0.0.1');
      assert.equal((message as { callerIP?: string }).callerIP, '127.0.0.1');
      assert.equal(message.label, 'alpha');
      assert.deepEqual(message.labels, ['alpha', 'beta']);
      assert.equal(message.callback, destination.url('/cb'));
      assert.equal(message.failureCallback, destination.url('/fcb'));
      for (const [key, value] of Object.entries(message)) {
        assert.notEqual(value, null, `${key} is null; empty fields must be omitted`);
        assert.notEqual(value, '', `${key} is ""; empty fields must be omitted`);
      }
      await courier.client.messages.cancel(messageId);
    });

    it('omits optional fields that were not set, and defaults maxRetries and method', async () => {
      const { messageId } = await courier.client.publish({ url: destination.url(uniquePath('get-min')), delay: 600 });
      const message = (await courier.client.messages.get(messageId)) as unknown as Record<string, unknown>;
      for (const key of ['body', 'bodyBase64', 'retryDelayExpression', 'label', 'labels', 'callback', 'failureCallback', 'queueName', 'topicName']) {
        assert.ok(!(key in message), `${key} should be omitted`);
      }
      assert.equal(message.maxRetries, 3);
      assert.equal(message.method, 'POST');
      await courier.client.messages.cancel(messageId);
    });

    it('answers 404 once the message has been delivered', async () => {
      const path = uniquePath('get-delivered');
      const { messageId } = await courier.client.publish({ url: destination.url(path), body: 'x' });
      await eventually(() => (arrivalsAt(destination, path).length > 0 ? true : undefined), 5_000, 'the delivery');
      await eventually(async () => ((await exists(courier, messageId)) ? undefined : true), 5_000, 'GET to answer 404');
      await assert.rejects(courier.client.messages.get(messageId), isNotFound);
    });

    it('answers 404 with a JSON error for an unknown id', async () => {
      const response = await courier.api('/v2/messages/msg_doesnotexist');
      assert.equal(response.status, 404);
      assert.equal(typeof ((await response.json()) as { error: unknown }).error, 'string');
    });
  });

  describe('cancel', () => {
    it('cancels one message: {cancelled:1}, it never arrives, logs show CANCEL_REQUESTED and CANCELED, a second cancel is 404', async () => {
      const path = uniquePath('cancel-one');
      const { messageId } = await courier.client.publish({ url: destination.url(path), body: 'never', delay: 1 });
      const result = await courier.client.messages.cancel(messageId);
      assert.deepEqual(result, { cancelled: 1 });

      const { logs } = await courier.client.logs({ messageIds: [messageId] });
      const states: string[] = logs.map((entry) => entry.state);
      assert.ok(states.includes('CANCEL_REQUESTED'), `states: ${states.join(', ')}`);
      assert.ok(states.includes('CANCELED'), `states: ${states.join(', ')}`);
      assert.equal(states[0], 'CANCELED', 'newest first: CANCELED is the last event');

      await assert.rejects(courier.client.messages.cancel(messageId), isNotFound);
      await assert.rejects(courier.client.messages.get(messageId), isNotFound);
      await sleep(1_300);
      assert.equal(arrivalsAt(destination, path).length, 0, 'a cancelled message is never delivered');
    });

    it('cancels a message whose attempt is in flight: the failed attempt is not retried, and logs end in CANCELED', async () => {
      const path = uniquePath('slow-fail');
      const { messageId } = await courier.client.publish({ url: destination.url(path), body: 'x', retries: 3, retryDelay: '0' });
      await eventually(() => (arrivalsAt(destination, path).length > 0 ? true : undefined), 5_000, 'the first attempt');
      assert.deepEqual(await courier.client.messages.cancel(messageId), { cancelled: 1 });
      await eventually(
        async () => ((await courier.client.logs({ messageIds: [messageId] })).logs[0]?.state === 'CANCELED' ? true : undefined),
        5_000,
        'CANCELED after the in-flight attempt',
      );
      const states = (await courier.client.logs({ messageIds: [messageId] })).logs.map((entry) => entry.state).reverse();
      assert.deepEqual(states, ['CREATED', 'ACTIVE', 'CANCEL_REQUESTED', 'ERROR', 'CANCELED']);
      await sleep(200);
      assert.equal(arrivalsAt(destination, path).length, 1, 'no retry after the cancel');
    });

    it('lets an in-flight attempt that succeeds end as DELIVERED after a cancel request', async () => {
      const path = uniquePath('slow-ok');
      const { messageId } = await courier.client.publish({ url: destination.url(path), body: 'x' });
      await eventually(() => (arrivalsAt(destination, path).length > 0 ? true : undefined), 5_000, 'the attempt');
      assert.deepEqual(await courier.client.messages.cancel(messageId), { cancelled: 1 });
      await eventually(
        async () => ((await courier.client.logs({ messageIds: [messageId] })).logs[0]?.state === 'DELIVERED' ? true : undefined),
        5_000,
        'DELIVERED',
      );
      await assert.rejects(courier.client.messages.cancel(messageId), isNotFound);
    });

    it('answers 404 for cancelling an unknown message', async () => {
      await assert.rejects(courier.client.messages.cancel('msg_unknown'), isNotFound);
    });

    it('cancels an array of ids', async () => {
      const [a, b, keep] = await publishPending(courier, destination, 3);
      const result = await courier.client.messages.cancel([a!, b!]);
      assert.deepEqual(result, { cancelled: 2 });
      assert.equal(await exists(courier, a!), false);
      assert.equal(await exists(courier, b!), false);
      assert.equal(await exists(courier, keep!), true);
      await courier.client.messages.cancel(keep!);
    });

    it('cancels by label filter only the labelled messages', async () => {
      const labelled = await publishPending(courier, destination, 2, 'to-cancel');
      const [other] = await publishPending(courier, destination, 1, 'to-keep');
      const result = await courier.client.messages.cancel({ filter: { label: 'to-cancel' } });
      assert.deepEqual(result, { cancelled: 2 });
      for (const id of labelled) assert.equal(await exists(courier, id), false);
      assert.equal(await exists(courier, other!), true);
      await courier.client.messages.cancel(other!);
    });

    it('cancels by url filter (multi-valued)', async () => {
      const [a, b, c] = await publishPending(courier, destination, 3);
      const urls = await Promise.all([a!, b!].map(async (id) => (await courier.client.messages.get(id)).url));
      const result = await courier.client.messages.cancel({ filter: { url: urls } });
      assert.deepEqual(result, { cancelled: 2 });
      assert.equal(await exists(courier, c!), true);
      await courier.client.messages.cancel(c!);
    });

    it('cancels with the legacy JSON body {"messageIds": [...]}', async () => {
      const [a, b, keep] = await publishPending(courier, destination, 3);
      const response = await courier.api('/v2/messages', {
        method: 'DELETE',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ messageIds: [a, b] }),
      });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { cancelled: 2 });
      assert.equal(await exists(courier, a!), false);
      assert.equal(await exists(courier, keep!), true);
      await courier.client.messages.cancel(keep!);
    });

    it('cancels nothing for a legacy body with an empty messageIds list', async () => {
      const [id] = await publishPending(courier, destination, 1);
      const response = await courier.api('/v2/messages', {
        method: 'DELETE',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ messageIds: [] }),
      });
      const answer = (await response.json()) as { cancelled?: number; error?: string };
      assert.ok(response.status === 400 || answer.cancelled === 0, `answered ${response.status} ${JSON.stringify(answer)}`);
      assert.equal(await exists(courier, id!), true, 'an empty id list must not widen to "cancel all"');
      await courier.client.messages.cancel(id!);
    });

    it('cancels nothing for a filter whose value is empty (`?label=`)', async () => {
      const [id] = await publishPending(courier, destination, 1);
      const response = await courier.api('/v2/messages?label=', { method: 'DELETE' });
      const answer = (await response.json()) as { cancelled?: number; error?: string };
      assert.ok(response.status === 400 || answer.cancelled === 0, `answered ${response.status} ${JSON.stringify(answer)}`);
      assert.equal(await exists(courier, id!), true, 'an empty filter value must not widen to "cancel all"');
      await courier.client.messages.cancel(id!);
    });

    for (const [name, query, body] of [
      ['an unknown query filter key', '?labell=x', undefined],
      ['an unknown key in the legacy body', '', JSON.stringify({ messageId: ['x'] })],
    ] as const) {
      it(`rejects ${name} with 400 and cancels nothing`, async () => {
        const [id] = await publishPending(courier, destination, 1);
        const init: RequestInit = { method: 'DELETE' };
        if (body !== undefined) {
          init.body = body;
          init.headers = { 'Content-Type': 'application/json' };
        }
        const response = await courier.api(`/v2/messages${query}`, init);
        assert.equal(response.status, 400);
        assert.equal(typeof ((await response.json()) as { error: unknown }).error, 'string');
        assert.equal(await exists(courier, id!), true, 'nothing was cancelled');
        await courier.client.messages.cancel(id!);
      });
    }
  });
});

describe('cancelling all messages', () => {
  let courier: TestCourier;
  let destination: Destination;

  before(async () => {
    courier = await startTestCourier();
    destination = await startDestination();
  });
  after(async () => {
    await courier.stop();
    await destination.close();
  });

  it('cancels every pending message with cancel({all: true})', async () => {
    const ids = await publishPending(courier, destination, 3);
    assert.deepEqual(await courier.client.messages.cancel({ all: true }), { cancelled: 3 });
    for (const id of ids) assert.equal(await exists(courier, id), false);
    assert.deepEqual(await courier.client.messages.cancel({ all: true }), { cancelled: 0 }, 'nothing left to cancel');
  });

  it('cancels every pending message with the legacy DELETE /v2/messages carrying no query and no body', async () => {
    const ids = await publishPending(courier, destination, 2);
    const response = await courier.api('/v2/messages', { method: 'DELETE' });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { cancelled: 2 });
    for (const id of ids) assert.equal(await exists(courier, id), false);
    const { logs } = await courier.client.logs({ filter: { state: 'CANCELED' } });
    for (const id of ids) assert.ok(logs.some((entry) => entry.messageId === id), `${id} is logged CANCELED`);
  });

  it('limits cancel({all: true, count}) to count messages', async () => {
    await publishPending(courier, destination, 3);
    assert.deepEqual(await courier.client.messages.cancel({ all: true, count: 2 }), { cancelled: 2 });
    assert.deepEqual(await courier.client.messages.cancel({ all: true }), { cancelled: 1 });
  });
});
