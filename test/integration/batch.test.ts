/** POST /v2/batch (spec §4) through the SDK's batch and batchJSON, and raw HTTP for malformed batches. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QstashError } from '@upstash/qstash';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { arrivalsAt, sleep, startDestination, uniquePath, waitForArrivals, type Destination } from '../helpers/destination.js';

describe('batch publishing (spec §4)', () => {
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

  it('answers client.batch with an array aligned with the input, and delivers each item with its own options', async () => {
    const paths = [uniquePath('batch-put'), uniquePath('batch-text'), uniquePath('batch-delayed')];
    const urls = paths.map((path) => destination.url(path));
    const before = Date.now();
    const results = await courier.client.batch([
      { url: urls[0]!, body: 'first', method: 'PUT', headers: { 'X-Item': '0' } },
      { url: urls[1]!, body: 'second', headers: { 'X-Item': '1', 'Content-Type': 'text/plain' }, retries: 0, label: 'batch-label' },
      { url: urls[2]!, body: 'third', headers: { 'X-Item': '2' }, delay: 600, retryDelay: '1000 * retried' },
    ]);

    assert.equal(results.length, 3);
    results.forEach((result, index) => {
      assert.ok('messageId' in result);
      assert.match(result.messageId, /^msg_/);
      assert.equal((result as { url?: string }).url, urls[index]);
    });
    assert.equal(new Set(results.map((result) => (result as { messageId: string }).messageId)).size, 3, 'distinct message ids');
    const ids = results.map((result) => (result as { messageId: string }).messageId);

    const [put] = await waitForArrivals(destination, paths[0]!, 1);
    assert.equal(put!.method, 'PUT');
    assert.equal(put!.body.toString(), 'first');
    assert.equal(put!.headers['x-item'], '0');
    assert.equal(put!.headers['upstash-message-id'], ids[0]);
    assert.equal(put!.headers['upstash-telemetry-sdk'], undefined, 'telemetry headers inside batch items are not forwarded');

    const [text] = await waitForArrivals(destination, paths[1]!, 1);
    assert.equal(text!.method, 'POST');
    assert.equal(text!.body.toString(), 'second');
    assert.equal(text!.headers['x-item'], '1');
    assert.equal(text!.headers['content-type'], 'text/plain');
    assert.equal(text!.headers['upstash-message-id'], ids[1]);

    const { logs } = await courier.client.logs({ filter: { label: 'batch-label' } });
    assert.ok(logs.length > 0 && logs.every((entry) => entry.messageId === ids[1]));

    const delayed = await courier.client.messages.get(ids[2]!);
    assert.ok(delayed.notBefore! >= before + 600_000, 'the delay applies to its own item only');
    assert.equal(delayed.retryDelayExpression, '1000 * retried');
    assert.deepEqual(delayed.header?.['X-Item'], ['2']);
    assert.equal(arrivalsAt(destination, paths[2]!).length, 0);
    await courier.client.messages.cancel(ids[2]!);
  });

  it('serialises each body with client.batchJSON and sends Content-Type application/json per item', async () => {
    const paths = [uniquePath('batch-json-a'), uniquePath('batch-json-b')];
    const results = await courier.client.batchJSON([
      { url: destination.url(paths[0]), body: { n: 1, tags: ['a'] }, headers: { 'X-Json': 'a' } },
      { url: destination.url(paths[1]), body: { n: 2 }, method: 'PATCH' },
    ]);
    assert.equal(results.length, 2);
    const [a] = await waitForArrivals(destination, paths[0]!, 1);
    const [b] = await waitForArrivals(destination, paths[1]!, 1);
    assert.equal(a!.body.toString(), '{"n":1,"tags":["a"]}');
    assert.equal(a!.headers['content-type'], 'application/json');
    assert.equal(a!.headers['x-json'], 'a');
    assert.equal(b!.body.toString(), '{"n":2}');
    assert.equal(b!.method, 'PATCH');
    assert.equal(b!.headers['content-type'], 'application/json');
    assert.equal(b!.headers['x-json'], undefined, 'headers do not leak between items');
  });

  it('deduplicates within one batch: the second item gets the first messageId and deduplicated: true', async () => {
    const path = uniquePath('batch-dedup');
    const url = destination.url(path);
    const results = (await courier.client.batch([
      { url, body: 'one', deduplicationId: 'batch-dup' },
      { url, body: 'two', deduplicationId: 'batch-dup' },
    ])) as { messageId: string; deduplicated?: boolean }[];
    assert.equal(results[1]!.messageId, results[0]!.messageId);
    assert.equal(results[0]!.deduplicated, undefined);
    assert.equal(results[1]!.deduplicated, true);
    await waitForArrivals(destination, path, 1);
    await sleep(300);
    assert.equal(arrivalsAt(destination, path).length, 1);
    assert.equal(arrivalsAt(destination, path)[0]!.body.toString(), 'one');
  });

  it('stores nothing when one item is invalid, and answers 400 naming the item index', async () => {
    const paths = [uniquePath('batch-invalid-a'), uniquePath('batch-invalid-b'), uniquePath('batch-invalid-c')];
    await assert.rejects(
      courier.client.batch([
        { url: destination.url(paths[0]), body: 'a' },
        { url: destination.url(paths[1]), body: 'b', method: 'TRACE' as 'GET' },
        { url: destination.url(paths[2]), body: 'c' },
      ]),
      (error: unknown) => error instanceof QstashError && error.status === 400 && error.message.includes('[1]'),
    );
    await sleep(300);
    for (const path of paths) {
      assert.equal(arrivalsAt(destination, path).length, 0, `nothing delivered to ${path}`);
      const { logs } = await courier.client.logs({ filter: { url: destination.url(path) } });
      assert.equal(logs.length, 0, `nothing logged for ${path}`);
    }
  });

  it('rejects a raw batch whose later item has a bad destination, naming that index', async () => {
    const path = uniquePath('batch-invalid-dest');
    const response = await courier.api('/v2/batch', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify([
        { destination: destination.url(path), headers: { 'upstash-method': 'POST' }, body: 'ok' },
        { destination: destination.url(path), headers: { 'upstash-delay': 'later' }, body: 'ok' },
        { destination: 'ftp://example.com/x', body: 'bad' },
      ]),
    });
    assert.equal(response.status, 400);
    const { error } = (await response.json()) as { error: string };
    assert.match(error, /\[1\]/, 'the first bad item is named');
    await sleep(200);
    assert.equal(arrivalsAt(destination, path).length, 0);
  });

  for (const [name, body, index] of [
    ['an item without a destination', JSON.stringify([{ body: 'x' }]), '[0]'],
    ['a non-string body', JSON.stringify([{ destination: 'http://127.0.0.1:1/x', body: 'x' }, { destination: 'http://127.0.0.1:1/x', body: 42 }]), '[1]'],
  ] as const) {
    it(`rejects ${name} with 400 naming ${index}`, async () => {
      const response = await courier.api('/v2/batch', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
      assert.equal(response.status, 400);
      assert.ok(((await response.json()) as { error: string }).error.includes(index));
    });
  }

  for (const [name, body] of [
    ['malformed JSON', '[{"destination":'],
    ['a JSON object instead of an array', '{"destination":"http://127.0.0.1:1/x"}'],
    ['an empty array', '[]'],
  ] as const) {
    it(`rejects ${name} with 400 and a JSON error`, async () => {
      const response = await courier.api('/v2/batch', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
      assert.equal(response.status, 400);
      assert.equal(typeof ((await response.json()) as { error: unknown }).error, 'string');
    });
  }
});
