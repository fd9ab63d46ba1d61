/**
 * A destination the WHATWG parser normalises (scheme case, dot segments,
 * `%2e`, a fragment, an empty query) is stored, answered, delivered to and
 * signed as one string: the normalised one. A receiver that verifies the
 * signature with the URL it was called on (the SDK's Receiver with `url`)
 * agrees, whichever way the URL entered: publish, batch, callback, URL group.
 *
 * The publish targets go over a raw socket: fetch would resolve the dot
 * segments of the outer URL before Courier saw them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { arrivalsAt, startDestination, waitForArrivals, type Arrival, type Destination } from '../helpers/destination.js';
import { rawRequest } from '../helpers/raw-http.js';

describe('normalised destinations', () => {
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

  async function verifies(arrival: Arrival, url: string): Promise<boolean> {
    return courier.receiver().verify({ signature: String(arrival.headers['upstash-signature']), body: arrival.body.toString('utf8'), url });
  }

  async function publishRaw(given: string, headers: Record<string, string> = {}): Promise<{ messageId: string; url: string }> {
    const res = await rawRequest(courier.server.port, {
      target: `/v2/publish/${given}`,
      headers: { Authorization: `Bearer ${courier.token}`, 'Content-Type': 'text/plain', ...headers },
      body: 'hello',
    });
    assert.equal(res.status, 200, res.body);
    return JSON.parse(res.body) as { messageId: string; url: string };
  }

  it('publish: answered, logged, delivered and signed with the normalised URL', async () => {
    const given = `HTTP://127.0.0.1:${new URL(destination.origin).port}/pub/./a/../b/%2e/c?x=1#fragment`;
    const normalised = `${destination.origin}/pub/b/c?x=1`;
    const { messageId, url } = await publishRaw(given);
    assert.equal(url, normalised);

    const [arrival] = await waitForArrivals(destination, '/pub/b/c?x=1', 1);
    assert.equal(arrival!.headers['upstash-message-id'], messageId);
    assert.equal(await verifies(arrival!, normalised), true);
    await assert.rejects(verifies(arrival!, given), 'the signature names the normalised URL, not the text given');

    const message = await courier.api(`/v2/messages/${messageId}`);
    if (message.status === 200) assert.equal(((await message.json()) as { url: string }).url, normalised);
    else await message.arrayBuffer();
    const events = (await (await courier.api(`/v2/events?messageId=${messageId}`)).json()) as { events: { url: string }[] };
    assert.ok(events.events.length > 0);
    for (const event of events.events) assert.equal(event.url, normalised);
    // The log is filtered by the URL as stored, whichever form the filter is given in.
    const byUrl = (await (await courier.api(`/v2/events?url=${encodeURIComponent(given)}`)).json()) as { events: { messageId: string }[] };
    assert.ok(byUrl.events.some((event) => event.messageId === messageId), 'filtering by the given form finds the message');
  });

  it('an empty query is dropped, not signed', async () => {
    const { url } = await publishRaw(`${destination.origin}/empty-query?`);
    assert.equal(url, `${destination.origin}/empty-query`);
    const [arrival] = await waitForArrivals(destination, '/empty-query', 1);
    assert.equal(await verifies(arrival!, `${destination.origin}/empty-query`), true);
  });

  it('a URL given without a path stays without one, and is called at /', async () => {
    const given = `HTTP://127.0.0.1:${new URL(destination.origin).port}?root=1`;
    const { url } = await publishRaw(given);
    assert.equal(url, `${destination.origin}?root=1`);
    const [arrival] = await waitForArrivals(destination, '/?root=1', 1);
    assert.equal(await verifies(arrival!, `${destination.origin}?root=1`), true);
  });

  it('batch: the item answers and is delivered and signed with the normalised URL', async () => {
    const res = await courier.api('/v2/batch', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify([{ destination: `${destination.origin.replace('http:', 'HTTP:')}/batch/x/../y#f`, body: 'b' }]),
    });
    assert.equal(res.status, 200);
    const [item] = (await res.json()) as { url: string }[];
    const normalised = `${destination.origin}/batch/y`;
    assert.equal(item!.url, normalised);
    const [arrival] = await waitForArrivals(destination, '/batch/y', 1);
    assert.equal(await verifies(arrival!, normalised), true);
  });

  it('callback: called at, and signed with, the normalised callback URL', async () => {
    await publishRaw(`${destination.origin}/with-callback`, { 'Upstash-Callback': `${destination.origin}/cb/./done/../ok` });
    const [callback] = await waitForArrivals(destination, '/cb/ok', 1);
    assert.equal(await verifies(callback!, `${destination.origin}/cb/ok`), true);
  });

  it('URL group: the endpoint is kept normalised, delivered to and signed so, and removable by the form given', async () => {
    const given = `${destination.origin}/grp/./a/../member`;
    const normalised = `${destination.origin}/grp/member`;
    const add = await courier.api('/v2/topics/normalised/endpoints', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ endpoints: [{ name: 'one', url: given }, { name: 'two', url: `${destination.origin}/grp/other` }] }),
    });
    assert.equal(add.status, 200, await add.text());
    const group = (await (await courier.api('/v2/topics/normalised')).json()) as { endpoints: { url: string }[] };
    assert.deepEqual(group.endpoints.map((endpoint) => endpoint.url), [normalised, `${destination.origin}/grp/other`]);

    const publish = await courier.api('/v2/publish/normalised', { method: 'POST', body: 'to the group' });
    assert.equal(publish.status, 200);
    await publish.arrayBuffer();
    const [arrival] = await waitForArrivals(destination, '/grp/member', 1);
    assert.equal(await verifies(arrival!, normalised), true);

    const remove = await courier.api('/v2/topics/normalised/endpoints', {
      method: 'DELETE',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ endpoints: [{ url: given }] }),
    });
    assert.equal(remove.status, 200, await remove.text());
    const after = (await (await courier.api('/v2/topics/normalised')).json()) as { endpoints: { url: string }[] };
    assert.deepEqual(after.endpoints.map((endpoint) => endpoint.url), [`${destination.origin}/grp/other`]);
    assert.equal(arrivalsAt(destination, '/grp/./a/../member').length, 0);
  });
});
