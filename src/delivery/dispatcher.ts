/**
 * The delivery loop: claim due messages → send → settle.
 *
 * - Bounded: at most `maxInFlight` messages are claimed and not yet settled,
 *   whatever the backlog; the store hands them out a batch at a time.
 * - Fair to origins: an origin with `connectionsPerOrigin` attempts in flight
 *   is left out of claims until one finishes, so a hanging destination holds
 *   at most that many slots and never stalls the others.
 * - Woken, not polling: a publish calls `wake()`; a future due time arms one
 *   timer for exactly then. A slow safety poll covers what no wake reports.
 * - Batched: claims take many messages per transaction, and the outcomes that
 *   finish in the same tick are settled in one transaction.
 *
 * HAZARD: a message is settled only under the lease it was claimed with. If
 * the event loop stalls longer than a lease, another claim may take the
 * message and this node's settlement is refused (leaseLost): the message is
 * then delivered twice, which at-least-once allows and `Upstash-Message-Id`
 * lets receivers detect.
 *
 * Events (core/events.ts): `attempt.started` as an attempt begins, and once
 * its settlement is stored, `attempt.finished` then the message's own
 * (`message.delivered`, `.retried`, `.dead-lettered` or `.canceled`). The
 * per-delivery log lines are written by delivery-log.ts from them; this
 * loop logs only its own failures (store errors).
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { AttemptOutcome, CourierEvents, EventSink } from '../core/events.js';
import type { AttemptResponse, ClaimedMessage, MessageSpec } from '../core/message.js';
import { urlParts } from '../core/message.js';
import type { Handoff, Lease, MessageStore, SettleResult, Settlement } from '../store/port.js';
import { buildRequest, settlementFor } from './attempt.js';
import type { DeliveryClient } from './http-client.js';

export interface DispatcherOptions {
  maxInFlight: number;
  connectionsPerOrigin: number;
  leaseMs: number;
  defaultTimeoutMs: number;
}

export interface DispatcherDeps {
  store: Pick<MessageStore, 'claimDue' | 'extendLeases' | 'nextDueAt' | 'settle'>;
  client: DeliveryClient;
  clock: Clock;
  /** For the loop's own failures; the per-delivery lines come from `events` (delivery-log.ts). */
  logger: Logger;
  events: EventSink;
  /** The key that signs deliveries now; read per attempt so a rotation applies at once. */
  currentSigningKey: () => string;
  options: DispatcherOptions;
  /** Where each attempt goes when that is decided per attempt (instance groups); by default, the message's URL. */
  router?: DeliveryRouter;
  /**
   * The headers an attempt of a message tied to a task stream carries
   * (`Courier-Stream-Id`, `-Token`, `-Seq`: streams/message-status.ts).
   * Called only for such messages, after `attempt.started`; it must resolve
   * (never reject) and stay bounded in time, since the request waits for it.
   */
  streamHeaders?: (claimed: ClaimedMessage, timeoutMs: number, now: number) => Promise<Record<string, string>>;
}

/**
 * Picks an attempt's target: a URL (with extra headers, and a callback told
 * the outcome), or a response that fails the attempt without sending it.
 */
export interface DeliveryRouter {
  route(spec: MessageSpec): { url: string; headers?: Record<string, string>; done?: (response: AttemptResponse) => void } | { failed: AttemptResponse };
}

/** One claim takes at most this many: large enough to amortise a transaction, small enough to start sending soon. */
const CLAIM_BATCH = 256;
/** Catches work no wake reported (another writer, a clock jump). Cheap: one indexed min() query. */
const SAFETY_POLL_MS = 2_000;
/** After a store error the loop waits this long before trying again, instead of spinning. */
const STORE_ERROR_BACKOFF_MS = 500;

export class Dispatcher {
  private readonly inFlight = new Map<string, { leaseId: string; origin: string }>();
  private readonly inFlightByOrigin = new Map<string, number>();
  private readonly settleQueue: { settlement: Settlement; claimed: ClaimedMessage }[] = [];
  private pumping = false;
  private pumpRequested = false;
  /** Ask the store when work next falls due at the end of the next pump (see pump()). */
  private lookAheadWanted = true;
  private settleScheduled = false;
  /**
   * The last pump stopped short of what is due: at the in-flight cap, or
   * with saturated origins left out. Only then can a settle's freed room
   * make stored work claimable; otherwise a claim after every settle would
   * cost a store round trip per batch and find nothing.
   */
  private heldBack = false;
  private settling: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private leaseTimer: NodeJS.Timeout | undefined;
  private running = false;
  /** Set once stop() has flushed; later outcomes are dropped. */
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly deps: DispatcherDeps) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    const renewEvery = Math.max(50, Math.floor(this.deps.options.leaseMs / 3));
    this.leaseTimer = setInterval(() => void this.renewLeases(), renewEvery);
    this.wake();
  }

  /** Stops claiming, waits up to `graceMs` for attempts in flight, and settles what finished. */
  async stop(graceMs = 10_000): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    clearInterval(this.leaseTimer);
    if (this.inFlight.size > 0) {
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise((resolve) => setTimeout(resolve, graceMs).unref()),
      ]);
    }
    await this.flushSettlements();
    this.stopped = true;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * How many messages due now a publish may store already leased and hand
   * straight to deliver(), skipping a claim. Undefined when there is no room.
   */
  handoffCapacity(): Handoff | undefined {
    const free = this.deps.options.maxInFlight - this.inFlight.size;
    if (!this.running || free <= 0) return undefined;
    return { limit: free, leaseMs: this.deps.options.leaseMs, excludeOrigins: this.saturatedOrigins() };
  }

  /** Starts attempts for messages a publish stored under a lease (see handoffCapacity). */
  deliver(claimed: readonly ClaimedMessage[]): void {
    // Even after stop() the leases are safe: they run out (or are released when the store reopens).
    if (!this.running) return;
    for (const message of claimed) this.startAttempt(message);
  }

  /**
   * New work may be due at `dueAt` (default: now). A wake during a pump only
   * asks for one more round, so the wakes of a whole batch of publishes or
   * settlements make one claim.
   */
  wake(dueAt?: number): void {
    if (!this.running) return;
    if (dueAt !== undefined && dueAt > this.deps.clock.now()) {
      this.armTimer(dueAt);
      return;
    }
    void this.pump();
  }

  private armTimer(at: number): void {
    if (!this.running || at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    const delay = Math.max(0, at - this.deps.clock.now());
    this.timer = setTimeout(() => {
      this.timerAt = Number.POSITIVE_INFINITY;
      this.lookAheadWanted = true;
      void this.pump();
    }, delay);
  }

  private saturatedOrigins(): string[] {
    const saturated: string[] = [];
    for (const [origin, count] of this.inFlightByOrigin) {
      if (count >= this.deps.options.connectionsPerOrigin) saturated.push(origin);
    }
    return saturated;
  }

  private async pump(): Promise<void> {
    if (this.pumping) {
      this.pumpRequested = true;
      return;
    }
    this.pumping = true;
    const { store, clock, logger, options } = this.deps;
    // The look-ahead asks from the last claim's time, not a later one: work falling due in between
    // would be neither claimed nor reported (nextDueAt reports only times after the one given).
    let claimedAt = clock.now();
    try {
      do {
        this.pumpRequested = false;
        this.heldBack = true;
        while (this.running && this.inFlight.size < options.maxInFlight) {
          const limit = Math.min(CLAIM_BATCH, options.maxInFlight - this.inFlight.size);
          const excludeOrigins = this.saturatedOrigins();
          claimedAt = clock.now();
          const claimed = await store.claimDue({ now: claimedAt, limit, leaseMs: options.leaseMs, excludeOrigins });
          for (const message of claimed) this.startAttempt(message);
          if (claimed.length < limit) {
            this.heldBack = excludeOrigins.length > 0;
            break;
          }
        }
      } while (this.pumpRequested && this.running);
      // Every due time this process creates reaches wake(dueAt), so asking the store
      // is only needed on start, on a timer (the safety poll) and after an error:
      // doing it after every wake would add a query per message.
      if (this.running && this.lookAheadWanted) {
        this.lookAheadWanted = false;
        // Work already due but not claimed is held by a cap, and the settle that frees it wakes us.
        const next = await store.nextDueAt(claimedAt);
        if (next !== undefined) this.armTimer(next);
      }
      if (this.running) this.armTimer(clock.now() + SAFETY_POLL_MS);
    } catch (error) {
      this.lookAheadWanted = true;
      logger.error({ err: error }, 'delivery loop: store error; retrying shortly');
      this.armTimer(clock.now() + STORE_ERROR_BACKOFF_MS);
    } finally {
      this.pumping = false;
      // A wake that arrived while we awaited the store after the loop's last check would otherwise be lost.
      if (this.pumpRequested) this.wake();
    }
  }

  private startAttempt(claimed: ClaimedMessage): void {
    const { spec } = claimed;
    const { origin } = urlParts(spec.url);
    this.inFlight.set(spec.messageId, { leaseId: claimed.leaseId, origin });
    this.inFlightByOrigin.set(origin, (this.inFlightByOrigin.get(origin) ?? 0) + 1);
    void this.attempt(claimed);
  }

  private async attempt(claimed: ClaimedMessage): Promise<void> {
    const { client, clock, currentSigningKey, options, router, events } = this.deps;
    // Guarded: without a listener, no payload is built for every attempt.
    const { streamId } = claimed.spec;
    if (events.hasListeners('attempt.started')) {
      const started: CourierEvents['attempt.started'] = { messageId: claimed.spec.messageId, url: claimed.spec.url, retried: claimed.retried, at: clock.now() };
      if (streamId !== undefined) started.streamId = streamId;
      events.emit('attempt.started', started);
    }
    const target = router ? router.route(claimed.spec) : { url: claimed.spec.url };
    let response: AttemptResponse;
    if ('failed' in target) {
      response = target.failed;
    } else {
      // Only a message tied to a stream waits here (for its `running` status and its token); others go at once.
      const streamHeaders =
        streamId !== undefined && this.deps.streamHeaders
          ? await this.deps.streamHeaders(claimed, claimed.spec.timeoutMs ?? options.defaultTimeoutMs, clock.now()).catch((error: unknown) => {
              // Contractually never: a rejection here would leave the message leased with no attempt.
              this.deps.logger.error({ err: error, messageId: claimed.spec.messageId }, 'stream headers failed; delivering without them');
              return undefined;
            })
          : undefined;
      const extraHeaders = streamHeaders ? { ...target.headers, ...streamHeaders } : target.headers;
      const request = buildRequest(claimed, {
        signingKey: currentSigningKey(),
        now: clock.now(),
        defaultTimeoutMs: options.defaultTimeoutMs,
        url: target.url,
        ...(extraHeaders ? { extraHeaders } : {}),
      });
      // client.send never rejects: network failures come back as a response with `error`.
      response = await client.send(request);
      target.done?.(response);
    }
    // After stop() gave up waiting, the store may be closing: leave the message leased, to be redelivered.
    if (this.stopped) return;
    this.settleQueue.push({ settlement: settlementFor(claimed, response, clock.now()), claimed });
    this.scheduleSettle();
  }

  private scheduleSettle(): void {
    if (this.settleScheduled) return;
    this.settleScheduled = true;
    setImmediate(() => {
      this.settleScheduled = false;
      void this.flushSettlements();
    });
  }

  /** Settlements are applied one batch at a time, in order. */
  private flushSettlements(): Promise<void> {
    this.settling = this.settling.then(() => this.settleBatch());
    return this.settling;
  }

  private async settleBatch(): Promise<void> {
    if (this.settleQueue.length === 0) return;
    const batch = this.settleQueue.splice(0, this.settleQueue.length);
    const { store, logger } = this.deps;
    let results: SettleResult[];
    try {
      results = await store.settle(batch.map((item) => item.settlement));
    } catch (error) {
      // The messages stay leased in the store; when their leases run out they are claimed again.
      logger.error({ err: error, messages: batch.length }, 'settle failed; messages will be redelivered after their lease');
      results = batch.map(() => 'leaseLost');
    }
    let earliestRetry = Number.POSITIVE_INFINITY;
    let freesSlot = false;
    batch.forEach(({ settlement, claimed }, index) => {
      this.release(claimed.spec.messageId);
      this.announce(settlement, claimed, results[index] ?? 'leaseLost');
      if (settlement.kind === 'retry') earliestRetry = Math.min(earliestRetry, settlement.nextAt);
      if (settlement.followUps.length > 0) earliestRetry = Math.min(earliestRetry, ...settlement.followUps.map((f) => f.spec.notBefore));
      // A finished attempt of a queued or flow-controlled message may let the next one start; so may a
      // callback's, which holds its source's queue slot (the spec does not say which queue: any callback counts).
      const { spec } = claimed;
      if (spec.queueName !== undefined || spec.flowControl !== undefined || spec.kind !== 'message') freesSlot = true;
    });
    if (earliestRetry !== Number.POSITIVE_INFINITY) this.wake(earliestRetry);
    if (this.heldBack || freesSlot) this.wake();
    if (this.inFlight.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private release(messageId: string): void {
    const entry = this.inFlight.get(messageId);
    if (!entry) return;
    this.inFlight.delete(messageId);
    const count = (this.inFlightByOrigin.get(entry.origin) ?? 1) - 1;
    if (count <= 0) this.inFlightByOrigin.delete(entry.origin);
    else this.inFlightByOrigin.set(entry.origin, count);
  }

  /**
   * The events of one settled attempt: what the attempt did, then what became
   * of its message. Each payload is built only when the event has a listener.
   */
  private announce(settlement: Settlement, claimed: ClaimedMessage, result: SettleResult): void {
    const { events } = this.deps;
    const { response, at } = settlement;
    const { messageId, url, streamId } = claimed.spec;
    const { retried } = claimed;
    const stream = streamId === undefined ? {} : { streamId };
    const outcome: AttemptOutcome = result !== 'settled' ? result : settlement.kind === 'ack' ? 'delivered' : settlement.kind;
    const { status, error } = response;
    if (events.hasListeners('attempt.finished')) {
      const finished: CourierEvents['attempt.finished'] = { messageId, url, retried, durationMs: response.durationMs, outcome, at };
      if (status !== undefined) finished.status = status;
      if (error !== undefined) finished.error = error;
      if (outcome === 'retry' && settlement.kind === 'retry') finished.nextDeliveryAt = settlement.nextAt;
      events.emit('attempt.finished', finished);
    }
    switch (outcome) {
      case 'delivered':
        if (events.hasListeners('message.delivered')) events.emit('message.delivered', { messageId, url, retried, status: status ?? 200, ...stream, at });
        break;
      case 'retry':
        if (settlement.kind === 'retry' && events.hasListeners('message.retried')) {
          events.emit('message.retried', { messageId, url, retried, ...failure(status, error), nextDeliveryAt: settlement.nextAt, ...stream, at });
        }
        break;
      case 'deadLetter':
        if (settlement.kind === 'deadLetter' && events.hasListeners('message.dead-lettered')) {
          events.emit('message.dead-lettered', { messageId, url, retried, dlqId: settlement.dlqId, ...failure(status, error), ...stream, at });
        }
        break;
      case 'canceled':
        if (events.hasListeners('message.canceled')) events.emit('message.canceled', { messageIds: [messageId], count: 1, source: 'attempt', ...stream, at });
        break;
      case 'leaseLost':
        // Another claim holds the message now: its own attempt will say what became of it.
        break;
    }
  }

  private async renewLeases(): Promise<void> {
    if (this.inFlight.size === 0) return;
    const leases: Lease[] = [...this.inFlight].map(([messageId, { leaseId }]) => ({ messageId, leaseId }));
    try {
      await this.deps.store.extendLeases(leases, this.deps.clock.now() + this.deps.options.leaseMs);
    } catch (error) {
      this.deps.logger.error({ err: error, leases: leases.length }, 'lease renewal failed');
    }
  }
}

/** The optional fields of a failed attempt, without keys for what is absent. */
function failure(status: number | undefined, error: string | undefined): { status?: number; error?: string } {
  const fields: { status?: number; error?: string } = {};
  if (status !== undefined) fields.status = status;
  if (error !== undefined) fields.error = error;
  return fields;
}
