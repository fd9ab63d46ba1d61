/**
 * Publishing and the message-level operations behind /v2/publish, /v2/batch,
 * /v2/messages and /v2/events. Handlers call this; it calls the store.
 * Events (core/events.ts): `message.published` for each message stored (a
 * publish or a schedule's run, both through deliverStored), before delivery
 * is told of it; `message.canceled` for a cancel that affected any.
 */
import { parseGroupDestination } from '../core/instance.js';
import { createHash } from 'node:crypto';
import type { PublishOptions } from '../core/publish-options.js';
import type { Clock } from '../core/clock.js';
import type { CourierEvents, EventSink } from '../core/events.js';
import type { Limits } from '../core/config.js';
import { CourierError, invalid } from '../core/errors.js';
import { newMessageId } from '../core/ids.js';
import type { ClaimedMessage, LogEvent, MessageRecord, MessageSpec, NewMessage } from '../core/message.js';
import type { CancelSelection, EnqueueResult, EventQuery, Handoff, HistoryStore, MessageStore, Page, UrlGroupStore } from '../store/port.js';
import { EnqueueCoalescer } from './enqueue-coalescer.js';

/** Where a publish goes: one URL, or every endpoint of a URL group (spec §2.2). */
export type Destination = { url: string } | { group: string };

export interface PublishRequest {
  destination: Destination;
  /** Enqueue into this queue (spec §3) instead of delivering as soon as due. */
  queueName?: string;
  options: PublishOptions;
  body: Uint8Array;
  callerIp: string;
}

/** What one stored (or deduplicated) message answers with. */
export interface Published {
  messageId: string;
  url: string;
  deduplicated: boolean;
}

/** Per request: one message for a URL, an array (one per endpoint) for a URL group. */
export type PublishResult = Published | Published[];

/** Marks the messages of a schedule's run. */
export interface ScheduleOrigin {
  scheduleId: string;
  trigger: 'cron' | 'manual';
}

export interface MessageServiceDeps {
  store: Pick<MessageStore, 'enqueue' | 'getMessage' | 'cancel'> & Pick<HistoryStore, 'listEvents'> & Pick<UrlGroupStore, 'getUrlGroup'>;
  clock: Clock;
  events: EventSink;
  limits: Limits;
  delivery: {
    /** Tells delivery that work falls due at `dueAt`. */
    notifyDue(dueAt: number): void;
    /** Room for messages handed straight to delivery by the publish transaction. */
    handoffCapacity(): Handoff | undefined;
    deliver(claimed: readonly ClaimedMessage[]): void;
  };
  /** Whether an instance group is known (a `group:<name>/…` destination); the registry is in memory. */
  instanceGroupExists(name: string): boolean;
}

export class MessageService {
  private readonly coalescer: EnqueueCoalescer;

  constructor(private readonly deps: MessageServiceDeps) {
    this.coalescer = new EnqueueCoalescer(deps.store, () => deps.delivery.handoffCapacity());
  }

  /** Stores all of `requests` in one atomic step; results align with the input. */
  async publish(requests: PublishRequest[]): Promise<PublishResult[]> {
    const now = this.deps.clock.now();
    const perRequest = await Promise.all(requests.map((request) => this.messagesFor(request, now)));
    const messages = perRequest.flat();
    const results = await this.coalescer.enqueue(messages, () => this.deps.clock.now());
    this.deliverStored(messages, results);
    let next = 0;
    return requests.map((request, index): PublishResult => {
      const published = perRequest[index]!.map((message) => {
        const { messageId, deduplicated } = results[next++]!;
        return { messageId, url: message.spec.url, deduplicated };
      });
      return 'group' in request.destination ? published : published[0]!;
    });
  }

  /**
   * Hands messages stored already leased to delivery, and tells it when the
   * rest fall due. Called after any enqueue (a publish, a schedule's run).
   */
  deliverStored(messages: readonly NewMessage[], results: readonly EnqueueResult[]): void {
    const handedOff: ClaimedMessage[] = [];
    let earliest = Number.POSITIVE_INFINITY;
    const { events } = this.deps;
    // Announced before delivery hears of them, so a message's events start with its publish.
    const announce = events.hasListeners('message.published');
    const at = announce ? this.deps.clock.now() : 0;
    results.forEach((result, index) => {
      const { spec } = messages[index]!;
      if (announce && !result.deduplicated) {
        const published: CourierEvents['message.published'] = { messageId: result.messageId, url: spec.url, at };
        if (spec.queueName !== undefined) published.queueName = spec.queueName;
        if (spec.scheduleId !== undefined) published.scheduleId = spec.scheduleId;
        if (spec.streamId !== undefined) published.streamId = spec.streamId;
        events.emit('message.published', published);
      }
      if (result.leaseId) handedOff.push({ spec, retried: 0, leaseId: result.leaseId });
      else if (!result.deduplicated) earliest = Math.min(earliest, spec.notBefore);
    });
    if (handedOff.length > 0) this.deps.delivery.deliver(handedOff);
    if (earliest !== Number.POSITIVE_INFINITY) this.deps.delivery.notifyDue(earliest);
  }

  /**
   * The messages one request makes: one for a URL, one per endpoint for a URL
   * group (each independent: own id, retries, callbacks, DLQ entry).
   */
  async messagesFor(request: PublishRequest, now: number, schedule?: ScheduleOrigin): Promise<NewMessage[]> {
    const { destination } = request;
    if ('url' in destination) {
      const instanceGroup = parseGroupDestination(destination.url)?.group;
      if (instanceGroup !== undefined && !this.deps.instanceGroupExists(instanceGroup)) {
        throw new CourierError('INSTANCE_GROUP_NOT_FOUND', `instance group "${instanceGroup}" not found: no instance has registered into it`, 'destination');
      }
      return [this.newMessage(request, destination.url, now, schedule)];
    }
    // A stream reports on one message's lifecycle; a fan-out's messages would race to close it.
    if (request.options.streamId !== undefined) {
      throw invalid('Upstash-Courier-Stream', 'a URL group publish cannot be tied to a stream (each endpoint gets a message of its own): publish to each URL');
    }
    const group = await this.deps.store.getUrlGroup(destination.group);
    if (!group) throw new CourierError('URL_GROUP_NOT_FOUND', `URL group "${destination.group}" not found`, 'destination');
    return group.endpoints.map((endpoint) =>
      this.newMessage(request, endpoint.url, now, schedule, { topicName: group.name, endpointName: endpoint.name }),
    );
  }

  private newMessage(
    request: PublishRequest,
    url: string,
    now: number,
    schedule?: ScheduleOrigin,
    fanOut?: { topicName: string; endpointName: string | undefined },
  ): NewMessage {
    const { options } = request;
    const spec: MessageSpec = {
      messageId: newMessageId(),
      kind: 'message',
      url,
      method: options.method,
      headers: options.headers,
      body: request.body,
      maxRetries: options.retries ?? this.deps.limits.defaultRetries,
      labels: options.labels,
      createdAt: now,
      notBefore: options.notBefore ?? now + (options.delayMs ?? 0),
      callerIp: request.callerIp,
    };
    if (options.retryDelayExpression !== undefined) spec.retryDelayExpression = options.retryDelayExpression;
    if (options.timeoutMs !== undefined) spec.timeoutMs = options.timeoutMs;
    if (options.callback) spec.callback = options.callback;
    if (options.failureCallback) spec.failureCallback = options.failureCallback;
    if (options.redact) spec.redact = options.redact;
    if (options.flowControl) spec.flowControl = options.flowControl;
    if (options.routing) spec.routing = options.routing;
    if (options.streamId !== undefined) spec.streamId = options.streamId;
    if (request.queueName !== undefined) spec.queueName = request.queueName;
    if (fanOut) {
      spec.topicName = fanOut.topicName;
      if (fanOut.endpointName !== undefined) spec.endpointName = fanOut.endpointName;
    }
    if (schedule) {
      spec.scheduleId = schedule.scheduleId;
      spec.scheduleTrigger = schedule.trigger;
    }
    const key = dedupKey(url, request);
    return key ? { spec, dedup: { key, expiresAt: now + this.deps.limits.dedupWindowMs } } : { spec };
  }

  async get(messageId: string): Promise<MessageRecord> {
    const record = await this.deps.store.getMessage(messageId);
    if (!record) throw new CourierError('MESSAGE_NOT_FOUND', `message ${messageId} not found (unknown, or already delivered, failed or canceled)`);
    return record;
  }

  async cancelOne(messageId: string): Promise<number> {
    const cancelled = await this.cancelMany({ messageIds: [messageId] });
    if (cancelled === 0) throw new CourierError('MESSAGE_NOT_FOUND', `message ${messageId} not found (unknown, finished, or already being canceled)`);
    return cancelled;
  }

  async cancelMany(selection: CancelSelection): Promise<number> {
    const now = this.deps.clock.now();
    const cancelled = await this.deps.store.cancel(selection, now);
    if (cancelled > 0) {
      const canceled: CourierEvents['message.canceled'] = { count: cancelled, source: 'cancel', at: now };
      if ('messageIds' in selection) canceled.messageIds = selection.messageIds;
      this.deps.events.emit('message.canceled', canceled);
      // A canceled message may have held a queue slot: the next one in line can start now.
      this.deps.delivery.notifyDue(now);
    }
    return cancelled;
  }

  logs(query: EventQuery): Promise<Page<LogEvent>> {
    return this.deps.store.listEvents(query);
  }
}

/**
 * Dedup is scoped to the destination (spec §2.5). Content-based dedup hashes
 * what the destination would receive: URL, method, body, Content-Type and the
 * forwarded headers (the documented reading of A8), not Courier's own config.
 */
function dedupKey(url: string, request: PublishRequest): string | undefined {
  const { options } = request;
  if (options.deduplicationId !== undefined) return `id\n${url}\n${options.deduplicationId}`;
  if (!options.contentBasedDeduplication) return undefined;
  const hash = createHash('sha256').update(url).update('\n').update(options.method).update('\n');
  for (const name of Object.keys(options.headers).sort()) hash.update(`${name}: ${options.headers[name]}\n`);
  hash.update(request.body);
  return `content\n${url}\n${hash.digest('hex')}`;
}
