/**
 * Configuration from the environment, validated once at start. Every limit
 * here rejects rather than clamps (spec §18): a publish beyond one gets a 400
 * naming it.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { parseUpstashDuration } from './durations.js';



/** A duration setting: bare seconds or Upstash's units (30s, 15m, 2h, 7d); milliseconds once parsed. */
export const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, ctx) => {
      const ms = parseUpstashDuration(value);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `not a duration (seconds, or e.g. 30s, 15m, 2h, 7d): ${value}` });
        return z.NEVER;
      }
      return ms;
    });

const integer = (fallback: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(fallback);

const ENV_SCHEMA = z.object({
  PORT: integer(8080, 0, 65535),
  HOST: z.string().default('0.0.0.0'),
  COURIER_DATA_DIR: z.string().default('.courier'),
  COURIER_STORE: z.string().optional(),
  COURIER_PUBLIC_URL: z.string().url().optional(),
  COURIER_TOKEN: z.string().min(1).optional(),
  QSTASH_TOKEN: z.string().min(1).optional(),
  QSTASH_CURRENT_SIGNING_KEY: z.string().min(1).optional(),
  QSTASH_NEXT_SIGNING_KEY: z.string().min(1).optional(),
  COURIER_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  COURIER_MAX_BODY_BYTES: integer(10 * 1024 * 1024, 1, 1024 * 1024 * 1024),
  COURIER_MAX_BATCH_BYTES: integer(100 * 1024 * 1024, 1, 1024 * 1024 * 1024),
  COURIER_MAX_BATCH_MESSAGES: integer(1000, 1, 100_000),
  COURIER_DEFAULT_RETRIES: integer(3, 0, 1000),
  COURIER_MAX_RETRIES: integer(100, 0, 1000),
  COURIER_MAX_PARALLELISM: integer(1000, 1, 100_000),
  COURIER_MAX_DELAY: duration('365d'),
  COURIER_DEFAULT_TIMEOUT: duration('15m'),
  COURIER_MAX_TIMEOUT: duration('2h'),
  COURIER_MAX_IN_FLIGHT: integer(1000, 1, 100_000),
  COURIER_CONNECTIONS_PER_ORIGIN: integer(256, 1, 10_000),
  COURIER_MAX_RESPONSE_BYTES: integer(1024 * 1024, 0, 100 * 1024 * 1024),
  /** How long a request (headers and body) may take to arrive whole; then 408 and the connection is closed. */
  COURIER_BODY_TIMEOUT: duration('30s').refine((ms) => ms > 0, 'must be more than 0'),
  /** Response bytes all attempts in flight may hold together (delivery/response-budget.ts): 64 full 1 MiB bodies. */
  COURIER_MAX_RESPONSE_BUFFER_BYTES: integer(64 * 1024 * 1024, 0, 64 * 1024 * 1024 * 1024),
  COURIER_LEASE: duration('60s'),
  COURIER_DEDUP_WINDOW: duration('10m'),
  COURIER_LOG_RETENTION: duration('7d'),
  COURIER_DLQ_RETENTION: duration('30d'),
  // Instance groups (the gateway): the defaults a group gets when its first instance registers.
  COURIER_HEARTBEAT_INTERVAL: duration('300s'),
  COURIER_INSTANCE_STALE_AFTER: duration('900s'),
  /** How often a node re-reads the instance registry, to see heartbeats and health changes made through other nodes. */
  COURIER_REGISTRY_REFRESH: duration('1s'),
  COURIER_SQLITE_SYNCHRONOUS: z.enum(['normal', 'full']).default('normal'),
  /** /health/detailed without the token (it shows backlog figures, never secrets). */
  COURIER_HEALTH_DETAILED_PUBLIC: z.enum(['true', 'false']).default('false'),
  // Task streams (README "Task streams").
  COURIER_STREAM_MAX_DATA_BYTES: integer(64 * 1024, 1, 16 * 1024 * 1024),
  COURIER_STREAM_MAX_EVENTS: integer(100_000, 1, 100_000_000),
  COURIER_STREAM_MAX_BATCH: integer(1000, 1, 100_000),
  COURIER_STREAM_IDLE: duration('24h').refine((ms) => ms > 0, 'must be more than 0'),
  COURIER_STREAM_RETENTION: duration('24h'),
  COURIER_STREAM_MAX_FOLLOWERS: integer(10_000, 1, 1_000_000),
  COURIER_STREAM_FOLLOWER_BUFFER_BYTES: integer(1024 * 1024, 1024, 1024 * 1024 * 1024),
  COURIER_STREAM_KEEPALIVE: duration('15s').refine((ms) => ms > 0, 'must be more than 0'),
  COURIER_STREAM_RETRY: duration('2s'),
  COURIER_STREAM_TOKEN_MAX_TTL: duration('24h').refine((ms) => ms >= 1000, 'must be at least 1s'),
  /** Comma-separated origins (or `*`) whose pages may read streams (SSE, state, events) with a read token. */
  COURIER_STREAM_CORS_ORIGINS: z.string().default(''),
});

/** Task streams' limits and timings; each is a COURIER_STREAM_* setting (README "Task streams"). */
export interface StreamSettings {
  /** An event's data (a string's UTF-8 bytes, or JSON text). */
  maxDataBytes: number;
  /** Events one stream may hold. */
  maxEvents: number;
  /** Events one POST may carry. */
  maxBatch: number;
  /** An open stream with no write for this long is failed with `error` {"reason":"idle"}. */
  idleMs: number;
  /** A closed stream is kept this long after it closed, then purged with its events. */
  closedRetentionMs: number;
  /** SSE followers one node serves at once; past it, 503. */
  maxFollowers: number;
  /** Bytes of live events held for one follower that has not taken them; past it, it is cut off as a slow consumer. */
  followerBufferBytes: number;
  /** A `:` comment is sent on a follower's connection after this long without a write. */
  keepAliveMs: number;
  /** The `retry:` hint: how long EventSource waits before reconnecting. */
  retryMs: number;
  /** The longest `ttlSeconds` a minted stream token may have. */
  maxTokenTtlMs: number;
  /** Origins allowed to read streams cross-origin; `*` allows any. Empty: no CORS headers. */
  corsOrigins: string[];
}

export interface Limits {
  maxBodyBytes: number;
  maxBatchBytes: number;
  maxBatchMessages: number;
  defaultRetries: number;
  maxRetries: number;
  maxDelayMs: number;
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  dedupWindowMs: number;
  /** The largest parallelism a queue or flow-control key may ask for. */
  maxParallelism: number;
}

/** Which store backs this node; several nodes may share a PostgreSQL or Redis one. */
export type StoreLocation =
  | { kind: 'sqlite'; path: string; synchronous: 'normal' | 'full' }
  | { kind: 'postgres'; url: string; schema?: string }
  | { kind: 'redis'; url: string; prefix: string };

/**
 * `COURIER_STORE`: unset or `sqlite` (the embedded default, in the data dir),
 * `sqlite:<file>`, `postgres://…[?schema=name]`, or `redis://…[?prefix=name]`.
 * The `schema` and `prefix` parameters are Courier's, taken off the URL.
 */
export function parseStoreLocation(value: string | undefined, dataDir: string, synchronous: 'normal' | 'full'): StoreLocation {
  if (value === undefined || value === 'sqlite') return { kind: 'sqlite', path: join(dataDir, 'courier.db'), synchronous };
  if (value.startsWith('sqlite:')) return { kind: 'sqlite', path: value.slice('sqlite:'.length), synchronous };
  if (!URL.canParse(value)) throw new Error(`invalid configuration: COURIER_STORE is not sqlite, a postgres:// or a redis:// URL`);
  const url = new URL(value);
  const take = (name: string): string | undefined => {
    const found = url.searchParams.get(name) ?? undefined;
    url.searchParams.delete(name);
    return found;
  };
  if (url.protocol === 'postgres:' || url.protocol === 'postgresql:') {
    const schema = take('schema');
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new Error('invalid configuration: COURIER_STORE schema must be a lower-case SQL identifier');
    }
    return schema === undefined ? { kind: 'postgres', url: url.toString() } : { kind: 'postgres', url: url.toString(), schema };
  }
  if (url.protocol === 'redis:' || url.protocol === 'rediss:') {
    const prefix = take('prefix') ?? 'courier';
    if (!/^[A-Za-z0-9._:-]{1,64}$/.test(prefix)) throw new Error('invalid configuration: COURIER_STORE prefix may only contain A-Z a-z 0-9 . _ : -');
    return { kind: 'redis', url: url.toString(), prefix };
  }
  throw new Error(`invalid configuration: COURIER_STORE has an unknown scheme "${url.protocol}" (use sqlite, postgres:// or redis://)`);
}

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  publicUrl: string | undefined;
  token: string | undefined;
  currentSigningKey: string | undefined;
  nextSigningKey: string | undefined;
  logLevel: string;
  limits: Limits;
  delivery: {
    maxInFlight: number;
    connectionsPerOrigin: number;
    maxResponseBytes: number;
    maxResponseBufferBytes: number;
    leaseMs: number;
  };
  retention: { logsMs: number; deadLettersMs: number };
  http: { bodyTimeoutMs: number };
  gateway: { heartbeatIntervalMs: number; staleAfterMs: number; registryRefreshMs: number };
  health: { detailedPublic: boolean };
  streams: StreamSettings;
  store: StoreLocation;
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty strings are treated as unset, the way shells and .env files usually mean them.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = ENV_SCHEMA.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const e = parsed.data;
  if (e.COURIER_DEFAULT_TIMEOUT > e.COURIER_MAX_TIMEOUT) {
    throw new Error('invalid configuration: COURIER_DEFAULT_TIMEOUT exceeds COURIER_MAX_TIMEOUT');
  }
  if (e.COURIER_DEFAULT_RETRIES > e.COURIER_MAX_RETRIES) {
    throw new Error('invalid configuration: COURIER_DEFAULT_RETRIES exceeds COURIER_MAX_RETRIES');
  }
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir: e.COURIER_DATA_DIR,
    publicUrl: e.COURIER_PUBLIC_URL,
    token: e.COURIER_TOKEN ?? e.QSTASH_TOKEN,
    currentSigningKey: e.QSTASH_CURRENT_SIGNING_KEY,
    nextSigningKey: e.QSTASH_NEXT_SIGNING_KEY,
    logLevel: e.COURIER_LOG_LEVEL,
    limits: {
      maxBodyBytes: e.COURIER_MAX_BODY_BYTES,
      maxBatchBytes: e.COURIER_MAX_BATCH_BYTES,
      maxBatchMessages: e.COURIER_MAX_BATCH_MESSAGES,
      defaultRetries: e.COURIER_DEFAULT_RETRIES,
      maxRetries: e.COURIER_MAX_RETRIES,
      maxParallelism: e.COURIER_MAX_PARALLELISM,
      maxDelayMs: e.COURIER_MAX_DELAY,
      defaultTimeoutMs: e.COURIER_DEFAULT_TIMEOUT,
      maxTimeoutMs: e.COURIER_MAX_TIMEOUT,
      dedupWindowMs: e.COURIER_DEDUP_WINDOW,
    },
    delivery: {
      maxInFlight: e.COURIER_MAX_IN_FLIGHT,
      connectionsPerOrigin: e.COURIER_CONNECTIONS_PER_ORIGIN,
      maxResponseBytes: e.COURIER_MAX_RESPONSE_BYTES,
      maxResponseBufferBytes: e.COURIER_MAX_RESPONSE_BUFFER_BYTES,
      leaseMs: e.COURIER_LEASE,
    },
    retention: { logsMs: e.COURIER_LOG_RETENTION, deadLettersMs: e.COURIER_DLQ_RETENTION },
    http: { bodyTimeoutMs: e.COURIER_BODY_TIMEOUT },
    gateway: {
      heartbeatIntervalMs: e.COURIER_HEARTBEAT_INTERVAL,
      staleAfterMs: e.COURIER_INSTANCE_STALE_AFTER,
      registryRefreshMs: e.COURIER_REGISTRY_REFRESH,
    },
    health: { detailedPublic: e.COURIER_HEALTH_DETAILED_PUBLIC === 'true' },
    streams: {
      maxDataBytes: e.COURIER_STREAM_MAX_DATA_BYTES,
      maxEvents: e.COURIER_STREAM_MAX_EVENTS,
      maxBatch: e.COURIER_STREAM_MAX_BATCH,
      idleMs: e.COURIER_STREAM_IDLE,
      closedRetentionMs: e.COURIER_STREAM_RETENTION,
      maxFollowers: e.COURIER_STREAM_MAX_FOLLOWERS,
      followerBufferBytes: e.COURIER_STREAM_FOLLOWER_BUFFER_BYTES,
      keepAliveMs: e.COURIER_STREAM_KEEPALIVE,
      retryMs: e.COURIER_STREAM_RETRY,
      maxTokenTtlMs: e.COURIER_STREAM_TOKEN_MAX_TTL,
      corsOrigins: e.COURIER_STREAM_CORS_ORIGINS.split(',')
        .map((origin) => origin.trim())
        .filter((origin) => origin.length > 0),
    },
    store: parseStoreLocation(e.COURIER_STORE, e.COURIER_DATA_DIR, e.COURIER_SQLITE_SYNCHRONOUS),
  };
}


