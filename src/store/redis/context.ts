/** What every area module of the Redis store shares: the connection, its scripts and the key layout. */
import type { Redis } from 'ioredis';
import type { Scripts } from './scripts.js';

export interface RedisContext {
  /** The command connection (scripts and reads); subscribers are separate, see `watchers`. */
  redis: Redis;
  scripts: Scripts;
  /** `<prefix>:part:part…`, the layout's key for the parts. */
  key: (...parts: string[]) => string;
  prefix: string;
  /** The subscriber connections still open (watchWork, watchStreams), disconnected by close. */
  watchers: Set<Redis>;
}

export type Row = (Buffer | null)[];

export const text = (value: Buffer | string | null | undefined): string => (value ?? '').toString();

/**
 * A pipeline's replies, throwing the first command's error: a pipeline answers a lost connection per
 * command rather than by rejecting, and the error must reach the outage guard (redis-store.ts).
 */
export async function pipelineResults(pipeline: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
  return ((await pipeline.exec()) ?? []).map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}

/**
 * Subscribes a connection of its own to `channel` (a subscribed connection can run nothing else), tracked in
 * `watchers` so close() ends it too. Resolves once subscribed, with the function that unsubscribes.
 */
export async function watchChannel(
  { redis, watchers }: RedisContext,
  channel: string,
  onMessage: (message: string) => void,
): Promise<() => Promise<void>> {
  const subscriber = redis.duplicate();
  watchers.add(subscriber);
  subscriber.on('message', (_channel: string, message: string) => onMessage(message));
  await subscriber.subscribe(channel);
  return async () => {
    if (!watchers.delete(subscriber)) return;
    await subscriber.quit().catch(() => subscriber.disconnect());
  };
}
