/**
 * Domain objects → the JSON shapes the SDKs parse (spec §5.1, §6, §9.1).
 * Empty optional fields are omitted, never sent as "" or null (spec §1.4).
 * Redaction (spec §2.1) applies here, to what is shown; deliveries are untouched.
 */
import { createHash } from 'node:crypto';
import { canonicalHeaderLists } from '../core/headers.js';
import type { AttemptResponse, DeadLetter, HeaderMap, LogEvent, MessageRecord, MessageSpec, RedactSpec } from '../core/message.js';

type Json = Record<string, unknown>;

const redacted = (value: Uint8Array | string): string => `REDACTED:${createHash('sha256').update(value).digest('hex')}`;

function headerLists(headers: HeaderMap, redact?: RedactSpec): Record<string, string[]> {
  const lists: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const hide = redact && (redact.allHeaders || redact.headers.includes(name));
    lists[name] = [hide ? redacted(value) : value];
  }
  return lists;
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

const base64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

/** `body` when the bytes are UTF-8 text, `bodyBase64` otherwise (spec §5.1). */
function bodyFields(out: Json, bytes: Uint8Array | undefined, textKey: string, base64Key: string, redactBody = false): void {
  if (!bytes || bytes.byteLength === 0) return;
  if (redactBody) out[textKey] = redacted(bytes);
  else if (isUtf8(bytes)) out[textKey] = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  else out[base64Key] = base64(bytes);
}

function setIf(out: Json, key: string, value: unknown): void {
  if (value !== undefined && value !== '') out[key] = value;
}

/** Fields shared by the message object, the DLQ object and log entries. */
function specFields(spec: MessageSpec): Json {
  const out: Json = {
    messageId: spec.messageId,
    url: spec.url,
    method: spec.method,
    maxRetries: spec.maxRetries,
    createdAt: spec.createdAt,
    notBefore: spec.notBefore,
    callerIP: spec.callerIp,
    callerIp: spec.callerIp,
  };
  setIf(out, 'retryDelayExpression', spec.retryDelayExpression);
  // Seconds, like the schedule object's `timeout` (ambiguity A33).
  if (spec.timeoutMs !== undefined) out.timeout = spec.timeoutMs / 1000;
  setIf(out, 'callback', spec.callback?.url);
  setIf(out, 'failureCallback', spec.failureCallback?.url);
  setIf(out, 'topicName', spec.topicName);
  setIf(out, 'endpointName', spec.endpointName);
  setIf(out, 'queueName', spec.queueName);
  setIf(out, 'scheduleId', spec.scheduleId);
  if (spec.labels.length > 0) {
    out.label = spec.labels[0];
    out.labels = spec.labels;
  }
  return out;
}

export function renderMessage(record: MessageRecord | { spec: MessageSpec }): Json {
  const { spec } = record;
  const out = specFields(spec);
  out.header = headerLists(spec.headers, spec.redact);
  bodyFields(out, spec.body, 'body', 'bodyBase64', spec.redact?.body);
  if (spec.callback && Object.keys(spec.callback.headers).length > 0) out.callbackHeader = headerLists(spec.callback.headers);
  if (spec.failureCallback && Object.keys(spec.failureCallback.headers).length > 0) {
    out.failureCallbackHeader = headerLists(spec.failureCallback.headers);
  }
  return out;
}

function responseFields(out: Json, response: AttemptResponse, bodyAsBase64: boolean): void {
  setIf(out, 'responseStatus', response.status);
  if (response.headers) {
    const headers = canonicalHeaderLists(response.headers);
    out.responseHeader = headers;
    out.responseHeaders = headers;
  }
  if (bodyAsBase64) {
    if (response.body && response.body.byteLength > 0) out.responseBody = base64(response.body);
  } else {
    bodyFields(out, response.body, 'responseBody', 'responseBodyBase64');
  }
}

export function renderDeadLetter(entry: DeadLetter): Json {
  const out = renderMessage(entry);
  out.dlqId = entry.dlqId;
  out.responseStatus = entry.response.status ?? 0;
  responseFields(out, entry.response, false);
  setIf(out, 'error', entry.response.error);
  return out;
}

/** A log entry: the body and response body are base64 (spec §9.1). */
export function renderLogEvent(event: LogEvent): Json {
  const { spec } = event;
  const out: Json = { time: event.time, state: event.state, ...specFields(spec) };
  out.header = headerLists(spec.headers, spec.redact);
  if (spec.body.byteLength > 0) out.body = spec.redact?.body ? redacted(spec.body) : base64(spec.body);
  setIf(out, 'error', event.error);
  setIf(out, 'nextDeliveryTime', event.nextDeliveryTime);
  if (event.response) {
    responseFields(out, event.response, true);
    out.duration = event.response.durationMs;
  }
  if (spec.retryDelayExpression !== undefined) out.retryDelayExpr = spec.retryDelayExpression;
  if (spec.callback && Object.keys(spec.callback.headers).length > 0) out.callbackHeaders = headerLists(spec.callback.headers);
  if (spec.failureCallback && Object.keys(spec.failureCallback.headers).length > 0) {
    out.failureCallbackHeaders = headerLists(spec.failureCallback.headers);
  }
  return out;
}
