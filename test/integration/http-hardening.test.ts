/**
 * The HTTP edge under a misbehaving client, over raw sockets on a real
 * Courier: a publish pipelined before garbage is answered before the 400 (the
 * client must not publish again), and a body that stops arriving gets a JSON
 * 408 once COURIER_BODY_TIMEOUT runs out, not five minutes of silence.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { startDestination, uniquePath, type Destination } from '../helpers/destination.js';
import { errorCode, exchange, parseResponses } from '../helpers/raw-http.js';

describe('HTTP hardening', () => {
  let courier: TestCourier;
  let destination: Destination;
  before(async () => {
    courier = await startTestCourier({ COURIER_BODY_TIMEOUT: '0.3s' });
    destination = await startDestination();
  });
  after(async () => {
    await courier.stop();
    await destination.close();
  });

  it('a publish pipelined before a malformed request gets its 200, then the 400, in order', async () => {
    const path = uniquePath('pipelined');
    const body = 'pipelined body';
    const publish =
      `POST /v2/publish/${destination.url(path)} HTTP/1.1\r\nHost: courier\r\nAuthorization: Bearer ${courier.token}\r\n` +
      `Content-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const [first, second, ...more] = parseResponses(await exchange(courier.server.port, `${publish}NOT A REQUEST\r\n\r\n`));
    assert.equal(first?.status, 200, JSON.stringify(first));
    const { messageId } = JSON.parse(first.body) as { messageId?: string };
    assert.match(String(messageId), /^msg_/);
    assert.equal(second?.status, 400);
    assert.equal(errorCode(second), 'MALFORMED_REQUEST');
    assert.deepEqual(more, []);
    // It was stored and is delivered, once.
    const [arrival] = await destination.waitFor(1);
    assert.equal(arrival?.path, path);
    assert.equal(arrival.body.toString(), body);
  });

  it('half a body is answered 408 REQUEST_TIMEOUT and the connection closed when COURIER_BODY_TIMEOUT runs out', async () => {
    const half =
      `POST /v2/publish/${destination.url(uniquePath('half'))} HTTP/1.1\r\nHost: courier\r\nAuthorization: Bearer ${courier.token}\r\n` +
      `Content-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly part of it`;
    const [answer, ...more] = parseResponses(await exchange(courier.server.port, half));
    assert.equal(answer?.status, 408);
    assert.equal(errorCode(answer), 'REQUEST_TIMEOUT');
    assert.deepEqual(more, []);
  });
});
