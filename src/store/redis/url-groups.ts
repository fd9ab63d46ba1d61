/** URL groups on Redis: P:g:<name> (created, updated, eps JSON) indexed by P:groups; writes are url-group-*.lua. */
import type { Endpoint, UrlGroup } from '../../core/url-group.js';
import type { UrlGroupStore } from '../port.js';
import { pipelineResults, type RedisContext } from './context.js';

async function urlGroups({ redis, key }: RedisContext, names: string[]): Promise<UrlGroup[]> {
  const pipeline = redis.pipeline();
  for (const name of names) pipeline.hmget(key('g', name), 'created', 'updated', 'eps');
  const results = await pipelineResults(pipeline);
  const out: UrlGroup[] = [];
  names.forEach((name, index) => {
    const [created, updated, eps] = results[index] as (string | null)[];
    if (!eps) return;
    const parsed = JSON.parse(eps) as unknown;
    const endpoints = (Array.isArray(parsed) ? parsed : []).map((e: { name?: string; url: string }): Endpoint =>
      e.name === undefined ? { url: e.url } : { name: e.name, url: e.url },
    );
    out.push({ name, endpoints, createdAt: Number(created), updatedAt: Number(updated) });
  });
  return out;
}

/** The port's URL-group verbs. */
export function redisUrlGroups(ctx: RedisContext): UrlGroupStore {
  const { redis, scripts, key } = ctx;
  return {
    async addEndpoints(group, endpoints, at) {
      const plain = endpoints.map((e) => (e.name === undefined ? { url: e.url } : { name: e.name, url: e.url }));
      await scripts.run('url-group-add', [group, String(at), JSON.stringify(plain)]);
    },

    async removeEndpoints(group, endpoints, at) {
      const plain = endpoints.map((e) => ({
        ...(e.name !== undefined && { name: e.name }),
        ...(e.url !== undefined && { url: e.url }),
      }));
      const answer = (await scripts.run('url-group-remove', [group, String(at), JSON.stringify(plain)])) as (
        | string
        | number
      )[];
      if (answer[0] === 'unknown') return undefined;
      if (answer[0] === 'notFound') return { notFound: endpoints[Number(answer[1])]! };
      return { removed: Number(answer[1]), groupDeleted: answer[2] === '1' };
    },

    async getUrlGroup(name) {
      return (await urlGroups(ctx, [name]))[0];
    },

    async listUrlGroups() {
      return urlGroups(ctx, (await redis.smembers(key('groups'))).sort());
    },

    async deleteUrlGroup(name) {
      const [[, deleted]] = (await redis.multi().del(key('g', name)).srem(key('groups'), name).exec()) as [
        [Error | null, number],
      ];
      return deleted > 0;
    },
  };
}
