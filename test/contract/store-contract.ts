/**
 * The store contract: one suite of cases, run once per backend (SQLite now,
 * PostgreSQL and Redis later), each case on a fresh, empty store.
 *
 * It speaks only the port (`src/store/port.ts`), whose doc comments are the
 * contract; engine differences are read from `store.capabilities`, never from
 * the adapter's type. Times are fixed numbers passed to the verbs (the store
 * never reads a clock), so no case sleeps.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { newDlqId, newMessageId, newSigningKey, newToken } from '../../src/core/ids.js';
import type {
  AttemptResponse,
  ClaimedMessage,
  LogEvent,
  LogState,
  MessageSpec,
  NewMessage,
} from '../../src/core/message.js';
import type { DeadLetterFilter, EventQuery, Lease, MessageFilter, Settlement, Store } from '../../src/store/port.js';
import { runInstanceCases } from './store-contract-instances.js';
import { runStreamCases } from './store-contract-streams.js';
import { runTopologyCases } from './store-contract-topology.js';
import { runWorkKeyCases } from './store-contract-work-keys.js';

export interface StoreUnderTest {
  store: Store;
  /** Closes whatever store is current (the reopened one too) and removes its data. */
  cleanup: () => Promise<void>;
  /** Closes the store and opens the same data again, as a restarted process would. */
  reopen?: () => Promise<Store>;
  /** Opens a second store on the same data, as another node would (the caller closes it); absent for an exclusive store. */
  another?: () => Promise<Store>;
}

// ── fixtures ────────────────────────────────────────────────────────────────

/** The contract's fixed "now"; the multi-node cases of the shared stores use it too. */
export const T = 1_700_000_000_000;
const LEASE_MS = 30_000;
const SECOND = 1_000;
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A valid spec; every case gets a fresh message id. */
export function spec(overrides: Partial<MessageSpec> = {}): MessageSpec {
  return {
    messageId: newMessageId(),
    kind: 'message',
    url: 'https://dest.example/hook',
    method: 'POST',
    headers: { 'Content-Type': 'text/plain' },
    body: bytes('hello'),
    maxRetries: 3,
    labels: [],
    createdAt: T,
    notBefore: T,
    callerIp: '203.0.113.7',
    ...overrides,
  };
}

/** A spec with every optional field set, to check nothing is lost on the way through. */
function fullSpec(): MessageSpec {
  return spec({
    kind: 'callback',
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', 'X-Tenant': 'a b' },
    body: bytes('{"x":1}'),
    maxRetries: 7,
    retryDelayExpression: 'pow(2, retried) * 1000',
    timeoutMs: 15_000,
    callback: { url: 'https://cb.example/ok', method: 'POST', headers: { 'X-Cb': '1' }, retries: 2, timeoutMs: 1000 },
    failureCallback: { url: 'https://cb.example/fail', method: 'POST', headers: {}, retryDelayExpression: '1000', delayMs: 5 },
    labels: ['billing', 'eu'],
    redact: { body: true, allHeaders: false, headers: ['Authorization'] },
    sourceMessageId: newMessageId(),
    topicName: 'orders',
    endpointName: 'primary',
    queueName: 'q1',
    scheduleId: 'scd_1',
  });
}

/** Every byte value, which no text encoding round-trips by accident. */
function allBytes(): Uint8Array {
  const out = new Uint8Array(512);
  for (let i = 0; i < out.length; i++) out[i] = (i * 7 + 3) % 256;
  return out;
}

const ok = (): AttemptResponse => ({ status: 200, headers: { 'Content-Type': ['text/plain'] }, body: bytes('ok'), durationMs: 4 });
const failure = (status = 500, body: Uint8Array = bytes('boom')): AttemptResponse => ({
  status,
  headers: { 'Content-Type': ['text/plain'], 'X-Trace': ['a', 'b'] },
  body,
  durationMs: 9,
});

const leaseOf = (claimed: ClaimedMessage): Lease => ({ messageId: claimed.spec.messageId, leaseId: claimed.leaseId });
const ack = (lease: Lease, at: number, followUps: NewMessage[] = []): Settlement => ({
  ...lease, kind: 'ack', at, response: ok(), followUps,
});
const retry = (lease: Lease, at: number, nextAt: number, followUps: NewMessage[] = []): Settlement => ({
  ...lease, kind: 'retry', at, nextAt, response: failure(503), followUps,
});
const deadLetter = (lease: Lease, at: number, response = failure(), dlqId = newDlqId(at)): Settlement => ({
  ...lease, kind: 'deadLetter', at, dlqId, failure: response.error ?? 'gave up', response, followUps: [],
});

const ids = (claimed: ClaimedMessage[]): string[] => claimed.map((c) => c.spec.messageId).sort();
const sorted = (values: string[]): string[] => [...values].sort();

async function enqueueSpecs(store: Store, specs: MessageSpec[], at = T): Promise<string[]> {
  const results = await store.enqueue(specs.map((s) => ({ spec: s })), at);
  return results.map((r) => r.messageId);
}

/** Claims the only due message (the case arranged that no other is due) and returns it. */
async function claimOnly(store: Store, messageId: string, now: number, leaseMs = LEASE_MS): Promise<ClaimedMessage> {
  const claimed = await store.claimDue({ now, limit: 100, leaseMs });
  assert.deepEqual(ids(claimed), [messageId], 'exactly this message is claimed');
  return claimed[0]!;
}

/** Enqueues, claims and dead-letters one message; returns its DLQ id. */
async function toDeadLetter(store: Store, s: MessageSpec, at: number, response = failure()): Promise<string> {
  await store.enqueue([{ spec: s }], s.createdAt);
  const claimed = await claimOnly(store, s.messageId, at);
  const dlqId = newDlqId(at);
  assert.deepEqual(await store.settle([deadLetter(leaseOf(claimed), at, response, dlqId)]), ['settled']);
  return dlqId;
}

/** Enqueues, claims and acks one message. */
async function toDelivered(store: Store, s: MessageSpec, at: number): Promise<void> {
  await store.enqueue([{ spec: s }], s.createdAt);
  const claimed = await claimOnly(store, s.messageId, at);
  assert.deepEqual(await store.settle([ack(leaseOf(claimed), at)]), ['settled']);
}

/** Every page of a query, checking the paging contract on the way. */
async function allPages(store: Store, query: Omit<EventQuery, 'cursor'>): Promise<LogEvent[][]> {
  const pages: LogEvent[][] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listEvents(cursor === undefined ? query : { ...query, cursor });
    assert.ok(page.items.length <= query.count, 'a page holds at most count items');
    if (page.cursor !== undefined) assert.equal(page.items.length, query.count, 'a page with a cursor is full');
    pages.push(page.items);
    cursor = page.cursor;
    assert.ok(pages.length < 100, 'paging terminates');
  } while (cursor !== undefined);
  return pages;
}

/** A message's log states, oldest first. */
async function statesOf(store: Store, messageId: string): Promise<LogState[]> {
  const page = await store.listEvents({ messageIds: [messageId], count: 1000 });
  return page.items.map((e) => e.state).reverse();
}

async function eventsWhere(store: Store, filter: MessageFilter, states?: LogState[]): Promise<LogEvent[]> {
  return (await store.listEvents({ filter, count: 1000, ...(states ? { states } : {}) })).items;
}

async function dlqIdsWhere(store: Store, filter: DeadLetterFilter): Promise<string[]> {
  return (await store.listDeadLetters({ filter, count: 100 })).items.map((d) => d.dlqId).sort();
}

// ── the suite ───────────────────────────────────────────────────────────────

export function runStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`store contract: ${name}`, () => {
    let sut: StoreUnderTest;
    let store: Store;
    beforeEach(async () => {
      sut = await makeStore();
      store = sut.store;
    });
    afterEach(async () => {
      await sut.cleanup();
    });

    describe('enqueue and getMessage', () => {
      it('stores a message as pending, due at notBefore, with a CREATED event at the enqueue time', async () => {
        const s = spec({ notBefore: T + 5 * SECOND });
        const [result] = await store.enqueue([{ spec: s }], T + 1);
        assert.deepEqual(result, { messageId: s.messageId, deduplicated: false });
        const record = await store.getMessage(s.messageId);
        assert.ok(record);
        assert.equal(record.state, 'pending');
        assert.equal(record.retried, 0);
        assert.equal(record.dueAt, T + 5 * SECOND);
        const events = (await store.listEvents({ messageIds: [s.messageId], count: 10 })).items;
        assert.deepEqual(events.map((e) => [e.state, e.time]), [['CREATED', T + 1]]);
        assert.equal(events[0]!.spec.messageId, s.messageId);
      });

      it('keeps every spec field, through getMessage, claimDue and the log', async () => {
        const s = fullSpec();
        await store.enqueue([{ spec: s }], T);
        assert.deepEqual((await store.getMessage(s.messageId))?.spec, s);
        const [claimed] = await store.claimDue({ now: T, limit: 1, leaseMs: LEASE_MS });
        assert.deepEqual(claimed?.spec, s);
        const events = (await store.listEvents({ messageIds: [s.messageId], count: 10 })).items;
        for (const event of events) assert.deepEqual(event.spec, s);
      });

      it('stores a batch with results aligned to the input', async () => {
        const specs = [spec(), spec(), spec()];
        const results = await store.enqueue(specs.map((s) => ({ spec: s })), T);
        assert.deepEqual(results, specs.map((s) => ({ messageId: s.messageId, deduplicated: false })));
        for (const s of specs) assert.equal((await store.getMessage(s.messageId))?.state, 'pending');
      });

      it('answers undefined for an unknown message and for a finished one', async () => {
        assert.equal(await store.getMessage(newMessageId()), undefined);
        const s = spec();
        await toDelivered(store, s, T);
        assert.equal(await store.getMessage(s.messageId), undefined);
      });

      it('shows an in-flight message as active', async () => {
        const s = spec();
        await store.enqueue([{ spec: s }], T);
        await claimOnly(store, s.messageId, T);
        const record = await store.getMessage(s.messageId);
        assert.equal(record?.state, 'active');
        assert.equal(record?.retried, 0);
      });
    });

    describe('deduplication', () => {
      it('returns the first message id while the dedup key is live, and stores nothing', async () => {
        const first = spec();
        const second = spec();
        const dedup = { key: 'k1', expiresAt: T + 600 * SECOND };
        await store.enqueue([{ spec: first, dedup }], T);
        const [result] = await store.enqueue([{ spec: second, dedup }], T + 10 * SECOND);
        assert.deepEqual(result, { messageId: first.messageId, deduplicated: true });
        assert.equal(await store.getMessage(second.messageId), undefined);
        assert.deepEqual(await statesOf(store, second.messageId), []);
        assert.equal((await store.stats()).pending, 1);
      });

      it('still deduplicates after the first message finished, while the key is live', async () => {
        const first = spec();
        const dedup = { key: 'k-finished', expiresAt: T + 600 * SECOND };
        await store.enqueue([{ spec: first, dedup }], T);
        const claimed = await claimOnly(store, first.messageId, T);
        await store.settle([ack(leaseOf(claimed), T + 1)]);
        const [result] = await store.enqueue([{ spec: spec(), dedup }], T + 2);
        assert.deepEqual(result, { messageId: first.messageId, deduplicated: true });
      });

      it('stores a new message once the key has expired', async () => {
        const first = spec();
        const second = spec();
        await store.enqueue([{ spec: first, dedup: { key: 'k2', expiresAt: T + 100 } }], T);
        const [result] = await store.enqueue(
          [{ spec: second, dedup: { key: 'k2', expiresAt: T + 10_000 } }],
          T + 200,
        );
        assert.deepEqual(result, { messageId: second.messageId, deduplicated: false });
        assert.equal((await store.getMessage(second.messageId))?.state, 'pending');
        // The new message holds the key now.
        const [third] = await store.enqueue([{ spec: spec(), dedup: { key: 'k2', expiresAt: T + 20_000 } }], T + 300);
        assert.deepEqual(third, { messageId: second.messageId, deduplicated: true });
      });

      it('deduplicates inside one enqueue batch, keeping distinct keys apart', async () => {
        const a = spec();
        const b = spec();
        const c = spec();
        const expiresAt = T + 600 * SECOND;
        const results = await store.enqueue(
          [
            { spec: a, dedup: { key: 'same', expiresAt } },
            { spec: b, dedup: { key: 'same', expiresAt } },
            { spec: c, dedup: { key: 'other', expiresAt } },
          ],
          T,
        );
        assert.deepEqual(results, [
          { messageId: a.messageId, deduplicated: false },
          { messageId: a.messageId, deduplicated: true },
          { messageId: c.messageId, deduplicated: false },
        ]);
        assert.equal(await store.getMessage(b.messageId), undefined);
      });

      it('lets exactly one of several concurrent enqueues with one key through', async () => {
        const specs = Array.from({ length: 8 }, () => spec());
        const dedup = { key: 'race', expiresAt: T + 600 * SECOND };
        const results = (await Promise.all(specs.map((s) => store.enqueue([{ spec: s, dedup }], T)))).flat();
        assert.equal(results.filter((r) => !r.deduplicated).length, 1);
        assert.equal(new Set(results.map((r) => r.messageId)).size, 1, 'all name the one stored message');
        assert.equal((await store.stats()).pending, 1);
      });
    });

    describe('enqueue with handoff', () => {
      it('stores due messages active under one lease, up to limit, in input order, with CREATED and ACTIVE', async () => {
        const first = spec({ notBefore: T });
        const second = spec({ notBefore: T - 5 });
        const third = spec({ notBefore: T });
        const results = await store.enqueue([{ spec: first }, { spec: second }, { spec: third }], T, { limit: 2, leaseMs: LEASE_MS });
        const leaseId = results[0]!.leaseId;
        assert.equal(typeof leaseId, 'string');
        assert.equal(results[1]!.leaseId, leaseId, 'one lease for the whole hand-off');
        assert.equal(results[2]!.leaseId, undefined, 'beyond limit: stored pending');
        assert.equal((await store.getMessage(first.messageId))?.state, 'active');
        assert.equal((await store.getMessage(second.messageId))?.state, 'active');
        assert.equal((await store.getMessage(third.messageId))?.state, 'pending');
        assert.deepEqual(await statesOf(store, first.messageId), ['CREATED', 'ACTIVE']);
        assert.deepEqual(ids(await store.claimDue({ now: T, limit: 10, leaseMs: LEASE_MS })), [third.messageId], 'handed-off messages are not claimable while leased');
      });

      it('never hands off a message not yet due, a deduplicated one, or one to an excluded origin', async () => {
        const later = spec({ notBefore: T + 1 });
        const excluded = spec({ url: 'http://busy.example/x' });
        const original = spec();
        const duplicate = spec();
        const dedup = { key: 'k', expiresAt: T + 60 * SECOND };
        const results = await store.enqueue(
          [{ spec: later }, { spec: excluded }, { spec: original, dedup }, { spec: duplicate, dedup }],
          T,
          { limit: 10, leaseMs: LEASE_MS, excludeOrigins: ['http://busy.example'] },
        );
        assert.deepEqual(results.map((r) => r.leaseId === undefined), [true, true, false, true]);
        assert.deepEqual(results[3], { messageId: original.messageId, deduplicated: true });
        assert.equal((await store.getMessage(later.messageId))?.state, 'pending');
        assert.equal((await store.getMessage(excluded.messageId))?.state, 'pending');
      });

      it('settles a handed-off message under its lease, and loses it to a claim once the lease ran out', async () => {
        const delivered = spec();
        const stalled = spec();
        const [d, st] = await store.enqueue([{ spec: delivered }, { spec: stalled }], T, { limit: 10, leaseMs: 1_000 });
        assert.deepEqual(await store.settle([ack({ messageId: delivered.messageId, leaseId: d!.leaseId! }, T + 10)]), ['settled']);
        const reclaimed = await store.claimDue({ now: T + 1_001, limit: 10, leaseMs: LEASE_MS });
        assert.deepEqual(ids(reclaimed), [stalled.messageId]);
        assert.deepEqual(await store.settle([ack({ messageId: stalled.messageId, leaseId: st!.leaseId! }, T + 1_002)]), ['leaseLost']);
      });
    });

    describe('claimDue', () => {
      it('claims only due messages (dueAt ≤ now), under one lease each, with an ACTIVE event', async () => {
        const due = spec({ notBefore: T });
        const dueNow = spec({ notBefore: T + 50 });
        const later = spec({ notBefore: T + 51 });
        await enqueueSpecs(store, [due, dueNow, later]);
        const claimed = await store.claimDue({ now: T + 50, limit: 10, leaseMs: LEASE_MS });
        assert.deepEqual(ids(claimed), sorted([due.messageId, dueNow.messageId]));
        for (const c of claimed) {
          assert.equal(typeof c.leaseId, 'string');
          assert.ok(c.leaseId.length > 0);
          assert.equal(c.retried, 0);
          assert.deepEqual(await statesOf(store, c.spec.messageId), ['CREATED', 'ACTIVE']);
          const [active] = (await store.listEvents({ messageIds: [c.spec.messageId], count: 1 })).items;
          assert.equal(active?.time, T + 50);
        }
        assert.equal((await store.getMessage(later.messageId))?.state, 'pending');
        assert.deepEqual(await store.claimDue({ now: T + 50, limit: 10, leaseMs: LEASE_MS }), []);
      });

      it('claims the oldest due first and no more than limit', async () => {
        const third = spec({ notBefore: T + 30 });
        const first = spec({ notBefore: T + 10 });
        const second = spec({ notBefore: T + 20 });
        await enqueueSpecs(store, [third, first, second]);
        const one = await store.claimDue({ now: T + 100, limit: 1, leaseMs: LEASE_MS });
        assert.deepEqual(ids(one), [first.messageId]);
        const two = await store.claimDue({ now: T + 100, limit: 1, leaseMs: LEASE_MS });
        assert.deepEqual(ids(two), [second.messageId]);
        const rest = await store.claimDue({ now: T + 100, limit: 5, leaseMs: LEASE_MS });
        assert.deepEqual(ids(rest), [third.messageId]);
      });

      it('skips messages to excluded origins, leaving them pending', async () => {
        const a = spec({ url: 'http://a.example:8080/x' });
        const b = spec({ url: 'https://b.example/y' });
        await enqueueSpecs(store, [a, b]);
        const claimed = await store.claimDue({
          now: T, limit: 10, leaseMs: LEASE_MS, excludeOrigins: ['http://a.example:8080'],
        });
        assert.deepEqual(ids(claimed), [b.messageId]);
        assert.equal((await store.getMessage(a.messageId))?.state, 'pending');
        const later = await store.claimDue({ now: T, limit: 10, leaseMs: LEASE_MS, excludeOrigins: [] });
        assert.deepEqual(ids(later), [a.messageId]);
      });

      it('does not claim an active message whose lease is live', async () => {
        const s = spec();
        await store.enqueue([{ spec: s }], T);
        await claimOnly(store, s.messageId, T, 1000);
        assert.deepEqual(await store.claimDue({ now: T + 999, limit: 10, leaseMs: LEASE_MS }), []);
      });

      it('reclaims a message whose lease expired: same message id, new lease, the old lease is lost', async () => {
        const s = spec();
        await store.enqueue([{ spec: s }], T);
        const first = await claimOnly(store, s.messageId, T, 1000);
        const again = await claimOnly(store, s.messageId, T + 5000);
        assert.notEqual(again.leaseId, first.leaseId);
        assert.deepEqual(again.spec, s);
        assert.deepEqual(await statesOf(store, s.messageId), ['CREATED', 'ACTIVE', 'ACTIVE']);
        assert.deepEqual(await store.settle([ack(leaseOf(first), T + 5001)]), ['leaseLost']);
        assert.deepEqual(await store.settle([ack(leaseOf(again), T + 5002)]), ['settled']);
      });

      it('leaves an expired lease of an excluded origin alone', async () => {
        const s = spec({ url: 'https://slow.example/x' });
        await store.enqueue([{ spec: s }], T);
        await claimOnly(store, s.messageId, T, 1000);
        const request = { now: T + 5000, limit: 10, leaseMs: LEASE_MS };
        assert.deepEqual(await store.claimDue({ ...request, excludeOrigins: ['https://slow.example'] }), []);
        assert.deepEqual(ids(await store.claimDue(request)), [s.messageId]);
      });

      it('takes a stalled message (expired lease) before pending messages that fell due after it', async () => {
        // Oldest due first across both kinds: otherwise a steady backlog of due
        // pending work would keep a stalled message from ever being redelivered.
        const stalled = spec({ notBefore: T });
        await store.enqueue([{ spec: stalled }], T);
        await claimOnly(store, stalled.messageId, T, 1000); // lease ends at T + 1000
        await enqueueSpecs(store, [spec({ notBefore: T + 2000 }), spec({ notBefore: T + 2000 })], T + 1);
        const claimed = await store.claimDue({ now: T + 3000, limit: 1, leaseMs: LEASE_MS });
        assert.deepEqual(ids(claimed), [stalled.messageId]);
      });

      it('never hands one message to two concurrent claims', async () => {
        const specs = Array.from({ length: 10 }, (_, i) => spec({ notBefore: T + i }));
        await enqueueSpecs(store, specs);
        const batches = await Promise.all(
          Array.from({ length: 4 }, () => store.claimDue({ now: T + 100, limit: 3, leaseMs: LEASE_MS })),
        );
        const claimedIds = batches.flatMap(ids);
        assert.equal(new Set(claimedIds).size, claimedIds.length, 'no message claimed twice');
        assert.equal(claimedIds.length, 10);
      });
    });

    describe('extendLeases and nextDueAt', () => {
      it('keeps a lease alive past its original expiry', async () => {
        const s = spec();
        await store.enqueue([{ spec: s }], T);
        const claimed = await claimOnly(store, s.messageId, T, 1000);
        await store.extendLeases([leaseOf(claimed)], T + 60_000);
        assert.deepEqual(await store.claimDue({ now: T + 30_000, limit: 10, leaseMs: LEASE_MS }), []);
        assert.deepEqual(await store.settle([ack(leaseOf(claimed), T + 30_001)]), ['settled']);
      });

      it('ignores leases that are no longer held', async () => {
        const s = spec();
        await store.enqueue([{ spec: s }], T);
        const first = await claimOnly(store, s.messageId, T, 1000);
        await store.extendLeases([{ messageId: s.messageId, leaseId: 'not-a-lease' }], T + 60_000);
        const second = await claimOnly(store, s.messageId, T + 2000, 1000); // lease until T + 3000
        await store.extendLeases([leaseOf(first)], T + 60_000); // stale: must not touch the new lease
        await claimOnly(store, s.messageId, T + 4000);
        assert.deepEqual(await store.settle([ack(leaseOf(second), T + 4001)]), ['leaseLost']);
        // A finished or unknown message is ignored too.
        await store.extendLeases([{ messageId: newMessageId(), leaseId: first.leaseId }], T + 60_000);
      });

      it('names the earliest due time of pending messages', async () => {
        assert.equal(await store.nextDueAt(T), undefined);
        const early = spec({ notBefore: T + 300 });
        const late = spec({ notBefore: T + 500 });
        await enqueueSpecs(store, [late, early]);
        assert.equal(await store.nextDueAt(T), T + 300);
        const claimed = await claimOnly(store, early.messageId, T + 300, 10 * 60_000);
        assert.equal(await store.nextDueAt(T + 300), T + 500);
        const rest = await claimOnly(store, late.messageId, T + 500);
        await store.settle([ack(leaseOf(claimed), T + 600), ack(leaseOf(rest), T + 600)]);
        assert.equal(await store.nextDueAt(T + 600), undefined);
      });
    });

    describe('settle', () => {
      it('ack: the message is delivered and gone, with a DELIVERED event carrying the response', async () => {
        const s = spec();
        await store.enqueue([{ spec: s }], T);
        const claimed = await claimOnly(store, s.messageId, T);
        assert.deepEqual(await store.settle([ack(leaseOf(claimed), T + 10)]), ['settled']);
        assert.equal(await store.getMessage(s.messageId), undefined);
        assert.deepEqual(await statesOf(store, s.messageId), ['CREATED', 'ACTIVE', 'DELIVERED']);
        const [delivered] = (await store.listEvents({ messageIds: [s.messageId], count: 1 })).items;
        assert.equal(delivered?.time, T + 10);
        assert.equal(delivered?.response?.status, 200);
        assert.deepEqual(await store.claimDue({ now: T + 1_000_000, limit: 10, leaseMs: LEASE_MS }), []);
      });

      it('retry: pending again, retried + 1, due at nextAt, ERROR + RETRY with nextDeliveryTime', async () => {
        const s = spec();
        await store.enqueue([{ spec: s }], T);
        const claimed = await claimOnly(store, s.messageId, T);
        assert.deepEqual(await store.settle([retry(leaseOf(claimed), T + 10, T + 5000)]), ['settled']);
        const record = await store.getMessage(s.messageId);
        assert.deepEqual(
          record && { state: record.state, retried: record.retried, dueAt: record.dueAt },
          { state: 'pending', retried: 1, dueAt: T + 5000 },
        );
        assert.deepEqual(await statesOf(store, s.messageId), ['CREATED', 'ACTIVE', 'ERROR', 'RETRY']);
        const [retryEvent, errorEvent] = (await store.listEvents({ messageIds: [s.messageId], count: 2 })).items;
        assert.equal(retryEvent?.nextDeliveryTime, T + 5000);
        assert.equal(errorEvent?.response?.status, 503);
        assert.deepEqual(errorEvent?.response?.headers, failure().headers);
        assert.deepEqual(errorEvent?.response?.body, bytes('boom'));
        assert.equal(await store.nextDueAt(T + 10), T + 5000);
        assert.deepEqual(await store.claimDue({ now: T + 4999, limit: 10, leaseMs: LEASE_MS }), []);
        const next = await claimOnly(store, s.messageId, T + 5000);
        assert.equal(next.retried, 1);
      });

      it('retry of a network failure logs its error text', async () => {
        const s = spec();
        await store.enqueue([{ spec: s }], T);
        const claimed = await claimOnly(store, s.messageId, T);
        const settlement: Settlement = {
          ...leaseOf(claimed), kind: 'retry', at: T + 1, nextAt: T + 2, followUps: [],
          response: { error: 'connect ECONNREFUSED', durationMs: 3 },
        };
        assert.deepEqual(await store.settle([settlement]), ['settled']);
        const errorEvent = (await store.listEvents({ messageIds: [s.messageId], count: 10 })).items.find(
          (e) => e.state === 'ERROR',
        );
        assert.equal(errorEvent?.error, 'connect ECONNREFUSED');
        assert.equal(errorEvent?.response?.status, undefined);
      });

      it('deadLetter: failed, ERROR + FAILED, a DLQ entry with the response status, headers and body bytes', async () => {
        const s = spec({ labels: ['x'] });
        const response = failure(418, allBytes());
        const dlqId = await toDeadLetter(store, s, T + 10, response);
        assert.equal(await store.getMessage(s.messageId), undefined);
        assert.deepEqual(await statesOf(store, s.messageId), ['CREATED', 'ACTIVE', 'ERROR', 'FAILED']);
        const events = (await store.listEvents({ messageIds: [s.messageId], count: 10 })).items;
        assert.equal(events.find((e) => e.state === 'FAILED')?.error, 'gave up', "the FAILED event records the settlement's failure");
        const entry = await store.getDeadLetter(dlqId);
        assert.ok(entry);
        assert.equal(entry.dlqId, dlqId);
        assert.equal(entry.createdAt, T + 10);
        assert.deepEqual(entry.spec, s);
        assert.equal(entry.response.status, 418);
        assert.deepEqual(entry.response.headers, response.headers);
        assert.deepEqual(entry.response.body, allBytes());
        assert.equal((await store.stats()).deadLetters, 1);
      });

      it('leaseLost: a wrong lease id, a finished message, an unknown message change nothing', async () => {
        const s = spec();
        await store.enqueue([{ spec: s }], T);
        const claimed = await claimOnly(store, s.messageId, T);
        const wrong = { messageId: s.messageId, leaseId: `${claimed.leaseId}-not` };
        assert.deepEqual(await store.settle([retry(wrong, T + 1, T + 2)]), ['leaseLost']);
        assert.equal((await store.getMessage(s.messageId))?.state, 'active');
        assert.deepEqual(await statesOf(store, s.messageId), ['CREATED', 'ACTIVE']);
        assert.deepEqual(await store.settle([ack(leaseOf(claimed), T + 3)]), ['settled']);
        assert.deepEqual(
          await store.settle([
            ack(leaseOf(claimed), T + 4),
            deadLetter(leaseOf(claimed), T + 4),
            ack({ messageId: newMessageId(), leaseId: claimed.leaseId }, T + 4),
          ]),
          ['leaseLost', 'leaseLost', 'leaseLost'],
        );
        assert.deepEqual(await statesOf(store, s.messageId), ['CREATED', 'ACTIVE', 'DELIVERED']);
        assert.equal((await store.stats()).deadLetters, 0);
      });

      it('settles a batch with results aligned to the input', async () => {
        const [a, b] = [spec(), spec()];
        await enqueueSpecs(store, [a, b]);
        const claimed = await store.claimDue({ now: T, limit: 10, leaseMs: LEASE_MS });
        const byId = new Map(claimed.map((c) => [c.spec.messageId, c]));
        const results = await store.settle([
          ack({ messageId: newMessageId(), leaseId: 'x' }, T + 1),
          ack(leaseOf(byId.get(a.messageId)!), T + 1),
          retry(leaseOf(byId.get(b.messageId)!), T + 1, T + 2),
        ]);
        assert.deepEqual(results, ['leaseLost', 'settled', 'settled']);
      });

      it('lets only one of two concurrent settles with one lease through', async () => {
        const s = spec();
        await store.enqueue([{ spec: s }], T);
        const lease = leaseOf(await claimOnly(store, s.messageId, T));
        const results = (await Promise.all([store.settle([ack(lease, T + 1)]), store.settle([retry(lease, T + 1, T + 2)])])).flat();
        assert.deepEqual(results.sort(), ['leaseLost', 'settled']);
      });

      it('stores follow-ups atomically with the outcome, and none on leaseLost', async () => {
        const s = spec();
        await store.enqueue([{ spec: s }], T);
        const claimed = await claimOnly(store, s.messageId, T);
        const callback = spec({ kind: 'callback', sourceMessageId: s.messageId, notBefore: T + 10, createdAt: T + 10 });
        const lost = spec({ kind: 'callback', sourceMessageId: s.messageId, notBefore: T + 10, createdAt: T + 10 });
        const wrong = { messageId: s.messageId, leaseId: 'stale' };
        assert.deepEqual(await store.settle([ack(wrong, T + 10, [{ spec: lost }])]), ['leaseLost']);
        assert.equal(await store.getMessage(lost.messageId), undefined);
        assert.deepEqual(await statesOf(store, lost.messageId), []);
        assert.deepEqual(await store.settle([ack(leaseOf(claimed), T + 10, [{ spec: callback }])]), ['settled']);
        const record = await store.getMessage(callback.messageId);
        assert.equal(record?.state, 'pending');
        assert.deepEqual(record?.spec, callback);
        assert.deepEqual(await statesOf(store, callback.messageId), ['CREATED']);
      });

      it('stores follow-ups of retry and deadLetter outcomes too', async () => {
        const [a, b] = [spec(), spec()];
        await enqueueSpecs(store, [a, b]);
        const claimed = await store.claimDue({ now: T, limit: 10, leaseMs: LEASE_MS });
        const byId = new Map(claimed.map((c) => [c.spec.messageId, c]));
        const onRetry = spec({ kind: 'callback', sourceMessageId: a.messageId });
        const onFail = spec({ kind: 'failure_callback', sourceMessageId: b.messageId });
        const results = await store.settle([
          retry(leaseOf(byId.get(a.messageId)!), T + 1, T + 100, [{ spec: onRetry }]),
          { ...deadLetter(leaseOf(byId.get(b.messageId)!), T + 1), followUps: [{ spec: onFail }] },
        ]);
        assert.deepEqual(results, ['settled', 'settled']);
        assert.equal((await store.getMessage(onRetry.messageId))?.state, 'pending');
        assert.equal((await store.getMessage(onFail.messageId))?.state, 'pending');
      });
    });

    describe('cancel', () => {
      it('cancels a pending message: CANCEL_REQUESTED + CANCELED, gone, never claimed', async () => {
        const s = spec();
        await store.enqueue([{ spec: s }], T);
        assert.equal(await store.cancel({ messageIds: [s.messageId] }, T + 5), 1);
        assert.equal(await store.getMessage(s.messageId), undefined);
        assert.deepEqual(await statesOf(store, s.messageId), ['CREATED', 'CANCEL_REQUESTED', 'CANCELED']);
        assert.deepEqual(await store.claimDue({ now: T + 10, limit: 10, leaseMs: LEASE_MS }), []);
        assert.equal(await store.cancel({ messageIds: [s.messageId] }, T + 6), 0, 'a second cancel affects nothing');
      });

      it('flags an active message; a retry outcome then cancels it', async () => {
        const s = spec();
        await store.enqueue([{ spec: s }], T);
        const claimed = await claimOnly(store, s.messageId, T);
        assert.equal(await store.cancel({ messageIds: [s.messageId] }, T + 5), 1);
        assert.equal((await store.getMessage(s.messageId))?.state, 'active');
        assert.deepEqual(await statesOf(store, s.messageId), ['CREATED', 'ACTIVE', 'CANCEL_REQUESTED']);
        assert.equal(await store.cancel({ messageIds: [s.messageId] }, T + 6), 0, 'a second cancel affects nothing');
        assert.deepEqual(await store.settle([retry(leaseOf(claimed), T + 10, T + 20)]), ['canceled']);
        assert.equal(await store.getMessage(s.messageId), undefined);
        assert.deepEqual(await statesOf(store, s.messageId), ['CREATED', 'ACTIVE', 'CANCEL_REQUESTED', 'ERROR', 'CANCELED']);
        assert.deepEqual(await store.claimDue({ now: T + 100, limit: 10, leaseMs: LEASE_MS }), []);
      });

      it('flags an active message; an ack still delivers it and a deadLetter still fails it', async () => {
        const [a, b] = [spec(), spec()];
        await enqueueSpecs(store, [a, b]);
        const claimed = await store.claimDue({ now: T, limit: 10, leaseMs: LEASE_MS });
        const byId = new Map(claimed.map((c) => [c.spec.messageId, c]));
        assert.equal(await store.cancel({ messageIds: [a.messageId, b.messageId] }, T + 5), 2);
        const dlqId = newDlqId(T + 10);
        const results = await store.settle([
          ack(leaseOf(byId.get(a.messageId)!), T + 10),
          deadLetter(leaseOf(byId.get(b.messageId)!), T + 10, failure(), dlqId),
        ]);
        assert.deepEqual(results, ['settled', 'settled']);
        assert.deepEqual(await statesOf(store, a.messageId), ['CREATED', 'ACTIVE', 'CANCEL_REQUESTED', 'DELIVERED']);
        assert.deepEqual(await statesOf(store, b.messageId), ['CREATED', 'ACTIVE', 'CANCEL_REQUESTED', 'ERROR', 'FAILED']);
        assert.ok(await store.getDeadLetter(dlqId));
      });

      it('by ids counts only the messages it affected', async () => {
        const [a, b, done] = [spec(), spec(), spec()];
        await toDelivered(store, done, T);
        await enqueueSpecs(store, [a, b], T + 1);
        assert.equal(await store.cancel({ messageIds: [a.messageId, done.messageId, newMessageId()] }, T + 2), 1);
        assert.equal(await store.cancel({ messageIds: [] }, T + 2), 0);
        assert.equal((await store.getMessage(b.messageId))?.state, 'pending');
      });

      it('by each filter key, values OR-ed within a key and keys AND-ed', async () => {
        const specs = {
          url: spec({ url: 'https://one.example/a' }),
          label: spec({ labels: ['red', 'blue'] }),
          callerIp: spec({ callerIp: '198.51.100.9' }),
          host: spec({ url: 'https://host.example/any' }),
          path: spec({ url: 'https://p.example/special/path' }),
          topic: spec({ topicName: 'topic-a' }),
          queue: spec({ queueName: 'queue-a' }),
          schedule: spec({ scheduleId: 'scd_a' }),
          early: spec({ createdAt: T - 10_000, notBefore: T }),
          late: spec({ createdAt: T + 10_000, notBefore: T + 10_000 }),
        };
        await enqueueSpecs(store, Object.values(specs));
        const cancelWith = async (filter: MessageFilter): Promise<number> => store.cancel({ filter }, T + 20_000);
        const gone = async (...names: (keyof typeof specs)[]): Promise<void> => {
          for (const n of names) assert.equal(await store.getMessage(specs[n].messageId), undefined, `${n} canceled`);
        };
        assert.equal(await cancelWith({ url: ['https://nope.example/', 'https://one.example/a'] }), 1);
        await gone('url');
        assert.equal(await cancelWith({ label: ['green', 'blue'] }), 1);
        await gone('label');
        assert.equal(await cancelWith({ callerIp: ['198.51.100.9'] }), 1);
        await gone('callerIp');
        assert.equal(await cancelWith({ host: ['host.example'] }), 1);
        await gone('host');
        assert.equal(await cancelWith({ path: ['/special/path'] }), 1);
        await gone('path');
        assert.equal(await cancelWith({ topicName: ['topic-a'], queueName: ['queue-a'] }), 0, 'keys are AND-ed');
        assert.equal(await cancelWith({ topicName: ['topic-a'] }), 1);
        assert.equal(await cancelWith({ queueName: ['queue-a'] }), 1);
        assert.equal(await cancelWith({ scheduleId: ['scd_a'] }), 1);
        await gone('topic', 'queue', 'schedule');
        assert.equal(await cancelWith({ toDate: T - 10_000 }), 1, 'toDate is inclusive, on creation time');
        await gone('early');
        assert.equal(await cancelWith({ fromDate: T + 10_000 }), 1, 'fromDate is inclusive, on creation time');
        await gone('late');
        assert.equal((await store.stats()).pending, 0);
      });

      it('by filter or all, up to a limit; a repeat counts only what is left', async () => {
        const specs = Array.from({ length: 5 }, () => spec({ labels: ['bulk'] }));
        const other = spec();
        await enqueueSpecs(store, [...specs, other]);
        assert.equal(await store.cancel({ filter: { label: ['bulk'] }, limit: 2 }, T + 1), 2);
        assert.equal(await store.cancel({ filter: { label: ['bulk'] }, limit: 2 }, T + 2), 2);
        assert.equal(await store.cancel({ filter: { label: ['bulk'] } }, T + 3), 1);
        assert.equal(await store.cancel({ filter: { label: ['bulk'] } }, T + 4), 0);
        assert.equal((await store.getMessage(other.messageId))?.state, 'pending');
        const more = [spec(), spec(), spec()];
        await enqueueSpecs(store, more);
        assert.equal(await store.cancel({ all: true, limit: 3 }, T + 5), 3);
        assert.equal(await store.cancel({ all: true }, T + 6), 1);
        assert.equal(await store.cancel({ all: true }, T + 7), 0);
        assert.equal((await store.stats()).pending, 0);
      });
    });

    describe('listEvents', () => {
      it('lists newest first, with each event joined to its message', async () => {
        const s = spec();
        await store.enqueue([{ spec: s }], T);
        const claimed = await claimOnly(store, s.messageId, T + 1);
        await store.settle([ack(leaseOf(claimed), T + 2)]);
        const events = (await store.listEvents({ count: 10 })).items;
        assert.deepEqual(events.map((e) => [e.state, e.time]), [['DELIVERED', T + 2], ['ACTIVE', T + 1], ['CREATED', T]]);
        for (const e of events) assert.equal(e.spec.messageId, s.messageId);
      });

      it('pages with a cursor: no duplicates, no gaps, no cursor on the last page', async () => {
        const specs = Array.from({ length: 7 }, (_, i) => spec({ createdAt: T + i }));
        for (const [i, s] of specs.entries()) await store.enqueue([{ spec: s }], T + i);
        const pages = await allPages(store, { count: 3 });
        assert.deepEqual(pages.map((p) => p.length), [3, 3, 1]);
        assert.deepEqual(pages.flat().map((e) => e.spec.messageId), specs.map((s) => s.messageId).reverse());
        // An exact multiple of count: the last full page carries no cursor.
        const exact = await allPages(store, { count: 7 });
        assert.deepEqual(exact.map((p) => p.length), [7]);
      });

      it('keeps paging stable while new events arrive between pages', async () => {
        const specs = Array.from({ length: 4 }, () => spec());
        for (const [i, s] of specs.entries()) await store.enqueue([{ spec: s }], T + i);
        const first = await store.listEvents({ count: 2 });
        assert.ok(first.cursor !== undefined);
        await store.enqueue([{ spec: spec() }], T + 10);
        const second = await store.listEvents({ count: 2, cursor: first.cursor });
        assert.deepEqual(
          [...first.items, ...second.items].map((e) => e.spec.messageId),
          specs.map((s) => s.messageId).reverse(),
        );
        assert.equal(second.cursor, undefined);
      });

      it('filters by message fields, and dates on the event time', async () => {
        const a = spec({ url: 'https://a.example/p1', labels: ['l1'], callerIp: '10.0.0.1', topicName: 't1' });
        const b = spec({ url: 'https://b.example/p2', labels: ['l2'], callerIp: '10.0.0.2', queueName: 'q2' });
        await enqueueSpecs(store, [a, b], T);
        const claimed = await store.claimDue({ now: T + 1000, limit: 10, leaseMs: LEASE_MS });
        await store.settle(claimed.map((c) => ack(leaseOf(c), T + 2000)));
        const idsOf = (events: LogEvent[]): string[] => [...new Set(events.map((e) => e.spec.messageId))].sort();
        assert.deepEqual(idsOf(await eventsWhere(store, { url: ['https://a.example/p1'] })), [a.messageId]);
        assert.deepEqual(idsOf(await eventsWhere(store, { label: ['l2'] })), [b.messageId]);
        assert.deepEqual(idsOf(await eventsWhere(store, { callerIp: ['10.0.0.1'] })), [a.messageId]);
        assert.deepEqual(idsOf(await eventsWhere(store, { host: ['b.example'] })), [b.messageId]);
        assert.deepEqual(idsOf(await eventsWhere(store, { path: ['/p1'] })), [a.messageId]);
        assert.deepEqual(idsOf(await eventsWhere(store, { topicName: ['t1'] })), [a.messageId]);
        assert.deepEqual(idsOf(await eventsWhere(store, { queueName: ['q2'] })), [b.messageId]);
        assert.deepEqual(idsOf(await eventsWhere(store, { label: ['l1', 'l2'] })), sorted([a.messageId, b.messageId]));
        assert.deepEqual(await eventsWhere(store, { label: ['l1'], callerIp: ['10.0.0.2'] }), [], 'keys are AND-ed');
        const window = await eventsWhere(store, { fromDate: T + 1000, toDate: T + 1000 });
        assert.deepEqual(window.map((e) => e.state), ['ACTIVE', 'ACTIVE'], 'dates are inclusive bounds on event time');
        const from = await eventsWhere(store, { fromDate: T + 1500 });
        assert.deepEqual(from.map((e) => e.state), ['DELIVERED', 'DELIVERED']);
      });

      it('filters by states, IN_PROGRESS meaning ACTIVE, RETRY and ERROR', async () => {
        const [a, b] = [spec(), spec()];
        await enqueueSpecs(store, [a, b]);
        const claimed = await store.claimDue({ now: T, limit: 10, leaseMs: LEASE_MS });
        const byId = new Map(claimed.map((c) => [c.spec.messageId, c]));
        await store.settle([
          retry(leaseOf(byId.get(a.messageId)!), T + 1, T + 100),
          ack(leaseOf(byId.get(b.messageId)!), T + 1),
        ]);
        const statesWhere = async (states: LogState[]): Promise<LogState[]> =>
          (await store.listEvents({ states, count: 100 })).items.map((e) => e.state).sort();
        assert.deepEqual(await statesWhere(['CREATED']), ['CREATED', 'CREATED']);
        assert.deepEqual(await statesWhere(['DELIVERED', 'RETRY']), ['DELIVERED', 'RETRY']);
        // The port types states as LogState[] but documents IN_PROGRESS as a filter alias.
        assert.deepEqual(await statesWhere(['IN_PROGRESS' as LogState]), ['ACTIVE', 'ACTIVE', 'ERROR', 'RETRY']);
      });

      it('selects by message ids, paging too', async () => {
        const [a, b, c] = [spec(), spec(), spec()];
        await enqueueSpecs(store, [a, b, c]);
        await store.claimDue({ now: T, limit: 10, leaseMs: LEASE_MS });
        const pages = await allPages(store, { messageIds: [a.messageId, c.messageId], count: 3 });
        const events = pages.flat();
        assert.equal(events.length, 4);
        assert.deepEqual([...new Set(events.map((e) => e.spec.messageId))].sort(), sorted([a.messageId, c.messageId]));
      });
    });

    describe('dead letters', () => {
      it('lists oldest first with cursors, no duplicates or gaps, no cursor on the last page', async () => {
        const dlqIds: string[] = [];
        for (let i = 0; i < 5; i++) dlqIds.push(await toDeadLetter(store, spec({ createdAt: T + i * 10, notBefore: T + i * 10 }), T + i * 10 + 1));
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.listDeadLetters(cursor === undefined ? { filter: {}, count: 2 } : { filter: {}, cursor, count: 2 });
          seen.push(...page.items.map((d) => d.dlqId));
          if (page.cursor !== undefined) assert.equal(page.items.length, 2);
          cursor = page.cursor;
          pages++;
        } while (cursor !== undefined && pages < 10);
        assert.equal(pages, 3);
        assert.deepEqual(seen, dlqIds);
        const byIds = await store.listDeadLetters({ dlqIds: [dlqIds[3]!, dlqIds[1]!, 'missing'] });
        assert.deepEqual(byIds.items.map((d) => d.dlqId).sort(), sorted([dlqIds[1]!, dlqIds[3]!]));
        assert.equal(byIds.cursor, undefined);
      });

      it('filters by response status, message id, url, label and dates', async () => {
        const a = spec({ url: 'https://a.example/x', labels: ['la'], createdAt: T, notBefore: T });
        const b = spec({ url: 'https://b.example/y', labels: ['lb'], createdAt: T + 50_000, notBefore: T + 50_000 });
        const dlqA = await toDeadLetter(store, a, T + 10, failure(500));
        const dlqB = await toDeadLetter(store, b, T + 50_010, failure(404));
        assert.deepEqual(await dlqIdsWhere(store, { responseStatus: [404] }), [dlqB]);
        assert.deepEqual(await dlqIdsWhere(store, { responseStatus: [404, 500] }), sorted([dlqA, dlqB]));
        assert.deepEqual(await dlqIdsWhere(store, { messageId: [a.messageId] }), [dlqA]);
        assert.deepEqual(await dlqIdsWhere(store, { url: ['https://b.example/y'] }), [dlqB]);
        assert.deepEqual(await dlqIdsWhere(store, { label: ['la'] }), [dlqA]);
        assert.deepEqual(await dlqIdsWhere(store, { label: ['la'], responseStatus: [404] }), [], 'keys are AND-ed');
        // Message creation and DLQ time fall on the same side of each bound here.
        assert.deepEqual(await dlqIdsWhere(store, { fromDate: T + 40_000 }), [dlqB]);
        assert.deepEqual(await dlqIdsWhere(store, { toDate: T + 40_000 }), [dlqA]);
      });

      it('getDeadLetter answers undefined for an unknown id', async () => {
        assert.equal(await store.getDeadLetter(newDlqId(T)), undefined);
      });

      it('deletes by ids, counting only entries that existed', async () => {
        const one = await toDeadLetter(store, spec(), T + 1);
        const two = await toDeadLetter(store, spec({ notBefore: T + 2 }), T + 2);
        assert.deepEqual(await store.deleteDeadLetters({ dlqIds: [one, 'missing'] }), { deleted: 1 });
        assert.deepEqual(await store.deleteDeadLetters({ dlqIds: [one] }), { deleted: 0 });
        assert.equal(await store.getDeadLetter(one), undefined);
        assert.ok(await store.getDeadLetter(two));
        assert.equal((await store.stats()).deadLetters, 1);
      });

      it('deletes by filter in pages, with a cursor while more may match', async () => {
        const keep = await toDeadLetter(store, spec({ labels: ['keep'] }), T);
        for (let i = 1; i <= 5; i++) await toDeadLetter(store, spec({ labels: ['drop'], notBefore: T + i }), T + i);
        let cursor: string | undefined;
        let deleted = 0;
        let rounds = 0;
        do {
          const result = await store.deleteDeadLetters({ filter: { label: ['drop'] }, count: 2, ...(cursor ? { cursor } : {}) });
          assert.ok(result.deleted <= 2);
          deleted += result.deleted;
          cursor = result.cursor;
          rounds++;
        } while (cursor !== undefined && rounds < 10);
        assert.equal(deleted, 5);
        assert.equal(cursor, undefined);
        assert.deepEqual((await store.listDeadLetters({ filter: {}, count: 100 })).items.map((d) => d.dlqId), [keep]);
      });

      it('replays an entry once: removed, a new pending message; a second replay answers undefined', async () => {
        const original = spec({ body: allBytes() });
        const dlqId = await toDeadLetter(store, original, T + 10);
        const replay = spec({ ...original, messageId: newMessageId(), createdAt: T + 20, notBefore: T + 20 });
        const [result] = await store.replayDeadLetters([{ dlqId, message: { spec: replay } }], T + 20);
        assert.deepEqual(result, { messageId: replay.messageId, deduplicated: false });
        assert.equal(await store.getDeadLetter(dlqId), undefined);
        const record = await store.getMessage(replay.messageId);
        assert.equal(record?.state, 'pending');
        assert.deepEqual(record?.spec.body, allBytes());
        assert.deepEqual(await statesOf(store, replay.messageId), ['CREATED']);
        const again = spec({ ...original, messageId: newMessageId() });
        assert.deepEqual(await store.replayDeadLetters([{ dlqId, message: { spec: again } }], T + 30), [undefined]);
        assert.equal(await store.getMessage(again.messageId), undefined);
        assert.equal((await store.stats()).deadLetters, 0);
      });
    });

    describe('stats, purge, credentials, ping', () => {
      it('counts pending (due or not), active and dead letters', async () => {
        assert.deepEqual(await store.stats(), { pending: 0, active: 0, deadLetters: 0 });
        await toDelivered(store, spec(), T);
        await toDeadLetter(store, spec({ notBefore: T + 1 }), T + 1);
        const canceled = spec({ notBefore: T + 1_000_000 });
        const [active, dueLater, due] = [spec({ notBefore: T + 2 }), spec({ notBefore: T + 1_000_000 }), spec({ notBefore: T + 3 })];
        await enqueueSpecs(store, [active], T + 2);
        await claimOnly(store, active.messageId, T + 2);
        await enqueueSpecs(store, [dueLater, due, canceled], T + 3);
        await store.cancel({ messageIds: [canceled.messageId] }, T + 4);
        assert.deepEqual(await store.stats(), { pending: 2, active: 1, deadLetters: 1 });
      });

      it('purges old finished messages, their events, old DLQ entries and dedup keys; keeps the rest', async () => {
        const cutoff = T + 10_000;
        const oldDelivered = spec();
        await toDelivered(store, oldDelivered, T + 100);
        const oldInDlq = spec({ notBefore: T + 200 });
        const keptDlqId = await toDeadLetter(store, oldInDlq, T + 200);
        const recentDelivered = spec({ createdAt: T + 20_000, notBefore: T + 20_000 });
        await toDelivered(store, recentDelivered, T + 20_000);
        const pending = spec({ notBefore: T + 50_000 });
        await store.enqueue([{ spec: pending, dedup: { key: 'live', expiresAt: T + 100_000 } }], T + 300);
        await store.enqueue([{ spec: spec({ notBefore: T + 50_000 }), dedup: { key: 'old', expiresAt: T + 400 } }], T + 300);

        const result = await store.purge({ logsBefore: cutoff, deadLettersBefore: T + 150, dedupBefore: cutoff });
        assert.equal(result.deadLetters, 0, 'the DLQ entry is newer than deadLettersBefore');
        assert.ok(result.messages >= 1);
        assert.ok(result.events >= 3);
        assert.deepEqual(await statesOf(store, oldDelivered.messageId), []);
        assert.deepEqual(await statesOf(store, recentDelivered.messageId), ['CREATED', 'ACTIVE', 'DELIVERED']);
        const entry = await store.getDeadLetter(keptDlqId);
        assert.deepEqual(entry?.spec, oldInDlq, 'a message still in the DLQ is kept whole');
        assert.equal((await store.getMessage(pending.messageId))?.state, 'pending');
        assert.deepEqual(await statesOf(store, pending.messageId), ['CREATED'], 'an unfinished message keeps its log');
        // Dedup keys are observable only by enqueueing inside their window again.
        const [live] = await store.enqueue([{ spec: spec(), dedup: { key: 'live', expiresAt: T + 100_000 } }], T + 350);
        assert.deepEqual(live, { messageId: pending.messageId, deduplicated: true });
        const reuse = spec();
        const [old] = await store.enqueue([{ spec: reuse, dedup: { key: 'old', expiresAt: T + 400 } }], T + 350);
        assert.deepEqual(old, { messageId: reuse.messageId, deduplicated: false }, 'a purged key is forgotten');

        const claimed = await store.claimDue({ now: T + 50_000, limit: 1000, leaseMs: LEASE_MS });
        assert.ok(ids(claimed).includes(pending.messageId));
        const second = await store.purge({ logsBefore: cutoff, deadLettersBefore: cutoff, dedupBefore: cutoff });
        assert.equal(second.deadLetters, 1);
        assert.equal(await store.getDeadLetter(keptDlqId), undefined);
        assert.equal((await store.getMessage(pending.messageId))?.state, 'active', 'an in-flight message survives a purge');
        assert.deepEqual(await store.settle(claimed.map((c) => ack(leaseOf(c), T + 50_001))), claimed.map(() => 'settled'));
      });

      it('ensureCredentials stores the first proposal and returns it ever after', async () => {
        const first = { token: newToken(), currentSigningKey: newSigningKey(), nextSigningKey: newSigningKey() };
        assert.deepEqual(await store.ensureCredentials(first), first);
        const second = { token: newToken(), currentSigningKey: newSigningKey(), nextSigningKey: newSigningKey() };
        assert.deepEqual(await store.ensureCredentials(second), first);
      });

      it('rotateSigningKeys moves next to current and installs the fresh next', async () => {
        const creds = { token: newToken(), currentSigningKey: newSigningKey(), nextSigningKey: newSigningKey() };
        await store.ensureCredentials(creds);
        const fresh = newSigningKey();
        assert.deepEqual(await store.rotateSigningKeys(fresh), { current: creds.nextSigningKey, next: fresh });
        const now = await store.ensureCredentials({ token: newToken(), currentSigningKey: 'x', nextSigningKey: 'y' });
        assert.deepEqual(now, { token: creds.token, currentSigningKey: creds.nextSigningKey, nextSigningKey: fresh });
      });

      it('ping resolves on an open store', async () => {
        await store.ping();
      });
    });

    describe('bodies', () => {
      it('round-trips binary and empty bodies byte for byte', async () => {
        const binary = spec({ body: allBytes(), headers: { 'Content-Type': 'application/octet-stream' } });
        const empty = spec({ body: new Uint8Array(0), notBefore: T + 1 });
        await enqueueSpecs(store, [binary, empty]);
        assert.deepEqual((await store.getMessage(binary.messageId))?.spec.body, allBytes());
        assert.deepEqual((await store.getMessage(empty.messageId))?.spec.body, new Uint8Array(0));
        const claimed = await store.claimDue({ now: T + 1, limit: 10, leaseMs: LEASE_MS });
        for (const c of claimed) {
          const expected = c.spec.messageId === binary.messageId ? allBytes() : new Uint8Array(0);
          assert.deepEqual(c.spec.body, expected);
        }
        const byId = new Map(claimed.map((c) => [c.spec.messageId, c]));
        await store.settle([
          { ...retry(leaseOf(byId.get(binary.messageId)!), T + 2, T + 3), response: failure(500, allBytes()) },
        ]);
        const errorEvent = (await store.listEvents({ messageIds: [binary.messageId], states: ['ERROR'], count: 1 })).items[0];
        assert.deepEqual(errorEvent?.spec.body, allBytes());
        assert.deepEqual(errorEvent?.response?.body, allBytes());
      });
    });

    describe('reopening', () => {
      it('keeps messages, events, DLQ entries and credentials across a reopen', async (t) => {
        if (!sut.reopen) return t.skip('this store cannot be reopened in a test');
        const creds = { token: newToken(), currentSigningKey: newSigningKey(), nextSigningKey: newSigningKey() };
        await store.ensureCredentials(creds);
        const pending = spec({ notBefore: T + 1_000_000, body: allBytes() });
        await store.enqueue([{ spec: pending }], T);
        const dlqId = await toDeadLetter(store, spec({ notBefore: T + 1 }), T + 1);
        const reopened = await sut.reopen();
        assert.deepEqual((await reopened.getMessage(pending.messageId))?.spec, pending);
        assert.deepEqual(await statesOf(reopened, pending.messageId), ['CREATED']);
        assert.ok(await reopened.getDeadLetter(dlqId));
        assert.deepEqual(await reopened.ensureCredentials({ token: 'x', currentSigningKey: 'y', nextSigningKey: 'z' }), creds);
      });

      it('an exclusive store releases the previous process’s leases on open; others wait for expiry', async (t) => {
        if (!sut.reopen) return t.skip('this store cannot be reopened in a test');
        const s = spec();
        await store.enqueue([{ spec: s }], T);
        const before = await claimOnly(store, s.messageId, T, 10 * 60_000);
        const reopened = await sut.reopen();
        const request = { now: T + 1, limit: 10, leaseMs: LEASE_MS };
        if (reopened.capabilities.exclusive) {
          const [again] = await reopened.claimDue(request);
          assert.equal(again?.spec.messageId, s.messageId, 'claimable at once, same message id');
          assert.deepEqual(await reopened.settle([ack(leaseOf(before), T + 2)]), ['leaseLost']);
          assert.deepEqual(await reopened.settle([ack(leaseOf(again), T + 2)]), ['settled']);
        } else {
          assert.deepEqual(await reopened.claimDue(request), [], 'the lease is still held');
          assert.deepEqual(ids(await reopened.claimDue({ ...request, now: T + 10 * 60_000 + 1 })), [s.messageId]);
        }
      });
    });

    // Queues, flow control, nextDueAt over both, URL groups and schedules.
    runTopologyCases({ store: () => store, T, leaseMs: LEASE_MS, spec, leaseOf, ack, retry, deadLetter, statesOf });

    // Instance groups and their instances (the gateway's registry).
    runInstanceCases({ store: () => store, reopen: () => sut.reopen?.(), T });

    // Work keys (the worker kit's shared de-duplication).
    runWorkKeyCases({ store: () => store, T });

    // Task streams (per-task event logs).
    runStreamCases({ store: () => store, reopen: () => sut.reopen?.(), another: () => sut.another?.(), T });
  });
}
