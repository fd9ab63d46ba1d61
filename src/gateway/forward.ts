/**
 * Forwarding one delivery from the stand-alone gateway to the instance it
 * chose, and relaying the instance's answer back to QStash as it streams in.
 *
 * The request keeps every end-to-end header, above all `Upstash-Signature`
 * and the other `Upstash-*` ones: the instance verifies the delivery itself
 * (against the gateway's public URL), so the gateway must not touch them.
 * Hop-by-hop headers (RFC 9110 §7.6.1, plus any the Connection header names)
 * and Host belong to one connection and are dropped in both directions.
 *
 * undici's `request` rather than fetch: no redirect following (a 3xx is
 * relayed to QStash as it is), any method may carry a body, and the response
 * body is a Node stream that pipes straight into the gateway's response.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Agent } from 'undici';

const HOP_BY_HOP = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

/**
 * Request headers the gateway sets itself or must not pass on: Host and
 * Content-Length describe the gateway's own connection and body framing
 * (undici writes both for the instance), Expect is answered by the gateway's
 * server, and the X-Forwarded-* headers are rebuilt below.
 */
const REPLACED_REQUEST_HEADERS = new Set([
  'host',
  'content-length',
  'expect',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-uri',
  'x-load-balancer',
]);

export const LOAD_BALANCER_NAME = 'courier-gateway';

export interface ClientConnection {
  /** The peer's address as the gateway's socket sees it. */
  remoteAddress: string | undefined;
  /** The request target (path and query) exactly as the caller sent it, before alias rewriting. */
  originalTarget: string;
}

/** Header names listed in a Connection header are hop-by-hop too. */
function connectionListed(connectionHeader: string | string[] | undefined): Set<string> {
  const values = Array.isArray(connectionHeader) ? connectionHeader : connectionHeader === undefined ? [] : [connectionHeader];
  return new Set(values.flatMap((value) => value.split(',')).map((name) => name.trim().toLowerCase()).filter(Boolean));
}

/**
 * The headers sent to the instance, as a flat `[name, value, …]` list so
 * repeated headers and the sender's spelling survive. X-Forwarded-Host and
 * -Proto keep what an outer proxy in front of the gateway already set (it saw
 * the original request); X-Forwarded-For gets the gateway's peer appended.
 * X-Forwarded-Uri carries the target as QStash sent it: after an alias
 * rewrite it is the only place an instance can learn the path the token's
 * `sub` was signed for (Traefik's name for the same header).
 */
export function forwardedRequestHeaders(rawHeaders: readonly string[], headers: IncomingHttpHeaders, client: ClientConnection): string[] {
  const listed = connectionListed(headers.connection);
  const forwarded: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed.has(lower) || REPLACED_REQUEST_HEADERS.has(lower)) continue;
    forwarded.push(name, rawHeaders[i + 1]!);
  }
  const priorFor = headers['x-forwarded-for'];
  const chain = [priorFor, client.remoteAddress].filter((part): part is string => part !== undefined && part !== '');
  if (chain.length > 0) forwarded.push('X-Forwarded-For', chain.join(', '));
  const originalHost = firstValue(headers['x-forwarded-host']) ?? headers.host;
  if (originalHost !== undefined) forwarded.push('X-Forwarded-Host', originalHost);
  forwarded.push('X-Forwarded-Proto', firstValue(headers['x-forwarded-proto']) ?? 'http');
  forwarded.push('X-Forwarded-Uri', client.originalTarget);
  forwarded.push('X-Load-Balancer', LOAD_BALANCER_NAME);
  return forwarded;
}

/** The instance's response headers as relayed to the caller. Content-Length stays: the body is relayed unchanged. */
export function relayedResponseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const listed = connectionListed(headers.connection);
  const relayed: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    relayed[name] = value;
  }
  return relayed;
}

function firstValue(value: string | string[] | undefined): string | undefined {
  // Node joins most repeated headers with ', '; the first hop's value is the one that saw the original request.
  const text = Array.isArray(value) ? value[0] : value;
  const first = text?.split(',')[0]?.trim();
  return first === undefined || first === '' ? undefined : first;
}

export interface ForwardRequest {
  method: string;
  /** The instance's base URL (origin, maybe a base path). */
  instanceUrl: string;
  /** Path and query to call on it, starting with '/'. */
  target: string;
  headers: string[];
  body: Uint8Array;
}

export type ForwardResult =
  /** The instance answered and its response was relayed (or the relay broke off after the status line went out: `complete` false). */
  | { relayed: true; status: number; complete: boolean }
  /** Nothing reached the caller: the instance could not be reached or did not answer in time. The caller answers 502. */
  | { relayed: false; error: Error }
  /** The caller went away before the instance answered. */
  | { relayed: false; aborted: true };

export interface Forwarder {
  forward(request: ForwardRequest, response: ServerResponse): Promise<ForwardResult>;
  close(): Promise<void>;
}

export interface ForwarderOptions {
  /** How long to wait for the instance's response headers, and then at most between two body chunks. */
  timeoutMs: number;
  /** Sockets per instance origin. */
  connectionsPerOrigin?: number;
}

/** Enough for a busy instance; a gateway in front of QStash sees at most its parallelism per endpoint. */
const DEFAULT_CONNECTIONS_PER_ORIGIN = 128;

export function createForwarder(options: ForwarderOptions): Forwarder {
  const agent = new Agent({
    connections: options.connectionsPerOrigin ?? DEFAULT_CONNECTIONS_PER_ORIGIN,
    keepAliveTimeout: 30_000,
  });

  return {
    async forward(request, response) {
      const url = new URL(instanceTarget(request.instanceUrl, request.target));
      const abort = new AbortController();
      const onClose = () => {
        if (!response.writableFinished) abort.abort();
      };
      response.once('close', onClose);
      try {
        let answer;
        try {
          answer = await agent.request({
            origin: url.origin,
            path: url.pathname + url.search,
            method: request.method,
            headers: request.headers,
            body: request.body.byteLength > 0 ? request.body : null,
            headersTimeout: options.timeoutMs,
            bodyTimeout: options.timeoutMs,
            signal: abort.signal,
          });
        } catch (error) {
          if (abort.signal.aborted) return { relayed: false, aborted: true };
          return { relayed: false, error: error instanceof Error ? error : new Error(String(error)) };
        }
        response.writeHead(answer.statusCode, relayedResponseHeaders(answer.headers));
        try {
          await pipeline(answer.body, response);
          return { relayed: true, status: answer.statusCode, complete: true };
        } catch {
          // The instance or the caller broke the stream mid-body; the status line is out, so all that is left is to cut the connection.
          response.destroy();
          return { relayed: true, status: answer.statusCode, complete: false };
        }
      } finally {
        response.off('close', onClose);
      }
    },
    close: () => agent.close(),
  };
}

/** `<instance url><target>`, with exactly one slash between a base path and the target. */
export function instanceTarget(instanceUrl: string, target: string): string {
  return instanceUrl.replace(/\/+$/, '') + target;
}
