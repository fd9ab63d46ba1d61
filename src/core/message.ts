/**
 * The message: what a publish creates, what the store keeps and what delivery
 * sends.
 *
 * Lifecycle: its states are MESSAGE_STATES below; its legal transitions, the
 * store verb that makes each and the log events each appends are the table
 * MESSAGE_TRANSITIONS in core/lifecycle.ts, which the store contract suite
 * runs on every adapter.
 *
 * Glossary:
 * - attempt: one HTTP request to the destination. `retried` counts the failed
 *   attempts before this one and is sent as `Upstash-Retried`.
 * - lease: the right, for a bounded time, to run one attempt. Settling with a
 *   lease that is no longer held is refused (LEASE_LOST), so a message whose
 *   holder stalled past its lease is never settled twice.
 * - follow-up: a message created by the outcome of an attempt (a callback or
 *   failure callback). It is enqueued in the same atomic step as the outcome,
 *   so a crash cannot keep one without the other.
 */
import { GROUP_DESTINATION_PREFIX, parseGroupDestination } from './instance.js';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export const MESSAGE_STATES = ['waiting', 'pending', 'active', 'delivered', 'failed', 'canceled'] as const;
export type MessageState = (typeof MESSAGE_STATES)[number];

/** What a message exists for: its own delivery, or reporting on another's. */
export const MESSAGE_KINDS = ['message', 'callback', 'failure_callback'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

/** Header name (canonical, `Content-Type` style) → value, as delivered. */
export type HeaderMap = Record<string, string>;

/** Settings of a callback or failure callback, from `Upstash-(Failure-)Callback*` headers. */
export interface CallbackConfig {
  url: string;
  method: HttpMethod;
  /** Sent on the callback request (from `Upstash-Callback-Forward-*`). */
  headers: HeaderMap;
  retries?: number;
  timeoutMs?: number;
  retryDelayExpression?: string;
  delayMs?: number;
}

/**
 * Flow control (spec §11.9): limits shared by every message with the same key,
 * whatever its destination. The latest message's config updates the key's
 * limits unless they are pinned; an absent limit means unlimited.
 */
export interface FlowControlConfig {
  key: string;
  /** Attempts in flight at once. */
  parallelism?: number;
  /** Attempts started per period. */
  rate?: number;
  /** The rate window; 1 s when absent. */
  periodMs?: number;
}

/** Which parts of a message are shown as `REDACTED:…` in GET, logs and DLQ. Delivery is unaffected. */
export interface RedactSpec {
  body: boolean;
  allHeaders: boolean;
  /** Canonical header names. */
  headers: string[];
}

/** Everything about a message that is fixed when it is accepted. */
export interface MessageSpec {
  messageId: string;
  kind: MessageKind;
  url: string;
  method: HttpMethod;
  /** Delivered as-is: forwarded headers plus Content-Type. */
  headers: HeaderMap;
  body: Uint8Array;
  maxRetries: number;
  retryDelayExpression?: string;
  /** Per-attempt timeout as published; absent means the server default. */
  timeoutMs?: number;
  callback?: CallbackConfig;
  failureCallback?: CallbackConfig;
  labels: string[];
  redact?: RedactSpec;
  createdAt: number;
  /** When the first attempt is due. */
  notBefore: number;
  callerIp: string;
  /** For callbacks: the message whose attempt this reports on. */
  sourceMessageId?: string;
  /** The URL group (and its endpoint's name) this message was fanned out to. */
  topicName?: string;
  endpointName?: string;
  /** The queue the message waits in; it is admitted in order, within the queue's parallelism. */
  queueName?: string;
  flowControl?: FlowControlConfig;
  scheduleId?: string;
  /** How a schedule's message came about: its cron, or a trigger-now. */
  scheduleTrigger?: 'cron' | 'manual';
  routing?: RoutingHints;
  /**
   * The task stream this message reports on (`Upstash-Courier-Stream`): its
   * lifecycle is appended there as `status` events, and each delivery carries
   * the stream's id and a write token (streams/message-status.ts).
   */
  streamId?: string;
}

/** What an instance-group delivery asks of the instance it goes to (see gateway/balancer.ts). */
export interface RoutingHints {
  /** Prefer instances in this region (the group's region affinity). */
  region?: string;
  /** Only instances that declare this capability. */
  capability?: string;
}

/** A message to store, with the deduplication key that guards it, if any. */
export interface NewMessage {
  spec: MessageSpec;
  dedup?: { key: string; expiresAt: number };
  /**
   * A callback of a queued message takes over its source's slot in that
   * queue, so the next message waits for the callback too (spec §3.2).
   */
  queueSlot?: string;
}

/** A message still waiting or in flight, as `GET /v2/messages/{id}` shows it. */
export interface MessageRecord {
  spec: MessageSpec;
  state: 'pending' | 'active';
  retried: number;
  dueAt: number;
}

/** A message handed to delivery by `claimDue`. */
export interface ClaimedMessage {
  spec: MessageSpec;
  retried: number;
  leaseId: string;
}

/** What came back from one attempt. `status` is absent when no HTTP response arrived. */
export interface AttemptResponse {
  status?: number;
  headers?: Record<string, string[]>;
  body?: Uint8Array;
  error?: string;
  durationMs: number;
}

/** The log states of spec §9.2. `CANCELED` is the spelling we emit. */
export const LOG_STATES = [
  'CREATED',
  'ACTIVE',
  'DELIVERED',
  'ERROR',
  'RETRY',
  'FAILED',
  'CANCEL_REQUESTED',
  'CANCELED',
] as const;
export type LogState = (typeof LOG_STATES)[number];

/** One entry of the log, joined with the message it is about. */
export interface LogEvent {
  time: number;
  state: LogState;
  spec: MessageSpec;
  error?: string;
  nextDeliveryTime?: number;
  response?: AttemptResponse;
}

export interface DeadLetter {
  dlqId: string;
  createdAt: number;
  spec: MessageSpec;
  response: AttemptResponse;
}

export interface UrlParts {
  origin: string;
  host: string;
  path: string;
  /** What an HTTP request line carries: path and query. */
  target: string;
}

const UNPARSED: UrlParts = { origin: '', host: '', path: '', target: '' };
/** Bounds the cache below; destinations repeat, so it is cleared rarely. */
const PARSED_URLS_MAX = 4_096;
const parsedUrls = new Map<string, UrlParts>();

/**
 * The parts of a destination URL that filters, claims, per-origin limits and
 * the outgoing request key on. A message's URL is looked at several times on
 * its way (stored, claimed, sent), and WHATWG parsing is not cheap, so parses
 * are cached by URL text. Empty strings for a URL that does not parse (never
 * the case for one that passed publish validation).
 */
export function urlParts(url: string): UrlParts {
  let parts = parsedUrls.get(url);
  if (parts !== undefined) return parts;
  const group = parseGroupDestination(url);
  if (group) {
    // An instance group is one "origin": per-origin limits hold per group (each instance's own cap is the balancer's).
    parts = { origin: `${GROUP_DESTINATION_PREFIX}${group.group}`, host: group.group, path: group.path.split('?')[0]!, target: group.path };
  } else {
    if (!URL.canParse(url)) return UNPARSED;
    const parsed = new URL(url);
    parts = { origin: parsed.origin, host: parsed.hostname, path: parsed.pathname, target: `${parsed.pathname}${parsed.search}` };
  }
  if (parsedUrls.size >= PARSED_URLS_MAX) parsedUrls.clear();
  parsedUrls.set(url, parts);
  return parts;
}
