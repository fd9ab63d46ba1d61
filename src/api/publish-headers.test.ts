import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../core/config.js';
import { CourierError } from '../core/errors.js';
import { parsePublishHeaders, type IncomingHeaders } from './publish-headers.js';

const limits = loadConfig({}).limits;
const NOW = 1_700_000_000_000;
const parse = (headers: IncomingHeaders) => parsePublishHeaders(headers, limits, NOW);

describe('publish header parsing (spec §2.1)', () => {
  it('defaults to POST with nothing but the body to deliver', () => {
    const options = parse({});
    assert.equal(options.method, 'POST');
    assert.deepEqual(options.headers, {});
    assert.equal(options.retries, undefined);
    assert.deepEqual(options.labels, []);
  });

  it('ties a message to a stream with Upstash-Courier-Stream, exactly as given, and names the header when the id is bad', () => {
    assert.equal(parse({ 'upstash-courier-stream': 'task_1234567890_abcdef123' }).streamId, 'task_1234567890_abcdef123');
    assert.equal(parse({}).streamId, undefined);
    for (const bad of ['', 'has space', 'a/b', 'x'.repeat(129), ' task_1']) {
      assert.throws(
        () => parse({ 'upstash-courier-stream': bad }),
        (error: unknown) => error instanceof CourierError && error.field === 'Upstash-Courier-Stream' && error.code === 'INVALID_REQUEST',
        JSON.stringify(bad),
      );
    }
  });

  it('reads flow control in the SDK form (", " joins), the docs form ("," joins) and with a bare-seconds period', () => {
    assert.deepEqual(
      parse({ 'upstash-flow-control-key': 'tenant:42', 'upstash-flow-control-value': 'parallelism=3, rate=5, period=1m' }).flowControl,
      { key: 'tenant:42', parallelism: 3, rate: 5, periodMs: 60_000 },
    );
    assert.deepEqual(parse({ 'upstash-flow-control-key': 'k', 'upstash-flow-control-value': 'rate=10,period=30' }).flowControl, {
      key: 'k',
      rate: 10,
      periodMs: 30_000,
    });
    assert.deepEqual(parse({ 'upstash-flow-control-key': 'k', 'upstash-flow-control-value': 'parallelism=1' }).flowControl, {
      key: 'k',
      parallelism: 1,
    });
  });

  it('reads every option into its typed form', () => {
    const options = parse({
      'content-type': 'application/json',
      'upstash-forward-x-trace': 'abc',
      'upstash-forward-authorization': 'Bearer t',
      'upstash-method': 'put',
      'upstash-delay': '1m30s',
      'upstash-retries': '5',
      'upstash-retry-delay': 'pow(2, retried) * 1000',
      'upstash-timeout': '1.5s',
      'upstash-callback': 'https://cb.example.com/c',
      'upstash-callback-method': 'PATCH',
      'upstash-callback-forward-x-cb': '1',
      'upstash-failure-callback': 'https://cb.example.com/f',
      'upstash-failure-callback-retries': '0',
      'upstash-deduplication-id': 'order-1',
      'upstash-content-based-deduplication': 'false',
      'upstash-label': 'a, b',
      'upstash-redact-fields': 'body, headers[authorization]',
      'upstash-telemetry-sdk': 'upstash-qstash-js@2.12.0',
    });
    assert.equal(options.method, 'PUT');
    assert.deepEqual(options.headers, { 'X-Trace': 'abc', Authorization: 'Bearer t', 'Content-Type': 'application/json' });
    assert.equal(options.delayMs, 90_000);
    assert.equal(options.retries, 5);
    assert.equal(options.retryDelayExpression, 'pow(2, retried) * 1000');
    assert.equal(options.timeoutMs, 1_500);
    assert.deepEqual(options.callback, { url: 'https://cb.example.com/c', method: 'PATCH', headers: { 'X-Cb': '1' } });
    assert.deepEqual(options.failureCallback, { url: 'https://cb.example.com/f', method: 'POST', headers: {}, retries: 0 });
    assert.equal(options.deduplicationId, 'order-1');
    assert.equal(options.contentBasedDeduplication, false);
    assert.deepEqual(options.labels, ['a', 'b']);
    assert.deepEqual(options.redact, { body: true, allHeaders: false, headers: ['Authorization'] });
  });

  it('takes Upstash-Not-Before as Unix seconds', () => {
    assert.equal(parse({ 'upstash-not-before': '1700000100' }).notBefore, 1_700_000_100_000);
  });

  it('forwards plain headers only with Upstash-Header-Forward, never the token or framing headers', () => {
    const options = parse({
      'upstash-header-forward': 'true',
      'x-plain': 'yes',
      authorization: 'Bearer courier-token',
      'content-length': '10',
      host: 'courier',
    });
    assert.deepEqual(options.headers, { 'X-Plain': 'yes' });
    assert.deepEqual(parse({ 'x-plain': 'yes' }).headers, {});
  });

  const rejected: [string, IncomingHeaders][] = [
    ['Upstash-Method', { 'upstash-method': 'FOO' }],
    ['Upstash-Delay', { 'upstash-delay': '10x' }],
    ['Upstash-Delay', { 'upstash-delay': '400d' }],
    ['Upstash-Not-Before', { 'upstash-not-before': 'soon' }],
    ['Upstash-Retries', { 'upstash-retries': '-1' }],
    ['Upstash-Retries', { 'upstash-retries': '101' }],
    ['Upstash-Retry-Delay', { 'upstash-retry-delay': 'process.exit()' }],
    ['Upstash-Timeout', { 'upstash-timeout': '0' }],
    ['Upstash-Timeout', { 'upstash-timeout': '3h' }],
    ['Upstash-Callback', { 'upstash-callback': 'ftp://x' }],
    ['Upstash-Callback-Retries', { 'upstash-callback-retries': '1' }],
    ['Upstash-Content-Based-Deduplication', { 'upstash-content-based-deduplication': 'maybe' }],
    ['Upstash-Label', { 'upstash-label': 'has space' }],
    ['Upstash-Redact-Fields', { 'upstash-redact-fields': 'bogus' }],
    ['Upstash-Forward-Host', { 'upstash-forward-host': 'evil' }],
    ['Upstash-Flow-Control-Key', { 'upstash-flow-control-value': 'parallelism=1' }],
    ['Upstash-Flow-Control-Key', { 'upstash-flow-control-key': 'has space', 'upstash-flow-control-value': 'parallelism=1' }],
    ['Upstash-Flow-Control-Value', { 'upstash-flow-control-key': 'k' }],
    ['Upstash-Flow-Control-Value', { 'upstash-flow-control-key': 'k', 'upstash-flow-control-value': 'period=1m' }],
    ['Upstash-Flow-Control-Value', { 'upstash-flow-control-key': 'k', 'upstash-flow-control-value': 'parallelism=0' }],
    ['Upstash-Flow-Control-Value', { 'upstash-flow-control-key': 'k', 'upstash-flow-control-value': 'rate=1.5' }],
    ['Upstash-Flow-Control-Value', { 'upstash-flow-control-key': 'k', 'upstash-flow-control-value': 'rate=5, period=8d' }],
    ['Upstash-Flow-Control-Value', { 'upstash-flow-control-key': 'k', 'upstash-flow-control-value': 'burst=5' }],
    ['Upstash-Flow-Control-Value', { 'upstash-flow-control-key': 'k', 'upstash-flow-control-value': 'rate' }],
  ];
  for (const [field, headers] of rejected) {
    it(`rejects ${JSON.stringify(headers)} naming ${field}`, () => {
      assert.throws(
        () => parse(headers),
        (error: unknown) => error instanceof CourierError && error.status === 400 && error.message.startsWith(field),
      );
    });
  }
});
