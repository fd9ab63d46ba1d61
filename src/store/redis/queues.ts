/** Queues on Redis: settings in P:q:<name> (index P:queues), read here; writes are scripts (queue-*.lua). */
import type { QueueRecord } from '../../core/queue.js';
import type { QueueStore } from '../port.js';
import { pipelineResults, type RedisContext } from './context.js';

async function queues({ redis, key }: RedisContext, names: string[]): Promise<QueueRecord[]> {
  const pipeline = redis.pipeline();
  for (const name of names) {
    pipeline.hmget(key('q', name), 'par', 'paused', 'created', 'updated');
    pipeline.zcard(key('qw', name));
    pipeline.scard(key('qs', name));
  }
  const results = await pipelineResults(pipeline);
  const out: QueueRecord[] = [];
  names.forEach((name, index) => {
    const [par, paused, created, updated] = results[index * 3] as (string | null)[];
    if (par === null || par === undefined) return;
    out.push({
      name,
      parallelism: Number(par),
      paused: paused === '1',
      lag: (results[index * 3 + 1] as number) + (results[index * 3 + 2] as number),
      createdAt: Number(created),
      updatedAt: Number(updated),
    });
  });
  return out;
}

/** The port's queue verbs. */
export function redisQueues(ctx: RedisContext): QueueStore {
  const { redis, scripts, key } = ctx;
  return {
    async upsertQueue(settings, at) {
      const { name, parallelism, paused } = settings;
      await scripts.run('queue-upsert', [name, String(parallelism), paused ? '1' : '0', String(at)]);
    },

    async getQueue(name) {
      return (await queues(ctx, [name]))[0];
    },

    async listQueues() {
      return queues(ctx, (await redis.smembers(key('queues'))).sort());
    },

    async setQueuePaused(name, paused, at) {
      return (await scripts.run('queue-pause', [name, paused ? '1' : '0', String(at)])) === 1;
    },

    async deleteQueue(name, at) {
      return (await scripts.run('queue-delete', [name, String(at)])) === 1;
    },
  };
}
