/**
 * A fresh, empty store for each measurement: a new PostgreSQL schema or a new
 * Redis key prefix (SQLite gets a new data dir from courier-process.ts), so
 * nothing one measurement leaves behind can slow down the next. Dropped
 * afterwards. A run cut short by Ctrl-C can leave some behind; they are all
 * named `courier_bench_…` (schemas), `courier-bench-…` (key prefixes) or
 * `pgboss_bench_…` (pg-boss's schemas).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import postgres from 'postgres';

export const STORE_KINDS = ['sqlite', 'postgres', 'redis'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

/** The servers the benchmark uses; the same ones the test suite talks to. */
export const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface FreshStore {
  kind: StoreKind;
  /** the COURIER_STORE value that selects it; undefined = the embedded SQLite in the data dir */
  courierStore: string | undefined;
  /** schema or key prefix, for error messages */
  name: string | undefined;
  drop(): Promise<void>;
}

export function freshName(prefix: string): string {
  return `${prefix}${randomBytes(6).toString('hex')}`;
}

function withParam(base: string, name: string, value: string): string {
  const url = new URL(base);
  url.searchParams.set(name, value);
  return url.toString();
}

/** Runs `statements` on one short-lived connection. A lock wait is bounded so a stuck drop fails instead of hanging the run. */
export async function postgresExec(...statements: string[]): Promise<void> {
  const sql = postgres(POSTGRES_URL, { max: 1, onnotice: () => {}, connection: { lock_timeout: 15_000 } });
  try {
    for (const statement of statements) await sql.unsafe(statement);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export async function dropPostgresSchema(schema: string): Promise<void> {
  await postgresExec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** Deletes every key whose name contains `prefix` (however the adapter places it: `p:…`, `{p}:…`). */
export async function deleteRedisKeys(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `*${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}

export async function createFreshStore(kind: StoreKind): Promise<FreshStore> {
  switch (kind) {
    case 'sqlite':
      return { kind, courierStore: undefined, name: undefined, drop: async () => {} };
    case 'postgres': {
      // Lower-case identifier, as Courier's parseStoreLocation requires. Created here, so
      // every node of a cluster finds it, whether or not the adapter creates missing schemas.
      const schema = freshName('courier_bench_');
      await postgresExec(`CREATE SCHEMA "${schema}"`);
      return { kind, courierStore: withParam(POSTGRES_URL, 'schema', schema), name: schema, drop: () => dropPostgresSchema(schema) };
    }
    case 'redis': {
      const prefix = freshName('courier-bench-');
      return {
        kind,
        courierStore: withParam(REDIS_URL, 'prefix', prefix),
        name: prefix,
        drop: async () => {
          await deleteRedisKeys(prefix);
        },
      };
    }
  }
}
