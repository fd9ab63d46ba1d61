/**
 * The small HTTP layer under the API: a route table matched on the raw
 * request target, bounded body reading, and one place that writes replies.
 *
 * Raw node:http rather than a framework: publish destinations live in the
 * raw path (`/v2/publish/https://x/y?z=1`, spec §1.1) and must reach us with
 * `//`, `%2F` and the query string untouched, DELETE bodies must be read,
 * and an empty body with a JSON content type must be accepted.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import { CourierError, invalid } from '../core/errors.js';
import { checkName } from './destination.js';
import { parseJsonBody } from './json.js';

export interface Reply {
  status: number;
  /** Serialised as JSON. */
  json?: unknown;
  text?: string;
  /**
   * The body as it is produced (Server-Sent Events, large downloads): sent
   * chunked, each chunk as it comes. The host stops reading it when the
   * client goes away or the host shuts down (`ctx.signal`), then calls the
   * iterator's `return()` (a Readable is destroyed), so its `finally` runs.
   * HAZARD: an async generator runs `finally` only once the await it is
   * suspended in settles; one that waits for events must also watch `ctx.signal`.
   */
  stream?: AsyncIterable<Uint8Array | string> | Readable;
  /**
   * The producer cuts its stream short (an SSE follower too slow for its
   * stream): the host stops reading `stream`, ends the response with this
   * last chunk after what is already buffered, and destroys the connection
   * if the client has not taken it all within a grace period.
   */
  cut?: Promise<Uint8Array | string>;
  headers?: Record<string, string>;
  /** The handler already wrote the response on `ctx.res` (the gateway relays an instance's answer as it arrives). */
  written?: true;
}

export interface RequestContext {
  readonly req: IncomingMessage;
  /** Only for handlers that write the response themselves (`Reply.written`). */
  readonly res: ServerResponse;
  /** Aborted when the client goes away before the reply is complete, or the host shuts down a stream. */
  readonly signal: AbortSignal;
  readonly method: string;
  /** The raw request target, exactly as received. */
  readonly target: string;
  /** The path part of the raw target (before `?`). */
  readonly path: string;
  readonly query: URLSearchParams;
  /** Named groups of the route pattern. */
  readonly params: Record<string, string>;
  readonly callerIp: string;
  /** The request carried the API token. */
  readonly authenticated: boolean;
  /** Reads the whole body; a body over `limit` bytes is a 413 and is not kept. */
  body(limit: number): Promise<Buffer>;
}

export interface Route {
  /** A route listing GET also answers HEAD, without the body (Node drops it). */
  methods: readonly string[];
  /** Matched against the raw path; named groups become `params`. */
  pattern: RegExp;
  /**
   * True: the API token is required. False only for health probes.
   * 'optional': the handler decides, from `ctx.authenticated` and its own
   * credentials (an instance's heartbeat may carry its group's secret instead).
   */
  auth: boolean | 'optional';
  /**
   * The query after `?` is part of a destination in the path (publish,
   * enqueue) and is kept byte for byte, so the host does not check its
   * percent-encoding as it does every other route's.
   */
  rawQuery?: true;
  handler: (ctx: RequestContext) => Promise<Reply>;
}

/**
 * A query whose every `%` starts a valid escape and whose escapes decode to
 * UTF-8. URLSearchParams would decode `%zz` or `%FF` leniently (to itself, or
 * U+FFFD), so a filter could silently match something else than was asked.
 */
export function checkQueryEncoding(query: string): void {
  if (query === '') return;
  for (const part of query.split(/[&=]/)) {
    try {
      decodeURIComponent(part.replace(/\+/g, ' '));
    } catch {
      throw invalid('query', `"${part}" is not validly percent-encoded UTF-8`);
    }
  }
}

/** A path parameter, percent-decoded; a malformed encoding is the client's error (400), never a 500. */
export function pathParam(ctx: RequestContext, name: string): string {
  const raw = ctx.params[name] ?? '';
  try {
    return decodeURIComponent(raw);
  } catch {
    throw invalid(name, `"${raw}" is not validly percent-encoded`);
  }
}

/** Small JSON request bodies (management endpoints) are capped well below message bodies. */
const MAX_JSON_BODY_BYTES = 1024 * 1024;

/** Reads a JSON body and checks it against `schema`; the first problem is a 400 naming its path. */
export async function readJson<T>(ctx: RequestContext, schema: z.ZodType<T>): Promise<T> {
  const parsed = parseJsonBody(await ctx.body(MAX_JSON_BODY_BYTES));
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw invalid(issue.path.length > 0 ? issue.path.join('.') : 'body', issue.message);
  }
  return result.data;
}

/** A path parameter that must be a queue, URL group or schedule name (spec §1.7). */
export function nameParam(ctx: RequestContext, param: string, field: string): string {
  return checkName(pathParam(ctx, param), field);
}

/** 200 with an empty body: what the SDK's no-parse calls expect (spec §1.4). */
export const ok = (): Reply => ({ status: 200 });

export function json(status: number, body: unknown): Reply {
  return { status, json: body };
}

export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function tooLarge(limit: number): CourierError {
  return new CourierError('PAYLOAD_TOO_LARGE', `body: larger than the ${limit}-byte limit (COURIER_MAX_BODY_BYTES)`, 'body');
}

export function writeReply(res: ServerResponse, reply: Reply): void {
  if (reply.written) return;
  const headers: Record<string, string | number> = { ...reply.headers };
  let payload: string | undefined;
  if (reply.json !== undefined) {
    payload = JSON.stringify(reply.json);
    headers['Content-Type'] = 'application/json';
  } else if (reply.text !== undefined) {
    payload = reply.text;
    headers['Content-Type'] ??= 'text/plain; charset=utf-8';
  }
  headers['Content-Length'] = payload === undefined ? 0 : Buffer.byteLength(payload);
  res.writeHead(reply.status, headers);
  res.end(payload);
}

export type RouteMatch = { route: Route; params: Record<string, string> };

/**
 * The first route whose pattern matches the path and that takes the method
 * wins; HEAD is taken by any route that takes GET. A path some route matches
 * with other methods is a 405, with the methods for `Allow`.
 */
export function matchRoute(
  routes: readonly Route[],
  method: string,
  path: string,
): RouteMatch | { methodNotAllowed: string[] } | undefined {
  const allowed = new Set<string>();
  for (const route of routes) {
    const match = route.pattern.exec(path);
    if (!match) continue;
    if (route.methods.includes(method) || (method === 'HEAD' && route.methods.includes('GET'))) {
      return { route, params: { ...match.groups } };
    }
    for (const allowedMethod of route.methods) allowed.add(allowedMethod);
    if (route.methods.includes('GET')) allowed.add('HEAD');
  }
  return allowed.size > 0 ? { methodNotAllowed: [...allowed] } : undefined;
}
