/**
 * Store contract cases for what decides when a message may start (queues,
 * flow-control keys, nextDueAt over both) and for the records that make
 * messages (URL groups, schedules). runStoreContract calls this inside its
 * suite, so every case runs on that suite's fresh, empty store.
 *
 * The fixtures come in through `ContractKit` rather than by import, so the
 * two contract files do not import each other.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type {
  AttemptResponse,
  ClaimedMessage,
  FlowControlConfig,
  LogState,
  MessageSpec,
  NewMessage,
} from '../../src/core/message.js';
import type { PublishOptions } from '../../src/core/publish-options.js';
import type { ScheduleDefinition, ScheduleTemplate } from '../../src/core/schedule.js';
import type { Endpoint, UrlGroup } from '../../src/core/url-group.js';
import type { Lease, Settlement, Store } from '../../src/store/port.js';

export interface ContractKit {
  /** The current case's store (set by the suite's beforeEach). */
  store: () => Store;
  /** The base time every case counts from. */
  T: number;
  leaseMs: number;
  spec: (overrides?: Partial<MessageSpec>) => MessageSpec;
  leaseOf: (claimed: ClaimedMessage) => Lease;
  ack: (lease: Lease, at: number, followUps?: NewMessage[]) => Settlement;
  retry: (lease: Lease, at: number, nextAt: number, followUps?: NewMessage[]) => Settlement;
  deadLetter: (lease: Lease, at: number, response?: AttemptResponse) => Settlement;
  statesOf: (store: Store, messageId: string) => Promise<LogState[]>;
}

const sortedIds = (claimed: ClaimedMessage[]): string[] => claimed.map((c) => c.spec.messageId).sort();
const idsOf = (specs: MessageSpec[]): string[] => specs.map((s) => s.messageId).sort();

/**
 * A group's endpoints in a comparable order (the port promises no order).
 * Compared strictly, so an unset name must be absent, not undefined or null.
 */
const endpointsOf = (group: UrlGroup | undefined): Endpoint[] | undefined =>
  group && [...group.endpoints].sort((a, b) => a.url.localeCompare(b.url) || (a.name ?? '').localeCompare(b.name ?? ''));

/**
 * The port types Endpoint.url as required, yet removal matches "every field
 * given" and the API removes by name alone (spec §8), so a name-only item is
 * what the HTTP layer must pass down.
 */
const byName = (name: string): Endpoint => ({ name }) as Endpoint;

export function runTopologyCases(kit: ContractKit): void {
  const { T, leaseMs, spec, leaseOf, ack, retry, deadLetter } = kit;
  const store = (): Store => kit.store();
  const statesOf = (messageId: string): Promise<LogState[]> => kit.statesOf(store(), messageId);
  const claim = (now: number, limit = 100): Promise<ClaimedMessage[]> => store().claimDue({ now, limit, leaseMs });
  const claimIds = async (now: number, limit = 100): Promise<string[]> => sortedIds(await claim(now, limit));
  /** Claims exactly this message (the case arranged that nothing else may start) and returns it. */
  const claimOne = async (messageId: string, now: number): Promise<ClaimedMessage> => {
    const claimed = await claim(now);
    assert.deepEqual(sortedIds(claimed), [messageId], 'exactly this message is claimed');
    return claimed[0]!;
  };
  const settled = async (settlement: Settlement): Promise<void> => {
    assert.deepEqual(await store().settle([settlement]), ['settled']);
  };
  /** Enqueues one call per message, so acceptance order is the array's order. */
  const enqueueEach = async (specs: MessageSpec[], at = T): Promise<void> => {
    for (const s of specs) await store().enqueue([{ spec: s }], at);
  };
  const queued = (queueName: string, overrides: Partial<MessageSpec> = {}): MessageSpec => spec({ queueName, ...overrides });
  const keyed = (flowControl: FlowControlConfig, overrides: Partial<MessageSpec> = {}): MessageSpec =>
    spec({ flowControl, ...overrides });

  describe('queues', () => {
    it('enqueueing into an unknown queue creates it: parallelism 1, unpaused, the message counted in lag', async () => {
      const s = queued('q');
      await store().enqueue([{ spec: s }], T + 1);
      assert.deepEqual(await store().getQueue('q'), {
        name: 'q', parallelism: 1, paused: false, lag: 1, createdAt: T + 1, updatedAt: T + 1,
      });
      assert.equal((await store().getMessage(s.messageId))?.state, 'pending', 'a waiting message reads as pending');
    });

    it('claimDue admits a due queued message and leases it in the same call', async () => {
      const s = queued('q');
      await store().enqueue([{ spec: s }], T);
      await claimOne(s.messageId, T);
      assert.deepEqual(await statesOf(s.messageId), ['CREATED', 'ACTIVE']);
    });

    it('with parallelism 1, the second message is not claimed while the first is in flight', async () => {
      const [first, second] = [queued('q'), queued('q')];
      await enqueueEach([first, second]);
      await claimOne(first.messageId, T);
      assert.deepEqual(await claim(T + 1), []);
      assert.equal((await store().getMessage(second.messageId))?.state, 'pending');
    });

    it('with parallelism 1, the second message is not claimed while the first waits for its retry', async () => {
      const [first, second] = [queued('q'), queued('q')];
      await enqueueEach([first, second]);
      const attempt = await claimOne(first.messageId, T);
      await settled(retry(leaseOf(attempt), T + 1, T + 100));
      assert.deepEqual(await claim(T + 50), [], 'the retrying message keeps its slot');
      await claimOne(first.messageId, T + 100);
    });

    it('with parallelism 1, the second message is claimed once the first is acked', async () => {
      const [first, second] = [queued('q'), queued('q')];
      await enqueueEach([first, second]);
      const attempt = await claimOne(first.messageId, T);
      await settled(ack(leaseOf(attempt), T + 1));
      await claimOne(second.messageId, T + 2);
    });

    it('with parallelism 1, the second message is claimed once the first is dead-lettered', async () => {
      const [first, second] = [queued('q'), queued('q')];
      await enqueueEach([first, second]);
      const attempt = await claimOne(first.messageId, T);
      await settled(deadLetter(leaseOf(attempt), T + 1));
      await claimOne(second.messageId, T + 2);
    });

    it('admits in the order messages fell due, then in the order they were accepted', async () => {
      const late = queued('q', { notBefore: T + 200 });
      const early1 = queued('q', { notBefore: T + 100 });
      const early2 = queued('q', { notBefore: T + 100 });
      await enqueueEach([late, early1, early2]);
      for (const [i, next] of [early1, early2, late].entries()) {
        const attempt = await claimOne(next.messageId, T + 300 + i * 10);
        await settled(ack(leaseOf(attempt), T + 301 + i * 10));
      }
    });

    it('with parallelism 3, at most 3 of 10 are claimed, the first accepted; each finish admits the next', async () => {
      await store().upsertQueue({ name: 'q', parallelism: 3, paused: false }, T);
      const specs = Array.from({ length: 10 }, () => queued('q'));
      await enqueueEach(specs);
      const claimed = await claim(T);
      assert.deepEqual(sortedIds(claimed), idsOf(specs.slice(0, 3)));
      assert.deepEqual(await claim(T + 1), []);
      const byId = new Map(claimed.map((c) => [c.spec.messageId, c]));
      await settled(ack(leaseOf(byId.get(specs[0]!.messageId)!), T + 2));
      await claimOne(specs[3]!.messageId, T + 3);
    });

    it('does not admit a delayed queued message before it is due', async () => {
      const s = queued('q', { notBefore: T + 5_000 });
      await store().enqueue([{ spec: s }], T);
      assert.deepEqual(await claim(T + 4_999), []);
      await claimOne(s.messageId, T + 5_000);
    });

    it('a paused queue admits nothing; resuming admits from the oldest', async () => {
      assert.equal(await store().setQueuePaused('q', true, T), false, 'unknown queue');
      const [first, second] = [queued('q'), queued('q')];
      await enqueueEach([first, second]);
      assert.equal(await store().setQueuePaused('q', true, T + 1), true);
      assert.equal((await store().getQueue('q'))?.paused, true);
      assert.deepEqual(await claim(T + 2), []);
      assert.equal(await store().setQueuePaused('q', false, T + 3), true);
      assert.equal((await store().getQueue('q'))?.paused, false);
      await claimOne(first.messageId, T + 4);
    });

    it('pausing a queue lets an admitted message finish its retries, and holds the next', async () => {
      const [first, second] = [queued('q'), queued('q')];
      await enqueueEach([first, second]);
      const attempt = await claimOne(first.messageId, T);
      await settled(retry(leaseOf(attempt), T + 1, T + 100));
      await store().setQueuePaused('q', true, T + 2);
      const again = await claimOne(first.messageId, T + 100);
      await settled(ack(leaseOf(again), T + 101));
      assert.deepEqual(await claim(T + 102), []);
      assert.equal((await store().getMessage(second.messageId))?.state, 'pending');
    });

    it('upsertQueue sets parallelism, which enqueueing keeps and a later upsert changes; createdAt stays', async () => {
      await store().upsertQueue({ name: 'q', parallelism: 2, paused: false }, T);
      const specs = [queued('q'), queued('q'), queued('q')];
      await enqueueEach(specs, T + 1);
      assert.deepEqual(await claimIds(T + 1), idsOf(specs.slice(0, 2)));
      await store().upsertQueue({ name: 'q', parallelism: 3, paused: false }, T + 10);
      const record = await store().getQueue('q');
      assert.deepEqual(
        record && { parallelism: record.parallelism, createdAt: record.createdAt, updatedAt: record.updatedAt },
        { parallelism: 3, createdAt: T, updatedAt: T + 10 },
      );
      await claimOne(specs[2]!.messageId, T + 11);
    });

    it('getQueue and listQueues report lag: waiting plus admitted messages until they finish', async () => {
      const specs = [queued('q'), queued('q'), queued('q')];
      await enqueueEach(specs);
      await store().enqueue([{ spec: queued('r', { notBefore: T + 1_000_000 }) }], T);
      const lag = async (name: string): Promise<number | undefined> => (await store().getQueue(name))?.lag;
      assert.equal(await lag('q'), 3);
      const attempt = await claimOne(specs[0]!.messageId, T);
      assert.equal(await lag('q'), 3, 'an admitted message in flight still counts');
      await settled(retry(leaseOf(attempt), T + 1, T + 2));
      assert.equal(await lag('q'), 3, 'a message waiting for its retry still counts');
      const again = await claim(T + 2, 1);
      await settled(ack(leaseOf(again[0]!), T + 3));
      assert.equal(await lag('q'), 2);
      const listed = (await store().listQueues()).map((q) => ({ name: q.name, lag: q.lag, parallelism: q.parallelism }));
      listed.sort((a, b) => a.name.localeCompare(b.name));
      assert.deepEqual(listed, [
        { name: 'q', lag: 2, parallelism: 1 },
        { name: 'r', lag: 1, parallelism: 1 },
      ]);
      assert.equal(await store().getQueue('unknown'), undefined);
    });

    it('deleteQueue cancels waiting messages, lets admitted ones finish, and answers false for an unknown queue', async () => {
      const [admitted, waiting] = [queued('q'), queued('q')];
      await enqueueEach([admitted, waiting]);
      const attempt = await claimOne(admitted.messageId, T);
      assert.equal(await store().deleteQueue('q', T + 5), true);
      assert.equal(await store().getQueue('q'), undefined);
      assert.deepEqual(await store().listQueues(), []);
      assert.equal(await store().getMessage(waiting.messageId), undefined);
      const states = await statesOf(waiting.messageId);
      assert.equal(states.at(-1), 'CANCELED', `waiting message canceled, got ${states.join(',')}`);
      assert.equal((await store().getMessage(admitted.messageId))?.state, 'active');
      await settled(ack(leaseOf(attempt), T + 6));
      assert.deepEqual(await claim(T + 7), []);
      assert.equal(await store().deleteQueue('q', T + 8), false);
      assert.equal(await store().deleteQueue('never-was', T + 8), false);
    });

    it('a callback given the queue slot holds it, through its own retries, until it is settled', async () => {
      const [first, second] = [queued('q'), queued('q')];
      await enqueueEach([first, second]);
      const attempt = await claimOne(first.messageId, T);
      const callback = spec({
        kind: 'callback', sourceMessageId: first.messageId, url: 'https://cb.example/done', createdAt: T + 10, notBefore: T + 10,
      });
      await settled(ack(leaseOf(attempt), T + 10, [{ spec: callback, queueSlot: 'q' }]));
      const cbAttempt = await claimOne(callback.messageId, T + 11);
      await settled(retry(leaseOf(cbAttempt), T + 12, T + 20));
      assert.deepEqual(await claim(T + 15), [], 'the callback waiting for its retry keeps the slot');
      const cbAgain = await claimOne(callback.messageId, T + 20);
      await settled(ack(leaseOf(cbAgain), T + 21));
      await claimOne(second.messageId, T + 22);
    });

    it('a callback that also names the queue takes the slot instead of waiting behind the queue', async () => {
      // The engine may copy the source's queueName onto its callbacks (for log filters); queueSlot must still win.
      const [first, second] = [queued('q'), queued('q')];
      await enqueueEach([first, second]);
      const attempt = await claimOne(first.messageId, T);
      const callback = queued('q', { kind: 'callback', sourceMessageId: first.messageId, createdAt: T + 10, notBefore: T + 10 });
      await settled(ack(leaseOf(attempt), T + 10, [{ spec: callback, queueSlot: 'q' }]));
      const cbAttempt = await claimOne(callback.messageId, T + 11);
      await settled(ack(leaseOf(cbAttempt), T + 12));
      await claimOne(second.messageId, T + 13);
    });

    it('a failure callback given the queue slot holds it until it is settled', async () => {
      const [first, second] = [queued('q'), queued('q')];
      await enqueueEach([first, second]);
      const attempt = await claimOne(first.messageId, T);
      const onFail = spec({ kind: 'failure_callback', sourceMessageId: first.messageId, createdAt: T + 10, notBefore: T + 10 });
      await settled({ ...deadLetter(leaseOf(attempt), T + 10), followUps: [{ spec: onFail, queueSlot: 'q' }] });
      const cbAttempt = await claimOne(onFail.messageId, T + 11);
      await settled(ack(leaseOf(cbAttempt), T + 12));
      await claimOne(second.messageId, T + 13);
    });

    it('cancel of a waiting message cancels it: it never starts and leaves the lag', async () => {
      const [first, second] = [queued('q'), queued('q')];
      await enqueueEach([first, second]);
      const attempt = await claimOne(first.messageId, T);
      assert.equal(await store().cancel({ messageIds: [second.messageId] }, T + 1), 1);
      assert.equal(await store().getMessage(second.messageId), undefined);
      assert.equal((await statesOf(second.messageId)).at(-1), 'CANCELED');
      await settled(ack(leaseOf(attempt), T + 2));
      assert.deepEqual(await claim(T + 3), []);
      assert.equal((await store().getQueue('q'))?.lag, 0);
    });

    it('enqueue with handoff never hands off a queued or a flow-controlled message', async () => {
      const inQueue = queued('q');
      const withKey = keyed({ key: 'k', parallelism: 5 });
      const plain = spec();
      const results = await store().enqueue([{ spec: inQueue }, { spec: withKey }, { spec: plain }], T, { limit: 10, leaseMs });
      assert.deepEqual(results.map((r) => typeof r.leaseId), ['undefined', 'undefined', 'string']);
      assert.equal((await store().getMessage(inQueue.messageId))?.state, 'pending');
      assert.equal((await store().getMessage(withKey.messageId))?.state, 'pending');
      assert.equal((await store().getMessage(plain.messageId))?.state, 'active');
      assert.deepEqual(await claimIds(T), idsOf([inQueue, withKey]));
    });
  });

  describe('flow control', () => {
    it('never leases more than the key’s parallelism at once, across destinations', async () => {
      const specs = Array.from({ length: 5 }, (_, i) =>
        keyed({ key: 'k', parallelism: 2 }, { url: `https://d${i}.example/x`, notBefore: T + i }),
      );
      await enqueueEach(specs);
      const claimed = await claim(T + 10);
      assert.deepEqual(sortedIds(claimed), idsOf(specs.slice(0, 2)));
      assert.deepEqual(await claim(T + 11), []);
      await settled(ack(leaseOf(claimed[0]!), T + 12));
      assert.equal((await claim(T + 13)).length, 1);
      assert.equal((await store().getFlowControl('k', T + 13))?.parallelismCount, 2);
    });

    it('a message waiting for its retry does not hold one of the key’s parallel slots', async () => {
      const [first, second] = [keyed({ key: 'k', parallelism: 1 }), keyed({ key: 'k', parallelism: 1 }, { notBefore: T + 1 })];
      await enqueueEach([first, second]);
      const attempt = await claimOne(first.messageId, T);
      await settled(retry(leaseOf(attempt), T + 1, T + 1_000));
      await claimOne(second.messageId, T + 2);
    });

    it('starts at most rate attempts per period; more once the window has passed', async () => {
      const config = { key: 'k', rate: 3, periodMs: 1_000 };
      const specs = Array.from({ length: 5 }, (_, i) => keyed(config, { notBefore: T - 10 + i }));
      await enqueueEach(specs);
      const first = await claim(T);
      assert.deepEqual(sortedIds(first), idsOf(specs.slice(0, 3)));
      assert.deepEqual(await store().settle(first.map((c) => ack(leaseOf(c), T + 1))), ['settled', 'settled', 'settled']);
      assert.deepEqual(await claim(T + 999), [], 'the window is full though nothing is in flight');
      assert.deepEqual(await claimIds(T + 1_000), idsOf(specs.slice(3)));
      const state = await store().getFlowControl('k', T + 1_000);
      assert.deepEqual(state && [state.rateCount, state.ratePeriodStart], [2, T + 1_000], 'a new window began at its first attempt');
    });

    it('attempts started by separate claims within one window add up against the rate', async () => {
      const config = { key: 'k', rate: 2, periodMs: 1_000 };
      const specs = [0, 1, 2].map((i) => keyed(config, { notBefore: T + i }));
      await enqueueEach(specs);
      await claimOne(specs[0]!.messageId, T);
      await claimOne(specs[1]!.messageId, T + 1);
      assert.deepEqual(await claim(T + 2), []);
      assert.equal((await store().getFlowControl('k', T + 2))?.rateCount, 2);
      await claimOne(specs[2]!.messageId, T + 1_000);
    });

    it('a paused key starts nothing; resuming lets its messages start', async () => {
      const specs = [keyed({ key: 'k', parallelism: 5 }), keyed({ key: 'k', parallelism: 5 })];
      await enqueueEach(specs);
      assert.equal(await store().changeFlowControl('k', { kind: 'pause' }, T), true);
      assert.equal((await store().getFlowControl('k', T))?.paused, true);
      assert.deepEqual(await claim(T + 1), []);
      assert.equal(await store().changeFlowControl('k', { kind: 'resume' }, T + 2), true);
      assert.equal((await store().getFlowControl('k', T + 2))?.paused, false);
      assert.deepEqual(await claimIds(T + 3), idsOf(specs));
    });

    it('a later message’s config becomes the key’s limits', async () => {
      const specs = [
        keyed({ key: 'k', parallelism: 1 }),
        keyed({ key: 'k', parallelism: 1 }),
        keyed({ key: 'k', parallelism: 3 }),
      ];
      await enqueueEach(specs);
      assert.equal((await store().getFlowControl('k', T))?.parallelism, 3);
      assert.deepEqual(await claimIds(T), idsOf(specs));
    });

    it('pinned parallelism ignores later messages’ config; after unpinning it follows them again', async () => {
      const a = keyed({ key: 'k', parallelism: 3 }, { notBefore: T });
      await store().enqueue([{ spec: a }], T);
      assert.equal(await store().changeFlowControl('k', { kind: 'pin', parallelism: 1 }, T + 1), true);
      let state = await store().getFlowControl('k', T + 1);
      assert.deepEqual(state && [state.parallelism, state.pinnedParallelism, state.pinnedRate], [1, true, false]);
      const [b, c] = [keyed({ key: 'k', parallelism: 5 }, { notBefore: T + 1 }), keyed({ key: 'k', parallelism: 5 }, { notBefore: T + 2 })];
      await enqueueEach([b, c], T + 2);
      assert.equal((await store().getFlowControl('k', T + 2))?.parallelism, 1, 'the pin wins');
      await claimOne(a.messageId, T + 3);

      assert.equal(await store().changeFlowControl('k', { kind: 'unpin', parallelism: true, rate: false }, T + 4), true);
      assert.equal((await store().getFlowControl('k', T + 4))?.pinnedParallelism, false);
      const d = keyed({ key: 'k', parallelism: 4 }, { notBefore: T + 3 });
      await store().enqueue([{ spec: d }], T + 5);
      state = await store().getFlowControl('k', T + 5);
      assert.equal(state?.parallelism, 4);
      assert.deepEqual(await claimIds(T + 6), idsOf([b, c, d]));
    });

    it('pinning a rate replaces it, survives later messages and starts the rate count over', async () => {
      const config = { key: 'k', rate: 1, periodMs: 60_000 };
      const specs = Array.from({ length: 4 }, (_, i) => keyed(config, { notBefore: T - 10 + i }));
      await enqueueEach(specs);
      await claimOne(specs[0]!.messageId, T);
      assert.equal(await store().changeFlowControl('k', { kind: 'pin', rate: 2, periodMs: 60_000 }, T + 1), true);
      await store().enqueue([{ spec: keyed({ key: 'k', rate: 10, periodMs: 60_000 }, { notBefore: T + 1_000_000 }) }], T + 2);
      const state = await store().getFlowControl('k', T + 2);
      assert.deepEqual(
        state && { rate: state.rate, periodMs: state.periodMs, pinnedRate: state.pinnedRate, rateCount: state.rateCount },
        { rate: 2, periodMs: 60_000, pinnedRate: true, rateCount: 0 },
      );
      assert.deepEqual(await claimIds(T + 3), idsOf(specs.slice(1, 3)));
    });

    it('resetRate clears the rate count, so the key may start again within the same window', async () => {
      const config = { key: 'k', rate: 1, periodMs: 60_000 };
      const [first, second] = [keyed(config), keyed(config, { notBefore: T + 1 })];
      await enqueueEach([first, second]);
      await claimOne(first.messageId, T + 1);
      assert.equal((await store().getFlowControl('k', T + 1))?.rateCount, 1);
      assert.deepEqual(await claim(T + 2), []);
      assert.equal(await store().changeFlowControl('k', { kind: 'resetRate' }, T + 3), true);
      assert.equal((await store().getFlowControl('k', T + 3))?.rateCount, 0);
      await claimOne(second.messageId, T + 4);
    });

    it('getFlowControl reports the waitlist, counters, window and flags; the period defaults to 1000 ms', async () => {
      const config = { key: 'k', parallelism: 2, rate: 5 };
      const due = Array.from({ length: 4 }, (_, i) => keyed(config, { notBefore: T - 10 + i }));
      await enqueueEach([...due, keyed(config, { notBefore: T + 60_000 })]);
      assert.deepEqual(await store().getFlowControl('k', T), {
        key: 'k', waitListSize: 4, parallelism: 2, parallelismCount: 0, rate: 5, rateCount: 0,
        periodMs: 1_000, ratePeriodStart: 0, paused: false, pinnedParallelism: false, pinnedRate: false,
      });
      assert.equal((await claim(T)).length, 2);
      assert.deepEqual(await store().getFlowControl('k', T), {
        key: 'k', waitListSize: 2, parallelism: 2, parallelismCount: 2, rate: 5, rateCount: 2,
        periodMs: 1_000, ratePeriodStart: T, paused: false, pinnedParallelism: false, pinnedRate: false,
      });
      await store().enqueue([{ spec: keyed({ key: 'only-parallelism', parallelism: 1 }) }], T);
      const other = await store().getFlowControl('only-parallelism', T);
      assert.deepEqual(other && [other.rate, other.periodMs], [undefined, 1_000], 'no rate: unlimited');
    });

    it('an unknown key: getFlowControl answers undefined and every change answers false', async () => {
      assert.equal(await store().getFlowControl('nope', T), undefined);
      for (const change of [
        { kind: 'pause' }, { kind: 'resume' }, { kind: 'resetRate' },
        { kind: 'pin', parallelism: 1 }, { kind: 'unpin', parallelism: true, rate: true },
      ] as const) {
        assert.equal(await store().changeFlowControl('nope', change, T), false, change.kind);
      }
      assert.equal(await store().getFlowControl('nope', T), undefined, 'a change does not create the key');
    });

    it('listFlowControls lists every key with its own waitlist', async () => {
      assert.deepEqual(await store().listFlowControls(T), []);
      await enqueueEach([keyed({ key: 'a', parallelism: 1 }), keyed({ key: 'b', rate: 2 }), keyed({ key: 'b', rate: 2 })]);
      const listed = (await store().listFlowControls(T)).map((s) => [s.key, s.waitListSize] as const);
      listed.sort((x, y) => x[0].localeCompare(y[0]));
      assert.deepEqual(listed, [['a', 1], ['b', 2]]);
    });
  });

  describe('nextDueAt with queues and flow control', () => {
    /** Delivery sleeps until this time, so one at or before `now` would make it spin. */
    const assertNotBlockedNow = (next: number | undefined, now: number): void => {
      assert.ok(next === undefined || next > now, `nextDueAt(${now}) = ${next}: work that cannot start must not be reported as due`);
    };

    it('reports a plain message’s future due time', async () => {
      await store().enqueue([{ spec: spec({ notBefore: T + 5_000 }) }], T);
      assert.equal(await store().nextDueAt(T), T + 5_000);
    });

    it('reports a queued message’s future due time', async () => {
      await store().enqueue([{ spec: queued('q', { notBefore: T + 5_000 }) }], T);
      assert.equal(await store().nextDueAt(T), T + 5_000);
    });

    it('reports when a full rate window reopens', async () => {
      const config = { key: 'k', rate: 1, periodMs: 1_000 };
      const [first, second] = [keyed(config), keyed(config, { notBefore: T + 1 })];
      await enqueueEach([first, second]);
      const attempt = await claimOne(first.messageId, T);
      await settled(ack(leaseOf(attempt), T + 1));
      assert.equal(await store().nextDueAt(T + 1), T + 1_000);
    });

    it('does not report a time at or before now for messages held only by a full queue', async () => {
      const [first, second] = [queued('q'), queued('q')];
      await enqueueEach([first, second]);
      await claimOne(first.messageId, T);
      assertNotBlockedNow(await store().nextDueAt(T + 1), T + 1);
    });

    it('does not report a time at or before now for messages held only by a key’s parallelism', async () => {
      const [first, second] = [keyed({ key: 'k', parallelism: 1 }), keyed({ key: 'k', parallelism: 1 }, { notBefore: T + 1 })];
      await enqueueEach([first, second]);
      await claimOne(first.messageId, T);
      assertNotBlockedNow(await store().nextDueAt(T + 2), T + 2);
    });

    it('does not report a time at or before now for messages held by a paused queue or key', async () => {
      await enqueueEach([queued('q'), keyed({ key: 'k', parallelism: 1 })]);
      await store().setQueuePaused('q', true, T);
      await store().changeFlowControl('k', { kind: 'pause' }, T);
      assertNotBlockedNow(await store().nextDueAt(T + 1), T + 1);
    });
  });

  describe('url groups', () => {
    const A = 'https://a.example/hook';
    const B = 'https://b.example/hook';

    it('addEndpoints creates the group; an unnamed endpoint has no name', async () => {
      await store().addEndpoints('g', [{ name: 'a', url: A }, { url: B }], T);
      const group = await store().getUrlGroup('g');
      assert.deepEqual(group && { name: group.name, createdAt: group.createdAt, updatedAt: group.updatedAt }, {
        name: 'g', createdAt: T, updatedAt: T,
      });
      assert.deepEqual(endpointsOf(group), [{ name: 'a', url: A }, { url: B }]);
    });

    it('adding an endpoint with a known name replaces its URL, keeping the group’s createdAt', async () => {
      await store().addEndpoints('g', [{ name: 'a', url: A }], T);
      await store().addEndpoints('g', [{ name: 'a', url: B }], T + 5);
      const group = await store().getUrlGroup('g');
      assert.deepEqual(endpointsOf(group), [{ name: 'a', url: B }]);
      assert.deepEqual(group && [group.createdAt, group.updatedAt], [T, T + 5]);
    });

    it('an unnamed endpoint is identified by its URL: adding it again makes no duplicate', async () => {
      await store().addEndpoints('g', [{ url: A }], T);
      await store().addEndpoints('g', [{ url: A }, { url: B }], T + 1);
      assert.deepEqual(endpointsOf(await store().getUrlGroup('g')), [{ url: A }, { url: B }]);
    });

    it('getUrlGroup answers undefined for an unknown group; listUrlGroups lists every group', async () => {
      assert.equal(await store().getUrlGroup('nope'), undefined);
      assert.deepEqual(await store().listUrlGroups(), []);
      await store().addEndpoints('g1', [{ url: A }], T);
      await store().addEndpoints('g2', [{ name: 'b', url: B }], T + 1);
      const listed = (await store().listUrlGroups()).map((g) => ({ name: g.name, endpoints: endpointsOf(g) }));
      listed.sort((x, y) => x.name.localeCompare(y.name));
      assert.deepEqual(listed, [
        { name: 'g1', endpoints: [{ url: A }] },
        { name: 'g2', endpoints: [{ name: 'b', url: B }] },
      ]);
    });

    it('removeEndpoints by name removes that endpoint and keeps the group', async () => {
      await store().addEndpoints('g', [{ name: 'a', url: A }, { url: B }], T);
      assert.deepEqual(await store().removeEndpoints('g', [byName('a')], T + 1), { removed: 1, groupDeleted: false });
      assert.deepEqual(endpointsOf(await store().getUrlGroup('g')), [{ url: B }]);
    });

    it('removeEndpoints by URL removes the endpoint with that URL', async () => {
      await store().addEndpoints('g', [{ name: 'a', url: A }, { url: B }], T);
      assert.deepEqual(await store().removeEndpoints('g', [{ url: B }], T + 1), { removed: 1, groupDeleted: false });
      assert.deepEqual(endpointsOf(await store().getUrlGroup('g')), [{ name: 'a', url: A }]);
    });

    it('removing the last endpoint deletes the group', async () => {
      await store().addEndpoints('g', [{ name: 'a', url: A }, { url: B }], T);
      assert.deepEqual(await store().removeEndpoints('g', [byName('a'), { url: B }], T + 1), { removed: 2, groupDeleted: true });
      assert.equal(await store().getUrlGroup('g'), undefined);
      assert.deepEqual(await store().listUrlGroups(), []);
    });

    it('an item that matches nothing answers notFound naming it, and nothing is removed', async () => {
      await store().addEndpoints('g', [{ name: 'a', url: A }, { url: B }], T);
      const missing = byName('zzz');
      assert.deepEqual(await store().removeEndpoints('g', [byName('a'), missing], T + 1), { notFound: missing });
      assert.deepEqual(endpointsOf(await store().getUrlGroup('g')), [{ name: 'a', url: A }, { url: B }]);
      const wrongPair = { name: 'a', url: B };
      assert.deepEqual(await store().removeEndpoints('g', [wrongPair], T + 2), { notFound: wrongPair }, 'every given field must match');
      assert.equal((await store().getUrlGroup('g'))?.endpoints.length, 2);
    });

    it('removeEndpoints on an unknown group answers undefined', async () => {
      assert.equal(await store().removeEndpoints('nope', [{ url: A }], T), undefined);
    });

    it('deleteUrlGroup removes a group and answers false for an unknown one', async () => {
      await store().addEndpoints('g', [{ url: A }], T);
      assert.equal(await store().deleteUrlGroup('g'), true);
      assert.equal(await store().getUrlGroup('g'), undefined);
      assert.equal(await store().deleteUrlGroup('g'), false);
      await store().addEndpoints('g', [{ url: B }], T + 1);
      assert.deepEqual(endpointsOf(await store().getUrlGroup('g')), [{ url: B }], 'a re-created group starts empty');
    });
  });

  describe('schedules', () => {
    const options = (overrides: Partial<PublishOptions> = {}): PublishOptions => ({
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Tenant': 't1' },
      delayMs: 5_000,
      retries: 2,
      retryDelayExpression: '1000',
      timeoutMs: 10_000,
      callback: { url: 'https://cb.example/ok', method: 'POST', headers: {} },
      contentBasedDeduplication: false,
      labels: ['nightly'],
      flowControl: { key: 'sched', parallelism: 1 },
      ...overrides,
    });
    const definition = (
      scheduleId: string,
      template: Partial<ScheduleTemplate> = {},
      cron = '*/5 * * * *',
    ): ScheduleDefinition => ({
      scheduleId,
      cron,
      template: {
        destination: 'https://dest.example/cron',
        options: options(),
        body: new Uint8Array([0, 255, 128, 10, 123]),
        callerIp: '203.0.113.7',
        ...template,
      },
    });
    const tick = (scheduleId: string, trigger: 'cron' | 'manual', at: number): MessageSpec =>
      spec({ scheduleId, scheduleTrigger: trigger, createdAt: at, notBefore: at });
    const fireTick = (scheduleId: string, expectedNextAt: number, nextAt: number, messages: MessageSpec[], at = expectedNextAt) =>
      store().fireSchedules([{ scheduleId, expectedNextAt, nextAt, messages: messages.map((s) => ({ spec: s })) }], at).then(([result]) => result);
    const triggerNow = (scheduleId: string, messages: MessageSpec[], at: number) =>
      store().fireSchedules([{ scheduleId, messages: messages.map((s) => ({ spec: s })) }], at).then(([result]) => result);
    const idsDue = async (now: number, limit = 100): Promise<string[]> =>
      (await store().dueSchedules(now, limit)).map((s) => s.scheduleId);

    it('saveSchedule then getSchedule round-trips the definition, body bytes and queue name', async () => {
      const def = definition('s1', { queueName: 'nightly-q' });
      await store().saveSchedule(def, T + 60_000, T);
      assert.deepEqual(await store().getSchedule('s1'), {
        ...def, paused: false, createdAt: T, updatedAt: T, nextAt: T + 60_000, lastMessageIds: [],
      });
      assert.equal(await store().getSchedule('nope'), undefined);
    });

    it('saving again replaces cron and template, keeping createdAt and the paused state', async () => {
      await store().saveSchedule(definition('s1', { queueName: 'q' }), T + 60_000, T);
      assert.equal(await store().setSchedulePaused('s1', true, undefined, T + 1), true);
      const replacement = definition('s1', { destination: 'https://other.example/', options: options({ retries: 0, labels: [] }) }, '0 * * * *');
      await store().saveSchedule(replacement, T + 3_600_000, T + 2);
      const record = await store().getSchedule('s1');
      assert.ok(record);
      assert.deepEqual({ scheduleId: record.scheduleId, cron: record.cron, template: record.template }, replacement);
      assert.deepEqual([record.createdAt, record.updatedAt, record.paused, record.nextAt], [T, T + 2, true, undefined]);
      assert.deepEqual(await idsDue(T + 10_000_000), [], 'still paused');
    });

    it('saving an unpaused schedule again moves its next tick', async () => {
      await store().saveSchedule(definition('s1'), T + 60_000, T);
      await store().saveSchedule(definition('s1', {}, '0 * * * *'), T + 3_600_000, T + 1);
      assert.equal((await store().getSchedule('s1'))?.nextAt, T + 3_600_000);
    });

    it('listSchedules lists every schedule', async () => {
      assert.deepEqual(await store().listSchedules(), []);
      await store().saveSchedule(definition('s1'), T + 1_000, T);
      await store().saveSchedule(definition('s2'), T + 2_000, T + 1);
      assert.deepEqual((await store().listSchedules()).map((s) => s.scheduleId).sort(), ['s1', 's2']);
    });

    it('schedulesTargeting names the schedules whose destination is the group', async () => {
      await store().saveSchedule(definition('s1', { destination: 'g' }), T + 1_000, T);
      await store().saveSchedule(definition('s2'), T + 1_000, T);
      await store().saveSchedule(definition('s3', { destination: 'g' }), T + 1_000, T);
      assert.deepEqual([...(await store().schedulesTargeting('g'))].sort(), ['s1', 's3']);
      assert.deepEqual(await store().schedulesTargeting('other'), []);
    });

    it('dueSchedules returns unpaused schedules whose next tick is at or before now, earliest first, up to limit', async () => {
      await store().saveSchedule(definition('later'), T + 200, T);
      await store().saveSchedule(definition('sooner'), T + 100, T);
      await store().saveSchedule(definition('paused'), T + 50, T);
      await store().setSchedulePaused('paused', true, undefined, T);
      assert.deepEqual(await idsDue(T + 99), []);
      assert.deepEqual(await idsDue(T + 100), ['sooner']);
      assert.deepEqual(await idsDue(T + 200), ['sooner', 'later']);
      assert.deepEqual(await idsDue(T + 200, 1), ['sooner']);
    });

    it('pausing clears the next tick; resuming sets it; unknown schedules answer false', async () => {
      await store().saveSchedule(definition('s1'), T + 100, T);
      assert.equal(await store().setSchedulePaused('s1', true, undefined, T + 1), true);
      let record = await store().getSchedule('s1');
      assert.deepEqual(record && [record.paused, record.nextAt], [true, undefined]);
      assert.deepEqual(await idsDue(T + 1_000), []);
      assert.equal(await store().setSchedulePaused('s1', false, T + 500, T + 2), true);
      record = await store().getSchedule('s1');
      assert.deepEqual(record && [record.paused, record.nextAt], [false, T + 500]);
      assert.deepEqual(await idsDue(T + 1_000), ['s1']);
      assert.equal(await store().setSchedulePaused('nope', true, undefined, T), false);
    });

    it('nextScheduleAt names the earliest next tick of unpaused schedules', async () => {
      assert.equal(await store().nextScheduleAt(), undefined);
      await store().saveSchedule(definition('a'), T + 300, T);
      await store().saveSchedule(definition('b'), T + 100, T);
      await store().saveSchedule(definition('c'), T + 50, T);
      await store().setSchedulePaused('c', true, undefined, T);
      assert.equal(await store().nextScheduleAt(), T + 100);
      await store().setSchedulePaused('b', true, undefined, T + 1);
      assert.equal(await store().nextScheduleAt(), T + 300);
    });

    it('a cron tick enqueues its messages, advances the next tick and records lastAt and lastMessageIds', async () => {
      await store().saveSchedule(definition('s1'), T + 100, T);
      const [m1, m2] = [tick('s1', 'cron', T + 100), tick('s1', 'cron', T + 100)];
      const results = await fireTick('s1', T + 100, T + 400, [m1, m2]);
      assert.deepEqual(results, [
        { messageId: m1.messageId, deduplicated: false },
        { messageId: m2.messageId, deduplicated: false },
      ]);
      const record = await store().getSchedule('s1');
      assert.deepEqual(record && [record.nextAt, record.lastAt, record.lastMessageIds], [T + 400, T + 100, [m1.messageId, m2.messageId]]);
      assert.equal((await store().getMessage(m1.messageId))?.state, 'pending');
      assert.deepEqual(await statesOf(m1.messageId), ['CREATED']);
      assert.deepEqual(await idsDue(T + 399), []);
    });

    it('a tick fires once: the same expectedNextAt again answers undefined and enqueues nothing', async () => {
      await store().saveSchedule(definition('s1'), T + 100, T);
      const first = tick('s1', 'cron', T + 100);
      assert.ok(await fireTick('s1', T + 100, T + 400, [first]));
      const again = tick('s1', 'cron', T + 101);
      assert.equal(await fireTick('s1', T + 100, T + 400, [again], T + 101), undefined);
      assert.equal(await store().getMessage(again.messageId), undefined);
      assert.deepEqual(await statesOf(again.messageId), []);
      assert.deepEqual((await store().getSchedule('s1'))?.lastMessageIds, [first.messageId]);
    });

    it('of two concurrent firings of one tick, exactly one happens', async () => {
      await store().saveSchedule(definition('s1'), T + 100, T);
      const racers = Array.from({ length: 4 }, () => tick('s1', 'cron', T + 100));
      const results = await Promise.all(racers.map((m) => fireTick('s1', T + 100, T + 400, [m])));
      assert.equal(results.filter((r) => r !== undefined).length, 1);
      const stored: string[] = [];
      for (const m of racers) if (await store().getMessage(m.messageId)) stored.push(m.messageId);
      assert.equal(stored.length, 1);
    });

    it('a tick of a schedule rescheduled meanwhile does not fire', async () => {
      await store().saveSchedule(definition('s1'), T + 100, T);
      await store().saveSchedule(definition('s1', {}, '0 * * * *'), T + 3_600_000, T + 1);
      const m = tick('s1', 'cron', T + 100);
      assert.equal(await fireTick('s1', T + 100, T + 400, [m]), undefined);
      assert.equal(await store().getMessage(m.messageId), undefined);
      assert.equal((await store().getSchedule('s1'))?.nextAt, T + 3_600_000);
    });

    it('a tick of a paused or deleted schedule does not fire', async () => {
      await store().saveSchedule(definition('paused'), T + 100, T);
      await store().setSchedulePaused('paused', true, undefined, T + 1);
      const m1 = tick('paused', 'cron', T + 100);
      assert.equal(await fireTick('paused', T + 100, T + 400, [m1]), undefined);
      assert.equal(await store().getMessage(m1.messageId), undefined);
      await store().saveSchedule(definition('gone'), T + 100, T);
      await store().deleteSchedule('gone');
      const m2 = tick('gone', 'cron', T + 100);
      assert.equal(await fireTick('gone', T + 100, T + 400, [m2]), undefined);
      assert.equal(await store().getMessage(m2.messageId), undefined);
      const m3 = tick('gone', 'manual', T + 100);
      assert.equal(await triggerNow('gone', [m3], T + 100), undefined, 'a trigger-now of a deleted schedule too');
      assert.equal(await store().getMessage(m3.messageId), undefined);
    });

    it('a trigger-now enqueues and leaves the next tick as it was', async () => {
      await store().saveSchedule(definition('s1'), T + 60_000, T);
      const m = tick('s1', 'manual', T + 5);
      assert.deepEqual(await triggerNow('s1', [m], T + 5), [{ messageId: m.messageId, deduplicated: false }]);
      const record = await store().getSchedule('s1');
      assert.equal(record?.nextAt, T + 60_000);
      assert.deepEqual(record?.lastMessageIds, [m.messageId], 'the firing is recorded');
      assert.equal((await store().getMessage(m.messageId))?.state, 'pending');
      assert.ok(await fireTick('s1', T + 60_000, T + 120_000, [tick('s1', 'cron', T + 60_000)]), 'the cron tick still fires');
    });

    it('a trigger-now of a paused schedule enqueues and leaves it paused', async () => {
      await store().saveSchedule(definition('s1'), T + 60_000, T);
      await store().setSchedulePaused('s1', true, undefined, T + 1);
      const m = tick('s1', 'manual', T + 5);
      assert.deepEqual(await triggerNow('s1', [m], T + 5), [{ messageId: m.messageId, deduplicated: false }]);
      assert.equal((await store().getMessage(m.messageId))?.state, 'pending');
      const record = await store().getSchedule('s1');
      assert.deepEqual(record && [record.paused, record.nextAt], [true, undefined]);
    });

    it('a tick that publishes nothing records its error, still advances, and a later good tick clears it', async () => {
      await store().saveSchedule(definition('s1', { destination: 'g' }), T + 100, T);
      const [results] = await store().fireSchedules(
        [{ scheduleId: 's1', expectedNextAt: T + 100, nextAt: T + 400, messages: [], error: 'url group g does not exist' }],
        T + 100,
      );
      assert.deepEqual(results, [], 'the tick happened, publishing nothing');
      let record = await store().getSchedule('s1');
      assert.deepEqual(
        record && [record.lastError, record.nextAt, record.lastAt, record.lastMessageIds],
        ['url group g does not exist', T + 400, T + 100, []],
      );
      const m = tick('s1', 'cron', T + 400);
      assert.ok(await fireTick('s1', T + 400, T + 700, [m]));
      record = await store().getSchedule('s1');
      assert.equal(record?.lastError, undefined, 'the error describes the last tick only');
    });

    it('listScheduleRuns lists the schedule’s messages newest first, with trigger and how each ended', async () => {
      await store().saveSchedule(definition('s1'), T + 100, T);
      await store().saveSchedule(definition('other'), T + 100, T);
      const a = tick('s1', 'cron', T + 100);
      const b = tick('s1', 'manual', T + 150);
      const c = tick('s1', 'cron', T + 200);
      await fireTick('s1', T + 100, T + 200, [a]);
      await fireTick('other', T + 100, T + 200, [tick('other', 'cron', T + 100)]);
      await triggerNow('s1', [b], T + 150);
      await fireTick('s1', T + 200, T + 300, [c]);

      let runs = await store().listScheduleRuns('s1', 10);
      assert.deepEqual(
        runs.map((r) => [r.messageId, r.trigger, r.state, r.createdAt, r.retried, r.url]),
        [
          [c.messageId, 'cron', 'IN_PROGRESS', T + 200, 0, c.url],
          [b.messageId, 'manual', 'IN_PROGRESS', T + 150, 0, b.url],
          [a.messageId, 'cron', 'IN_PROGRESS', T + 100, 0, a.url],
        ],
      );
      for (const run of runs) assert.equal(run.finishedAt, undefined);

      const claimed = new Map((await claim(T + 200)).map((x) => [x.spec.messageId, x]));
      assert.ok(claimed.has(a.messageId) && claimed.has(b.messageId) && claimed.has(c.messageId));
      await settled({ ...ack(leaseOf(claimed.get(a.messageId)!), T + 210), response: { status: 201, durationMs: 42 } });
      await settled(deadLetter(leaseOf(claimed.get(b.messageId)!), T + 220, { status: 502, body: new Uint8Array(0), durationMs: 77 }));

      runs = await store().listScheduleRuns('s1', 10);
      const byId = new Map(runs.map((r) => [r.messageId, r]));
      const outcome = (id: string) => {
        const r = byId.get(id);
        return r && { state: r.state, finishedAt: r.finishedAt, responseStatus: r.responseStatus, durationMs: r.durationMs };
      };
      assert.deepEqual(outcome(a.messageId), { state: 'SUCCESS', finishedAt: T + 210, responseStatus: 201, durationMs: 42 });
      assert.deepEqual(outcome(b.messageId), { state: 'FAIL', finishedAt: T + 220, responseStatus: 502, durationMs: 77 });
      assert.equal(byId.get(c.messageId)?.state, 'IN_PROGRESS');
      assert.deepEqual((await store().listScheduleRuns('s1', 2)).map((r) => r.messageId), [c.messageId, b.messageId]);
      assert.deepEqual(await store().listScheduleRuns('nope', 10), []);
    });

    it('listScheduleRuns shows a canceled run as CANCELED', async () => {
      await store().saveSchedule(definition('s1'), T + 100, T);
      const m = tick('s1', 'manual', T + 1_000);
      await store().fireSchedules([{ scheduleId: 's1', messages: [{ spec: { ...m, notBefore: T + 60_000 } }] }], T + 1_000);
      await store().cancel({ messageIds: [m.messageId] }, T + 1_001);
      assert.deepEqual((await store().listScheduleRuns('s1', 10)).map((r) => [r.messageId, r.state]), [[m.messageId, 'CANCELED']]);
    });

    it('a tick whose message names a queue leaves it waiting in that queue', async () => {
      await store().saveSchedule(definition('s1', { queueName: 'q' }), T + 100, T);
      const m = spec({ scheduleId: 's1', scheduleTrigger: 'cron', queueName: 'q', createdAt: T + 100, notBefore: T + 100 });
      assert.ok(await fireTick('s1', T + 100, T + 400, [m]));
      assert.equal((await store().getQueue('q'))?.lag, 1);
      await claimOne(m.messageId, T + 100);
    });

    it('deleteSchedule removes it everywhere and answers false the second time', async () => {
      await store().saveSchedule(definition('s1', { destination: 'g' }), T + 100, T);
      assert.equal(await store().deleteSchedule('s1'), true);
      assert.equal(await store().getSchedule('s1'), undefined);
      assert.deepEqual(await store().listSchedules(), []);
      assert.deepEqual(await store().schedulesTargeting('g'), []);
      assert.deepEqual(await idsDue(T + 1_000), []);
      assert.equal(await store().nextScheduleAt(), undefined);
      assert.equal(await store().deleteSchedule('s1'), false);
    });
  });
}
