import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { startDestination, type Destination } from '../helpers/destination.js';

describe('publishing with the official SDK', () => {
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

  it('delivers a publishJSON body with forwarded headers and a signature the Receiver accepts', async () => {
    const url = destination.url('/hook?tenant=a%20b&x=1');
    const result = await courier.client.publishJSON({ url, body: { hello: 'world' }, headers: { 'X-Custom': 'yes' } });
    assert.match(result.messageId, /^msg_/);
    const [arrival] = await destination.waitFor(1);
    assert.ok(arrival);
    assert.equal(arrival.path, '/hook?tenant=a%20b&x=1');
    assert.equal(arrival.body.toString(), '{"hello":"world"}');
    assert.equal(arrival.headers['content-type'], 'application/json');
    assert.equal(arrival.headers['x-custom'], 'yes');
    assert.equal(arrival.headers['upstash-message-id'], result.messageId);
    assert.equal(arrival.headers['upstash-retried'], '0');
    assert.equal(arrival.headers['user-agent'], 'Upstash-QStash');
    assert.equal(arrival.headers['upstash-telemetry-sdk'], undefined, 'telemetry headers are never forwarded');
    const verified = await courier.receiver().verify({
      signature: String(arrival.headers['upstash-signature']),
      body: arrival.body.toString(),
      url,
    });
    assert.equal(verified, true);
  });
});
