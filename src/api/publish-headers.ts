/**
 * `Upstash-*` publish headers (spec §2.1) → a typed, validated PublishOptions.
 * Everything a publish can be told is checked here, once; a bad value is a 400
 * naming the header, and nothing is stored.
 */
import type { Limits } from '../core/config.js';
import { parseUpstashDuration } from '../core/durations.js';
import { invalid } from '../core/errors.js';
import { canonicalHeaderName, isHeaderName, isHeaderValue, UNFORWARDABLE_HEADERS } from '../core/headers.js';
import { HTTP_METHODS, type CallbackConfig, type HeaderMap, type HttpMethod, type RedactSpec } from '../core/message.js';
import type { PublishOptions } from '../core/publish-options.js';
import { compileRetryDelayExpression, RetryDelayExpressionError } from '../delivery/retry-delay-expression.js';
import { parseDestinationUrl } from './destination.js';


export type { PublishOptions };

/** Header names, lower-case, → value. Node and the batch JSON both give this shape. */
export type IncomingHeaders = Record<string, string | string[] | undefined>;

const MAX_LABELS = 32;
const LABEL = /^[A-Za-z0-9._:/-]{1,128}$/;
const MAX_DEDUP_ID_LENGTH = 512;
/** Headers a plain publish understands but only later parts of Courier act on; refused rather than silently ignored. */
const NOT_YET_SUPPORTED: Record<string, string> = {
  'upstash-flow-control-key': 'flow control is not available in this Courier version yet',
  'upstash-flow-control-value': 'flow control is not available in this Courier version yet',
};
/** Request headers never forwarded by `Upstash-Header-Forward: true`: ours, or the connection's. */
const NOT_FORWARDED_IMPLICITLY = new Set([...UNFORWARDABLE_HEADERS, 'authorization', 'content-type', 'user-agent', 'accept-encoding']);

function single(headers: IncomingHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

export function parseMethod(value: string | undefined, field: string): HttpMethod {
  if (value === undefined) return 'POST';
  const method = value.trim().toUpperCase();
  if (!(HTTP_METHODS as readonly string[]).includes(method)) {
    throw invalid(field, `must be one of ${HTTP_METHODS.join(', ')}, got "${value}"`);
  }
  return method as HttpMethod;
}

function parseRetries(value: string | undefined, field: string, limits: Limits): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (!/^\d+$/.test(text)) throw invalid(field, `must be a whole number ≥ 0, got "${value}"`);
  const retries = Number(text);
  if (retries > limits.maxRetries) throw invalid(field, `must be at most ${limits.maxRetries}, got ${retries}`);
  return retries;
}

function parseDuration(value: string | undefined, field: string, max: number, maxName: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseUpstashDuration(value);
  if (ms === undefined) throw invalid(field, `must be a duration like "30s", "5m", "2h", "7d" or whole seconds, got "${value}"`);
  if (ms > max) throw invalid(field, `must be at most ${maxName}, got "${value}"`);
  return ms;
}

function parseTimeout(value: string | undefined, field: string, limits: Limits): number | undefined {
  const ms = parseDuration(value, field, limits.maxTimeoutMs, `${limits.maxTimeoutMs / 1000}s (COURIER_MAX_TIMEOUT)`);
  if (ms === 0) throw invalid(field, 'must be greater than zero');
  return ms;
}

function parseRetryDelay(value: string | undefined, field: string): string | undefined {
  if (value === undefined) return undefined;
  try {
    return compileRetryDelayExpression(value).source;
  } catch (error) {
    if (error instanceof RetryDelayExpressionError) throw invalid(field, error.message);
    throw error;
  }
}

function parseBoolean(value: string | undefined, field: string): boolean | undefined {
  if (value === undefined) return undefined;
  const text = value.trim().toLowerCase();
  if (text === 'true') return true;
  if (text === 'false') return false;
  throw invalid(field, `must be "true" or "false", got "${value}"`);
}

function checkForwarded(name: string, value: string, field: string): void {
  if (!isHeaderName(name)) throw invalid(field, `"${name}" is not a valid header name`);
  if (UNFORWARDABLE_HEADERS.has(name.toLowerCase())) {
    throw invalid(field, `the "${name}" header cannot be forwarded: Courier sets it for each delivery`);
  }
  if (!isHeaderValue(value)) throw invalid(field, 'header value contains a control character');
}

/** Headers with `prefix` (lower-case) stripped off, canonicalised, validated. */
function prefixed(headers: IncomingHeaders, prefix: string): HeaderMap {
  const result: HeaderMap = {};
  for (const name of Object.keys(headers)) {
    if (!name.startsWith(prefix) || name.length === prefix.length) continue;
    const value = single(headers, name) ?? '';
    const target = name.slice(prefix.length);
    checkForwarded(target, value, canonicalHeaderName(name));
    result[canonicalHeaderName(target)] = value;
  }
  return result;
}

function parseCallback(
  headers: IncomingHeaders,
  base: 'upstash-callback' | 'upstash-failure-callback',
  limits: Limits,
): CallbackConfig | undefined {
  const field = canonicalHeaderName(base);
  const url = single(headers, base);
  const related = Object.keys(headers).filter((name) => name.startsWith(`${base}-`));
  if (url === undefined) {
    if (related.length > 0) throw invalid(canonicalHeaderName(related[0]!), `needs ${field} to be set`);
    return undefined;
  }
  const config: CallbackConfig = {
    url: parseDestinationUrl(url, field),
    method: parseMethod(single(headers, `${base}-method`), `${field}-Method`),
    headers: prefixed(headers, `${base}-forward-`),
  };
  const retries = parseRetries(single(headers, `${base}-retries`), `${field}-Retries`, limits);
  if (retries !== undefined) config.retries = retries;
  const timeoutMs = parseTimeout(single(headers, `${base}-timeout`), `${field}-Timeout`, limits);
  if (timeoutMs !== undefined) config.timeoutMs = timeoutMs;
  const retryDelay = parseRetryDelay(single(headers, `${base}-retry-delay`), `${field}-Retry-Delay`);
  if (retryDelay !== undefined) config.retryDelayExpression = retryDelay;
  const delayMs = parseDuration(single(headers, `${base}-delay`), `${field}-Delay`, limits.maxDelayMs, 'COURIER_MAX_DELAY');
  if (delayMs !== undefined) config.delayMs = delayMs;
  return config;
}

function parseLabels(value: string | undefined): string[] {
  if (value === undefined) return [];
  const labels = value.split(',').map((label) => label.trim()).filter((label) => label.length > 0);
  if (labels.length > MAX_LABELS) throw invalid('Upstash-Label', `at most ${MAX_LABELS} labels, got ${labels.length}`);
  for (const label of labels) {
    if (!LABEL.test(label)) throw invalid('Upstash-Label', `"${label}" may only contain A-Z a-z 0-9 . _ : / - (1-128 characters)`);
  }
  return labels;
}

/** `body`, `header`/`headers` (all), `header[Name]`/`headers[Name]`, comma-separated (spec §2.1, A14). */
function parseRedact(value: string | undefined): RedactSpec | undefined {
  if (value === undefined) return undefined;
  const redact: RedactSpec = { body: false, allHeaders: false, headers: [] };
  for (const raw of value.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const one = /^headers?\[\s*([^\]\s]+)\s*\]$/i.exec(part);
    if (part.toLowerCase() === 'body') redact.body = true;
    else if (/^headers?$/i.test(part)) redact.allHeaders = true;
    else if (one && isHeaderName(one[1]!)) redact.headers.push(canonicalHeaderName(one[1]!));
    else throw invalid('Upstash-Redact-Fields', `unknown field "${part}" (use body, header or header[Name])`);
  }
  return redact;
}

export function parsePublishHeaders(headers: IncomingHeaders, limits: Limits, now: number): PublishOptions {
  for (const [name, problem] of Object.entries(NOT_YET_SUPPORTED)) {
    if (headers[name] !== undefined) throw invalid(canonicalHeaderName(name), problem);
  }
  const forwarded = prefixed(headers, 'upstash-forward-');
  if (parseBoolean(single(headers, 'upstash-header-forward'), 'Upstash-Header-Forward')) {
    for (const name of Object.keys(headers)) {
      if (name.startsWith('upstash-') || NOT_FORWARDED_IMPLICITLY.has(name)) continue;
      const canonical = canonicalHeaderName(name);
      if (forwarded[canonical] === undefined) forwarded[canonical] = single(headers, name) ?? '';
    }
  }
  const contentType = single(headers, 'content-type');
  if (contentType !== undefined) {
    if (!isHeaderValue(contentType)) throw invalid('Content-Type', 'header value contains a control character');
    forwarded['Content-Type'] = contentType;
  }

  const options: PublishOptions = {
    method: parseMethod(single(headers, 'upstash-method'), 'Upstash-Method'),
    headers: forwarded,
    contentBasedDeduplication:
      parseBoolean(single(headers, 'upstash-content-based-deduplication'), 'Upstash-Content-Based-Deduplication') ?? false,
    labels: parseLabels(single(headers, 'upstash-label')),
  };

  const notBefore = single(headers, 'upstash-not-before');
  if (notBefore !== undefined) {
    if (!/^\d+$/.test(notBefore.trim())) throw invalid('Upstash-Not-Before', `must be a Unix time in seconds, got "${notBefore}"`);
    const at = Number(notBefore.trim()) * 1000;
    if (at - now > limits.maxDelayMs) throw invalid('Upstash-Not-Before', 'is further ahead than COURIER_MAX_DELAY allows');
    options.notBefore = at;
  }
  const delayMs = parseDuration(single(headers, 'upstash-delay'), 'Upstash-Delay', limits.maxDelayMs, 'COURIER_MAX_DELAY');
  if (delayMs !== undefined) options.delayMs = delayMs;
  const retries = parseRetries(single(headers, 'upstash-retries'), 'Upstash-Retries', limits);
  if (retries !== undefined) options.retries = retries;
  const retryDelay = parseRetryDelay(single(headers, 'upstash-retry-delay'), 'Upstash-Retry-Delay');
  if (retryDelay !== undefined) options.retryDelayExpression = retryDelay;
  const timeoutMs = parseTimeout(single(headers, 'upstash-timeout'), 'Upstash-Timeout', limits);
  if (timeoutMs !== undefined) options.timeoutMs = timeoutMs;
  const callback = parseCallback(headers, 'upstash-callback', limits);
  if (callback) options.callback = callback;
  const failureCallback = parseCallback(headers, 'upstash-failure-callback', limits);
  if (failureCallback) options.failureCallback = failureCallback;
  const dedupId = single(headers, 'upstash-deduplication-id');
  if (dedupId !== undefined) {
    if (dedupId.length === 0 || dedupId.length > MAX_DEDUP_ID_LENGTH) {
      throw invalid('Upstash-Deduplication-Id', `must be 1 to ${MAX_DEDUP_ID_LENGTH} characters`);
    }
    options.deduplicationId = dedupId;
  }
  const redact = parseRedact(single(headers, 'upstash-redact-fields'));
  if (redact) options.redact = redact;
  return options;
}
