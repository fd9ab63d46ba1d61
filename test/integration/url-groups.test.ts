/**
 * URL groups ("topics", spec §8) and their fan-out (spec §2.2) through the
 * official SDK: group management via `client.urlGroups`, and publish, batch,
 * enqueue and schedules aimed at a group name, observed at real destinations.
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

interface PublishedMessage {
  messageId: string;
  url: string;
  deduplicated?: boolean;
}

/** The callback body fields these tests read (spec §11.7). */
interface CallbackBody {
  status: number;
  sourceMessageId: string;
  url: string;
}

let groupCounter = 0;
const groupName = (label: string) => `${label}-${++groupCounter}`;

async function rejectsWithStatus(promise: Promise<unknown>, status: number, mention?: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof QstashError, `expected a QstashError, got ${String(error)}`);
    assert.equal(error.status, status, `status of ${error.message}`);
    if (mention) assert.ok(error.message.includes(mention), `error "${error.message}" should mention ${mention}`);
    return true;
  });
}

const byUrl = <T extends { url: string }>(items: T[]) => items.slice().sort((a, b) => a.url.localeCompare(b.url));

describe('URL groups (spec §8, §2.2)', () => {
  let courier: TestCourier;
  const destinations: Destination[] = [];

  async function destination(script: Script = ok): Promise<Destination> {
    const started = await startDestination(script);
    destinations.push(started);
    return started;
  }

  async function verifies(arrival: Arrival, url: string): Promise<boolean> {
    return courier.receiver().verify({
      signature: String(arrival.headers['upstash-signature']),
      body: arrival.body.toString('utf8'),
      url,
    });
  }

  async function groupNames(): Promise<string[]> {
    return (await courier.client.urlGroups.list()).map((group) => group.name);
  }

  before(async () => {
    courier = await startTestCourier();
  });
  after(async () => {
    await Promise.all(destinations.map((d) => d.close()));
    await courier.stop();
  });

  describe('management', () => {
    it('creates the group on the first addEndpoints; get and list show endpoints holding only name and url', async () => {
      const d = await destination();
      const name = groupName('created');
      assert.ok(!(await groupNames()).includes(name));
      const before = Date.now();
      await courier.client.urlGroups.addEndpoints({
        name,
        endpoints: [{ name: 'first', url: d.url('/first') }, { url: d.url('/second') }],
      });

      const group = await courier.client.urlGroups.get(name);
      assert.deepEqual(Object.keys(group).sort(), ['createdAt', 'endpoints', 'name', 'updatedAt']);
      assert.equal(group.name, name);
      assert.equal(typeof group.createdAt, 'number');
      assert.ok(group.createdAt >= before - 1000 && group.createdAt <= Date.now() + 1000, 'createdAt is epoch ms');
      assert.ok(group.updatedAt >= group.createdAt);
      assert.deepEqual(byUrl(group.endpoints), [{ name: 'first', url: d.url('/first') }, { url: d.url('/second') }]);

      const listed = (await courier.client.urlGroups.list()).find((g) => g.name === name);
      assert.ok(listed, 'the group is listed');
      assert.deepEqual(byUrl(listed.endpoints), [{ name: 'first', url: d.url('/first') }, { url: d.url('/second') }]);
    });

    it('adds to an existing group, and re-adding an endpoint with the same name or url replaces it', async () => {
      const d = await destination();
      const name = groupName('replace');
      await courier.client.urlGroups.addEndpoints({ name, endpoints: [{ name: 'svc', url: d.url('/v1') }, { url: d.url('/plain') }] });
      const created = await courier.client.urlGroups.get(name);
      await sleep(5);
      await courier.client.urlGroups.addEndpoints({ name, endpoints: [{ name: 'svc', url: d.url('/v2') }] });
      await courier.client.urlGroups.addEndpoints({ name, endpoints: [{ url: d.url('/plain') }, { url: d.url('/extra') }] });

      const group = await courier.client.urlGroups.get(name);
      assert.deepEqual(byUrl(group.endpoints), [{ url: d.url('/extra') }, { url: d.url('/plain') }, { name: 'svc', url: d.url('/v2') }]);
      assert.equal(group.createdAt, created.createdAt, 'adding keeps the group and its createdAt');
      assert.ok(group.updatedAt >= created.updatedAt);
    });

    it('removes endpoints by name or by url, and deletes the group with its last endpoint', async () => {
      const d = await destination();
      const name = groupName('remove');
      await courier.client.urlGroups.addEndpoints({
        name,
        endpoints: [{ name: 'a', url: d.url('/a') }, { name: 'b', url: d.url('/b') }, { url: d.url('/c') }],
      });
      await courier.client.urlGroups.removeEndpoints({ name, endpoints: [{ name: 'a' }] });
      assert.deepEqual(byUrl((await courier.client.urlGroups.get(name)).endpoints), [{ name: 'b', url: d.url('/b') }, { url: d.url('/c') }]);
      await courier.client.urlGroups.removeEndpoints({ name, endpoints: [{ url: d.url('/c') }] });
      assert.deepEqual((await courier.client.urlGroups.get(name)).endpoints, [{ name: 'b', url: d.url('/b') }]);

      await courier.client.urlGroups.removeEndpoints({ name, endpoints: [{ name: 'b', url: d.url('/b') }] });
      await rejectsWithStatus(courier.client.urlGroups.get(name), 404);
      assert.ok(!(await groupNames()).includes(name), 'a group without endpoints is gone from the list');
    });

    it('answers 404 and changes nothing when an endpoint to remove is not in the group', async () => {
      const d = await destination();
      const name = groupName('remove-missing');
      await courier.client.urlGroups.addEndpoints({ name, endpoints: [{ name: 'a', url: d.url('/a') }, { url: d.url('/b') }] });
      const before = await courier.client.urlGroups.get(name);

      await rejectsWithStatus(courier.client.urlGroups.removeEndpoints({ name, endpoints: [{ name: 'nope' }] }), 404);
      await rejectsWithStatus(courier.client.urlGroups.removeEndpoints({ name, endpoints: [{ url: d.url('/nope') }] }), 404);
      await rejectsWithStatus(
        courier.client.urlGroups.removeEndpoints({ name, endpoints: [{ name: 'a', url: d.url('/b') }] }),
        404,
      );
      await rejectsWithStatus(
        courier.client.urlGroups.removeEndpoints({ name, endpoints: [{ name: 'a' }, { name: 'missing' }] }),
        404,
      );
      assert.deepEqual(await courier.client.urlGroups.get(name), before, 'a partly matching removal removes nothing');

      await rejectsWithStatus(
        courier.client.urlGroups.removeEndpoints({ name: groupName('never-created'), endpoints: [{ url: d.url('/a') }] }),
        404,
      );
    });

    it('deletes a group, and answers 404 for an unknown one', async () => {
      const d = await destination();
      const name = groupName('delete');
      await courier.client.urlGroups.addEndpoints({ name, endpoints: [{ url: d.url('/x') }] });
      await courier.client.urlGroups.delete(name);
      await rejectsWithStatus(courier.client.urlGroups.get(name), 404);
      assert.ok(!(await groupNames()).includes(name));
      await rejectsWithStatus(courier.client.urlGroups.delete(name), 404);
      await rejectsWithStatus(courier.client.urlGroups.get(groupName('unknown')), 404);
    });

    it('rejects a group name outside [A-Za-z0-9._-]{1,128} with 400 and creates nothing', async () => {
      const d = await destination();
      for (const bad of ['bad!name', 'bad*name', 'x'.repeat(129)]) {
        await rejectsWithStatus(courier.client.urlGroups.addEndpoints({ name: bad, endpoints: [{ url: d.url('/x') }] }), 400);
        assert.ok(!(await groupNames()).includes(bad), `${bad} was not created`);
      }
      const longest = 'A.b_c-9'.padEnd(128, 'z');
      await courier.client.urlGroups.addEndpoints({ name: longest, endpoints: [{ url: d.url('/x') }] });
      assert.equal((await courier.client.urlGroups.get(longest)).name, longest, '128 characters of the allowed set are fine');
      await courier.client.urlGroups.delete(longest);
    });

    it('answers 409 naming the schedule when deleting a group a schedule targets, and keeps the group', async () => {
      const d = await destination();
      const name = groupName('scheduled');
      await courier.client.urlGroups.addEndpoints({ name, endpoints: [{ url: d.url('/tick') }] });
      const { scheduleId } = await courier.client.schedules.create({ destination: name, cron: '0 0 1 1 *' });

      await rejectsWithStatus(courier.client.urlGroups.delete(name), 409, scheduleId);
      assert.deepEqual((await courier.client.urlGroups.get(name)).endpoints, [{ url: d.url('/tick') }]);

      await courier.client.schedules.delete(scheduleId);
      await courier.client.urlGroups.delete(name);
      await rejectsWithStatus(courier.client.urlGroups.get(name), 404);
    });
  });

  describe('fan-out', () => {
    it('publishes one message per endpoint: a bare array of distinct ids, one signed delivery per endpoint with Upstash-Topic-Name', async () => {
      const d = await destination();
      const name = groupName('fanout');
      const paths = [uniquePath('fan-a'), uniquePath('fan-b'), uniquePath('fan-c')];
      const urls = paths.map((path) => d.url(path));
      await courier.client.urlGroups.addEndpoints({
        name,
        endpoints: [{ name: 'alpha', url: urls[0]! }, { name: 'beta', url: urls[1]! }, { url: urls[2]! }],
      });

      const response: unknown = await courier.client.publish({ urlGroup: name, body: 'to everyone', headers: { 'X-Fan': 'yes' } });
      assert.ok(Array.isArray(response), 'a group publish answers a bare JSON array');
      const published = response as PublishedMessage[];
      assert.equal(published.length, 3);
      assert.deepEqual(published.map((p) => p.url).sort(), urls.slice().sort());
      assert.equal(new Set(published.map((p) => p.messageId)).size, 3, 'one distinct messageId per endpoint');
      for (const p of published) {
        assert.match(p.messageId, /^msg_/);
        assert.equal(p.deduplicated, undefined);
      }

      for (const [index, path] of paths.entries()) {
        const [arrival] = await waitForArrivals(d, path, 1);
        const mine = published.find((p) => p.url === urls[index])!;
        assert.equal(arrival!.headers['upstash-message-id'], mine.messageId);
        assert.equal(arrival!.headers['upstash-topic-name'], name);
        assert.equal(arrival!.headers['x-fan'], 'yes');
        assert.equal(arrival!.body.toString(), 'to everyone');
        assert.equal(await verifies(arrival!, urls[index]!), true, `signature verifies for ${urls[index]}`);
        const other = urls[(index + 1) % urls.length]!;
        await assert.rejects(verifies(arrival!, other), 'the JWT sub is this endpoint, not another');
      }
      await sleep(300);
      for (const path of paths) assert.equal(arrivalsAt(d, path).length, 1, `exactly one delivery to ${path}`);
    });

    it('fans out publishJSON the same way', async () => {
      const d = await destination();
      const name = groupName('fanout-json');
      const paths = [uniquePath('json-a'), uniquePath('json-b')];
      await courier.client.urlGroups.addEndpoints({ name, endpoints: paths.map((path) => ({ url: d.url(path) })) });

      const published = (await courier.client.publishJSON({ urlGroup: name, body: { hello: 'group' } })) as unknown as PublishedMessage[];
      assert.ok(Array.isArray(published));
      assert.equal(published.length, 2);
      assert.equal(new Set(published.map((p) => p.messageId)).size, 2);
      for (const path of paths) {
        const [arrival] = await waitForArrivals(d, path, 1);
        assert.equal(arrival!.body.toString(), '{"hello":"group"}');
        assert.equal(arrival!.headers['content-type'], 'application/json');
        assert.equal(arrival!.headers['upstash-topic-name'], name);
        assert.equal(await verifies(arrival!, d.url(path)), true);
      }
    });

    it('marks every element deduplicated when a group publish repeats its deduplication id', async () => {
      const d = await destination();
      const name = groupName('dedup');
      const paths = [uniquePath('dedup-a'), uniquePath('dedup-b')];
      await courier.client.urlGroups.addEndpoints({ name, endpoints: paths.map((path) => ({ url: d.url(path) })) });

      const first = (await courier.client.publish({ urlGroup: name, body: 'once', deduplicationId: `dedup-${name}` })) as unknown as PublishedMessage[];
      const second = (await courier.client.publish({ urlGroup: name, body: 'once', deduplicationId: `dedup-${name}` })) as unknown as PublishedMessage[];
      assert.equal(second.length, 2);
      for (const element of second) {
        assert.equal(element.deduplicated, true);
        assert.equal(element.messageId, first.find((p) => p.url === element.url)?.messageId, 'the original messageId per endpoint');
      }
      for (const path of paths) await waitForArrivals(d, path, 1);
      await sleep(300);
      for (const path of paths) assert.equal(arrivalsAt(d, path).length, 1);
    });

    it('shows topicName and endpointName on each fanned-out message and in the logs', async () => {
      const d = await destination();
      const name = groupName('shown');
      await courier.client.urlGroups.addEndpoints({
        name,
        endpoints: [{ name: 'named', url: d.url('/named') }, { url: d.url('/unnamed') }],
      });
      const published = (await courier.client.publish({ urlGroup: name, body: 'later', delay: 600 })) as unknown as PublishedMessage[];
      const named = published.find((p) => p.url === d.url('/named'))!;
      const unnamed = published.find((p) => p.url === d.url('/unnamed'))!;

      const namedMessage = await courier.client.messages.get(named.messageId);
      assert.equal(namedMessage.topicName, name);
      assert.equal(namedMessage.endpointName, 'named');
      assert.equal(namedMessage.url, d.url('/named'));
      const unnamedMessage = await courier.client.messages.get(unnamed.messageId);
      assert.equal(unnamedMessage.topicName, name);
      assert.equal(unnamedMessage.endpointName, undefined);
      assert.equal(unnamedMessage.url, d.url('/unnamed'));

      const { logs } = await courier.client.logs({ filter: { urlGroup: name } });
      assert.deepEqual(new Set(logs.map((entry) => entry.messageId)), new Set([named.messageId, unnamed.messageId]));
      for (const entry of logs) assert.equal(entry.topicName, name);
      assert.ok(logs.some((entry) => entry.messageId === named.messageId && entry.endpointName === 'named'));

      await courier.client.messages.cancel([named.messageId, unnamed.messageId]);
      assert.equal(d.arrivals.length, 0);
    });

    it('keeps endpoint messages independent: only the failing endpoint retries and lands in the DLQ', async () => {
      const goodPath = uniquePath('good');
      const badPath = uniquePath('bad');
      const d = await destination((arrival) => (arrival.path === badPath ? { status: 500, body: 'broken' } : { status: 200 }));
      const name = groupName('independent');
      await courier.client.urlGroups.addEndpoints({
        name,
        endpoints: [{ name: 'good', url: d.url(goodPath) }, { name: 'bad', url: d.url(badPath) }],
      });

      const published = (await courier.client.publish({
        urlGroup: name,
        body: 'independent',
        retries: 1,
        retryDelay: '100',
      })) as unknown as PublishedMessage[];
      const good = published.find((p) => p.url === d.url(goodPath))!;
      const bad = published.find((p) => p.url === d.url(badPath))!;

      const entry = await eventually(async () => {
        const { messages } = await courier.client.dlq.listMessages({ filter: { messageId: bad.messageId } });
        return messages[0];
      }, 10_000, 'the DLQ entry of the failing endpoint');
      assert.equal(entry.topicName, name);
      assert.equal(entry.endpointName, 'bad');
      assert.equal(entry.url, d.url(badPath));
      assert.equal(entry.responseStatus, 500);

      assert.equal(arrivalsAt(d, badPath).length, 2, 'the failing endpoint got its attempt and one retry');
      assert.equal(arrivalsAt(d, goodPath).length, 1, 'the healthy endpoint got its message once');
      const { messages: groupDlq } = await courier.client.dlq.listMessages({ filter: { urlGroup: name } });
      assert.deepEqual(groupDlq.map((m) => m.messageId), [bad.messageId], 'only the failing endpoint message is dead-lettered');
      const { logs } = await courier.client.logs({ messageIds: [good.messageId] });
      assert.ok(logs.some((log) => log.state === 'DELIVERED'));
      assert.ok(!logs.some((log) => log.state === 'FAILED' || log.state === 'ERROR'));
    });

    it('calls the callback once per endpoint message, each naming its own source message', async () => {
      const d = await destination();
      const cb = await destination();
      const name = groupName('callbacks');
      const paths = [uniquePath('cb-a'), uniquePath('cb-b')];
      await courier.client.urlGroups.addEndpoints({ name, endpoints: paths.map((path) => ({ url: d.url(path) })) });
      const callbackUrl = cb.url('/callback');

      const published = (await courier.client.publish({ urlGroup: name, body: 'x', callback: callbackUrl })) as unknown as PublishedMessage[];
      const arrivals = await cb.waitFor(2);
      await sleep(300);
      assert.equal(cb.arrivals.length, 2, 'one callback per endpoint message');
      const bodies = arrivals.map((a) => JSON.parse(a.body.toString('utf8')) as CallbackBody);
      assert.deepEqual(new Set(bodies.map((b) => b.sourceMessageId)), new Set(published.map((p) => p.messageId)));
      for (const body of bodies) {
        assert.equal(body.status, 200);
        assert.equal(body.url, published.find((p) => p.messageId === body.sourceMessageId)!.url);
      }
      for (const arrival of arrivals) assert.equal(await verifies(arrival, callbackUrl), true);
    });

    it('answers a batch item aimed at a group with a nested array, and delivers every endpoint', async () => {
      const d = await destination();
      const name = groupName('batch');
      const groupPaths = [uniquePath('batch-g1'), uniquePath('batch-g2')];
      const plainPath = uniquePath('batch-plain');
      await courier.client.urlGroups.addEndpoints({ name, endpoints: groupPaths.map((path) => ({ url: d.url(path) })) });

      const results: unknown[] = await courier.client.batch([
        { urlGroup: name, body: 'group item' },
        { url: d.url(plainPath), body: 'plain item' },
      ]);
      assert.equal(results.length, 2);
      assert.ok(Array.isArray(results[0]), 'the group item answers a nested array');
      const nested = results[0] as PublishedMessage[];
      assert.equal(nested.length, 2);
      assert.deepEqual(nested.map((p) => p.url).sort(), groupPaths.map((path) => d.url(path)).sort());
      assert.equal(new Set(nested.map((p) => p.messageId)).size, 2);
      assert.ok(!Array.isArray(results[1]));
      assert.equal((results[1] as PublishedMessage).url, d.url(plainPath));

      for (const path of groupPaths) {
        const [arrival] = await waitForArrivals(d, path, 1);
        assert.equal(arrival!.body.toString(), 'group item');
        assert.equal(arrival!.headers['upstash-topic-name'], name);
      }
      const [plain] = await waitForArrivals(d, plainPath, 1);
      assert.equal(plain!.headers['upstash-topic-name'], undefined, 'a plain URL item carries no topic name');
    });

    it('enqueues a group publish into a queue: every endpoint message belongs to the queue', async () => {
      const d = await destination();
      const name = groupName('queued');
      const queueName = groupName('group-queue');
      const paths = [uniquePath('q-a'), uniquePath('q-b')];
      await courier.client.urlGroups.addEndpoints({ name, endpoints: paths.map((path) => ({ url: d.url(path) })) });

      const response: unknown = await courier.client.queue({ queueName }).enqueue({ urlGroup: name, body: 'queued to group' });
      assert.ok(Array.isArray(response));
      const published = response as PublishedMessage[];
      assert.equal(published.length, 2);
      for (const path of paths) {
        const [arrival] = await waitForArrivals(d, path, 1);
        assert.equal(arrival!.headers['upstash-topic-name'], name);
      }
      const { logs } = await courier.client.logs({ filter: { queueName } });
      assert.deepEqual(new Set(logs.map((entry) => entry.messageId)), new Set(published.map((p) => p.messageId)));
      assert.equal((await courier.client.queue({ queueName }).get()).name, queueName);
    });

    it('answers 404 when publishing to an unknown group, and 400 for a name that cannot be a group', async () => {
      await rejectsWithStatus(courier.client.publish({ urlGroup: groupName('missing'), body: 'x' }), 404);
      await rejectsWithStatus(courier.client.publish({ urlGroup: 'bad!name', body: 'x' }), 400);
    });
  });
});
