/**
 * The message lifecycle, as data (core/lifecycle.ts MESSAGE_TRANSITIONS), run
 * on a store: for every row, a fresh store is driven into the row's `from`
 * state, the row's verb is applied, and the case checks the state reached
 * (getMessage), that exactly the row's log events were appended, in
 * order, at the verb's time, and that stats() counts the message where it is.
 *
 * Each row needs a driver below; a row without one fails the suite, so the
 * table and what the stores do cannot drift apart. The FAILED event's detail
 * is the domain's to decide, so only event states are checked here.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { newDlqId } from '../../src/core/ids.js';
import { MESSAGE_TRANSITIONS, transitionKey, type LifecycleState, type TransitionKey } from '../../src/core/lifecycle.js';
import type { AttemptResponse, ClaimedMessage, LogState, MessageSpec } from '../../src/core/message.js';
import type { Settlement, SettleResult, Store } from '../../src/store/port.js';
import { spec, T, type StoreUnderTest } from './store-contract.js';

const LEASE_MS = 30_000;
const QUEUE = 'lifecycle-q';

/** The message a case is about, in its `from` state; `claimed` once an attempt holds it. */
interface Arranged {
  spec: MessageSpec;
  claimed?: ClaimedMessage;
}

interface Driver {
  /** Brings a new message into the row's `from` state; events up to here are not the row's. */
  arrange(store: Store): Promise<Arranged>;
  /** Applies the row's verb at `at`. */
  apply(store: Store, arranged: Arranged, at: number): Promise<void>;
}

const AT = T + 1_000;
const response = (status: number): AttemptResponse => ({ status, headers: {}, body: new TextEncoder().encode('x'), durationMs: 3 });

async function claimOnly(store: Store, messageId: string, now: number): Promise<ClaimedMessage> {
  const claimed = await store.claimDue({ now, limit: 100, leaseMs: LEASE_MS });
  assert.deepEqual(claimed.map((c) => c.spec.messageId), [messageId], 'exactly this message is claimed');
  return claimed[0]!;
}

// ── arranging each `from` state ─────────────────────────────────────────────

const accepted = (overrides: Partial<MessageSpec> = {}) => async (): Promise<Arranged> => ({ spec: spec(overrides) });

async function pending(store: Store): Promise<Arranged> {
  const s = spec();
  await store.enqueue([{ spec: s }], T);
  return { spec: s };
}

async function waiting(store: Store): Promise<Arranged> {
  const s = spec({ queueName: QUEUE });
  await store.enqueue([{ spec: s }], T);
  return { spec: s };
}

async function active(store: Store): Promise<Arranged> {
  const { spec: s } = await pending(store);
  return { spec: s, claimed: await claimOnly(store, s.messageId, T) };
}

async function cancelRequested(store: Store): Promise<Arranged> {
  const arranged = await active(store);
  assert.equal(await store.cancel({ messageIds: [arranged.spec.messageId] }, T + 5), 1);
  return arranged;
}

// ── applying each verb ──────────────────────────────────────────────────────

async function enqueue(store: Store, { spec: s }: Arranged, at: number): Promise<void> {
  const [result] = await store.enqueue([{ spec: s }], at);
  assert.deepEqual(result, { messageId: s.messageId, deduplicated: false });
}

async function claim(store: Store, { spec: s }: Arranged, at: number): Promise<void> {
  await claimOnly(store, s.messageId, at);
}

function settle(kind: Settlement['kind'], expected: SettleResult) {
  return async (store: Store, { claimed }: Arranged, at: number): Promise<void> => {
    assert.ok(claimed, 'settle needs an attempt in flight');
    const lease = { messageId: claimed.spec.messageId, leaseId: claimed.leaseId, at, followUps: [] };
    const dlqId = newDlqId(at);
    const settlement: Settlement =
      kind === 'ack' ? { ...lease, kind, response: response(200) }
      : kind === 'retry' ? { ...lease, kind, nextAt: at + 60_000, response: response(503) }
      : { ...lease, kind, dlqId, failure: 'gave up', response: response(500) };
    assert.deepEqual(await store.settle([settlement]), [expected]);
    if (kind === 'deadLetter') assert.ok(await store.getDeadLetter(dlqId), 'a DLQ entry is made');
    if (kind === 'retry' && expected === 'settled') {
      const record = await store.getMessage(claimed.spec.messageId);
      assert.equal(record?.retried, 1);
      assert.equal(record?.dueAt, at + 60_000);
    }
  };
}

async function cancel(store: Store, { spec: s }: Arranged, at: number): Promise<void> {
  assert.equal(await store.cancel({ messageIds: [s.messageId] }, at), 1);
}

/** The row whose lease ran out: a claim after it takes the message again, and the old lease is refused. */
async function claimAfterLeaseExpiry(store: Store, { claimed }: Arranged, at: number): Promise<void> {
  assert.ok(claimed);
  const again = await claimOnly(store, claimed.spec.messageId, at);
  assert.notEqual(again.leaseId, claimed.leaseId, 'a new lease');
  const stale = { messageId: claimed.spec.messageId, leaseId: claimed.leaseId, at, followUps: [] };
  assert.deepEqual(await store.settle([{ ...stale, kind: 'ack', response: response(200) }]), ['leaseLost']);
}

const DRIVERS: Record<TransitionKey, Driver> = {
  'accepted enqueue pending': { arrange: accepted(), apply: enqueue },
  'accepted enqueue waiting': { arrange: accepted({ queueName: QUEUE }), apply: enqueue },
  'waiting claimDue active': { arrange: waiting, apply: claim },
  'pending claimDue active': { arrange: pending, apply: claim },
  'active claimDue active': { arrange: active, apply: claimAfterLeaseExpiry },
  'active settle:ack delivered': { arrange: active, apply: settle('ack', 'settled') },
  'active settle:retry pending': { arrange: active, apply: settle('retry', 'settled') },
  'active settle:deadLetter failed': { arrange: active, apply: settle('deadLetter', 'settled') },
  'pending cancel canceled': { arrange: pending, apply: cancel },
  'waiting cancel canceled': { arrange: waiting, apply: cancel },
  'active cancel cancelRequested': { arrange: active, apply: cancel },
  'cancelRequested settle:ack delivered': { arrange: cancelRequested, apply: settle('ack', 'settled') },
  'cancelRequested settle:retry canceled': { arrange: cancelRequested, apply: settle('retry', 'canceled') },
  'cancelRequested settle:deadLetter failed': { arrange: cancelRequested, apply: settle('deadLetter', 'settled') },
};

/** The lease-expiry row acts after the lease ran out; every other row acts at AT. */
const actsAt = (key: string): number => (key === 'active claimDue active' ? T + LEASE_MS + 1 : AT);

/** What getMessage shows in each lifecycle state: waiting reads as pending, finished messages are gone. */
const RECORD_STATE: Record<LifecycleState, 'pending' | 'active' | undefined> = {
  accepted: undefined,
  waiting: 'pending',
  pending: 'pending',
  active: 'active',
  cancelRequested: 'active',
  delivered: undefined,
  failed: undefined,
  canceled: undefined,
};

async function eventsOf(store: Store, messageId: string): Promise<{ state: LogState; time: number }[]> {
  const page = await store.listEvents({ messageIds: [messageId], count: 1000 });
  return page.items.map((e) => ({ state: e.state, time: e.time })).reverse();
}

export function runLifecycleContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`store contract: ${name}: the message lifecycle (MESSAGE_TRANSITIONS)`, () => {
    let sut: StoreUnderTest;
    beforeEach(async () => {
      sut = await makeStore();
    });
    afterEach(async () => {
      await sut.cleanup();
    });

    it('names every transition once, and has a driver for each', () => {
      const keys = MESSAGE_TRANSITIONS.map((t) => transitionKey(t));
      assert.equal(new Set(keys).size, keys.length, 'from, verb and to name a transition uniquely');
      assert.deepEqual(Object.keys(DRIVERS).sort(), [...keys].sort(), 'one driver per transition, no driver without one');
    });

    for (const transition of MESSAGE_TRANSITIONS) {
      const key = transitionKey(transition);
      it(`${key}: appends ${transition.events.join(' + ')}`, async () => {
        const driver = (DRIVERS as Partial<Record<string, Driver>>)[key];
        assert.ok(driver, `no driver for the transition "${key}" in store-contract-lifecycle.ts`);
        const { store } = sut;
        const arranged = await driver.arrange(store);
        const before = (await eventsOf(store, arranged.spec.messageId)).length;
        assert.equal((await store.getMessage(arranged.spec.messageId))?.state, RECORD_STATE[transition.from], `arranged in ${transition.from}`);
        const at = actsAt(key);
        await driver.apply(store, arranged, at);
        const appended = (await eventsOf(store, arranged.spec.messageId)).slice(before);
        assert.deepEqual(appended.map((e) => e.state), [...transition.events], 'exactly these events, in order');
        assert.deepEqual(appended.map((e) => e.time), transition.events.map(() => at), 'at the time the verb was given');
        assert.equal((await store.getMessage(arranged.spec.messageId))?.state, RECORD_STATE[transition.to], `reaches ${transition.to}`);
        // The backlog counts follow every transition (SQLite keeps them in a table, Redis in a hash).
        const { pending, active } = await store.stats();
        const expected = RECORD_STATE[transition.to];
        assert.deepEqual({ pending, active }, { pending: expected === 'pending' ? 1 : 0, active: expected === 'active' ? 1 : 0 }, 'stats() after the transition');
      });
    }
  });
}
