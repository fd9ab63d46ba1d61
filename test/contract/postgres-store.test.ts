/**
 * The store contract on PostgreSQL: one fresh schema for this file (dropped at
 * the end), emptied before each case. `reopen` closes the pool and opens a new
 * one on the same schema, as a restarted node would.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import postgres from 'postgres';
import type { ClaimedMessage, MessageSpec } from '../../src/core/message.js';
import type { Store } from '../../src/store/port.js';
import { TABLES } from '../../src/store/postgres/migrations.js';
import { openPostgresStore } from '../../src/store/postgres/postgres-store.js';
import { POSTGRES_URL, unavailable } from '../helpers/services.js';
import { runLifecycleContract } from './store-contract-lifecycle.js';
import { runStoreContract, spec, T, type StoreUnderTest } from './store-contract.js';

const skipReason = await unavailable('PostgreSQL', POSTGRES_URL);

if (skipReason !== undefined) {
  it('PostgresStore contract', { skip: skipReason }, () => undefined);
} else {
  const schema = `courier_t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = postgres(POSTGRES_URL, { max: 1, onnotice: () => undefined });
  const open = () => openPostgresStore({ url: POSTGRES_URL, schema, maxConnections: 4, openedAt: Date.now() });

  before(async () => {
    // Migrates once; every case then starts from empty tables.
    await (await open()).close();
  });
  after(async () => {
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });

  const truncate = () => admin.unsafe(`TRUNCATE ${TABLES.map((table) => `"${schema}".${table}`).join(', ')} RESTART IDENTITY`);

  const makeStore = async (): Promise<StoreUnderTest> => {
    await truncate();
    let current = await open();
    return {
      store: current,
      reopen: async () => {
        await current.close();
        current = await open();
        return current;
      },
      another: open,
      cleanup: async () => {
        await current.close();
      },
    };
  };
  runStoreContract('PostgresStore', makeStore);
  runLifecycleContract('PostgresStore', makeStore);

  describe('PostgresStore: several nodes on one schema', () => {
    const LEASE_MS = 30_000;
    let nodes: Store[] = [];
    const specs = (count: number, overrides: Partial<MessageSpec> = {}) => Array.from({ length: count }, () => spec(overrides));
    /** Every node claims in rounds until a round finds nothing; answers each node's claims. */
    const claimRounds = async (limit: number, settleEach: boolean): Promise<ClaimedMessage[]> => {
      const claimed: ClaimedMessage[] = [];
      const inFlight = new Set<string>();
      let maxInFlight = 0;
      await Promise.all(
        nodes.map(async (node) => {
          for (let idle = 0; idle < 3; ) {
            const got = await node.claimDue({ now: T, limit, leaseMs: LEASE_MS });
            if (got.length === 0) {
              idle += 1;
              continue;
            }
            idle = 0;
            for (const c of got) inFlight.add(c.spec.messageId);
            maxInFlight = Math.max(maxInFlight, inFlight.size);
            claimed.push(...got);
            if (settleEach) {
              const settled = await node.settle(
                got.map((c) => ({
                  messageId: c.spec.messageId,
                  leaseId: c.leaseId,
                  kind: 'ack' as const,
                  at: T,
                  response: { status: 200, durationMs: 1 },
                  followUps: [],
                })),
              );
              assert.ok(settled.every((r) => r === 'settled'));
              for (const c of got) inFlight.delete(c.spec.messageId);
            }
          }
        }),
      );
      return Object.assign(claimed, { maxInFlight });
    };

    beforeEach(async () => {
      await Promise.all(nodes.map((node) => node.close()));
      await truncate();
      nodes = await Promise.all([open(), open(), open()]);
    });
    after(async () => {
      await Promise.all(nodes.map((node) => node.close()));
    });

    it('nodes opening a fresh schema at once migrate it once', async () => {
      const fresh = `${schema}_m`;
      try {
        const opened = await Promise.all(
          [1, 2, 3].map(() => openPostgresStore({ url: POSTGRES_URL, schema: fresh, maxConnections: 2, openedAt: Date.now() })),
        );
        await Promise.all(opened.map((store) => store.close()));
        const [row] = await admin.unsafe(`SELECT count(*)::int AS n FROM "${fresh}".schema_migrations`);
        assert.ok(row && row.n >= 1);
      } finally {
        await admin.unsafe(`DROP SCHEMA IF EXISTS "${fresh}" CASCADE`);
      }
    });

    it('a node is told of work enqueued through another, with its due time', async () => {
      const [a, b] = nodes as [Store, Store];
      const told: number[] = [];
      const stop = await b.watchWork((dueAt) => told.push(dueAt));
      try {
        await a.enqueue([{ spec: spec({ notBefore: T + 5_000 }) }], T);
        for (let waited = 0; told.length === 0 && waited < 2_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
        assert.deepEqual(told, [T + 5_000]);
      } finally {
        await stop();
      }
    });

    it('a node is told of appends to a stream made through another, with the stream id and its last seq', async () => {
      const [a, b] = nodes as [Store, Store];
      const told: [string, number][] = [];
      const stop = await b.watchStreams((streamId, lastSeq) => told.push([streamId, lastSeq]));
      try {
        const write = { author: 'writer' as const, maxEvents: 100 };
        await a.appendStreamEvents({ ...write, streamId: 'task:1', at: T, events: [{ type: 'content', data: 'a', json: false }] });
        await a.appendStreamEvents({ ...write, streamId: 'task:1', at: T + 1, events: [1, 2].map(() => ({ type: 'content', data: 'b', json: false })) });
        for (let waited = 0; told.at(-1)?.[1] !== 3 && waited < 2_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
        // Notifications may be folded (a node sends the highest seq it has not told yet), never reordered.
        assert.deepEqual(told.at(-1), ['task:1', 3]);
        assert.ok(told.every(([id], i) => id === 'task:1' && (i === 0 || told[i - 1]![1] < told[i]![1])));
      } finally {
        await stop();
      }
    });

    it('concurrent claims on three nodes lease each message exactly once', async () => {
      const all = specs(300);
      await nodes[0]!.enqueue(all.map((s) => ({ spec: s })), T);
      const claimed = await claimRounds(17, false);
      assert.equal(claimed.length, 300);
      assert.equal(new Set(claimed.map((c) => c.spec.messageId)).size, 300);
    });

    it('a queue’s parallelism holds across nodes', async () => {
      await nodes[0]!.upsertQueue({ name: 'shared', parallelism: 2, paused: false }, T);
      await nodes[0]!.enqueue(specs(30, { queueName: 'shared' }).map((s) => ({ spec: s })), T);
      const claimed = await claimRounds(10, true);
      assert.equal(new Set(claimed.map((c) => c.spec.messageId)).size, 30);
      assert.ok((claimed as unknown as { maxInFlight: number }).maxInFlight <= 2);
    });

    it('a flow-control key’s parallelism holds across nodes', async () => {
      const flowControl = { key: 'tenant-1', parallelism: 3 };
      await nodes[0]!.enqueue(specs(30, { flowControl }).map((s) => ({ spec: s })), T);
      const claimed = await claimRounds(10, true);
      assert.equal(new Set(claimed.map((c) => c.spec.messageId)).size, 30);
      assert.ok((claimed as unknown as { maxInFlight: number }).maxInFlight <= 3);
    });
  });
}
