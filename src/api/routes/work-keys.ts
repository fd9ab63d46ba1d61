/**
 * Work keys (see gateway/work-keys.ts): the shared de-duplication of an
 * instance group's workers. `scope` is the group's name, so its instances
 * may use their registration secret, as for heartbeats.
 *
 *   POST   /v1/work-keys/{scope}/{key}/claim  {"ttlSeconds": n} → 200 {"claimed": true|false}
 *   DELETE /v1/work-keys/{scope}/{key}                          → 200, or 404 when not claimed
 */
import { z } from 'zod';
import { invalid } from '../../core/errors.js';
import type { WorkKeyClaims } from '../../gateway/work-keys.js';
import { json, nameParam, ok, pathParam, readJson, type RequestContext, type Route } from '../http.js';

const SECRET_HEADER = 'courier-registration-secret';
/** Long enough for any retry schedule (QStash's longest spans days), short enough that purge keeps the set bounded. */
const MAX_TTL_SECONDS = 7 * 24 * 60 * 60;
/** A message id or any caller key, percent-encoded in the path where needed; control characters are refused. */
const KEY = /^[^\x00-\x1f\x7f]{1,256}$/u;

const Claim = z.object({ ttlSeconds: z.number().min(1).max(MAX_TTL_SECONDS) }).strict();

/** The group's credential check (InstanceService.authorize): throws UNAUTHORIZED. */
export type AuthorizeGroup = (group: string, authenticated: boolean, presentedSecret: string | undefined) => void;

export function workKeyRoutes(workKeys: WorkKeyClaims, authorize: AuthorizeGroup): Route[] {
  /** The scope and key, once the caller may use the scope. */
  function target(ctx: RequestContext): { scope: string; key: string } {
    const scope = nameParam(ctx, 'scope', 'scope');
    const secret = ctx.req.headers[SECRET_HEADER];
    authorize(scope, ctx.authenticated, typeof secret === 'string' ? secret : undefined);
    const key = pathParam(ctx, 'key');
    if (!KEY.test(key)) throw invalid('key', 'must be 1-256 characters, none of them control characters');
    return { scope, key };
  }

  return [
    {
      methods: ['POST'],
      pattern: /^\/v1\/work-keys\/(?<scope>[^/]+)\/(?<key>[^/]+)\/claim\/?$/,
      auth: 'optional',
      handler: async (ctx) => {
        const { scope, key } = target(ctx);
        const { ttlSeconds } = await readJson(ctx, Claim);
        return json(200, { claimed: await workKeys.claim(scope, key, Math.round(ttlSeconds * 1000)) });
      },
    },
    {
      methods: ['DELETE'],
      pattern: /^\/v1\/work-keys\/(?<scope>[^/]+)\/(?<key>[^/]+)\/?$/,
      auth: 'optional',
      handler: async (ctx) => {
        const { scope, key } = target(ctx);
        await workKeys.release(scope, key);
        return ok();
      },
    },
  ];
}
