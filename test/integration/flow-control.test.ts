/**
 * Flow control end to end (spec §11.9): per-key parallelism and rate limits
 * enforced across destinations, the waitlist, and the management endpoints
 * (get, global parallelism, pause, resume, pin, unpin, resetRate), through
 * the official SDK against real local destinations.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QstashError, type FlowControl, type FlowControlInfo } from '@upstash/qstash';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import {
  arrivalsAt,
  eventually,
  holding,
  ok,
  sleep,
  startDestination,
  uniquePath,
  waitForArrivals,
  type Concurrency,
  type Destination,
  type Script,
} from '../helpers/destination.js';

const FLOW_CONTROL_FIELDS = [
  'flowControlKey',
  'waitListSize',
  'parallelismMax',
  'parallelismCount',
  'rateMax',
  'rateCount',
  'ratePeriod',
  'ratePeriodStart',
  'isPaused',
  'isPinnedParallelism',
  'isPinnedRate',
].sort();

/** Long enough that nothing queued behind a held key could slip through unnoticed. */
const QUIET_MS = 500;

const withStatus = (status: number) => (error: unknown) => {
  assert.ok(error instanceof QstashError, `expected a QstashError, got ${String(error)}`);
  assert.equal(error.status, status);
  return true;
};

describe('flow control', () => {
  let courier: TestCourier;
  let d: Destination;
  const destinations: Destination[] = [];

  async function destination(script: Script = ok): Promise<Destination> {
    const started = await startDestination(script);
    destinations.push(started);
    return started;
  }

  async function info(key: string): Promise<FlowControlInfo> {
    return courier.client.flowControl.get(key);
  }

  async function infoUntil(key: string, check: (i: FlowControlInfo) => boolean, what: string): Promise<FlowControlInfo> {
    return eventually(async () => {
      const current = await info(key);
      return check(current) ? current : undefined;
    }, 10_000, `${what} for key ${key}`);
  }

  /** Publishes one message so the key exists, and waits for its delivery. */
  async function createKey(flowControl: FlowControl): Promise<void> {
    const path = uniquePath('create-key');
    await courier.client.publish({ url: d.url(path), body: 'first', flowControl });
    await waitForArrivals(d, path, 1);
  }

  before(async () => {
    courier = await startTestCourier();
    d = await destination();
  });
  after(async () => {
    await Promise.all(destinations.map((x) => x.close()));
    await courier.stop();
  });

  it('never has more than `parallelism` attempts of one key in flight, counted across two destinations', async () => {
    const counter: Concurrency = { current: 0, max: 0 };
    const a = await destination(holding(counter, 100));
    const b = await destination(holding(counter, 100));
    const key = 'tenant:42@parallel';
    const published = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        courier.client.publish({
          url: (i % 2 === 0 ? a : b).url(`/work-${i}`),
          body: `m${i}`,
          flowControl: { key, parallelism: 3 },
        }),
      ),
    );
    assert.equal(new Set(published.map((p) => p.messageId)).size, 20);

    await a.waitFor(1);
    const during = await info(key);
    assert.ok(during.parallelismCount <= 3, `parallelismCount ${during.parallelismCount} while busy`);
    assert.ok(during.waitListSize > 0, 'the rest wait in the key’s waitlist');

    await eventually(() => (a.arrivals.length + b.arrivals.length >= 20 ? true : undefined), 10_000, '20 arrivals');
    assert.equal(a.arrivals.length, 10);
    assert.equal(b.arrivals.length, 10);
    assert.ok(counter.max <= 3, `at most 3 in flight across both destinations, saw ${counter.max}`);
    assert.ok(counter.max >= 2, `the key does run messages in parallel, saw ${counter.max}`);

    const settled = await infoUntil(key, (i) => i.parallelismCount === 0 && i.waitListSize === 0, 'an idle key');
    assert.equal(settled.parallelismMax, 3);
  });

  it('starts at most `rate` attempts per period window and still delivers every message', async () => {
    const target = await destination();
    const key = 'rate-limited';
    // One batch puts all 15 in the store at once, so every window starts full and
    // the gap check below measures the limiter, not the publishing.
    await courier.client.batch(
      Array.from({ length: 15 }, (_, i) => ({
        url: target.url(`/rate-${i}`),
        body: `r${i}`,
        flowControl: { key, rate: 5, period: '1s' as const },
      })),
    );
    const arrivals = await target.waitFor(15, 10_000);
    assert.equal(arrivals.length, 15);
    // The limiter's windows are the server's: a window opens at the first attempt after the previous one
    // closed. Replaying the attempts' own start times (ACTIVE events, stamped by the server's clock) through
    // that rule checks the limit exactly; arrival times at the destination would add network jitter.
    const response = await courier.api(`/v2/logs?flowControlKey=${key}&state=ACTIVE&count=100`);
    const { logs } = (await response.json()) as { logs: { time: number }[] };
    const starts = logs.map((event) => event.time).sort((x, y) => x - y);
    assert.equal(starts.length, 15, 'one attempt each');
    let windowStart = starts[0]!;
    let inWindow = 0;
    for (const start of starts) {
      if (start >= windowStart + 1_000) [windowStart, inWindow] = [start, 0];
      inWindow += 1;
      assert.ok(inWindow <= 5, `attempt ${inWindow} started in the window opened at ${windowStart}: at most 5 may`);
    }
    await sleep(200);
    assert.equal(target.arrivals.length, 15, 'each message delivered once');

    const state = await info(key);
    assert.equal(state.rateMax, 5);
    assert.equal(state.ratePeriod, 1);
    assert.equal(state.parallelismMax, 0, 'no parallelism limit was given');
    assert.ok(state.rateCount <= 5, `rateCount ${state.rateCount} never exceeds the rate`);
    assert.ok(state.ratePeriodStart > 0, 'the window has started');
    assert.ok(Math.abs(state.ratePeriodStart - Date.now() / 1000) < 60, 'ratePeriodStart is in unix seconds');
  });

  it('returns all eleven fields of a key, with explicit false and 0 for what is unset', async () => {
    const key = 'all-fields';
    await createKey({ key, parallelism: 2 });
    const state = await infoUntil(key, (i) => i.parallelismCount === 0, 'no attempt in flight');
    assert.deepEqual(Object.keys(state).sort(), FLOW_CONTROL_FIELDS);
    assert.equal(state.flowControlKey, key);
    assert.equal(state.waitListSize, 0);
    assert.equal(state.parallelismMax, 2);
    assert.equal(state.parallelismCount, 0);
    assert.equal(state.rateMax, 0);
    assert.equal(typeof state.rateCount, 'number');
    assert.equal(typeof state.ratePeriod, 'number');
    assert.equal(typeof state.ratePeriodStart, 'number');
    assert.equal(state.isPaused, false);
    assert.equal(state.isPinnedParallelism, false);
    assert.equal(state.isPinnedRate, false);

    const listed = await courier.api('/v2/flowControl');
    assert.equal(listed.status, 200);
    const all = (await listed.json()) as FlowControlInfo[];
    assert.ok(Array.isArray(all));
    const entry = all.find((x) => x.flowControlKey === key);
    assert.ok(entry, 'GET /v2/flowControl lists the key');
    assert.deepEqual(Object.keys(entry).sort(), FLOW_CONTROL_FIELDS);
  });

  it('holds every message of a paused key in its waitlist and delivers them after resume', async () => {
    const key = 'pausable';
    await createKey({ key, parallelism: 5 });
    await courier.client.flowControl.pause(key);
    assert.equal((await info(key)).isPaused, true);

    const path = uniquePath('paused-key');
    for (let i = 0; i < 3; i += 1) {
      await courier.client.publish({ url: d.url(path), body: `p${i}`, flowControl: { key, parallelism: 5 } });
    }
    await infoUntil(key, (i) => i.waitListSize === 3, 'three waiting messages');
    await sleep(QUIET_MS);
    assert.equal(arrivalsAt(d, path).length, 0, 'nothing starts while the key is paused');
    await courier.client.flowControl.pause(key);
    assert.equal((await info(key)).waitListSize, 3, 'pausing twice changes nothing');

    await courier.client.flowControl.resume(key);
    const arrivals = await waitForArrivals(d, path, 3);
    assert.deepEqual(arrivals.map((x) => x.body.toString()).sort(), ['p0', 'p1', 'p2']);
    const state = await infoUntil(key, (i) => i.waitListSize === 0, 'an empty waitlist');
    assert.equal(state.isPaused, false);
  });

  it('reports pinned limits, applies them over later message configs, and follows messages again after unpin', async () => {
    const key = 'pinnable';
    await createKey({ key, parallelism: 1 });
    await courier.client.flowControl.pin(key, { parallelism: 4, rate: 10, period: 60 });
    let state = await info(key);
    assert.equal(state.parallelismMax, 4);
    assert.equal(state.rateMax, 10);
    assert.equal(state.ratePeriod, 60);
    assert.equal(state.isPinnedParallelism, true);
    assert.equal(state.isPinnedRate, true);

    const counter: Concurrency = { current: 0, max: 0 };
    const slow = await destination(holding(counter, 300));
    await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        courier.client.publish({
          url: slow.url(`/pinned-${i}`),
          body: `x${i}`,
          flowControl: { key, parallelism: 1, rate: 2, period: '5s' },
        }),
      ),
    );
    await slow.waitFor(4);
    assert.ok(counter.max >= 2, `the pinned parallelism 4 wins over the message’s 1; saw ${counter.max} in flight`);
    state = await info(key);
    assert.equal(state.parallelismMax, 4, 'message configs are ignored while pinned');
    assert.equal(state.rateMax, 10);
    assert.equal(state.ratePeriod, 60);

    await courier.client.flowControl.unpin(key, { parallelism: true, rate: true });
    state = await info(key);
    assert.equal(state.isPinnedParallelism, false);
    assert.equal(state.isPinnedRate, false);

    await createKey({ key, parallelism: 2, rate: 3, period: '2s' });
    state = await info(key);
    assert.equal(state.parallelismMax, 2, 'after unpin the latest message sets the limits');
    assert.equal(state.rateMax, 3);
    assert.equal(state.ratePeriod, 2);
  });

  it('unpins only the part asked for', async () => {
    const key = 'half-pinned';
    await createKey({ key, parallelism: 1, rate: 1, period: '1h' });
    await courier.client.flowControl.pin(key, { parallelism: 6, rate: 7, period: 30 });
    await courier.client.flowControl.unpin(key, { parallelism: true });
    const state = await info(key);
    assert.equal(state.isPinnedParallelism, false);
    assert.equal(state.isPinnedRate, true);
    assert.equal(state.rateMax, 7);
    assert.equal(state.ratePeriod, 30);
  });

  it('lets a message held by the rate limit go after resetRate, counting from a fresh window', async () => {
    const key = 'resettable';
    const path = uniquePath('reset-rate');
    for (let i = 0; i < 3; i += 1) {
      await courier.client.publish({ url: d.url(path), body: `r${i}`, flowControl: { key, rate: 2, period: '1h' } });
    }
    await waitForArrivals(d, path, 2);
    const held = await infoUntil(key, (i) => i.waitListSize === 1, 'one message held by the rate');
    assert.equal(held.rateCount, 2);
    await sleep(QUIET_MS);
    assert.equal(arrivalsAt(d, path).length, 2, 'the third waits for the next hour-long window');

    const resetAt = Date.now();
    await courier.client.flowControl.resetRate(key);
    await waitForArrivals(d, path, 3);
    const state = await infoUntil(key, (i) => i.waitListSize === 0, 'an empty waitlist');
    assert.equal(state.rateCount, 1, 'the cleared count holds only the attempt made after the reset');
    assert.ok(state.ratePeriodStart >= Math.floor(resetAt / 1000), 'a new window started at or after the reset');
  });

  it('answers 404 for every management call on a key never seen', async () => {
    const key = 'never-seen';
    await assert.rejects(courier.client.flowControl.get(key), withStatus(404));
    await assert.rejects(courier.client.flowControl.pause(key), withStatus(404));
    await assert.rejects(courier.client.flowControl.resume(key), withStatus(404));
    await assert.rejects(courier.client.flowControl.pin(key, { parallelism: 1 }), withStatus(404));
    await assert.rejects(courier.client.flowControl.unpin(key, { parallelism: true }), withStatus(404));
    await assert.rejects(courier.client.flowControl.resetRate(key), withStatus(404));
    await assert.rejects(courier.client.flowControl.get(key), withStatus(404), 'the failed calls created nothing');
  });

  it('rejects malformed flow-control headers with 400 naming flow control, and stores nothing', async () => {
    const path = uniquePath('bad-flow');
    const cases: { name: string; headers: Record<string, string>; key?: string }[] = [
      { name: 'key without value', headers: { 'Upstash-Flow-Control-Key': 'bad-only-key' }, key: 'bad-only-key' },
      { name: 'value without key', headers: { 'Upstash-Flow-Control-Value': 'parallelism=1' } },
      { name: 'parallelism=0', headers: { 'Upstash-Flow-Control-Key': 'bad-zero', 'Upstash-Flow-Control-Value': 'parallelism=0' }, key: 'bad-zero' },
      { name: 'parallelism not a number', headers: { 'Upstash-Flow-Control-Key': 'bad-nan', 'Upstash-Flow-Control-Value': 'parallelism=abc' }, key: 'bad-nan' },
      { name: 'period over a week', headers: { 'Upstash-Flow-Control-Key': 'bad-8d', 'Upstash-Flow-Control-Value': 'rate=1, period=8d' }, key: 'bad-8d' },
      { name: 'period alone', headers: { 'Upstash-Flow-Control-Key': 'bad-period', 'Upstash-Flow-Control-Value': 'period=10s' }, key: 'bad-period' },
      { name: 'unknown field', headers: { 'Upstash-Flow-Control-Key': 'bad-foo', 'Upstash-Flow-Control-Value': 'foo=1' }, key: 'bad-foo' },
      { name: 'key with a space', headers: { 'Upstash-Flow-Control-Key': 'bad key', 'Upstash-Flow-Control-Value': 'parallelism=1' } },
    ];
    for (const c of cases) {
      const res = await courier.api(`/v2/publish/${d.url(path)}`, { method: 'POST', headers: c.headers, body: 'x' });
      const body = (await res.json()) as { error?: string };
      assert.equal(res.status, 400, `${c.name}: status`);
      assert.match(body.error ?? '', /flow.?control/i, `${c.name}: the error names flow control`);
      if (c.key) await assert.rejects(courier.client.flowControl.get(c.key), withStatus(404), `${c.name}: no key created`);
    }
    await sleep(200);
    assert.equal(arrivalsAt(d, path).length, 0, 'no rejected message was delivered');
  });

  it('accepts a period up to one week, in units or bare seconds, and reports it in seconds', async () => {
    const cases: { key: string; value: string; period: number }[] = [
      { key: 'week-period', value: 'rate=1, period=7d', period: 604_800 },
      { key: 'minute-period', value: 'parallelism=2,rate=3,period=1m', period: 60 },
      { key: 'bare-period', value: 'rate=4, period=30', period: 30 },
    ];
    for (const c of cases) {
      const path = uniquePath(c.key);
      const res = await courier.api(`/v2/publish/${d.url(path)}`, {
        method: 'POST',
        headers: { 'Upstash-Flow-Control-Key': c.key, 'Upstash-Flow-Control-Value': c.value },
        body: 'x',
      });
      assert.equal(res.status, 200, `${c.value}: ${await res.text()}`);
      await waitForArrivals(d, path, 1);
      assert.equal((await info(c.key)).ratePeriod, c.period, c.value);
    }
  });

  it('reports global parallelism as numbers', async () => {
    const global = await courier.client.flowControl.getGlobalParallelism();
    assert.equal(typeof global.parallelismMax, 'number');
    assert.equal(typeof global.parallelismCount, 'number');
    assert.ok(global.parallelismCount >= 0);
    const raw = await courier.api('/v2/globalParallelism');
    assert.equal(raw.status, 200);
    const body = (await raw.json()) as Record<string, unknown>;
    assert.equal(typeof body.parallelismMax, 'number');
    assert.equal(typeof body.parallelismCount, 'number');
  });

  it('applies a key to enqueued and batched messages as to published ones', async () => {
    const key = 'enqueue-and-batch';
    await createKey({ key, parallelism: 2 });
    await courier.client.flowControl.pause(key);
    const path = uniquePath('fc-enqueue-batch');
    await courier.client.queue({ queueName: 'fc-queue' }).enqueue({
      url: d.url(path),
      body: 'enqueued',
      flowControl: { key, parallelism: 2 },
    });
    await courier.client.batch([
      { url: d.url(path), body: 'batched-1', flowControl: { key, parallelism: 2 } },
      { url: d.url(path), body: 'batched-2', flowControl: { key, parallelism: 2 }, queueName: 'fc-queue-2' },
    ]);
    await infoUntil(key, (i) => i.waitListSize === 3, 'three waiting messages');
    await sleep(QUIET_MS);
    assert.equal(arrivalsAt(d, path).length, 0, 'the paused key holds enqueued and batched messages');

    await courier.client.flowControl.resume(key);
    const arrivals = await waitForArrivals(d, path, 3);
    assert.deepEqual(arrivals.map((x) => x.body.toString()).sort(), ['batched-1', 'batched-2', 'enqueued']);
  });
});
