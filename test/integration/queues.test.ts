/**
 * Queues and enqueue (spec §3) through the official SDK: queue management,
 * FIFO admission, parallelism, pause/resume and deletion, observed at real
 * local destinations.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QstashError } from '@upstash/qstash';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import {
  arrivalsAt,
  eventually,
  ok,
  sleep,
  startDestination,
  uniquePath,
  waitForArrivals,
  type Arrival,
  type Destination,
  type Script,
} from '../helpers/destination.js';

let queueCounter = 0;
const queueName = (label: string) => `${label}-${++queueCounter}`;

async function rejectsWithStatus(promise: Promise<unknown>, status: number, mention?: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof QstashError, `expected a QstashError, got ${String(error)}`);
    assert.equal(error.status, status, `status of ${error.message}`);
    if (mention) assert.ok(error.message.includes(mention), `error "${error.message}" should mention ${mention}`);
    return true;
  });
}

const bodies = (arrivals: Arrival[]) => arrivals.map((arrival) => arrival.body.toString('utf8'));

/** Node timers may fire up to a millisecond early; comparisons of Date.now() stamps allow for that. */
const TIMER_SLACK_MS = 5;

describe('queues (spec §3)', () => {
  let courier: TestCourier;
  const destinations: Destination[] = [];

  async function destination(script: Script = ok): Promise<Destination> {
    const started = await startDestination(script);
    destinations.push(started);
    return started;
  }

  async function queueNames(): Promise<string[]> {
    return (await courier.client.queue().list()).map((queue) => queue.name);
  }

  async function statesOf(messageId: string): Promise<string[]> {
    const { logs } = await courier.client.logs({ messageIds: [messageId] });
    return logs.map((entry) => entry.state);
  }

  async function waitForState(messageId: string, state: string): Promise<void> {
    await eventually(async () => ((await statesOf(messageId)).includes(state) ? true : undefined), 10_000, `${state} for ${messageId}`);
  }

  before(async () => {
    courier = await startTestCourier();
  });
  after(async () => {
    await Promise.all(destinations.map((d) => d.close()));
    await courier.stop();
  });

  describe('management', () => {
    it('upserts a queue; get shows all six fields; list includes it; a second upsert overwrites parallelism and paused', async () => {
      const name = queueName('managed');
      const queue = courier.client.queue({ queueName: name });
      const before = Date.now();
      await queue.upsert({ parallelism: 3 });

      const created = await queue.get();
      assert.deepEqual(Object.keys(created).sort(), ['createdAt', 'lag', 'name', 'parallelism', 'paused', 'updatedAt']);
      assert.equal(created.name, name);
      assert.equal(created.parallelism, 3);
      assert.equal(created.lag, 0);
      assert.equal(created.paused, false);
      assert.ok(created.createdAt >= before - 1000 && created.createdAt <= Date.now() + 1000, 'createdAt is epoch ms');
      assert.ok(created.updatedAt >= created.createdAt);

      const listed = (await courier.client.queue().list()).find((q) => q.name === name);
      assert.deepEqual(listed, created);

      await sleep(5);
      await queue.upsert({ parallelism: 5, paused: true });
      const updated = await queue.get();
      assert.equal(updated.parallelism, 5);
      assert.equal(updated.paused, true);
      assert.equal(updated.createdAt, created.createdAt, 'an upsert keeps createdAt');
      assert.ok(updated.updatedAt >= created.updatedAt);
    });

    it('pauses and resumes idempotently', async () => {
      const queue = courier.client.queue({ queueName: queueName('pausing') });
      await queue.upsert({ parallelism: 2 });
      await queue.pause();
      await queue.pause();
      assert.equal((await queue.get()).paused, true);
      assert.equal((await queue.get()).parallelism, 2, 'pausing keeps parallelism');
      await queue.resume();
      await queue.resume();
      assert.equal((await queue.get()).paused, false);
    });

    it('deletes a queue; get and a second delete answer 404', async () => {
      const name = queueName('deleted');
      const queue = courier.client.queue({ queueName: name });
      await queue.upsert({});
      await queue.delete();
      await rejectsWithStatus(queue.get(), 404);
      assert.ok(!(await queueNames()).includes(name));
      await rejectsWithStatus(queue.delete(), 404);
      await rejectsWithStatus(courier.client.queue({ queueName: queueName('never') }).get(), 404);
    });

    it('accepts POST /v2/queues/ with a trailing slash', async () => {
      const name = queueName('slash');
      const response = await courier.api('/v2/queues/', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ queueName: name, parallelism: 2, paused: false }),
      });
      assert.equal(response.status, 200);
      assert.equal((await courier.client.queue({ queueName: name }).get()).parallelism, 2);
    });

    it('rejects parallelism that is not an integer in 1..1000 with 400 naming the field, and changes nothing', async () => {
      const name = queueName('validated');
      const queue = courier.client.queue({ queueName: name });
      await queue.upsert({ parallelism: 2 });
      for (const parallelism of [0, -1, 1.5, 1001, 'x' as unknown as number]) {
        await rejectsWithStatus(queue.upsert({ parallelism, paused: true }), 400, 'parallelism');
      }
      const unchanged = await queue.get();
      assert.equal(unchanged.parallelism, 2);
      assert.equal(unchanged.paused, false);
      await queue.upsert({ parallelism: 1000 });
      assert.equal((await queue.get()).parallelism, 1000, '1000 is allowed');
    });

    it('rejects a queue name outside [A-Za-z0-9._-]{1,128} with 400 and creates nothing', async () => {
      for (const bad of ['bad!name', 'bad*name', 'q'.repeat(129)]) {
        await rejectsWithStatus(courier.client.queue({ queueName: bad }).upsert({ parallelism: 1 }), 400);
        assert.ok(!(await queueNames()).includes(bad), `${bad} was not created`);
      }
      const response = await courier.api('/v2/queues', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ queueName: 'white space', parallelism: 1, paused: false }),
      });
      assert.equal(response.status, 400);
      assert.match(((await response.json()) as { error: string }).error, /queueName/);
    });
  });

  describe('enqueue and admission', () => {
    it('auto-creates the queue with parallelism 1 on the first enqueue, and delivers the message', async () => {
      const d = await destination();
      const name = queueName('auto');
      const path = uniquePath('auto');
      assert.ok(!(await queueNames()).includes(name));
      const { messageId } = await courier.client.queue({ queueName: name }).enqueueJSON({ url: d.url(path), body: { n: 1 } });
      assert.match(messageId, /^msg_/);
      const queue = await courier.client.queue({ queueName: name }).get();
      assert.equal(queue.parallelism, 1);
      assert.equal(queue.paused, false);
      const [arrival] = await waitForArrivals(d, path, 1);
      assert.equal(arrival!.body.toString(), '{"n":1}');
      assert.equal(arrival!.headers['upstash-message-id'], messageId);
    });

    it('with parallelism 1, holds later messages until the first has finished all its retries (strict FIFO)', async () => {
      // Each successful answer is held, so a message admitted before the previous one finished would arrive too early.
      const HOLD_MS = 150;
      const failuresLeft = new Map([['m1', 2]]);
      const d = await destination((arrival) => {
        const body = arrival.body.toString();
        const left = failuresLeft.get(body) ?? 0;
        if (left > 0) {
          failuresLeft.set(body, left - 1);
          return { status: 500 };
        }
        return { status: 200, delayMs: HOLD_MS };
      });
      const queue = courier.client.queue({ queueName: queueName('fifo') });
      const names = ['m1', 'm2', 'm3', 'm4', 'm5'];
      for (const body of names) await queue.enqueue({ url: d.url(), body, retries: 3, retryDelay: '100' });

      const arrivals = await d.waitFor(7);
      await sleep(300);
      assert.deepEqual(bodies(d.arrivals), ['m1', 'm1', 'm1', 'm2', 'm3', 'm4', 'm5']);
      assert.deepEqual(
        arrivals.slice(0, 3).map((a) => a.headers['upstash-retried']),
        ['0', '1', '2'],
      );
      const m1Success = arrivals[2]!;
      const m2First = arrivals[3]!;
      assert.ok(m2First.at >= m1Success.at + HOLD_MS - TIMER_SLACK_MS, "m2 starts only after m1's successful attempt has answered");
      for (let i = 4; i < arrivals.length; i++) {
        assert.ok(arrivals[i]!.at >= arrivals[i - 1]!.at + HOLD_MS - TIMER_SLACK_MS, `${bodies([arrivals[i]!])[0]} waited for its predecessor`);
      }
    });

    it("with parallelism 1, holds the next message until the current one's callback has been delivered", async () => {
      const CALLBACK_HOLD_MS = 300;
      const d = await destination();
      const cb = await destination(() => ({ status: 200, delayMs: CALLBACK_HOLD_MS }));
      const queue = courier.client.queue({ queueName: queueName('callback-fifo') });
      const path = uniquePath('cb-fifo');
      await queue.enqueue({ url: d.url(path), body: 'first', callback: cb.url('/cb') });
      await queue.enqueue({ url: d.url(path), body: 'second' });

      const [callback] = await cb.waitFor(1);
      const [first, second] = await waitForArrivals(d, path, 2);
      assert.deepEqual(bodies([first!, second!]), ['first', 'second']);
      assert.ok(second!.at > callback!.at, 'the next message arrives after the callback');
      assert.ok(second!.at >= callback!.at + CALLBACK_HOLD_MS - TIMER_SLACK_MS, 'and only once the callback delivery has finished');
    });

    it("with parallelism 1, holds the next message until the failed message's failure callback has been delivered", async () => {
      const CALLBACK_HOLD_MS = 300;
      const failPath = uniquePath('fails');
      const nextPath = uniquePath('next');
      const d = await destination((arrival) => (arrival.path === failPath ? { status: 500 } : { status: 200 }));
      const fcb = await destination(() => ({ status: 200, delayMs: CALLBACK_HOLD_MS }));
      const queue = courier.client.queue({ queueName: queueName('failure-callback-fifo') });
      await queue.enqueue({ url: d.url(failPath), body: 'doomed', retries: 0, failureCallback: fcb.url('/failed') });
      await queue.enqueue({ url: d.url(nextPath), body: 'next' });

      const [failureCallback] = await fcb.waitFor(1);
      const [next] = await waitForArrivals(d, nextPath, 1);
      assert.ok(next!.at >= failureCallback!.at + CALLBACK_HOLD_MS - TIMER_SLACK_MS, 'the next message waits for the failure callback');
    });

    it('never exceeds parallelism 4, and does run messages side by side', async () => {
      const d = await destination(() => ({ status: 200, delayMs: 100 }));
      const name = queueName('parallel');
      const queue = courier.client.queue({ queueName: name });
      await queue.upsert({ parallelism: 4 });
      await Promise.all(Array.from({ length: 20 }, (_, i) => queue.enqueue({ url: d.url(), body: `p${i}` })));
      await d.waitFor(20);
      await eventually(async () => ((await queue.get()).lag === 0 ? true : undefined), 5_000, 'lag 0');
      assert.equal(new Set(bodies(d.arrivals)).size, 20, 'every message arrived once');
      assert.ok(d.maxConcurrent <= 4, `at most 4 at a time, saw ${d.maxConcurrent}`);
      assert.ok(d.maxConcurrent >= 2, `more than one at a time, saw ${d.maxConcurrent}`);
    });

    it('runs one message at a time with parallelism 1', async () => {
      const d = await destination(() => ({ status: 200, delayMs: 100 }));
      const queue = courier.client.queue({ queueName: queueName('serial') });
      await queue.upsert({ parallelism: 1 });
      await Promise.all(Array.from({ length: 6 }, (_, i) => queue.enqueue({ url: d.url(), body: `s${i}` })));
      await d.waitFor(6);
      assert.equal(d.maxConcurrent, 1);
    });

    it('holds messages in a paused queue, counts them in lag, and delivers them in order after resume', async () => {
      const d = await destination();
      const queue = courier.client.queue({ queueName: queueName('paused') });
      await queue.upsert({ parallelism: 1, paused: true });
      const path = uniquePath('paused');
      const ids: string[] = [];
      for (const body of ['a', 'b', 'c']) {
        const { messageId } = await queue.enqueue({ url: d.url(path), body });
        assert.match(messageId, /^msg_/);
        ids.push(messageId);
      }
      await sleep(1000);
      assert.equal(arrivalsAt(d, path).length, 0, 'nothing is delivered while paused');
      const paused = await queue.get();
      assert.equal(paused.paused, true);
      assert.equal(paused.lag, 3);

      await queue.resume();
      const arrivals = await waitForArrivals(d, path, 3);
      assert.deepEqual(bodies(arrivals), ['a', 'b', 'c']);
      assert.deepEqual(
        arrivals.map((a) => a.headers['upstash-message-id']),
        ids,
      );
      await eventually(async () => ((await queue.get()).lag === 0 ? true : undefined), 5_000, 'lag back to 0');
    });

    it('cancels the waiting messages of a deleted queue, while the message already started finishes', async () => {
      const startedPath = uniquePath('started');
      const waitingPath = uniquePath('waiting');
      const d = await destination((arrival) => (arrival.path === startedPath ? { status: 200, delayMs: 600 } : { status: 200 }));
      const queue = courier.client.queue({ queueName: queueName('deleted-with-messages') });
      const { messageId: startedId } = await queue.enqueue({ url: d.url(startedPath), body: 'started' });
      const waiting = [
        (await queue.enqueue({ url: d.url(waitingPath), body: 'w1' })).messageId,
        (await queue.enqueue({ url: d.url(waitingPath), body: 'w2' })).messageId,
      ];
      await waitForArrivals(d, startedPath, 1);
      await queue.delete();

      for (const id of waiting) await waitForState(id, 'CANCELED');
      await waitForState(startedId, 'DELIVERED');
      await sleep(500);
      assert.equal(arrivalsAt(d, waitingPath).length, 0, 'cancelled messages are never delivered');
      for (const id of waiting) assert.ok(!(await statesOf(id)).includes('DELIVERED'));
      await rejectsWithStatus(queue.get(), 404);
    });

    it('puts a batch item carrying a queue into that queue', async () => {
      const d = await destination();
      const name = queueName('batched');
      const queue = courier.client.queue({ queueName: name });
      await queue.upsert({ parallelism: 1, paused: true });
      const path = uniquePath('batched');
      const [result] = (await courier.client.batch([{ url: d.url(path), body: 'in a queue', queueName: name }])) as { messageId: string }[];

      const message = await courier.client.messages.get(result!.messageId);
      assert.equal(message.queueName, name);
      assert.equal((await queue.get()).lag, 1);
      await sleep(300);
      assert.equal(arrivalsAt(d, path).length, 0, 'the paused queue holds the batch item');

      await queue.resume();
      const [arrival] = await waitForArrivals(d, path, 1);
      assert.equal(arrival!.body.toString(), 'in a queue');
      const { logs } = await courier.client.logs({ filter: { queueName: name } });
      assert.ok(logs.length > 0 && logs.every((entry) => entry.messageId === result!.messageId));
    });

    it('accepts and delivers an enqueue that also carries flow control', async () => {
      const d = await destination();
      const path = uniquePath('flow');
      const name = queueName('flow');
      const { messageId } = await courier.client.queue({ queueName: name }).enqueue({
        url: d.url(path),
        body: 'flow controlled',
        flowControl: { key: `queue-flow-${queueCounter}`, parallelism: 2, rate: 10, period: '1s' },
      });
      const [arrival] = await waitForArrivals(d, path, 1);
      assert.equal(arrival!.headers['upstash-message-id'], messageId);
      assert.equal(arrival!.body.toString(), 'flow controlled');
    });
  });
});
