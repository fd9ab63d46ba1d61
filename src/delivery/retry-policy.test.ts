import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileRetryDelayExpression } from './retry-delay-expression.js';
import {
  MAX_RETRY_DELAY_MS,
  defaultBackoffMs,
  isNonRetryable,
  nextRetryDelayMs,
  retryAfterMs,
} from './retry-policy.js';

const NOW = Date.parse('2025-01-15T12:00:00.000Z');
const NOW_SECONDS = NOW / 1000;

const hms = (h: number, m: number, s: number): number => ((h * 60 + m) * 60 + s) * 1000;

describe('defaultBackoffMs', () => {
  it('follows the documented sequence: 12 s, 2 m 28 s, 30 m 8 s, 6 h 7 m 6 s, then 24 h', () => {
    const seconds = [1, 2, 3, 4, 5, 6, 10].map((n) => Math.floor(defaultBackoffMs(n) / 1000));
    assert.deepEqual(seconds, [12, 148, 1808, 22026, 86400, 86400, 86400]);
    assert.equal(Math.floor(defaultBackoffMs(2) / 1000), hms(0, 2, 28) / 1000);
    assert.equal(Math.floor(defaultBackoffMs(3) / 1000), hms(0, 30, 8) / 1000);
    assert.equal(Math.floor(defaultBackoffMs(4) / 1000), hms(6, 7, 6) / 1000);
  });

  it('returns whole milliseconds', () => {
    assert.equal(defaultBackoffMs(1), 12_182);
    assert.equal(defaultBackoffMs(2), 148_413);
    assert.equal(defaultBackoffMs(5), MAX_RETRY_DELAY_MS);
  });
});

describe('retryAfterMs', () => {
  it('reads integer seconds', () => {
    assert.equal(retryAfterMs({ 'retry-after': '120' }, NOW), 120_000);
    assert.equal(retryAfterMs({ 'retry-after': ' 5 ' }, NOW), 5_000);
  });

  it('reads "0" as retry now', () => {
    assert.equal(retryAfterMs({ 'retry-after': '0' }, NOW), 0);
  });

  it('reads a large integer as a Unix time in seconds', () => {
    assert.equal(retryAfterMs({ 'x-ratelimit-reset': String(NOW_SECONDS + 90) }, NOW), 90_000);
  });

  it('treats a Unix time in the past as retry now', () => {
    assert.equal(retryAfterMs({ 'x-ratelimit-reset': String(NOW_SECONDS - 90) }, NOW), 0);
  });

  it('reads an HTTP date relative to now', () => {
    const at = new Date(NOW + 45_000).toUTCString();
    assert.match(at, /GMT$/);
    assert.equal(retryAfterMs({ 'retry-after': at }, NOW), 45_000);
    assert.equal(retryAfterMs({ 'retry-after': 'Wed, 15 Jan 2025 12:10:00 GMT' }, NOW), 600_000);
  });

  it('treats an HTTP date in the past as retry now', () => {
    assert.equal(retryAfterMs({ 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }, NOW), 0);
  });

  it('reads Go durations', () => {
    assert.equal(retryAfterMs({ 'x-ratelimit-reset-requests': '6m5s' }, NOW), 365_000);
    assert.equal(retryAfterMs({ 'x-ratelimit-reset-tokens': '300ms' }, NOW), 300);
    assert.equal(retryAfterMs({ 'retry-after': '1.5h' }, NOW), 5_400_000);
  });

  it('uses the first element of a repeated header', () => {
    assert.equal(retryAfterMs({ 'retry-after': ['7', '99'] }, NOW), 7_000);
  });

  it('checks the headers in the documented order', () => {
    const all = {
      'upstash-retry-after': '5',
      'x-ratelimit-reset-tokens': '4',
      'x-ratelimit-reset-requests': '3',
      'x-ratelimit-reset': '2',
      'retry-after': '1',
    };
    assert.equal(retryAfterMs(all, NOW), 1_000);
    const { 'retry-after': _1, ...noRetryAfter } = all;
    assert.equal(retryAfterMs(noRetryAfter, NOW), 2_000);
    const { 'x-ratelimit-reset': _2, ...onlyResets } = noRetryAfter;
    assert.equal(retryAfterMs(onlyResets, NOW), 3_000);
    const { 'x-ratelimit-reset-requests': _3, ...tokensAndUpstash } = onlyResets;
    assert.equal(retryAfterMs(tokensAndUpstash, NOW), 4_000);
    assert.equal(retryAfterMs({ 'upstash-retry-after': '5' }, NOW), 5_000);
  });

  it('skips a header that does not parse and uses the next one', () => {
    assert.equal(retryAfterMs({ 'retry-after': 'soon', 'x-ratelimit-reset': '3' }, NOW), 3_000);
    assert.equal(retryAfterMs({ 'retry-after': '', 'x-ratelimit-reset': '3' }, NOW), 3_000);
  });

  it('returns undefined when nothing usable is present', () => {
    assert.equal(retryAfterMs({}, NOW), undefined);
    assert.equal(retryAfterMs({ 'retry-after': undefined }, NOW), undefined);
    assert.equal(retryAfterMs({ 'retry-after': [] }, NOW), undefined);
    assert.equal(retryAfterMs({ 'content-type': 'text/plain' }, NOW), undefined);
  });

  const unusable = ['-5', '1.5', '5s ago', 'later', 'NaN', 'Infinity', '1e3', '1d', '2025-01-15T12:10:00Z', '15 Jan 2025 12:10'];
  for (const value of unusable) {
    it(`ignores the unusable value ${JSON.stringify(value)}`, () => {
      assert.equal(retryAfterMs({ 'retry-after': value }, NOW), undefined);
    });
  }

  it('accepts exactly one day', () => {
    assert.equal(retryAfterMs({ 'retry-after': '86400' }, NOW), MAX_RETRY_DELAY_MS);
    assert.equal(retryAfterMs({ 'retry-after': '24h' }, NOW), MAX_RETRY_DELAY_MS);
  });

  it('gives up on a delay over a day, in every form, rather than trying the next header', () => {
    const later = new Date(NOW + MAX_RETRY_DELAY_MS + 1000).toUTCString();
    for (const value of ['86401', String(NOW_SECONDS + 86_401), later, '24h0m0.001s', '1'.padEnd(40, '0')]) {
      assert.equal(retryAfterMs({ 'retry-after': value, 'x-ratelimit-reset': '3' }, NOW), undefined, value);
    }
  });
});

describe('isNonRetryable', () => {
  it('is true for 489 with Upstash-NonRetryable-Error: true, in any case', () => {
    assert.equal(isNonRetryable(489, { 'upstash-nonretryable-error': 'true' }), true);
    assert.equal(isNonRetryable(489, { 'upstash-nonretryable-error': 'TRUE' }), true);
    assert.equal(isNonRetryable(489, { 'upstash-nonretryable-error': ' True ' }), true);
    assert.equal(isNonRetryable(489, { 'upstash-nonretryable-error': ['true'] }), true);
  });

  it('is false for 489 without the header or with another value', () => {
    assert.equal(isNonRetryable(489, {}), false);
    assert.equal(isNonRetryable(489, { 'upstash-nonretryable-error': 'false' }), false);
    assert.equal(isNonRetryable(489, { 'upstash-nonretryable-error': '1' }), false);
    assert.equal(isNonRetryable(489, { 'upstash-nonretryable-error': 'yes' }), false);
  });

  it('is false for any other status, even with the header', () => {
    for (const status of [200, 400, 429, 488, 490, 500, 503]) {
      assert.equal(isNonRetryable(status, { 'upstash-nonretryable-error': 'true' }), false, String(status));
    }
  });
});

describe('nextRetryDelayMs', () => {
  const linear = compileRetryDelayExpression('1000 * (1 + retried)');

  it('uses the default backoff when nothing else is given, counting retries from 1', () => {
    assert.equal(nextRetryDelayMs({ retried: 0, now: NOW }), 12_182);
    assert.equal(nextRetryDelayMs({ retried: 1, now: NOW }), 148_413);
    assert.equal(nextRetryDelayMs({ retried: 4, now: NOW }), MAX_RETRY_DELAY_MS);
  });

  it('uses the expression with retried as given (0 before the first retry)', () => {
    assert.equal(nextRetryDelayMs({ retried: 0, expression: linear, now: NOW }), 1_000);
    assert.equal(nextRetryDelayMs({ retried: 2, expression: linear, now: NOW }), 3_000);
  });

  it('prefers a response header over the expression', () => {
    const responseHeaders = { 'retry-after': '30' };
    assert.equal(nextRetryDelayMs({ retried: 0, expression: linear, responseHeaders, now: NOW }), 30_000);
  });

  it('prefers a response header over the default backoff', () => {
    assert.equal(nextRetryDelayMs({ retried: 0, responseHeaders: { 'retry-after': '0' }, now: NOW }), 0);
  });

  it('falls back to the expression when the header asks for more than a day', () => {
    const responseHeaders = { 'retry-after': '86401' };
    assert.equal(nextRetryDelayMs({ retried: 1, expression: linear, responseHeaders, now: NOW }), 2_000);
  });

  it('falls back to the default backoff when the header asks for more than a day and there is no expression', () => {
    const responseHeaders = { 'retry-after': 'Thu, 01 Jan 2099 00:00:00 GMT' };
    assert.equal(nextRetryDelayMs({ retried: 0, responseHeaders, now: NOW }), 12_182);
  });

  it('ignores unusable response headers', () => {
    const responseHeaders = { 'retry-after': 'whenever' };
    assert.equal(nextRetryDelayMs({ retried: 0, expression: linear, responseHeaders, now: NOW }), 1_000);
    assert.equal(nextRetryDelayMs({ retried: 0, responseHeaders, now: NOW }), 12_182);
  });

  it('falls back to the default backoff when the expression gives NaN', () => {
    const expression = compileRetryDelayExpression('sqrt(-1)');
    assert.equal(nextRetryDelayMs({ retried: 0, expression, now: NOW }), 12_182);
  });

  it('clamps the expression to [0, one day] and rounds it', () => {
    const at = (source: string): number =>
      nextRetryDelayMs({ retried: 0, expression: compileRetryDelayExpression(source), now: NOW });
    assert.equal(at('-5000'), 0);
    assert.equal(at('1 / 0'), MAX_RETRY_DELAY_MS);
    assert.equal(at('-1 / 0'), 0);
    assert.equal(at('pow(2, 100)'), MAX_RETRY_DELAY_MS);
    assert.equal(at('1500.6'), 1_501);
    assert.equal(at('0'), 0);
  });
});
