/**
 * Error codes on the wire: every error of the Courier API is
 * `{"error": "<message>", "code": "<STABLE_CODE>"}` with the status
 * core/errors.ts gives the code. One representative per kind, over real HTTP.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ERROR_STATUS, type ErrorCode } from '../../src/core/errors.js';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';

describe('error codes on the wire', () => {
  let courier: TestCourier;
  before(async () => {
    courier = await startTestCourier({ COURIER_MAX_BODY_BYTES: '1024' });
  });
  after(() => courier.stop());

  async function expectError(res: Response, code: ErrorCode, mentions?: string): Promise<Record<string, unknown>> {
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, ERROR_STATUS[code], JSON.stringify(body));
    assert.equal(body.code, code);
    assert.equal(typeof body.error, 'string');
    if (mentions !== undefined) assert.match(String(body.error), new RegExp(mentions));
    return body;
  }

  it('an unknown route is 404 ROUTE_NOT_FOUND', async () => {
    await expectError(await courier.api('/v2/nothing-here'), 'ROUTE_NOT_FOUND', 'no route for GET /v2/nothing-here');
  });

  it('a wrong method is 405 METHOD_NOT_ALLOWED with Allow', async () => {
    const res = await courier.api('/v2/keys', { method: 'DELETE' });
    assert.equal(res.headers.get('allow'), 'GET, HEAD');
    await expectError(res, 'METHOD_NOT_ALLOWED');
  });

  it('no token is 401 UNAUTHORIZED', async () => {
    await expectError(await fetch(`${courier.url}/v2/queues`), 'UNAUTHORIZED', 'missing or invalid token');
  });

  it('a body over the limit is 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await courier.api('/v2/publish/https://example.com/hook', { method: 'POST', body: 'x'.repeat(2048) });
    await expectError(res, 'PAYLOAD_TOO_LARGE', 'body');
  });

  it('a bad header is 400 INVALID_REQUEST naming the field', async () => {
    const res = await courier.api('/v2/publish/https://example.com/hook', { method: 'POST', headers: { 'Upstash-Delay': 'abc' }, body: 'x' });
    await expectError(res, 'INVALID_REQUEST', '^Upstash-Delay');
  });

  it('unknown queue, schedule and URL group have their own 404 codes', async () => {
    await expectError(await courier.api('/v2/queues/no-such-queue'), 'QUEUE_NOT_FOUND', 'no-such-queue');
    await expectError(await courier.api('/v2/schedules/scd_nothing'), 'SCHEDULE_NOT_FOUND', 'scd_nothing');
    await expectError(await courier.api('/v2/topics/no-such-group'), 'URL_GROUP_NOT_FOUND', 'no-such-group');
  });

  it('an invalid cron is 400 INVALID_CRON', async () => {
    const res = await courier.api('/v2/schedules/https://example.com/hook', { method: 'POST', headers: { 'Upstash-Cron': 'every minute' } });
    await expectError(res, 'INVALID_CRON', '^Upstash-Cron');
  });

  it('a request Node cannot parse is 400 MALFORMED_REQUEST', async () => {
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(courier.server.port, '127.0.0.1', () => socket.write('NOT A REQUEST\r\n\r\n'));
      let answer = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (answer += chunk));
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
    });
    assert.match(raw, /^HTTP\/1\.1 400 Bad Request\r\n/);
    const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    assert.equal(body.code, 'MALFORMED_REQUEST');
    assert.match(String(body.error), /^malformed request: /);
  });
});
