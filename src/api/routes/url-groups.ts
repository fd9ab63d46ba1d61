/** URL groups, /v2/topics (spec §8). */
import { z } from 'zod';
import { checkName, checkText, normaliseUrlFilter, parseDestinationUrl } from '../destination.js';
import { json, ok, nameParam, readJson, type RequestContext, type Route } from '../http.js';
import { renderUrlGroup } from '../render.js';
import type { ApiServices } from '../services.js';

const MAX_ENDPOINTS_PER_REQUEST = 1000;

const AddEndpoints = z.object({
  endpoints: z
    .array(z.object({ name: z.string().optional(), url: z.string() }))
    .min(1, 'must list at least one endpoint')
    .max(MAX_ENDPOINTS_PER_REQUEST),
});

const RemoveEndpoints = z.object({
  endpoints: z
    .array(
      z
        .object({ name: z.string().optional(), url: z.string().optional() })
        .refine((endpoint) => endpoint.name !== undefined || endpoint.url !== undefined, 'each endpoint needs a name or a url'),
    )
    .min(1, 'must list at least one endpoint')
    .max(MAX_ENDPOINTS_PER_REQUEST),
});

export function urlGroupRoutes(services: ApiServices): Route[] {
  const { urlGroups } = services;
  const group = (ctx: RequestContext) => nameParam(ctx, 'name', 'urlGroup');

  async function add(ctx: RequestContext) {
    const name = group(ctx);
    const { endpoints } = await readJson(ctx, AddEndpoints);
    await urlGroups.addEndpoints(
      name,
      endpoints.map((endpoint, index) => {
        const url = parseDestinationUrl(endpoint.url, `endpoints[${index}].url`);
        return endpoint.name === undefined ? { url } : { name: checkName(endpoint.name, `endpoints[${index}].name`), url };
      }),
    );
    return ok();
  }

  async function remove(ctx: RequestContext) {
    const name = group(ctx);
    const { endpoints } = await readJson(ctx, RemoveEndpoints);
    await urlGroups.removeEndpoints(
      name,
      // A URL is matched in the form it was stored in (normalised); one that does not parse can only be an older row's, kept as given.
      endpoints.map((endpoint, index) => ({
        ...(endpoint.name === undefined ? {} : { name: checkText(endpoint.name, `endpoints[${index}].name`) }),
        ...(endpoint.url === undefined ? {} : { url: normaliseUrlFilter(checkText(endpoint.url, `endpoints[${index}].url`)) }),
      })),
    );
    return ok();
  }

  return [
    { methods: ['POST'], pattern: /^\/v2\/topics\/(?<name>[^/]+)\/endpoints\/?$/, auth: true, handler: add },
    { methods: ['DELETE'], pattern: /^\/v2\/topics\/(?<name>[^/]+)\/endpoints\/?$/, auth: true, handler: remove },
    { methods: ['GET'], pattern: /^\/v2\/topics\/?$/, auth: true, handler: async () => json(200, (await urlGroups.list()).map(renderUrlGroup)) },
    { methods: ['GET'], pattern: /^\/v2\/topics\/(?<name>[^/]+)\/?$/, auth: true, handler: async (ctx) => json(200, renderUrlGroup(await urlGroups.get(group(ctx)))) },
    {
      methods: ['DELETE'],
      pattern: /^\/v2\/topics\/(?<name>[^/]+)\/?$/,
      auth: true,
      handler: async (ctx) => {
        await urlGroups.delete(group(ctx));
        return ok();
      },
    },
  ];
}
