/**
 * The receiving end of deliveries: a path → handler table behind signature
 * verification, de-duplication and a drain switch, served either to Node's
 * `http` server (`worker.node`) or to anything that speaks Web `Request` /
 * `Response` (`worker.fetch`).
 *
 * One delivery, in order:
 *   GET|HEAD /health          → 200 OK (503 while draining, so health checks stop sending)
 *   draining                  → 503, Retry-After: 5 (Courier/QStash retry later, maybe elsewhere)
 *   no route for the path     → 404
 *   body over maxBodyBytes    → 413
 *   signature fails           → 401, before any handler runs
 *   JSON body does not parse  → 400
 *   message id already claimed→ 200 without running the handler
 *   handler throws            → 500 (retried); the claim is released so the retry runs
 *   its stream writes failed  → 500 (retried), unless the stream is closed or full (writes flushed first)
 *   handler returns           → 200 `OK`, or its return value as JSON
 *
 * Delivery is at-least-once; the de-duplication makes a handler run at most
 * once per message id within what the dedupe store remembers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dedupe } from './dedupe.js';
import { type IncomingDelivery, readWebBody, type Reply } from './incoming.js';
import { readNodeRequest, writeNodeResponse } from './node-http.js';
import { createTaskStream, type TaskStream, TaskStreamError } from './task-stream.js';
import { DeliveryVerificationError, publicRequestUrl, type SigningKeys, verifyDelivery } from './verify.js';

export interface Task {
  /** JSON-parsed when the Content-Type is JSON, else the raw bytes. */
  body: unknown;
  rawBody: Uint8Array;
  headers: Headers;
  /** `Upstash-Message-Id`: the key to make side effects idempotent with. */
  messageId: string | undefined;
  /** Retries before this attempt: 0 on the first. */
  retried: number;
  /** The request path, without the query. */
  path: string;
  /**
   * The message's task stream (a publish with `Upstash-Courier-Stream`):
   * `write`, `end`, `fail`, `history` (see task-stream.ts). Everything
   * written is stored before the worker answers the delivery.
   */
  stream: TaskStream;
}

export type TaskHandler = (task: Task) => Promise<unknown>;

export interface WorkerErrorContext {
  /** Which step failed: a refused signature, the dedupe store, the handler, or the worker itself. */
  phase: 'verify' | 'dedupe' | 'handler' | 'stream' | 'internal';
  path: string;
  messageId: string | undefined;
}

export interface WorkerOptions {
  keys: SigningKeys;
  /**
   * The public base URL deliveries are addressed to (the instance URL
   * registered with Courier, or the gateway's URL). Without it the URL the
   * request arrived at is used, which is wrong behind a proxy: see
   * `verifyDelivery`.
   */
  publicUrl?: string;
  /**
   * Behind Courier's gateway (`courier gateway`), take the signed path from
   * its `X-Forwarded-Uri` header: the gateway may have rewritten a legacy
   * path (its alias table), and the token names the path QStash called. Only
   * for instances that nothing but the gateway can reach: the gateway has
   * verified the delivery already, and a direct caller could otherwise pick
   * which of the public URL's paths a token is checked against (the body
   * hash and expiry still hold).
   */
  behindGateway?: boolean;
  /** Exact paths, e.g. `{ '/api/tasks/download': handler }`. */
  routes: Record<string, TaskHandler>;
  dedupe?: Dedupe;
  /** Called for every refused signature and every failure; the worker still answers. */
  onError?: (error: unknown, context: WorkerErrorContext) => void;
  /** Larger bodies are answered 413 without being read; default 1 MiB. */
  maxBodyBytes?: number;
  clockToleranceSeconds?: number;
  /** Milliseconds since the epoch, for signature expiry; injected by tests. */
  now?: () => number;
  /** Courier's base URL, where `task.stream` writes (`POST /v1/streams/{id}/events`). */
  courierUrl?: string;
  /** The HTTP client `task.stream` uses; default: the global fetch. */
  fetch?: typeof fetch;
}

export interface Worker {
  node: (request: IncomingMessage, response: ServerResponse) => void;
  fetch: (request: Request) => Promise<Response>;
  /** Refuses new deliveries from now on and resolves once the running handlers have finished. */
  drain: () => Promise<void>;
}

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** Seconds a draining worker asks to be retried after; by then a replacement is usually up, or another instance takes it. */
const DRAIN_RETRY_AFTER_SECONDS = 5;

export function createWorker(options: WorkerOptions): Worker {
  const routes = new Map(Object.entries(options.routes));
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const report = (error: unknown, context: WorkerErrorContext): void => {
    // A throwing error callback must not turn an answered delivery into a crash.
    try {
      options.onError?.(error, context);
    } catch {
      return;
    }
  };

  let draining = false;
  let inFlight = 0;
  let drained: { promise: Promise<void>; resolve: () => void } | undefined;

  async function handle(incoming: IncomingDelivery): Promise<Reply> {
    const path = pathOf(incoming.target);
    if (path === '/health' && (incoming.method === 'GET' || incoming.method === 'HEAD')) {
      return draining ? text(503, 'DRAINING') : text(200, 'OK');
    }
    if (draining) {
      const reply = json(503, 'Service Unavailable', 'the worker is draining; retry on another instance');
      reply.headers['retry-after'] = String(DRAIN_RETRY_AFTER_SECONDS);
      return reply;
    }
    const handler = routes.get(path);
    if (!handler) return json(404, 'Not Found', `no handler for ${path}`);

    inFlight++;
    try {
      return await deliver(incoming, path, handler);
    } finally {
      inFlight--;
      if (inFlight === 0) drained?.resolve();
    }
  }

  function signedUrl(incoming: IncomingDelivery): string {
    const forwarded = options.behindGateway ? incoming.headers.get('x-forwarded-uri') : null;
    const target = forwarded ?? incoming.target;
    if (options.publicUrl !== undefined) return publicRequestUrl(options.publicUrl, target);
    return forwarded === null ? incoming.receivedUrl : new URL(target, incoming.receivedUrl).toString();
  }

  async function deliver(incoming: IncomingDelivery, path: string, handler: TaskHandler): Promise<Reply> {
    const messageId = incoming.headers.get('upstash-message-id') ?? undefined;
    const context = (phase: WorkerErrorContext['phase']): WorkerErrorContext => ({ phase, path, messageId });

    const rawBody = await incoming.readBody(maxBodyBytes);
    if (!rawBody) return json(413, 'Payload Too Large', `the body is larger than ${maxBodyBytes} bytes`);
    try {
      await verifyDelivery({
        signature: incoming.headers.get('upstash-signature'),
        rawBody,
        url: signedUrl(incoming),
        keys: options.keys,
        ...(options.clockToleranceSeconds === undefined ? {} : { clockToleranceSeconds: options.clockToleranceSeconds }),
        ...(options.now ? { now: options.now() } : {}),
      });
    } catch (error) {
      if (!(error instanceof DeliveryVerificationError)) throw error;
      report(error, context('verify'));
      return json(401, 'Signature verification failed', error.message, error.reason);
    }

    let body: unknown = rawBody;
    if (isJson(incoming.headers.get('content-type'))) {
      try {
        body = JSON.parse(new TextDecoder().decode(rawBody));
      } catch (error) {
        report(error, context('handler'));
        return json(400, 'Bad Request', 'the body is not valid JSON');
      }
    }

    if (options.dedupe && messageId !== undefined) {
      let claimed: boolean;
      try {
        claimed = await options.dedupe.claim(messageId);
      } catch (error) {
        report(error, context('dedupe'));
        return json(500, 'Internal Server Error', 'the dedupe store is unavailable');
      }
      // Hazard: "claimed" also covers a delivery of this id still running here.
      // Answering 200 ends the redelivery; if the running one then fails, its
      // 500 goes to an attempt the sender already gave up on (a timeout), so
      // the message is lost. Keep handler time well under the delivery timeout.
      if (!claimed) return text(200, 'OK');
    }

    const stream = createTaskStream({ courierUrl: options.courierUrl, headers: incoming.headers, fetch: options.fetch ?? fetch });
    const task: Task = { body, rawBody, headers: incoming.headers, messageId, retried: retriesOf(incoming.headers), path, stream };
    let result: unknown;
    const release = async (): Promise<void> => {
      if (options.dedupe && messageId !== undefined) {
        await options.dedupe.release(messageId).catch((releaseError: unknown) => report(releaseError, context('dedupe')));
      }
    };
    try {
      result = await handler(task);
    } catch (error) {
      report(error, context('handler'));
      // What the handler wrote still lands before the answer, so the stream shows it before `retrying`.
      await stream.flush().catch((streamError: unknown) => report(streamError, context('stream')));
      await release();
      return json(500, 'Internal Server Error', error instanceof Error ? error.message : String(error));
    }
    try {
      await stream.flush();
    } catch (error) {
      report(error, context('stream'));
      // Output that did not reach the stream makes the task unfinished: retry it, unless the stream is
      // closed or full (no retry could write there either), where the handler's outcome stands.
      if (!(error instanceof TaskStreamError && error.final)) {
        await release();
        return json(500, 'Internal Server Error', `the task's stream writes failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    if (result === undefined) return text(200, 'OK');
    return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(result) };
  }

  async function answer(incoming: IncomingDelivery): Promise<Reply> {
    try {
      return await handle(incoming);
    } catch (error) {
      report(error, { phase: 'internal', path: pathOf(incoming.target), messageId: incoming.headers.get('upstash-message-id') ?? undefined });
      return json(500, 'Internal Server Error', error instanceof Error ? error.message : String(error));
    }
  }

  return {
    node(request, response) {
      let incoming: IncomingDelivery;
      try {
        incoming = readNodeRequest(request);
      } catch (error) {
        // A Host header that is no URL authority; throwing here would crash the server.
        report(error, { phase: 'internal', path: request.url ?? '/', messageId: undefined });
        writeNodeResponse(request, response, json(400, 'Bad Request', 'the request target or Host header is malformed'));
        return;
      }
      void answer(incoming).then((reply) => writeNodeResponse(request, response, reply));
    },
    async fetch(request) {
      const url = new URL(request.url);
      const reply = await answer({
        method: request.method,
        target: url.pathname + url.search,
        receivedUrl: request.url,
        headers: request.headers,
        readBody: (limit) => readWebBody(request, limit),
      });
      return new Response(request.method === 'HEAD' ? null : reply.body, { status: reply.status, headers: reply.headers });
    },
    drain() {
      draining = true;
      if (!drained) {
        let resolve!: () => void;
        const promise = new Promise<void>((done) => (resolve = done));
        drained = { promise, resolve };
        if (inFlight === 0) resolve();
      }
      return drained.promise;
    },
  };
}

function pathOf(target: string): string {
  const query = target.indexOf('?');
  return query === -1 ? target : target.slice(0, query);
}

function isJson(contentType: string | null): boolean {
  if (!contentType) return false;
  const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

/** `Upstash-Retried` is what QStash and Courier send; seed 000's contract calls it `Upstash-Retries`. */
function retriesOf(headers: Headers): number {
  const retried = Number(headers.get('upstash-retried') ?? headers.get('upstash-retries') ?? 0);
  return Number.isInteger(retried) && retried >= 0 ? retried : 0;
}

function text(status: number, body: string): Reply {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body };
}

/** Seed 000's error shape. */
function json(status: number, error: string, message: string, reason?: string): Reply {
  const body = JSON.stringify({ error, message, ...(reason === undefined ? {} : { reason }), timestamp: new Date().toISOString() });
  return { status, headers: { 'content-type': 'application/json' }, body };
}
