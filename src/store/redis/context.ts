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
  /** The watchWork subscriber connections still open, disconnected by close. */
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
