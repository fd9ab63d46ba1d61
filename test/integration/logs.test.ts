/** The logs, GET /v2/events and /v2/logs (spec §9): entry shape, filters, states and cursor paging. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@upstash/qstash';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually, sleep, startDestination, uniquePath, type Destination } from '../helpers/destination.js';

type LogEntry = Awaited<ReturnType<Client['logs']>>['logs'][number];
/** What the server really sends for a log entry; the SDK's `Log` type declares only part of it. */
type RawLogEntry = Record<string, unknown> & { time: number; messageId: string; state: string; url: string };

const base64 = (text: string) => Buffer.from(text).toString('base64');

describe('logs (spec §9)', () => {
  let courier: TestCourier;
  let destination: Destination;

  before(async () => {
    courier = await startTestCourier();
    destination = await startDestination((arrival) =>
      arrival.path.startsWith('/fail') ? { status: 500, headers: { 'x-reason': 'down' }, body: 'boom' } : { status: 200, body: 'fine' },
    );
  });
  after(async () => {
    await courier.stop();
    await destination.close();
  });

  async function entriesOf(messageId: string): Promise<LogEntry[]> {
    return (await courier.client.logs({ messageIds: [messageId] })).logs;
  }

  async function waitForState(messageId: string, state: string): Promise<LogEntry[]> {
    return eventually(
      async () => {
        const logs = await entriesOf(messageId);
        return logs.some((entry) => entry.state === state) ? logs : undefined;
      },
      5_000,
      `${state} for ${messageId}`,
    );
  }

  async function rawLogs(query: string, path = '/v2/events'): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await courier.api(`${path}${query}`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('logs a delivery newest first, each entry with time, messageId, state, url, header and a base64 body', async () => {
    const url = destination.url(uniquePath('shape'));
    const before = Date.now();
    const { messageId } = await courier.client.publish({ url, body: 'log body', headers: { 'X-Log': 'one', 'Content-Type': 'text/plain' } });
    const logs = await waitForState(messageId, 'DELIVERED');
    assert.deepEqual(
      logs.map((entry) => entry.state),
      ['DELIVERED', 'ACTIVE', 'CREATED'],
    );
    for (let i = 1; i < logs.length; i++) assert.ok(logs[i - 1]!.time >= logs[i]!.time, 'newest first');
    for (const entry of logs as unknown as RawLogEntry[]) {
      assert.equal(typeof entry.time, 'number');
      assert.ok(entry.time >= before && entry.time <= Date.now(), 'time is epoch ms');
      assert.equal(entry.messageId, messageId);
      assert.equal(entry.url, url);
      assert.deepEqual(entry.header, { 'X-Log': ['one'], 'Content-Type': ['text/plain'] });
      assert.equal(entry.body, base64('log body'));
    }
  });

  it('carries responseStatus and a base64 responseBody on ERROR entries', async () => {
    const { messageId } = await courier.client.publish({ url: destination.url(uniquePath('fail-error')), body: 'x', retries: 0 });
    const logs = (await waitForState(messageId, 'FAILED')) as unknown as RawLogEntry[];
    assert.deepEqual(
      logs.map((entry) => entry.state),
      ['FAILED', 'ERROR', 'ACTIVE', 'CREATED'],
    );
    const error = logs.find((entry) => entry.state === 'ERROR')!;
    assert.equal(error.responseStatus, 500);
    assert.equal(error.responseBody, base64('boom'));
    assert.equal(typeof error.error, 'string');
    const headers = (error.responseHeaders ?? error.responseHeader) as Record<string, string[]> | undefined;
    assert.ok(headers, 'the response headers are logged');
    const reason = Object.entries(headers).find(([name]) => name.toLowerCase() === 'x-reason');
    assert.deepEqual(reason?.[1], ['down']);
  });

  it('logs RETRY with nextDeliveryTime between failed attempts', async () => {
    const { messageId } = await courier.client.publish({ url: destination.url(uniquePath('fail-retry')), body: 'x', retries: 1, retryDelay: '0' });
    const logs = await waitForState(messageId, 'FAILED');
    assert.deepEqual(
      logs.map((entry) => entry.state).reverse(),
      ['CREATED', 'ACTIVE', 'ERROR', 'RETRY', 'ACTIVE', 'ERROR', 'FAILED'],
    );
    const retry = logs.find((entry) => entry.state === 'RETRY')!;
    assert.equal(typeof retry.nextDeliveryTime, 'number');
  });

  describe('filters', () => {
    it('filters by messageIds (several), and by the deprecated single messageId', async () => {
      const ids = await Promise.all(
        ['a', 'b', 'c'].map(async (name) => (await courier.client.publish({ url: destination.url(uniquePath(`ids-${name}`)), body: name, delay: 600 })).messageId),
      );
      const { logs } = await courier.client.logs({ messageIds: [ids[0]!, ids[1]!] });
      assert.deepEqual(new Set(logs.map((entry) => entry.messageId)), new Set([ids[0], ids[1]]));

      const single = await courier.client.logs({ filter: { messageId: ids[2]! } });
      assert.ok(single.logs.length > 0);
      assert.ok(single.logs.every((entry) => entry.messageId === ids[2]));
      await courier.client.messages.cancel(ids);
    });

    it('filters by state, IN_PROGRESS matching ACTIVE, RETRY and ERROR', async () => {
      const url = destination.url(uniquePath('fail-in-progress'));
      const { messageId } = await courier.client.publish({ url, body: 'x', retries: 1, retryDelay: '0' });
      await waitForState(messageId, 'FAILED');

      const inProgress = await courier.client.logs({ filter: { state: 'IN_PROGRESS', url } });
      assert.deepEqual(new Set(inProgress.logs.map((entry) => entry.state)), new Set(['ACTIVE', 'RETRY', 'ERROR']));
      assert.equal(inProgress.logs.length, 5);

      const failed = await courier.client.logs({ filter: { state: 'FAILED', url } });
      assert.deepEqual(
        failed.logs.map((entry) => entry.state),
        ['FAILED'],
      );
    });

    it('accepts both CANCELED and the docs spelling CANCELLED as a state filter', async () => {
      const url = destination.url(uniquePath('cancelled-spelling'));
      const { messageId } = await courier.client.publish({ url, body: 'x', delay: 600 });
      await courier.client.messages.cancel(messageId);

      const sdk = await courier.client.logs({ filter: { state: 'CANCELED', url } });
      assert.deepEqual(
        sdk.logs.map((entry) => [entry.messageId, entry.state]),
        [[messageId, 'CANCELED']],
      );
      for (const spelling of ['CANCELLED', 'cancelled']) {
        const raw = await rawLogs(`?state=${spelling}&url=${encodeURIComponent(url)}`);
        assert.equal(raw.status, 200);
        const events = raw.body.events as RawLogEntry[];
        assert.deepEqual(
          events.map((entry) => [entry.messageId, entry.state]),
          [[messageId, 'CANCELED']],
          `state=${spelling}`,
        );
      }
    });

    it('filters by url and by label', async () => {
      const urlA = destination.url(uniquePath('url-a'));
      const urlB = destination.url(uniquePath('url-b'));
      const a = await courier.client.publish({ url: urlA, body: 'a', delay: 600, label: 'logs-label-a' });
      const b = await courier.client.publish({ url: urlB, body: 'b', delay: 600, label: ['other', 'logs-label-b'] });

      const byUrl = await courier.client.logs({ filter: { url: urlA } });
      assert.ok(byUrl.logs.length > 0);
      assert.ok(byUrl.logs.every((entry) => entry.messageId === a.messageId && entry.url === urlA));

      const byBothUrls = await courier.client.logs({ filter: { url: [urlA, urlB] } });
      assert.deepEqual(new Set(byBothUrls.logs.map((entry) => entry.messageId)), new Set([a.messageId, b.messageId]));

      const byLabel = await courier.client.logs({ filter: { label: 'logs-label-b' } });
      assert.ok(byLabel.logs.length > 0);
      assert.ok(byLabel.logs.every((entry) => entry.messageId === b.messageId));
      assert.equal(byLabel.logs[0]!.label, 'other');
      assert.deepEqual(byLabel.logs[0]!.labels, ['other', 'logs-label-b']);
      await courier.client.messages.cancel([a.messageId, b.messageId]);
    });

    it('filters by destination host and path, and by callerIp', async () => {
      const path = uniquePath('host-path');
      const { messageId } = await courier.client.publish({ url: destination.url(`${path}?q=1`), body: 'x', delay: 600 });
      const byPath = await courier.client.logs({ filter: { path } });
      assert.deepEqual(
        byPath.logs.map((entry) => entry.messageId),
        [messageId],
      );
      const byHostAndPath = await courier.client.logs({ filter: { host: '127.0.0.1', path } });
      assert.deepEqual(
        byHostAndPath.logs.map((entry) => entry.messageId),
        [messageId],
      );
      const otherHost = await courier.client.logs({ filter: { host: 'example.com', path } });
      assert.equal(otherHost.logs.length, 0);
      const byCaller = await courier.client.logs({ filter: { callerIp: '127.0.0.1', path } });
      assert.equal(byCaller.logs.length, 1);
      const otherCaller = await courier.client.logs({ filter: { callerIp: '10.9.9.9', path } });
      assert.equal(otherCaller.logs.length, 0);
      await courier.client.messages.cancel(messageId);
    });

    it('filters by fromDate and toDate (inclusive, ms; Date objects too)', async () => {
      const label = 'logs-dates';
      const early = await courier.client.publish({ url: destination.url(uniquePath('dates-early')), body: 'e', delay: 600, label });
      await sleep(20);
      const middle = Date.now();
      await sleep(20);
      const late = await courier.client.publish({ url: destination.url(uniquePath('dates-late')), body: 'l', delay: 600, label });

      const upTo = await courier.client.logs({ filter: { label, toDate: middle } });
      assert.deepEqual(
        upTo.logs.map((entry) => entry.messageId),
        [early.messageId],
      );
      const from = await courier.client.logs({ filter: { label, fromDate: new Date(middle) } });
      assert.deepEqual(
        from.logs.map((entry) => entry.messageId),
        [late.messageId],
      );
      const created = (await entriesOf(early.messageId))[0]!;
      const exact = await courier.client.logs({ filter: { label, fromDate: created.time, toDate: created.time } });
      assert.ok(exact.logs.some((entry) => entry.messageId === early.messageId), 'both bounds are inclusive');
      await courier.client.messages.cancel([early.messageId, late.messageId]);
    });
  });

  describe('paging', () => {
    it('pages with count and cursor over 7 entries without duplicates; the last page has no cursor', async () => {
      const label = 'logs-paging';
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        ids.push((await courier.client.publish({ url: destination.url(uniquePath('paging')), body: String(i), delay: 600, label })).messageId);
      }
      const seen: string[] = [];
      const times: number[] = [];
      const pageSizes: number[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 10; page++) {
        const result: Awaited<ReturnType<Client['logs']>> = await courier.client.logs(
          cursor === undefined ? { count: 3, filter: { label } } : { count: 3, cursor, filter: { label } },
        );
        pageSizes.push(result.logs.length);
        for (const entry of result.logs) {
          seen.push(entry.messageId);
          times.push(entry.time);
        }
        if (result.cursor === undefined) break;
        assert.equal(typeof result.cursor, 'string');
        assert.notEqual(result.cursor, '');
        cursor = result.cursor;
      }
      assert.deepEqual(pageSizes, [3, 3, 1]);
      assert.equal(new Set(seen).size, seen.length, 'no entry appears twice');
      assert.deepEqual([...seen].sort(), [...ids].sort());
      assert.deepEqual(seen, [...ids].reverse(), 'newest first across pages');
      for (let i = 1; i < times.length; i++) assert.ok(times[i - 1]! >= times[i]!);
      await courier.client.messages.cancel(ids);
    });

    it('omits the cursor key entirely on an exactly full last page', async () => {
      const url = destination.url(uniquePath('exact-page'));
      const { messageId } = await courier.client.publish({ url, body: 'x', delay: 600 });
      const first = await rawLogs(`?count=1&url=${encodeURIComponent(url)}`);
      assert.equal(first.status, 200);
      assert.ok(!('cursor' in first.body), 'one entry, count 1: no further page');
      await courier.client.messages.cancel(messageId);
      const full = await rawLogs(`?count=1&url=${encodeURIComponent(url)}`);
      assert.equal(typeof full.body.cursor, 'string', 'three entries, count 1: a cursor');
    });

    it('rejects a cursor it did not issue with 400', async () => {
      const raw = await rawLogs('?cursor=not-a-cursor');
      assert.equal(raw.status, 400);
      assert.equal(typeof raw.body.error, 'string');
    });
  });

  it('serves GET /v2/logs and GET /v2/events, both answering with `logs` and `events` keys', async () => {
    const url = destination.url(uniquePath('both-paths'));
    const { messageId } = await courier.client.publish({ url, body: 'x', delay: 600 });
    for (const path of ['/v2/logs', '/v2/events']) {
      const raw = await rawLogs(`?url=${encodeURIComponent(url)}`, path);
      assert.equal(raw.status, 200, path);
      assert.ok(Array.isArray(raw.body.logs), `${path} has logs`);
      assert.ok(Array.isArray(raw.body.events), `${path} has events`);
      assert.deepEqual(raw.body.logs, raw.body.events);
      assert.deepEqual(
        (raw.body.events as RawLogEntry[]).map((entry) => [entry.messageId, entry.state]),
        [[messageId, 'CREATED']],
      );
    }
    await courier.client.messages.cancel(messageId);
  });

  it('needs the token', async () => {
    const response = await fetch(`${courier.url}/v2/events`);
    assert.equal(response.status, 401);
    assert.equal(typeof ((await response.json()) as { error: unknown }).error, 'string');
  });
});
