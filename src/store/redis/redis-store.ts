/**
 * The Redis store (ioredis). Every port verb that changes state is one Lua script (scripts/, one file per
 * transition with a contract header): Redis runs a script atomically and alone, so several Courier nodes
 * sharing one Redis never lease a message twice, overfill a queue or a flow-control key, or fire a
 * schedule tick twice. Reads that need no atomicity (logs, DLQ pages, settings) are pipelined. Each area
 * of the port is its own module (messages.ts, queues.ts, …); this file connects, checks the key layout,
 * loads the scripts and composes the areas.
 *
 * Key layout: everything lives under `<prefix>:`; `<prefix>:layout` holds its version (LAYOUT_VERSION), and
 * a store refuses to open a newer layout it does not know. See scripts/lib.lua for the keys.
 *
 * Durability: Redis keeps what a script wrote only as well as it persists — run it with
 * `appendonly yes` and `appendfsync always` (every write survives a crash) or `everysec` (up to ~1 s lost).
 */
import { Redis } from 'ioredis';
import { guardDriverFailures } from '../driver-failures.js';
import type { CredentialStore, Credentials, MaintenanceStore, Store } from '../port.js';
import { pipelineResults, type RedisContext } from './context.js';
import { redisFlowControls } from './flow-control.js';
import { redisHistory } from './history.js';
import { redisInstances } from './instances.js';
import { redisMessages } from './messages.js';
import { redisQueues } from './queues.js';
import { redisSchedules } from './schedules.js';
import { Scripts } from './scripts.js';
import { redisStreams } from './streams.js';
import { redisUrlGroups } from './url-groups.js';
import { redisWorkKeys } from './work-keys.js';

export const LAYOUT_VERSION = 1;
/** Per purge script run: keeps each run short, since Redis serves nothing else meanwhile. */
const PURGE_BATCH = 1_000;

export interface RedisStoreOptions {
  url: string;
  /** Every key starts with `<prefix>:`; several Courier deployments may share one Redis with distinct prefixes. */
  prefix?: string;
}

export async function openRedisStore(options: RedisStoreOptions): Promise<Store> {
  const prefix = options.prefix ?? 'courier';
  const redis = new Redis(options.url, {
    lazyConnect: true,
    maxRetriesPerRequest: 3,
    // A script sent before a disconnect may have run: re-sending it blindly could apply a transition twice,
    // so the caller gets the error and retries the verb (enqueue is idempotent per message id).
    autoResendUnfulfilledCommands: false,
  });
  const ctx: RedisContext = {
    redis,
    scripts: new Scripts(redis, prefix),
    key: (...parts) => [prefix, ...parts].join(':'),
    prefix,
    watchers: new Set(),
  };
  try {
    await redis.connect();
    await checkLayout(ctx);
    await ctx.scripts.load();
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  const store: Store = {
    ...maintenance(ctx),
    ...credentials(ctx),
    ...redisMessages(ctx),
    ...redisHistory(ctx),
    ...redisQueues(ctx),
    ...redisFlowControls(ctx),
    ...redisUrlGroups(ctx),
    ...redisSchedules(ctx),
    ...redisInstances(ctx),
    ...redisWorkKeys(ctx),
    ...redisStreams(ctx),
  };
  return guardDriverFailures(store, isRedisOutage);
}

async function checkLayout({ redis, key, prefix }: RedisContext): Promise<void> {
  await redis.set(key('layout'), String(LAYOUT_VERSION), 'NX');
  const found = await redis.get(key('layout'));
  if (Number(found) !== LAYOUT_VERSION) {
    throw new Error(
      `Redis store: key layout version ${found} under prefix "${prefix}" is not ${LAYOUT_VERSION}; ` +
        'this Courier is too old for it (or the prefix holds something else)',
    );
  }
}

/** Socket errors of a connection that was refused, dropped or timed out. */
const OUTAGE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH']);
/**
 * What ioredis (5 and 6) says when it cannot run a command for want of a connection: the connection is
 * closed (or was closed while the command waited), the offline queue is off and the stream is not
 * writable, or a command in flight was aborted by the connection closing.
 */
const OUTAGE_MESSAGES = /^(Connection is closed\.|Stream isn't writeable|Command aborted due to connection close)/;

/**
 * Redis could not be reached: a refused, dropped or timed-out connection, or a command given up after
 * `maxRetriesPerRequest` reconnections (MaxRetriesPerRequestError). A reply from the server (ReplyError:
 * a script error, WRONGTYPE, OOM …) means Redis was reached and answered: not an outage.
 */
function isRedisOutage(error: unknown): boolean {
  if (!(error instanceof Error) || error.name === 'ReplyError') return false;
  if (error.name === 'MaxRetriesPerRequestError') return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && OUTAGE_CODES.has(code)) return true;
  return OUTAGE_MESSAGES.test(error.message);
}

function credentials({ redis, scripts, key }: RedisContext): CredentialStore {
  return {
    async ensureCredentials(proposed) {
      const results = await redis.multi().set(key('cred'), JSON.stringify(proposed), 'NX').get(key('cred')).exec();
      const stored = JSON.parse(results![1]![1] as string) as Credentials;
      return { token: stored.token, currentSigningKey: stored.currentSigningKey, nextSigningKey: stored.nextSigningKey };
    },

    async rotateSigningKeys(freshNext) {
      const pair = (await scripts.run('rotate-keys', [freshNext])) as string[];
      if (pair.length < 2) throw new Error('rotateSigningKeys: no credentials stored yet');
      return { current: pair[0]!, next: pair[1]! };
    },
  };
}

function maintenance({ redis, scripts, key, watchers }: RedisContext): MaintenanceStore {
  return {
    capabilities: { exclusive: false, pushNotify: true },

    async stats() {
      const results = await pipelineResults(redis.pipeline().hmget(key('stats'), 'pending', 'active').zcard(key('dlq')));
      const [pending, active] = results[0] as (string | null)[];
      return { pending: Number(pending ?? 0), active: Number(active ?? 0), deadLetters: results[1] as number };
    },

    async purge(request) {
      const total = { messages: 0, events: 0, deadLetters: 0 };
      const args = [String(request.logsBefore), String(request.deadLettersBefore), String(request.dedupBefore)];
      for (;;) {
        const answer = await scripts.run('purge', [...args, String(PURGE_BATCH)]);
        const [messages, events, deadLetters, more] = answer as [number, number, number, string];
        total.messages += messages;
        total.events += events;
        total.deadLetters += deadLetters;
        if (more !== '1') return total;
      }
    },

    async ping() {
      await redis.ping();
    },

    /** Also drops the watchWork and watchStreams subscribers still open: each is a connection of its own. */
    async close() {
      for (const subscriber of watchers) subscriber.disconnect();
      watchers.clear();
      if (redis.status !== 'end') await redis.quit().catch(() => redis.disconnect());
    },
  };
}
