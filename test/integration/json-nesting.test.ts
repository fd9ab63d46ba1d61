/**
 * JSON request bodies are parsed with their nesting bounded (src/api/json.ts):
 * a body nested beyond 64 levels is a 400 INVALID_REQUEST naming `body`,
 * refused before JSON.parse runs, on every route that parses JSON; bodies of
 * ordinary depth, and brackets inside strings, are still accepted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually, startDestination, type Destination } from '../helpers/destination.js';

const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('JSON nesting limit', () => {
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

  async function expectTooDeep(method: string, path: string, body: string): Promise<void> {
    const res = await courier.api(path, { method, headers: { 'Content-Type': 'application/json' }, body });
    const text = await res.text();
    assert.equal(res.status, 400, text);
    const reply = JSON.parse(text) as { error: string; code: string };
    assert.equal(reply.code, 'INVALID_REQUEST', text);
    assert.match(reply.error, /^body: nested deeper than 64 levels/, text);
  }

  it('refuses a 10 MB batch nested 5,000,000 deep with a 400 naming the body', async () => {
    await expectTooDeep('POST', '/v2/batch', nested(5_000_000));
  });

  it('refuses 65 levels on every route that parses a JSON body', async () => {
    const body = `{"a":${nested(64)}}`;
    await expectTooDeep('POST', '/v2/batch', `[${nested(64)}]`);
    await expectTooDeep('POST', '/v2/queues', body);
    await expectTooDeep('POST', '/v2/topics/deep/endpoints', body);
    await expectTooDeep('DELETE', '/v2/messages', body);
    await expectTooDeep('DELETE', '/v2/dlq', body);
  });

  it('accepts a batch of ordinary depth whose strings hold brackets, quotes and escapes, and delivers it', async () => {
    const deepText = `\\"${'[{'.repeat(100)}`;
    const body = JSON.stringify([{ destination: destination.url('/nested'), headers: { 'Content-Type': 'text/plain' }, body: deepText }]);
    const res = await courier.api('/v2/batch', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    assert.equal(res.status, 200, await res.clone().text());
    await res.arrayBuffer();
    const arrival = await eventually(() => destination.arrivals.find((a) => a.path === '/nested'), 10_000, 'the batch delivery');
    assert.equal(arrival.body.toString(), deepText);
  });

  it('accepts a management body of ordinary depth', async () => {
    const res = await courier.api('/v2/queues', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ queueName: 'nesting-ok', parallelism: 2 }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    await res.arrayBuffer();
  });
});
