/**
 * The real PostgreSQL and Redis the store contract runs against. On a
 * developer machine without them those cases skip with one line saying why;
 * in CI (`CI` set) a missing service is a failure, never a skip.
 */
import { createConnection } from 'node:net';

// The defaults must match scripts/test-services.mjs, which checks them before the run.
export const POSTGRES_URL = process.env.COURIER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.COURIER_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port) });
    socket.setTimeout(1_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** The reason to skip, or undefined when the service is there. Throws in CI. */
export async function unavailable(name: 'PostgreSQL' | 'Redis', url: string): Promise<string | undefined> {
  if (await reachable(url)) return undefined;
  const reason = `${name} is not reachable at ${url}; its store cases are skipped (start it, or set the COURIER_TEST_* URL)`;
  if (process.env.CI) throw new Error(`${reason} — but CI must run them`);
  console.log(`# ${reason}`);
  return reason;
}

/** Which store the end-to-end suites run on: `COURIER_TEST_STORE` (sqlite, postgres or redis); run-tests.mjs sets it per pass. */
export type TestStoreKind = 'sqlite' | 'postgres' | 'redis';

export function testStoreKind(): TestStoreKind {
  const kind = process.env.COURIER_TEST_STORE ?? 'sqlite';
  if (kind !== 'sqlite' && kind !== 'postgres' && kind !== 'redis') throw new Error(`COURIER_TEST_STORE must be sqlite, postgres or redis, got "${kind}"`);
  return kind;
}

export interface FreshStore {
  /** `COURIER_STORE` for a Courier on this store; undefined for the per-test SQLite default. */
  location?: string;
  /** Removes what the test stored (the schema or the key prefix). */
  drop(): Promise<void>;
}

/** A store of the chosen kind that no other test file sees: a fresh PostgreSQL schema or Redis key prefix. */
export async function freshStore(kind: TestStoreKind = testStoreKind()): Promise<FreshStore> {
  const name = `courier_t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  if (kind === 'postgres') {
    return {
      location: `${POSTGRES_URL}?schema=${name}`,
      async drop() {
        const { default: postgres } = await import('postgres');
        const sql = postgres(POSTGRES_URL, { max: 1, onnotice: () => undefined });
        await sql.unsafe(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
        await sql.end();
      },
    };
  }
  if (kind === 'redis') {
    return {
      location: `${REDIS_URL}?prefix=${name}`,
      async drop() {
        const { Redis } = await import('ioredis');
        const redis = new Redis(REDIS_URL);
        for await (const keys of redis.scanStream({ match: `${name}*`, count: 1000 })) {
          if ((keys as string[]).length > 0) await redis.unlink(...(keys as string[]));
        }
        await redis.quit();
      },
    };
  }
  return { drop: async () => undefined };
}
