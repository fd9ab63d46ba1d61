/**
 * When to try a failed delivery again (spec §11.3-11.5). Pure functions of
 * their inputs; the caller passes `now` so tests need no clock.
 *
 * Precedence for the next delay, strongest first:
 *   1. the destination's own answer (Retry-After and the rate-limit headers):
 *      it knows when it can take the request, we only guess;
 *   2. the publisher's `Upstash-Retry-Delay` expression;
 *   3. QStash's default exponential backoff.
 */
import { parseGoDuration } from '../core/durations.js';
import type { RetryDelayExpression } from './retry-delay-expression.js';

/** One day: QStash documents it as the longest a response header may push a retry out. */
export const MAX_RETRY_DELAY_MS = 86_400_000;

/** As undici gives them: lower-case names, repeated headers as arrays. */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** Before retry n (1-based): min(1 day, e^(2.5n) s), the documented schedule (12 s, 2 m 28 s, 30 m 8 s, …). */
export function defaultBackoffMs(retryNumber: number): number {
  return Math.round(Math.min(86_400, Math.exp(2.5 * retryNumber)) * 1000);
}

// Retry-After is the standard; the X-RateLimit-Reset family is what rate-limited
// APIs (GitHub, OpenAI) send instead. Upstash-Retry-After is undocumented but harmless.
const RETRY_AFTER_HEADERS = [
  'retry-after',
  'x-ratelimit-reset',
  'x-ratelimit-reset-requests',
  'x-ratelimit-reset-tokens',
  'upstash-retry-after',
] as const;

// Below this an integer is a number of seconds to wait; from here on it is a
// Unix time in seconds (1e9 s is Sept 2001; nobody asks for a 31-year wait).
const EPOCH_SECONDS_THRESHOLD = 1_000_000_000;

function firstValue(headers: ResponseHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function parseRetryAfterValue(raw: string, now: number): number | undefined {
  const value = raw.trim();
  if (/^\d+$/.test(value)) {
    const seconds = Number(value);
    return seconds >= EPOCH_SECONDS_THRESHOLD ? Math.max(0, seconds * 1000 - now) : seconds * 1000;
  }
  // Only GMT-suffixed dates (what RFC 9110 allows): Date.parse accepts many
  // other shapes and reads zone-less ones in local time, and a misread header
  // is worse than the default backoff.
  if (/GMT$/i.test(value)) {
    const at = Date.parse(value);
    return Number.isNaN(at) ? undefined : Math.max(0, at - now);
  }
  return parseGoDuration(value);
}

/**
 * The delay the destination asked for, or undefined to fall back. The first
 * listed header that parses decides, even when it asks for more than a day:
 * the spec then says the default backoff applies, not the next header.
 */
export function retryAfterMs(headers: ResponseHeaders, now: number): number | undefined {
  for (const name of RETRY_AFTER_HEADERS) {
    const raw = firstValue(headers, name);
    if (raw === undefined) continue;
    const delay = parseRetryAfterValue(raw, now);
    if (delay === undefined) continue;
    return delay <= MAX_RETRY_DELAY_MS ? delay : undefined;
  }
  return undefined;
}

/** 489 alone is just another failure; only with the header does the destination opt out of retries. */
export function isNonRetryable(status: number, headers: ResponseHeaders): boolean {
  if (status !== 489) return false;
  return firstValue(headers, 'upstash-nonretryable-error')?.trim().toLowerCase() === 'true';
}

export function nextRetryDelayMs(input: {
  /** Retries already done: 0 when scheduling the first retry (what the expression sees as `retried`). */
  retried: number;
  expression?: RetryDelayExpression;
  responseHeaders?: ResponseHeaders;
  now: number;
}): number {
  if (input.responseHeaders !== undefined) {
    const asked = retryAfterMs(input.responseHeaders, input.now);
    if (asked !== undefined) return asked;
  }
  if (input.expression !== undefined) {
    const value = input.expression.evaluate(input.retried);
    // NaN (sqrt(-1), 0/0) has no sensible reading, so the publisher gets the
    // default. ±Infinity and negatives do: "as late as allowed" / "now". The
    // same one-day cap as for headers keeps a runaway pow() from parking a
    // message for years (the spec leaves this open, A10).
    if (!Number.isNaN(value)) return Math.round(Math.min(MAX_RETRY_DELAY_MS, Math.max(0, value)));
  }
  return defaultBackoffMs(input.retried + 1);
}
