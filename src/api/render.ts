/**
 * Domain objects → the JSON shapes the SDKs parse (spec §5.1, §6, §9.1).
 * Empty optional fields are omitted, never sent as "" or null (spec §1.4).
 * Redaction (spec §2.1) applies here, to what is shown; deliveries are untouched.
 */
import { createHash } from 'node:crypto';
import { canonicalHeaderLists } from '../core/headers.js';
import type { FlowControlState } from '../core/flow-control.js';
import type { InstanceGroupRecord } from '../core/instance.js';
import type { AttemptResponse, DeadLetter, HeaderMap, LogEvent, MessageRecord, MessageSpec, RedactSpec } from '../core/message.js';
import type { QueueRecord } from '../core/queue.js';
import type { ScheduleRun } from '../core/schedule.js';
import type { StreamEvent, StreamRecord } from '../core/stream.js';
import type { UrlGroup } from '../core/url-group.js';
import type { ScheduleView } from '../schedules/schedule-service.js';

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
  setIf(out, 'flowControlKey', spec.flowControl?.key);
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

export function renderQueue(queue: QueueRecord): Json {
  return {
    name: queue.name,
    parallelism: queue.parallelism,
    lag: queue.lag,
    paused: queue.paused,
    createdAt: queue.createdAt,
    updatedAt: queue.updatedAt,
  };
}

/** Every field always present, 0 or false when unset (spec §11.9): the SDK's tests compare with toBe(false). */
export function renderFlowControl(state: FlowControlState): Json {
  return {
    flowControlKey: state.key,
    waitListSize: state.waitListSize,
    parallelismMax: state.parallelism ?? 0,
    parallelismCount: state.parallelismCount,
    rateMax: state.rate ?? 0,
    rateCount: state.rateCount,
    ratePeriod: Math.round(state.periodMs / 1000),
    ratePeriodStart: Math.floor(state.ratePeriodStart / 1000),
    isPaused: state.paused,
    isPinnedParallelism: state.pinnedParallelism,
    isPinnedRate: state.pinnedRate,
  };
}

/** Endpoint objects hold only `name` (when set) and `url` (spec §8: the SDK's tests use toContainEqual). */
export function renderUrlGroup(group: UrlGroup): Json {
  return {
    name: group.name,
    createdAt: group.createdAt,
    updatedAt: group.updatedAt,
    endpoints: group.endpoints.map((endpoint) => (endpoint.name === undefined ? { url: endpoint.url } : { name: endpoint.name, url: endpoint.url })),
  };
}

/** `retries` is required by the SDKs; a schedule that set none gets the server's default. */
export function renderSchedule({ schedule, lastStates, runStats }: ScheduleView, defaultRetries: number): Json {
  const { template } = schedule;
  const { options } = template;
  const out: Json = {
    scheduleId: schedule.scheduleId,
    cron: schedule.cron,
    destination: template.destination,
    method: options.method,
    header: headerLists(options.headers, options.redact),
    createdAt: schedule.createdAt,
    isPaused: schedule.paused,
    retries: options.retries ?? defaultRetries,
    callerIP: template.callerIp,
    callerIp: template.callerIp,
  };
  bodyFields(out, template.body, 'body', 'bodyBase64', options.redact?.body);
  if (options.delayMs !== undefined) out.delay = Math.round(options.delayMs / 1000);
  if (options.timeoutMs !== undefined) out.timeout = options.timeoutMs / 1000;
  setIf(out, 'retryDelayExpression', options.retryDelayExpression);
  setIf(out, 'callback', options.callback?.url);
  setIf(out, 'failureCallback', options.failureCallback?.url);
  if (options.callback && Object.keys(options.callback.headers).length > 0) out.callbackHeader = headerLists(options.callback.headers);
  if (options.failureCallback && Object.keys(options.failureCallback.headers).length > 0) {
    out.failureCallbackHeader = headerLists(options.failureCallback.headers);
  }
  setIf(out, 'queueName', template.queueName);
  if (options.flowControl) {
    out.flowControlKey = options.flowControl.key;
    setIf(out, 'parallelism', options.flowControl.parallelism);
    setIf(out, 'rate', options.flowControl.rate);
    out.period = Math.round((options.flowControl.periodMs ?? 1000) / 1000);
  }
  if (options.labels.length > 0) {
    out.label = options.labels[0];
    out.labels = options.labels;
  }
  setIf(out, 'lastScheduleTime', schedule.lastAt);
  setIf(out, 'nextScheduleTime', schedule.nextAt);
  // The SDK types know three states; a canceled run did not succeed.
  out.lastScheduleStates = Object.fromEntries(
    Object.entries(lastStates).map(([messageId, state]) => [messageId, state === 'CANCELED' ? 'FAIL' : state]),
  );
  setIf(out, 'error', schedule.lastError);
  // Courier's extension (seed 002's run history); the SDKs ignore unknown keys.
  const stats: Json = { window: runStats.window, finished: runStats.finished, succeeded: runStats.succeeded, failed: runStats.failed };
  setIf(stats, 'successRate', runStats.successRate);
  setIf(stats, 'meanDuration', runStats.meanDurationMs);
  out.runStats = stats;
  return out;
}

export function renderScheduleRun(run: ScheduleRun): Json {
  const out: Json = {
    messageId: run.messageId,
    url: run.url,
    trigger: run.trigger,
    state: run.state,
    createdAt: run.createdAt,
    retried: run.retried,
  };
  setIf(out, 'finishedAt', run.finishedAt);
  setIf(out, 'responseStatus', run.responseStatus);
  setIf(out, 'duration', run.durationMs);
  setIf(out, 'error', run.error);
  return out;
}

/** An instance group's settings on the wire: seconds, and never the secret's hash. */
export function renderGroup(group: InstanceGroupRecord) {
  const { registrationSecretHash, heartbeatIntervalMs, staleAfterMs, slowStartMs, outlier, healthCheck, ...rest } = group;
  return {
    ...rest,
    heartbeatIntervalSeconds: heartbeatIntervalMs / 1000,
    staleAfterSeconds: staleAfterMs / 1000,
    slowStartSeconds: slowStartMs / 1000,
    outlier: {
      consecutiveFailures: outlier.consecutiveFailures,
      failureRatePercent: outlier.failureRatePercent,
      minimumRequests: outlier.minimumRequests,
      windowSize: outlier.windowSize,
      baseEjectionSeconds: outlier.baseEjectionMs / 1000,
      maxEjectionSeconds: outlier.maxEjectionMs / 1000,
      maxEjectionPercent: outlier.maxEjectionPercent,
    },
    healthCheck: healthCheck
      ? {
          path: healthCheck.path,
          intervalSeconds: healthCheck.intervalMs / 1000,
          timeoutSeconds: healthCheck.timeoutMs / 1000,
          healthyThreshold: healthCheck.healthyThreshold,
          unhealthyThreshold: healthCheck.unhealthyThreshold,
        }
      : null,
    hasRegistrationSecret: registrationSecretHash !== undefined,
  };
}

/** A task stream's state (`GET /v1/streams/{id}`): what seed 003's task-status endpoint answered, from the log itself. */
export function renderStream(stream: StreamRecord): Json {
  return {
    id: stream.id,
    state: stream.state,
    lastSeq: stream.lastSeq,
    firstSeq: stream.firstSeq,
    createdAt: stream.createdAt,
    updatedAt: stream.updatedAt,
    ...(stream.endedAt === undefined ? {} : { endedAt: stream.endedAt }),
    ...(stream.messageId === undefined ? {} : { messageId: stream.messageId }),
  };
}

/** A stored event as JSON: data that was JSON is JSON again, a string stays one. */
export function renderStreamEvent(event: StreamEvent): Json {
  return { seq: event.seq, type: event.type, data: event.json ? (JSON.parse(event.data) as unknown) : event.data, at: event.at };
}
