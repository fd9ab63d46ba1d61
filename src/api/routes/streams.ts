/**
 * Task streams, /v1/streams (README "Task streams"): write, follow over
 * SSE, read as JSON, list, delete, mint tokens. Handlers parse and call the
 * stream service; every rule lives there.
 *
 * Auth: the API token everywhere. A stream's read token (`?token=` or
 * `Authorization: Bearer`) also opens that stream's read endpoints (SSE,
 * state, events list), a write token also its POST events; each request
 * (every EventSource reconnect too) is checked anew. The read endpoints
 * answer CORS for COURIER_STREAM_CORS_ORIGINS, errors included, so a page
 * can read why it was refused.
 */
import { z } from 'zod';
import { COURIER_ERRORS, courierErrorReply } from '../error-reply.js';
import { json, pathParam, type Reply, type RequestContext, type Route } from '../http.js';
import { parseJsonBody } from '../json.js';
import { count } from '../query.js';
import { renderStream, renderStreamEvent } from '../render.js';
import { invalid } from '../../core/errors.js';
import type { ApiServices } from '../services.js';
import type { StreamScope } from '../../streams/tokens.js';

const BEARER = /^bearer +/i;
const DEFAULT_TOKEN_TTL_SECONDS = 900;
const DEFAULT_EVENTS_LIMIT = 100;
const MAX_EVENTS_LIMIT = 1000;

const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  // no-transform: proxies that compress or buffer would hold events back.
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
};

const TokenRequest = z.object({
  ttlSeconds: z.number().optional(),
  scope: z.enum(['read', 'write']).optional(),
});

export function streamRoutes(services: ApiServices): Route[] {
  const { streams, limits } = services;
  const origins = streams.settings.corsOrigins;

  const id = (ctx: RequestContext) => streams.checkId(pathParam(ctx, 'id'));

  /** A stream token from `?token=`, else the Bearer header (when it was not the API token). */
  function presented(ctx: RequestContext): string | undefined {
    const query = ctx.query.get('token');
    if (query !== null) return query;
    const header = ctx.req.headers.authorization;
    const scheme = header === undefined ? null : BEARER.exec(header);
    return scheme ? header!.slice(scheme[0].length).trim() : undefined;
  }

  const authorize = (ctx: RequestContext, streamId: string, need: StreamScope) => streams.authorize(streamId, ctx.authenticated, presented(ctx), need);

  function corsHeaders(ctx: RequestContext): Record<string, string> | undefined {
    const origin = ctx.req.headers.origin;
    if (origins.includes('*')) return { 'Access-Control-Allow-Origin': '*' };
    if (origin !== undefined && origins.includes(origin)) return { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' };
    return undefined;
  }

  /** A read endpoint: its replies, errors too, carry the CORS headers. */
  function readable(handler: (ctx: RequestContext) => Promise<Reply>): (ctx: RequestContext) => Promise<Reply> {
    return async (ctx) => {
      const cors = corsHeaders(ctx);
      if (!cors) return handler(ctx);
      let reply: Reply;
      try {
        reply = await handler(ctx);
      } catch (error) {
        const mapped = courierErrorReply(error, COURIER_ERRORS, services.clock.now());
        if (!mapped) throw error;
        reply = mapped;
      }
      return { ...reply, headers: { ...reply.headers, ...cors } };
    };
  }

  async function preflight(ctx: RequestContext): Promise<Reply> {
    const cors = corsHeaders(ctx);
    if (!cors) return { status: 204 };
    return {
      status: 204,
      headers: {
        ...cors,
        'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
        'Access-Control-Allow-Headers': 'Authorization, Last-Event-ID, Cache-Control',
        'Access-Control-Max-Age': '600',
      },
    };
  }

  async function sse(ctx: RequestContext): Promise<Reply> {
    const streamId = id(ctx);
    await authorize(ctx, streamId, 'read');
    const header = ctx.req.headers['last-event-id'];
    const position = streams.position(typeof header === 'string' ? header : undefined, ctx.query.get('lastEventId'), ctx.query.get('from'));
    if (ctx.method === 'HEAD') return { status: 200, headers: SSE_HEADERS };
    const start = await streams.follow(streamId, position, ctx.signal);
    if (start.kind === 'finished') return { status: 204 };
    return { status: 200, headers: SSE_HEADERS, stream: start.frames, cut: start.cut };
  }

  async function state(ctx: RequestContext): Promise<Reply> {
    const streamId = id(ctx);
    await authorize(ctx, streamId, 'read');
    return json(200, renderStream(await streams.get(streamId)));
  }

  async function events(ctx: RequestContext): Promise<Reply> {
    const streamId = id(ctx);
    await authorize(ctx, streamId, 'read');
    const after = whole(ctx.query.get('after'), 'after', 0, Number.MAX_SAFE_INTEGER) ?? 0;
    const limit = whole(ctx.query.get('limit'), 'limit', 1, MAX_EVENTS_LIMIT) ?? DEFAULT_EVENTS_LIMIT;
    const page = await streams.events(streamId, after, limit);
    return json(200, { events: page.events.map(renderStreamEvent), cursor: page.cursor, state: page.stream.state });
  }

  async function append(ctx: RequestContext): Promise<Reply> {
    const streamId = id(ctx);
    await authorize(ctx, streamId, 'write');
    const body = parseJsonBody(await ctx.body(limits.maxBodyBytes), 'must be JSON: an event {"type", "data"} or an array of them');
    return json(200, await streams.append(streamId, body));
  }

  async function mint(ctx: RequestContext): Promise<Reply> {
    const streamId = id(ctx);
    const raw = await ctx.body(64 * 1024);
    const parsed = TokenRequest.safeParse(raw.length === 0 ? {} : parseJsonBody(raw));
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw invalid(issue.path.length > 0 ? issue.path.join('.') : 'body', issue.message);
    }
    const { ttlSeconds = DEFAULT_TOKEN_TTL_SECONDS, scope = 'read' } = parsed.data;
    return json(200, await streams.mintToken(streamId, { ttlSeconds, scope }));
  }

  async function list(ctx: RequestContext): Promise<Reply> {
    const state = ctx.query.get('state');
    const cursor = ctx.query.get('cursor');
    const page = await streams.list({
      ...(state === null ? {} : { state }),
      ...(cursor === null || cursor === '' ? {} : { cursor }),
      count: count(ctx.query, 100, 1000),
    });
    return json(200, { streams: page.items.map(renderStream), ...(page.cursor === undefined ? {} : { cursor: page.cursor }) });
  }

  async function remove(ctx: RequestContext): Promise<Reply> {
    await streams.delete(id(ctx));
    return { status: 200, json: { deleted: true } };
  }

  const one = /^\/v1\/streams\/(?<id>[^/]+)\/?$/;
  return [
    { methods: ['OPTIONS'], pattern: /^\/v1\/streams\/[^/]+(?:\/sse|\/events)?\/?$/, auth: false, handler: preflight },
    { methods: ['GET'], pattern: /^\/v1\/streams\/?$/, auth: true, handler: list },
    { methods: ['GET'], pattern: /^\/v1\/streams\/(?<id>[^/]+)\/sse\/?$/, auth: 'optional', handler: readable(sse) },
    { methods: ['GET'], pattern: /^\/v1\/streams\/(?<id>[^/]+)\/events\/?$/, auth: 'optional', handler: readable(events) },
    { methods: ['POST'], pattern: /^\/v1\/streams\/(?<id>[^/]+)\/events\/?$/, auth: 'optional', handler: append },
    { methods: ['POST'], pattern: /^\/v1\/streams\/(?<id>[^/]+)\/tokens\/?$/, auth: true, handler: mint },
    { methods: ['GET'], pattern: one, auth: 'optional', handler: readable(state) },
    { methods: ['DELETE'], pattern: one, auth: true, handler: remove },
  ];
}

/** A whole-number query parameter within [min, max]; undefined when absent. */
function whole(value: string | null, name: string, min: number, max: number): number | undefined {
  if (value === null) return undefined;
  if (!/^\d{1,16}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw invalid(name, `must be a whole number from ${min} to ${max}, got "${value.length > 32 ? `${value.slice(0, 32)}…` : value}"`);
  }
  return Number(value);
}
