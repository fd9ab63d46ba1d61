/** Queue management, /v2/queues (spec §3.2). Enqueueing is /v2/enqueue, in publish.ts. */
import { z } from 'zod';
import { json, ok, nameParam, readJson, type RequestContext, type Route } from '../http.js';
import { checkName } from '../destination.js';
import { renderQueue } from '../render.js';
import type { ApiServices } from '../services.js';

export function queueRoutes(services: ApiServices): Route[] {
  const { queues, limits } = services;
  const QueueUpsert = z.object({
    queueName: z.string(),
    parallelism: z.number().int('must be a whole number').min(1).max(limits.maxParallelism).optional(),
    paused: z.boolean().optional(),
  });

  async function upsert(ctx: RequestContext) {
    const body = await readJson(ctx, QueueUpsert);
    await queues.upsert({ name: checkName(body.queueName, 'queueName'), parallelism: body.parallelism ?? 1, paused: body.paused ?? false });
    return ok();
  }

  const name = (ctx: RequestContext) => nameParam(ctx, 'name', 'queue');
  return [
    { methods: ['POST'], pattern: /^\/v2\/queues\/?$/, auth: true, handler: upsert },
    { methods: ['GET'], pattern: /^\/v2\/queues\/?$/, auth: true, handler: async () => json(200, (await queues.list()).map(renderQueue)) },
    {
      methods: ['POST'],
      pattern: /^\/v2\/queues\/(?<name>[^/]+)\/(?<action>pause|resume)\/?$/,
      auth: true,
      handler: async (ctx) => {
        await queues.setPaused(name(ctx), ctx.params.action === 'pause');
        return ok();
      },
    },
    { methods: ['GET'], pattern: /^\/v2\/queues\/(?<name>[^/]+)\/?$/, auth: true, handler: async (ctx) => json(200, renderQueue(await queues.get(name(ctx)))) },
    {
      methods: ['DELETE'],
      pattern: /^\/v2\/queues\/(?<name>[^/]+)\/?$/,
      auth: true,
      handler: async (ctx) => {
        await queues.delete(name(ctx));
        return ok();
      },
    },
  ];
}
