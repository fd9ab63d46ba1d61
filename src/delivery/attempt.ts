/**
 * One attempt, as pure functions: the request a claimed message becomes, and
 * the settlement (with its callbacks) that a response becomes. No I/O here;
 * the dispatcher does the sending and the storing.
 */
import { STATUS_CODES } from 'node:http';
import { canonicalHeaderLists } from '../core/headers.js';
import { newDlqId, newMessageId } from '../core/ids.js';
import type {
  AttemptResponse,
  CallbackConfig,
  ClaimedMessage,
  MessageSpec,
  NewMessage,
} from '../core/message.js';
import type { Settlement } from '../store/port.js';
import type { OutgoingRequest } from './http-client.js';
import { compileRetryDelayExpression, type RetryDelayExpression } from './retry-delay-expression.js';
import { isNonRetryable, nextRetryDelayMs } from './retry-policy.js';
import { signDelivery } from './signing.js';

export function buildRequest(
  claimed: ClaimedMessage,
  context: {
    signingKey: string;
    now: number;
    defaultTimeoutMs: number;
    /** Where this attempt goes, when not the message's URL (an instance of a group); the signature names it. */
    url?: string;
    extraHeaders?: Record<string, string>;
  },
): OutgoingRequest {
  const { spec } = claimed;
  const url = context.url ?? spec.url;
  const headers: Record<string, string> = {
    ...spec.headers,
    ...context.extraHeaders,
    'User-Agent': 'Upstash-QStash',
    'Upstash-Signature': signDelivery({ signingKey: context.signingKey, url, body: spec.body, nowMs: context.now }),
    'Upstash-Message-Id': spec.messageId,
    'Upstash-Retried': String(claimed.retried),
  };
  if (spec.callerIp) headers['Upstash-Caller-Ip'] = spec.callerIp;
  if (spec.scheduleId) headers['Upstash-Schedule-Id'] = spec.scheduleId;
  if (spec.topicName) headers['Upstash-Topic-Name'] = spec.topicName;
  return {
    url,
    method: spec.method,
    headers,
    body: spec.body,
    timeoutMs: spec.timeoutMs ?? context.defaultTimeoutMs,
  };
}

export function isSuccess(response: AttemptResponse): boolean {
  return response.status !== undefined && response.status >= 200 && response.status < 300;
}

/** Expressions were validated at publish; compiling again per attempt is wasted work. */
const compiledExpressions = new Map<string, RetryDelayExpression>();
function expressionFor(source: string | undefined): RetryDelayExpression | undefined {
  if (source === undefined) return undefined;
  let compiled = compiledExpressions.get(source);
  if (!compiled) {
    if (compiledExpressions.size > 1000) compiledExpressions.clear();
    compiled = compileRetryDelayExpression(source);
    compiledExpressions.set(source, compiled);
  }
  return compiled;
}

/** What the log and DLQ say about a failed attempt that did get an HTTP response. */
function withError(response: AttemptResponse): AttemptResponse {
  if (response.error !== undefined || response.status === undefined) return response;
  return { ...response, error: `${response.status} ${STATUS_CODES[response.status] ?? 'Unknown Status'}` };
}

/** Turns the response of one attempt into the settlement the store applies. */
export function settlementFor(claimed: ClaimedMessage, response: AttemptResponse, now: number): Settlement {
  const { spec } = claimed;
  const lease = { messageId: spec.messageId, leaseId: claimed.leaseId, at: now };
  const followUps: NewMessage[] = [];
  if (spec.callback) followUps.push(callbackMessage(spec.callback, 'callback', claimed, response, now));

  if (isSuccess(response)) return { ...lease, kind: 'ack', response, followUps };

  const failed = withError(response);
  const headers = response.headers ?? {};
  const exhausted = claimed.retried >= spec.maxRetries;
  if (exhausted || (response.status !== undefined && isNonRetryable(response.status, headers))) {
    const dlqId = newDlqId(now);
    if (spec.failureCallback) {
      followUps.push(callbackMessage(spec.failureCallback, 'failure_callback', claimed, failed, now, dlqId));
    }
    return { ...lease, kind: 'deadLetter', dlqId, failure: failed.error ?? 'failed', response: failed, followUps };
  }
  const delay = nextRetryDelayMs({
    retried: claimed.retried,
    expression: expressionFor(spec.retryDelayExpression),
    responseHeaders: headers,
    now,
  });
  return { ...lease, kind: 'retry', nextAt: now + delay, response: failed, followUps };
}

const base64 = (bytes: Uint8Array | undefined): string =>
  bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') : '';

function headerLists(headers: Record<string, string>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, [value]]));
}

/**
 * A callback is a message of its own (spec §11.7): signed, retried and
 * dead-lettered like any other, carrying the source attempt's outcome. When
 * the attempt got no HTTP response (timeout, refused), `status` is 0 and
 * `error` says why; Courier decides this where the spec is silent (A12).
 */
function callbackMessage(
  config: CallbackConfig,
  kind: 'callback' | 'failure_callback',
  claimed: ClaimedMessage,
  response: AttemptResponse,
  now: number,
  dlqId?: string,
): NewMessage {
  const source: MessageSpec = claimed.spec;
  const payload: Record<string, unknown> = {
    status: response.status ?? 0,
    header: canonicalHeaderLists(response.headers ?? {}),
    body: base64(response.body),
    retried: claimed.retried,
    maxRetries: source.maxRetries,
    sourceMessageId: source.messageId,
    url: source.url,
    method: source.method,
    sourceHeader: headerLists(source.headers),
    sourceBody: base64(source.body),
    notBefore: source.notBefore,
    createdAt: source.createdAt,
    callerIP: source.callerIp,
  };
  if (response.error !== undefined) payload.error = response.error;
  if (source.scheduleId) payload.scheduleId = source.scheduleId;
  if (source.topicName) payload.topicName = source.topicName;
  if (source.endpointName) payload.endpointName = source.endpointName;
  if (dlqId) payload.dlqId = dlqId;

  const spec: MessageSpec = {
    messageId: newMessageId(),
    kind,
    url: config.url,
    method: config.method,
    headers: { 'Content-Type': 'application/json', ...config.headers },
    body: Buffer.from(JSON.stringify(payload)),
    maxRetries: config.retries ?? source.maxRetries,
    labels: [],
    createdAt: now,
    notBefore: now + (config.delayMs ?? 0),
    callerIp: source.callerIp,
    sourceMessageId: source.messageId,
  };
  if (config.timeoutMs !== undefined) spec.timeoutMs = config.timeoutMs;
  if (config.retryDelayExpression !== undefined) spec.retryDelayExpression = config.retryDelayExpression;
  // The next message of a queue waits for this callback too (spec §3.2).
  return source.queueName === undefined ? { spec } : { spec, queueSlot: source.queueName };
}
