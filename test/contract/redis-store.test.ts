/**
 * The store contract on the Redis store: one key prefix per test file (removed at the end with
 * SCAN + UNLINK), and a fresh prefix under it per case, so cases never see each other's keys.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { MessageSpec } from '../../src/core/message.js';
import type { Store } from '../../src/store/port.js';
import { LAYOUT_VERSION, openRedisStore } from '../../src/store/redis/redis-store.js';
import { REDIS_URL, unavailable } from '../helpers/services.js';
import { runLifecycleContract } from './store-contract-lifecycle.js';
import { runStoreContract, spec, T, type StoreUnderTest } from './store-contract.js';

const fileprefix = `courier_t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
const skipReason = await unavailable('Redis', REDIS_URL);

async function dropKeys(match: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  for await (const keys of redis.scanStream({ match, count: 1000 })) {
    if ((keys as string[]).length > 0) await redis.unlink(...(keys as string[]));
  }
  await redis.quit();
}

if (skipReason) {
  it('RedisStore contract', { skip: skipReason }, () => undefined);
} else {
  let cases = 0;
  after(() => dropKeys(`${fileprefix}:*`));
  const makeStore = async (): Promise<StoreUnderTest> => {
    const prefix = `${fileprefix}:c${++cases}`;
    let current = await openRedisStore({ url: REDIS_URL, prefix });
    return {
      store: current,
      // Another process would open its own connection on the same keys, with the old one gone.
      reopen: async () => {
        await current.close();
        current = await openRedisStore({ url: REDIS_URL, prefix });
        return current;
      },
      another: () => openRedisStore({ url: REDIS_URL, prefix }),
      cleanup: async () => {
        await current.close();
        await dropKeys(`${prefix}:*`);
      },
    };
  };
  runStoreContract('RedisStore', makeStore);
  runLifecycleContract('RedisStore', makeStore);
}

/** Specs for the cases below: no retries, so a failed attempt ends the message. */
const message = (overrides: Partial<MessageSpec> = {}): MessageSpec => spec({ maxRetries: 0, ...overrides });

/** What the port cannot show with one store: several nodes (connections) sharing one prefix. */
describe('RedisStore shared by several nodes', { skip: skipReason }, () => {
  let cases = 0;
  const nodes = async (count: number): Promise<{ stores: Store[]; prefix: string }> => {
    const prefix = `${fileprefix}:n${++cases}`;
    const stores: Store[] = [];
    for (let i = 0; i < count; i++) stores.push(await openRedisStore({ url: REDIS_URL, prefix }));
    return { stores, prefix };
  };
  const closeAll = (stores: Store[]): Promise<unknown> => Promise.all(stores.map((store) => store.close()));

  it('tells a watching node about work another node enqueued, with its due time', async () => {
    const { stores: [a, b] } = await nodes(2);
    const heard: number[] = [];
    const stop = await a!.watchWork((dueAt) => heard.push(dueAt));
    await b!.enqueue([{ spec: message({ notBefore: T + 5_000 }) }], T);
    for (let i = 0; i < 50 && heard.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(heard, [T + 5_000]);
    await stop();
    await closeAll([a!, b!]);
  });

  it('tells a watching node about stream appends another node made, with the stream id and its last seq', async () => {
    const { stores: [a, b] } = await nodes(2);
    const heard: [string, number][] = [];
    const stop = await a!.watchStreams((streamId, lastSeq) => heard.push([streamId, lastSeq]));
    const content = (data: string) => ({ type: 'content', data, json: false });
    const append = (streamId: string, events: ReturnType<typeof content>[]) =>
      b!.appendStreamEvents({ streamId, events, at: T, author: 'writer', maxEvents: 100 });
    await append('task_1:a', [content('one'), content('two')]);
    await append('task_2', [content('three')]);
    await append('task_1:a', [content('four')]);
    for (let i = 0; i < 50 && heard.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(heard, [['task_1:a', 2], ['task_2', 1], ['task_1:a', 3]]);
    // The node told reads what the other stored, from its own connection.
    assert.deepEqual((await a!.readStreamEvents('task_1:a', 2, 10)).map((event) => event.data), ['four']);
    await stop();
    await closeAll([a!, b!]);
  });

  it('never leases one message to two nodes claiming at once', async () => {
    const { stores } = await nodes(4);
    const specs = Array.from({ length: 40 }, () => message());
    await stores[0]!.enqueue(specs.map((spec) => ({ spec })), T);
    const claims = await Promise.all(stores.map((store) => store.claimDue({ now: T, limit: 15, leaseMs: 30_000 })));
    const claimed = claims.flat().map((c) => c.spec.messageId);
    assert.equal(new Set(claimed).size, claimed.length, 'no message claimed twice');
    assert.deepEqual([...claimed].sort(), specs.map((s) => s.messageId).sort());
    await closeAll(stores);
  });

  it('keeps a queue within its parallelism and a key within its parallelism across nodes', async () => {
    const { stores } = await nodes(3);
    await stores[0]!.upsertQueue({ name: 'q', parallelism: 2, paused: false }, T);
    const queued = Array.from({ length: 6 }, () => ({ spec: message({ queueName: 'q' }) }));
    const keyed = Array.from({ length: 6 }, () => ({ spec: message({ flowControl: { key: 'k', parallelism: 3 } }) }));
    await stores[1]!.enqueue([...queued, ...keyed], T);
    const claims = await Promise.all(stores.map((store) => store.claimDue({ now: T, limit: 10, leaseMs: 30_000 })));
    const specs = claims.flat().map((c) => c.spec);
    assert.equal(specs.filter((s) => s.queueName === 'q').length, 2);
    assert.equal(specs.filter((s) => s.flowControl?.key === 'k').length, 3);
    await closeAll(stores);
  });

  it('refuses to open a key layout newer than it knows', async () => {
    const prefix = `${fileprefix}:layout`;
    const redis = new Redis(REDIS_URL);
    await redis.set(`${prefix}:layout`, String(LAYOUT_VERSION + 1));
    await redis.quit();
    await assert.rejects(openRedisStore({ url: REDIS_URL, prefix }), /layout version/);
  });
});
