/**
 * `Upstash-*` publish headers (spec §2.1) → a typed, validated PublishOptions.
 * Everything a publish can be told is checked here, once; a bad value is a 400
 * naming the header, and nothing is stored.
 */
import type { Limits } from '../core/config.js';
import { parseUpstashDuration } from '../core/durations.js';
import { invalid } from '../core/errors.js';
import { canonicalHeaderName, isHeaderName, isHeaderValue, UNFORWARDABLE_HEADERS } from '../core/headers.js';
import { HTTP_METHODS, type CallbackConfig, type FlowControlConfig, type HeaderMap, type HttpMethod, type RedactSpec, type RoutingHints } from '../core/message.js';
import type { PublishOptions } from '../core/publish-options.js';
import { STREAM_ID } from '../core/stream.js';
import { compileRetryDelayExpression, RetryDelayExpressionError } from '../delivery/retry-delay-expression.js';
import { checkFlowControlKey, parseDestinationUrl } from './destination.js';


export type { PublishOptions };

/** Header names, lower-case, → value. Node and the batch JSON both give this shape. */
export type IncomingHeaders = Record<string, string | string[] | undefined>;

const MAX_LABELS = 32;
const LABEL = /^[A-Za-z0-9._:/-]{1,128}$/;
const MAX_DEDUP_ID_LENGTH = 512;
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

function checkForwarded(name: string, field: string): void {
  if (UNFORWARDABLE_HEADERS.has(name.toLowerCase())) {
    throw invalid(field, `the "${name}" header cannot be forwarded: Courier sets it for each delivery`);
  }
}

/**
 * Every header of a publish, whatever it is for: a name that is not an RFC
 * 9110 token or a value with CR, LF, NUL or another control character could
 * never be sent, so the message would fail every attempt. Node's parser
 * already refuses them in a request's own headers; the batch's JSON `headers`
 * arrive unchecked, so this is where both are held to the same rule.
 */
function checkHeaders(headers: IncomingHeaders): void {
  for (const name of Object.keys(headers)) {
    const field = canonicalHeaderName(name);
    if (!isHeaderName(name)) throw invalid(field, `${JSON.stringify(name)} is not a valid header name (letters, digits and !#$%&'*+-.^_\`|~ only)`);
    if (!isHeaderValue(single(headers, name) ?? '')) {
      throw invalid(field, 'header value may hold visible characters, spaces and tabs only (no CR, LF, NUL or other control characters)');
    }
  }
}

/** Headers with `prefix` (lower-case) stripped off, canonicalised, validated. */
function prefixed(headers: IncomingHeaders, prefix: string): HeaderMap {
  const result: HeaderMap = {};
  for (const name of Object.keys(headers)) {
    if (!name.startsWith(prefix)) continue;
    if (name.length === prefix.length) throw invalid(canonicalHeaderName(name), `names no header: write ${canonicalHeaderName(prefix)}<Header-Name>`);
    const value = single(headers, name) ?? '';
    const target = name.slice(prefix.length);
    checkForwarded(target, canonicalHeaderName(name));
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

const MAX_FLOW_CONTROL_RATE = 1_000_000;
const MAX_FLOW_CONTROL_PERIOD_MS = 7 * 86_400_000;

function positiveInteger(value: string, field: string, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw invalid(field, `must be a whole number ≥ 1, got "${value}"`);
  const number = Number(value);
  if (number > max) throw invalid(field, `must be at most ${max}, got ${number}`);
  return number;
}

/**
 * `Upstash-Flow-Control-Key` with `-Value` = `parallelism=3, rate=5, period=1m`
 * (spec §11.9): parts split on commas and trimmed, each optional, at least
 * one limit; a period without a unit is seconds, at most a week.
 */
function parseFlowControl(headers: IncomingHeaders, limits: Limits): FlowControlConfig | undefined {
  const key = single(headers, 'upstash-flow-control-key');
  const value = single(headers, 'upstash-flow-control-value');
  if (key === undefined && value === undefined) return undefined;
  if (key === undefined) throw invalid('Upstash-Flow-Control-Key', 'is required with Upstash-Flow-Control-Value');
  if (value === undefined) throw invalid('Upstash-Flow-Control-Value', 'is required with Upstash-Flow-Control-Key (e.g. "parallelism=3, rate=10, period=1m")');
  const config: FlowControlConfig = { key: checkFlowControlKey(key.trim(), 'Upstash-Flow-Control-Key') };
  const field = 'Upstash-Flow-Control-Value';
  for (const raw of value.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const [name, setting, extra] = part.split('=').map((piece) => piece.trim());
    if (setting === undefined || extra !== undefined || setting === '') throw invalid(field, `"${part}" is not name=value`);
    switch (name!.toLowerCase()) {
      case 'parallelism':
        config.parallelism = positiveInteger(setting, `${field} parallelism`, limits.maxParallelism);
        break;
      case 'rate':
        config.rate = positiveInteger(setting, `${field} rate`, MAX_FLOW_CONTROL_RATE);
        break;
      case 'period': {
        const ms = parseUpstashDuration(setting);
        if (ms === undefined || ms < 1000) throw invalid(field, `period must be a duration of at least 1s like "1s", "1m", "1h", "1d", got "${setting}"`);
        if (ms > MAX_FLOW_CONTROL_PERIOD_MS) throw invalid(field, `period must be at most 1 week, got "${setting}"`);
        config.periodMs = ms;
        break;
      }
      default:
        throw invalid(field, `unknown setting "${name}" (use parallelism, rate, period)`);
    }
  }
  if (config.parallelism === undefined && config.rate === undefined) {
    throw invalid(field, 'must set parallelism or rate (or both)');
  }
  return config;
}

export function parsePublishHeaders(headers: IncomingHeaders, limits: Limits, now: number): PublishOptions {
  checkHeaders(headers);
  const forwarded = prefixed(headers, 'upstash-forward-');
  if (parseBoolean(single(headers, 'upstash-header-forward'), 'Upstash-Header-Forward')) {
    for (const name of Object.keys(headers)) {
      if (name.startsWith('upstash-') || NOT_FORWARDED_IMPLICITLY.has(name)) continue;
      const canonical = canonicalHeaderName(name);
      if (forwarded[canonical] === undefined) forwarded[canonical] = single(headers, name) ?? '';
    }
  }
  const contentType = single(headers, 'content-type');
  if (contentType !== undefined) forwarded['Content-Type'] = contentType;

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
  const flowControl = parseFlowControl(headers, limits);
  if (flowControl) options.flowControl = flowControl;
  const routing = parseRoutingHints(headers);
  if (routing) options.routing = routing;
  const streamId = parseStreamId(single(headers, 'upstash-courier-stream'));
  if (streamId !== undefined) options.streamId = streamId;
  return options;
}

/**
 * `Upstash-Courier-Stream: <id>` ties the message to a task stream (README
 * "Streams tied to messages"). The `Upstash-` prefix is what lets the SDK's
 * `headers` option send it unchanged. Not trimmed: an id is exact.
 */
function parseStreamId(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!STREAM_ID.test(value)) throw invalid('Upstash-Courier-Stream', `"${value}" is not a stream id: 1-128 of A-Z a-z 0-9 . _ : -`);
  return value;
}

const ROUTING_HINT = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * Courier-Region and Courier-Capability steer an instance-group delivery
 * (gateway/balancer.ts); other destinations ignore them. The SDK renames
 * custom headers to Upstash-Forward-…, but passes Upstash-… through, so
 * Upstash-Courier-Region / -Capability are accepted too.
 */
function parseRoutingHints(headers: IncomingHeaders): RoutingHints | undefined {
  const hints: RoutingHints = {};
  for (const [name, field, key] of [['courier-region', 'Courier-Region', 'region'], ['courier-capability', 'Courier-Capability', 'capability']] as const) {
    const value = (single(headers, name) ?? single(headers, `upstash-${name}`))?.trim();
    if (value === undefined) continue;
    if (!ROUTING_HINT.test(value)) throw invalid(field, `"${value}" may only contain A-Z a-z 0-9 . _ : - (1-64 characters)`);
    hints[key] = value;
  }
  return hints.region === undefined && hints.capability === undefined ? undefined : hints;
}
