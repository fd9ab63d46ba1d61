/**
 * The message lifecycle as data: every legal transition, the store verb that
 * makes it and the log events that verb appends, in order. The store
 * contract suite (test/contract/store-contract-lifecycle.ts) iterates this
 * table and drives each row on every adapter, so a transition a store makes
 * differently, or a row added here without a test, fails the suite.
 *
 * A transition not in this table is a bug. Beside it:
 * - a message leaves its queue slot when it finishes (or to its callbacks);
 * - a pending message with a flow-control key is claimed only within its
 *   key's limits; the others are its key's waitlist;
 * - a second cancel of a message already being canceled affects nothing.
 */
import type { LogState, MessageState } from './message.js';

/**
 * The states a transition starts or ends in: the stored states, plus
 * `accepted` (not stored yet: a publish) and `cancelRequested` (active, with
 * a cancel requested mid-attempt: the attempt's outcome decides).
 */
export type LifecycleState = MessageState | 'accepted' | 'cancelRequested';

export interface MessageTransition {
  readonly from: LifecycleState;
  /** The store verb (store/port.ts); `settle:<kind>` for a Settlement kind. */
  readonly verb: 'enqueue' | 'claimDue' | 'settle:ack' | 'settle:retry' | 'settle:deadLetter' | 'cancel';
  readonly to: LifecycleState;
  /** The log states appended by the transition, oldest first. */
  readonly events: readonly LogState[];
  readonly note: string;
}

export const MESSAGE_TRANSITIONS = [
  { from: 'accepted', verb: 'enqueue', to: 'pending', events: ['CREATED'], note: 'due at notBefore' },
  { from: 'accepted', verb: 'enqueue', to: 'waiting', events: ['CREATED'], note: 'it names a queue; it reads as pending' },
  {
    from: 'waiting', verb: 'claimDue', to: 'active', events: ['ACTIVE'],
    note: 'admitted (its turn, the queue has a free slot, it holds the slot) and leased in the same call',
  },
  { from: 'pending', verb: 'claimDue', to: 'active', events: ['ACTIVE'], note: 'an attempt is in flight, under a lease' },
  {
    from: 'active', verb: 'claimDue', to: 'active', events: ['ACTIVE'],
    note: 'the lease expired: the holder died; same message id, a new lease (at-least-once)',
  },
  { from: 'active', verb: 'settle:ack', to: 'delivered', events: ['DELIVERED'], note: 'the destination answered 2xx' },
  { from: 'active', verb: 'settle:retry', to: 'pending', events: ['ERROR', 'RETRY'], note: 'a failed attempt, retries left; due later' },
  {
    from: 'active', verb: 'settle:deadLetter', to: 'failed', events: ['ERROR', 'FAILED'],
    note: 'retries exhausted, or 489 non-retryable; a DLQ entry is made',
  },
  { from: 'pending', verb: 'cancel', to: 'canceled', events: ['CANCEL_REQUESTED', 'CANCELED'], note: 'never claimed afterwards' },
  { from: 'waiting', verb: 'cancel', to: 'canceled', events: ['CANCEL_REQUESTED', 'CANCELED'], note: 'it never starts and leaves the lag' },
  {
    from: 'active', verb: 'cancel', to: 'cancelRequested', events: ['CANCEL_REQUESTED'],
    note: 'the attempt in flight goes on; its outcome decides',
  },
  { from: 'cancelRequested', verb: 'settle:ack', to: 'delivered', events: ['DELIVERED'], note: 'too late to cancel: it was delivered' },
  { from: 'cancelRequested', verb: 'settle:retry', to: 'canceled', events: ['ERROR', 'CANCELED'], note: 'settle answers canceled' },
  {
    from: 'cancelRequested', verb: 'settle:deadLetter', to: 'failed', events: ['ERROR', 'FAILED'],
    note: 'a DLQ entry is made as without the cancel',
  },
] as const satisfies readonly MessageTransition[];

export type MessageTransitionRow = (typeof MESSAGE_TRANSITIONS)[number];

type KeyOf<Row> = Row extends { from: infer F extends string; verb: infer V extends string; to: infer T extends string }
  ? `${F} ${V} ${T}`
  : never;
/** Names a transition uniquely, e.g. `active settle:retry pending` (from, verb and to together are unique). */
export type TransitionKey = KeyOf<MessageTransitionRow>;

export function transitionKey<Row extends MessageTransition>(transition: Row): KeyOf<Row> {
  return `${transition.from} ${transition.verb} ${transition.to}` as KeyOf<Row>;
}
