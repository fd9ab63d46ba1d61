/**
 * The store port: the atomic verbs the engine needs, in the engine's words.
 *
 * Every verb is one atomic transition (all of it happens or none of it does),
 * and every verb that changes a message also appends the log events that
 * describe the change, in the same transition, so the log never disagrees
 * with the state. No SQL, key layout or engine name leaks through here: an
 * adapter (sqlite/, postgres/, redis/) is chosen only by the two composition
 * roots (server.ts, gateway-server.ts), through open-store.ts.
 *
 * Times are epoch milliseconds, passed in by the caller (the store never reads
 * a clock), so tests can step time and nodes agree on one notion of "now".
 */
import type {
  AttemptResponse,
  ClaimedMessage,
  DeadLetter,
  LogEvent,
  MessageRecord,
  NewMessage,
} from '../core/message.js';
export type { CancelSelection, DeadLetterFilter, DeadLetterSelection, EventQuery, MessageFilter, Page } from '../core/queries.js';
import type { CancelSelection, DeadLetterSelection, EventQuery, Page } from '../core/queries.js';
import type { FlowControlChange, FlowControlState } from '../core/flow-control.js';
import type { QueueRecord, QueueSettings } from '../core/queue.js';
import type { ScheduleDefinition, ScheduleRecord, ScheduleRun } from '../core/schedule.js';
import type { Endpoint, EndpointSelector, UrlGroup } from '../core/url-group.js';
import type { NewStreamEvent, StreamEvent, StreamRecord, StreamState } from '../core/stream.js';
import type { InstanceGroupRecord, InstanceGroupSettings, InstanceHealth, InstanceRecord, InstanceRegistration } from '../core/instance.js';

/** What an engine can do natively; the core falls back where a flag is false. */
export interface StoreCapabilities {
  /**
   * Only one process can hold the store open (embedded SQLite). Such a store
   * releases every lease when it opens, so a message in flight when the
   * previous process died is redelivered at once instead of after its lease.
   */
  exclusive: boolean;
  /**
   * The store tells other nodes about new work (PostgreSQL LISTEN/NOTIFY,
   * Redis pub/sub). Without it, a node learns of work published through
   * another node by polling. A single-node store needs neither.
   */
  pushNotify: boolean;
}

export interface Credentials {
  token: string;
  currentSigningKey: string;
  nextSigningKey: string;
}

export interface SigningKeys {
  current: string;
  next: string;
}

export interface EnqueueResult {
  messageId: string;
  /** True when the dedup key was already held: `messageId` is then the first message's. */
  deduplicated: boolean;
  /** Set when the message was handed off: stored already active under this lease (see Handoff). */
  leaseId?: string;
}

/**
 * Lets `enqueue` store messages that are due at once directly as active under
 * a lease (with their ACTIVE event), so the caller can deliver them from
 * memory without a claim round trip. Up to `limit` messages are handed off,
 * in input order; deduplicated ones and those whose origin is excluded never are.
 */
export interface Handoff {
  limit: number;
  leaseMs: number;
  excludeOrigins?: readonly string[];
}

export interface ClaimRequest {
  now: number;
  limit: number;
  /** The lease lasts until now + leaseMs unless extended. */
  leaseMs: number;
  /** Origins (`scheme://host:port`) whose messages must not be claimed now, e.g. saturated ones. */
  excludeOrigins?: readonly string[];
}

export interface Lease {
  messageId: string;
  leaseId: string;
}

/**
 * The outcome of one attempt. The kinds name the transitions of the message
 * lifecycle (core/message.ts): ack → delivered, retry → pending again,
 * deadLetter → failed with a DLQ entry.
 */
export type Settlement = Lease & {
  at: number;
  response: AttemptResponse;
  /** Callbacks created by this attempt, enqueued atomically with it. */
  followUps: NewMessage[];
} & (
    | { kind: 'ack' }
    | { kind: 'retry'; nextAt: number }
    | {
        kind: 'deadLetter';
        dlqId: string;
        /** Why the message gave up: the FAILED event's error. Delivery decides it; the store only records it. */
        failure: string;
      }
  );

/**
 * - settled: the transition happened as asked.
 * - canceled: a retry of a message whose cancel was requested mid-attempt; it is now canceled.
 * - leaseLost: the lease was not held any more (expired and taken, or the message is gone); nothing changed.
 */
export type SettleResult = 'settled' | 'canceled' | 'leaseLost';

/**
 * One firing of a schedule. With `expectedNextAt` it is a cron tick and
 * happens only if the schedule is unpaused and its next tick is still that
 * time (so among nodes sharing a store exactly one fires it); the next tick
 * becomes `nextAt`. Without it, it is a trigger-now and the next tick stays.
 */
export interface ScheduleFiring {
  scheduleId: string;
  expectedNextAt?: number;
  nextAt?: number;
  messages: NewMessage[];
  /** Why nothing is published this time; recorded as the schedule's last error. */
  error?: string;
}

export type EndpointRemoval = { removed: number; groupDeleted: boolean } | { notFound: EndpointSelector };

export interface StoreStats {
  /** Messages waiting (due or not), not counting those in flight. */
  pending: number;
  /** Messages whose attempt is in flight. */
  active: number;
  deadLetters: number;
}

export interface PurgeRequest {
  /** Finished messages and their log events older than this are removed (unless still in the DLQ). */
  logsBefore: number;
  deadLettersBefore: number;
  /** Dedup keys whose window ended, and work-key claims that expired, before this are forgotten. */
  dedupBefore: number;
}

/**
 * The port is split by area: each adapter implements every area in its own
 * module, and `Store` is their intersection. A service depends on the areas
 * (or the `Pick` of verbs) it uses, so a new capability is a new area
 * interface here, one module per adapter and one contract file.
 */

/** What any store does whatever else it holds: its capabilities, counts, retention, reachability. */
export interface MaintenanceStore {
  readonly capabilities: StoreCapabilities;
  stats(): Promise<StoreStats>;
  purge(request: PurgeRequest): Promise<{ messages: number; events: number; deadLetters: number }>;
  /** Throws when the store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The API token and the signing keys, one pair per deployment. */
export interface CredentialStore {
  /** Stores `proposed` unless credentials exist; returns the ones in force. */
  ensureCredentials(proposed: Credentials): Promise<Credentials>;
  /** current ← next, next ← `freshNext`, atomically. Returns the new pair. */
  rotateSigningKeys(freshNext: string): Promise<SigningKeys>;
}

/** Messages on their way: accepted, leased, settled, canceled. */
export interface MessageStore {
  /**
   * Stores messages as pending (due at `spec.notBefore`), or waiting if they
   * name a queue (created if unknown), with a CREATED event each, in one
   * transition. A flow-control key takes the message's limits unless pinned.
   * A message whose dedup key is held by a live key is not stored; its result
   * names the holder. Results align with the input. With `handoff`, messages
   * due by `at`, in no queue and with no flow-control key, may be stored
   * active instead (Handoff).
   */
  enqueue(messages: NewMessage[], at: number, handoff?: Handoff): Promise<EnqueueResult[]>;

  /** A pending or active message; undefined once it is finished or unknown. */
  getMessage(messageId: string): Promise<MessageRecord | undefined>;

  /**
   * Admits waiting messages into queues with free slots (FIFO), then leases
   * up to `limit` due messages (pending with dueAt ≤ now and within their
   * flow-control key's limits, or active with an expired lease), oldest due
   * first, appending an ACTIVE event each and counting flow-control attempts.
   */
  claimDue(request: ClaimRequest): Promise<ClaimedMessage[]>;

  /** Pushes the leases still held out to `until`; leases no longer held are ignored. */
  extendLeases(leases: Lease[], until: number): Promise<void>;

  /**
   * The earliest time after `now` at which claimDue may find work it cannot
   * find at `now`: a pending message falling due, a lease running out, a
   * queued message's delay ending, a flow-control rate window reopening.
   * Work already due but held by a full queue or key is not reported: the
   * settle that frees the slot wakes delivery. Lets delivery sleep exactly.
   */
  nextDueAt(now: number): Promise<number | undefined>;

  /**
   * Applies attempt outcomes, each atomically with its events (DELIVERED;
   * ERROR + RETRY; ERROR + FAILED; or ERROR + CANCELED) and its follow-ups.
   * Results align with the input.
   */
  settle(batch: Settlement[]): Promise<SettleResult[]>;

  /**
   * Cancels pending messages (CANCEL_REQUESTED + CANCELED) and flags active
   * ones (CANCEL_REQUESTED; their attempt's outcome decides). Returns how
   * many messages were affected.
   */
  cancel(selection: CancelSelection, at: number): Promise<number>;

  /**
   * Calls `onWork` when any node changes what may be claimable (an enqueue, a
   * settle, a cancel, a queue or flow-control change, a schedule's run), with
   * the earliest due time it knows of. Stores without `pushNotify` have
   * nothing to tell (one process sees all its own writes) and never call it.
   * Resolves once listening; the returned function stops it.
   */
  watchWork(onWork: (dueAt: number) => void): Promise<() => Promise<void>>;
}

/** What happened: the log of events, and the dead-letter queue. */
export interface HistoryStore {
  /** Log events, newest first. */
  listEvents(query: EventQuery): Promise<Page<LogEvent>>;

  /** DLQ entries, oldest first. */
  listDeadLetters(selection: DeadLetterSelection): Promise<Page<DeadLetter>>;
  getDeadLetter(dlqId: string): Promise<DeadLetter | undefined>;
  /** Removes the selected entries; returns how many, and a cursor while more may match. */
  deleteDeadLetters(selection: DeadLetterSelection): Promise<{ deleted: number; cursor?: string }>;
  /**
   * For each item, atomically: if its DLQ entry still exists, remove it and
   * enqueue the new message. Results align with the input; undefined where the
   * entry was already gone.
   */
  replayDeadLetters(
    items: { dlqId: string; message: NewMessage }[],
    at: number,
  ): Promise<(EnqueueResult | undefined)[]>;
}

/** Queues (spec §3). Enqueueing into an unknown queue creates it with parallelism 1. */
export interface QueueStore {
  upsertQueue(settings: QueueSettings, at: number): Promise<void>;
  getQueue(name: string): Promise<QueueRecord | undefined>;
  listQueues(): Promise<QueueRecord[]>;
  setQueuePaused(name: string, paused: boolean, at: number): Promise<boolean>;
  /**
   * Removes the queue and cancels (with events) its messages still waiting;
   * messages already admitted finish their attempts. False if unknown.
   */
  deleteQueue(name: string, at: number): Promise<boolean>;
}

/** Flow control (spec §11.9). Keys are created by the first message that names them. */
export interface FlowControlStore {
  getFlowControl(key: string, now: number): Promise<FlowControlState | undefined>;
  listFlowControls(now: number): Promise<FlowControlState[]>;
  /** False if the key is unknown. */
  changeFlowControl(key: string, change: FlowControlChange, at: number): Promise<boolean>;
}

/** URL groups (spec §8). */
export interface UrlGroupStore {
  /** Creates the group if needed; an endpoint replaces the one with its name (or, unnamed, its URL). */
  addEndpoints(group: string, endpoints: Endpoint[], at: number): Promise<void>;
  /**
   * Removes endpoints matching every field given; a group left empty is
   * deleted. All or nothing: if an item matches none, nothing changes.
   */
  removeEndpoints(group: string, endpoints: EndpointSelector[], at: number): Promise<EndpointRemoval | undefined>;
  getUrlGroup(name: string): Promise<UrlGroup | undefined>;
  listUrlGroups(): Promise<UrlGroup[]>;
  deleteUrlGroup(name: string): Promise<boolean>;
}

/** Schedules (spec §7). */
export interface ScheduleStore {
  /** Creates or wholly replaces a schedule, keeping its creation time and paused state. */
  saveSchedule(definition: ScheduleDefinition, nextAt: number | undefined, at: number): Promise<void>;
  getSchedule(scheduleId: string): Promise<ScheduleRecord | undefined>;
  listSchedules(): Promise<ScheduleRecord[]>;
  /** Schedules whose names target this URL group. */
  schedulesTargeting(group: string): Promise<string[]>;
  deleteSchedule(scheduleId: string): Promise<boolean>;
  /** Pausing clears the next tick; resuming sets it to `nextAt`. False if unknown. */
  setSchedulePaused(scheduleId: string, paused: boolean, nextAt: number | undefined, at: number): Promise<boolean>;
  /** Unpaused schedules whose next tick is at or before `now`, earliest first. */
  dueSchedules(now: number, limit: number): Promise<ScheduleRecord[]>;
  /** The earliest next tick of any unpaused schedule. */
  nextScheduleAt(): Promise<number | undefined>;
  /**
   * Records each firing and enqueues its messages, each atomically (see
   * ScheduleFiring), all in one round trip. Results align with the input:
   * undefined where the firing did not happen (the schedule is gone, or the
   * tick was fired, paused or rescheduled meanwhile).
   */
  fireSchedules(firings: ScheduleFiring[], at: number): Promise<(EnqueueResult[] | undefined)[]>;
  /** The schedule's messages, newest first, with how each ended. */
  listScheduleRuns(scheduleId: string, count: number): Promise<ScheduleRun[]>;
}

/** Instance groups and their instances (the gateway). */
export interface InstanceStore {
  /**
   * A heartbeat: creates the instance (registeredAt = lastHeartbeat = at,
   * health { ejections: 0, readmittedAt: at }) or replaces its registration
   * fields and sets lastHeartbeat = at, keeping registeredAt and health. An
   * unknown group is created with `groupDefaults`. Returns the stored record.
   */
  heartbeatInstance(registration: InstanceRegistration, groupDefaults: InstanceGroupSettings, at: number): Promise<InstanceRecord>;
  /** False if the instance is unknown. */
  deregisterInstance(group: string, id: string): Promise<boolean>;
  /** One group's instances, or every group's; ordered by group, then id. */
  listInstances(group?: string): Promise<InstanceRecord[]>;
  /** Replaces the instance's health (a transition the gateway decided). False if the instance is unknown. */
  setInstanceHealth(group: string, id: string, health: InstanceHealth): Promise<boolean>;
  /** Creates or replaces a group's settings, keeping createdAt (updatedAt moves forward, see replaceInstanceGroup). */
  saveInstanceGroup(settings: InstanceGroupSettings, at: number): Promise<InstanceGroupRecord>;
  /**
   * A compare-and-set of a group's settings, for read-modify-write: replaces
   * them with `next` (keeping createdAt) only if the group's updatedAt is
   * still `expectedUpdatedAt`, or, with it undefined, only if the group does
   * not exist yet. Undefined when another writer got there first: read again
   * and retry. Every write of a group's settings moves its updatedAt forward
   * (to `at`, or 1 ms past the last write if the clocks disagree), so an
   * unchanged updatedAt means unchanged settings.
   */
  replaceInstanceGroup(
    expectedUpdatedAt: number | undefined,
    next: InstanceGroupSettings,
    at: number,
  ): Promise<InstanceGroupRecord | undefined>;
  getInstanceGroup(name: string): Promise<InstanceGroupRecord | undefined>;
  listInstanceGroups(): Promise<InstanceGroupRecord[]>;
  /** Deletes the group and its instances. False if unknown. */
  deleteInstanceGroup(name: string): Promise<boolean>;
}

/** Work keys: the claims by which the instances of a group run each message once. */
export interface WorkKeyStore {
  /**
   * A claim on `key` within `scope` (an instance group), held
   * until `expiresAt`, so the instances of a group run each message once
   * (the worker kit de-duplicates by Upstash-Message-Id with them). True
   * when the key was free, or its claim had expired (at ≥ its expiresAt),
   * and is now held until `expiresAt`; false while another claim holds it.
   * Among concurrent claims of one key, on any node, exactly one is true.
   * Scopes are independent; a key outlives its group. `purge` forgets
   * claims that expired before `dedupBefore`.
   */
  claimWorkKey(scope: string, key: string, expiresAt: number, at: number): Promise<boolean>;
  /** Forgets the key's claim, expired or not. False if none is stored (never claimed, released or purged). */
  releaseWorkKey(scope: string, key: string): Promise<boolean>;
}


/**
 * One batch of events for a stream, appended atomically: all of it or none.
 * The first append creates the stream (tied to `messageId` when given).
 */
export interface StreamAppend {
  streamId: string;
  events: NewStreamEvent[];
  at: number;
  /**
   * `writer`: the API or a worker. `courier`: the message lifecycle's own
   * status events, which may still be written after a tied stream's writer
   * closed it, and whose `closes` closes it for good.
   */
  author: 'writer' | 'courier';
  /**
   * The state the batch's last event moves the stream to (`end` → ended,
   * `error` → failed), decided by the domain. A stream tied to a message
   * that a writer closes only becomes `writerClosed`; Courier's final status
   * then closes it.
   */
  closes?: Exclude<StreamState, 'open'>;
  /** Ties a stream this append creates to a message. */
  messageId?: string;
  /** Events a stream may hold; an append that would pass it changes nothing. */
  maxEvents: number;
}

/**
 * Writer seqs: an event whose `seq` is at or below the stream's last seq is
 * skipped; one equal to the next seq is stored under it; one past it is a
 * gap. Events without `seq` take the next seq. A batch whose events are all
 * skipped is `appended` with no events whatever the stream's state, so a
 * writer resending its final `end` after a crash is answered as a success.
 *
 * - appended: `events` are those stored now, with their seqs (events whose
 *   writer seq was already stored are skipped, so they may be fewer).
 * - closed: the stream is closed, or closed to writers; nothing changed.
 * - gap: an event's writer seq is past the next one; `expectedSeq` is the next.
 * - full: the append would pass `maxEvents`; nothing changed.
 */
export type StreamAppendResult =
  | { kind: 'appended'; stream: StreamRecord; events: StreamEvent[] }
  | { kind: 'closed'; stream: StreamRecord }
  | { kind: 'gap'; expectedSeq: number }
  | { kind: 'full'; stream: StreamRecord };

export interface StreamQuery {
  state?: StreamState;
  cursor?: string;
  count: number;
}

/** Task streams: per-stream append-only event logs with store-wide sequence numbers. */
export interface StreamStore {
  appendStreamEvents(append: StreamAppend): Promise<StreamAppendResult>;
  getStream(streamId: string): Promise<StreamRecord | undefined>;
  /** Streams by id, in id order; `state` narrows. */
  listStreams(query: StreamQuery): Promise<Page<StreamRecord>>;
  /** Up to `limit` events with seq > `afterSeq`, in seq order. */
  readStreamEvents(streamId: string, afterSeq: number, limit: number): Promise<StreamEvent[]>;
  /** Removes the stream and its events. False if unknown. */
  deleteStream(streamId: string): Promise<boolean>;
  /**
   * Retention, atomically per stream: open streams with no write since
   * `idleBefore` get `idleEvent` appended and are failed; closed streams
   * ended before `closedBefore` are removed with their events. Answers the
   * ids closed as idle (so their followers can be told) and how many were removed.
   */
  expireStreams(request: {
    idleBefore: number;
    closedBefore: number;
    at: number;
    idleEvent: Omit<NewStreamEvent, 'seq'>;
    limit: number;
  }): Promise<{ closedIdle: string[]; removed: number }>;
  /**
   * Calls `onAppend` when any node appends to a stream, with its last seq
   * (PostgreSQL NOTIFY, Redis pub/sub). A node needs no store read to serve
   * its own appends; this is for those made through other nodes. Stores
   * without `pushNotify` never call it. Resolves once listening.
   */
  watchStreams(onAppend: (streamId: string, lastSeq: number) => void): Promise<() => Promise<void>>;
}

export type Store = MaintenanceStore &
  CredentialStore &
  MessageStore &
  HistoryStore &
  QueueStore &
  FlowControlStore &
  UrlGroupStore &
  ScheduleStore &
  InstanceStore &
  WorkKeyStore &
  StreamStore;
