/**
 * The HTTP host under both roots (server.ts, gateway-server.ts): it builds
 * each request's context, checks the token, matches the route table, writes
 * whole and streaming replies, turns every error into a response through the
 * one mapping (error-reply.ts), answers Node's parser errors, listens, and
 * closes gracefully.
 *
 * Every answer is ours, in the host's error shape: Node would otherwise
 * answer a missing Host (400) or an unknown Expect (417) with an empty body,
 * and CONNECT with nothing at all; those are handled here instead.
 *
 * Refusing a connection (`clientError`: bytes the parser rejects, a request
 * that did not arrive within the body timeout): requests that arrived whole
 * before the bad bytes are answered first, in order, and only then is the
 * error written and the connection closed. HAZARD: a pipelined publish is
 * already stored; a client that saw only the 400 would publish it again.
 *
 * Closing: stop accepting, let whole replies in flight finish, end every
 * open stream (its signal aborts, so its producer lets go), then resolve.
 * A stream never holds `close()` open.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { CourierError } from '../core/errors.js';
import { createTokenCheck } from './auth.js';
import { clientErrorCode, COURIER_ERRORS, courierErrorReply, internalError, rawErrorResponse, type ErrorShape } from './error-reply.js';
import { checkQueryEncoding, matchRoute, readBody, writeReply, type Reply, type RequestContext, type Route } from './http.js';

/** COURIER_BODY_TIMEOUT's default: a request (headers and body) that has not arrived whole by then is answered 408. */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;
/** Headers are a few KiB: a client that cannot send them in this long is stalling, not slow. */
const HEADERS_TIMEOUT_MS = 20_000;
/**
 * Node checks its request timeouts on an interval (30 s by default, which
 * would make a short timeout meaningless): a tenth of the timeout, so a 408 is
 * at most ~10 % late, and at most once a second, so the sweep stays cheap.
 */
const timeoutCheckInterval = (timeoutMs: number) => Math.min(1_000, Math.max(10, Math.floor(timeoutMs / 10)));
/** After our error and FIN, a client that keeps its half of the connection open is cut off. */
const CLOSE_GRACE_MS = 5_000;

export interface HostOptions {
  routes: readonly Route[];
  /** Undefined: no request carries the token (the gateway without COURIER_TOKEN). */
  token: string | undefined;
  logger: Logger;
  now: () => number;
  /** Where to send the token in the 401 message (the SDK's name for it differs per host). */
  tokenName: string;
  /** The shape of errors raised outside a route's handler and of 500s; default `courier`. */
  errorShape?: ErrorShape;
  /** Answers what no route matches (the gateway's deliveries); default a 404 ROUTE_NOT_FOUND. */
  fallback?: (ctx: RequestContext) => Promise<Reply>;
  /** Node's default is 16 KiB. */
  maxHeaderBytes?: number;
  /** How long a request may take to arrive whole (COURIER_BODY_TIMEOUT); default DEFAULT_BODY_TIMEOUT_MS. */
  bodyTimeoutMs?: number;
}

export interface Host {
  readonly server: Server;
  /** The host without a port, for in-process tests and for mounting. */
  readonly listener: RequestListener;
  /** Resolves with the port listened on. */
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

/** RFC 9112 §3.2 / RFC 3986 §3.2.2: a host name, IPv4 or bracketed IPv6 literal, and an optional port; no userinfo, no spaces. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::\d{0,5})?$/;

/** A header that must come at most once (RFC 9112 §3.2 for Host). */
function checkOnce(req: IncomingMessage, name: string, code: 'MALFORMED_REQUEST' | 'UNAUTHORIZED'): void {
  let seen = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === name) seen += 1;
  if (seen > 1) throw new CourierError(code, `malformed request: ${seen} ${name} headers; send exactly one`);
}

export function createHost(options: HostOptions): Host {
  const { routes, logger, now } = options;
  const shape = options.errorShape ?? COURIER_ERRORS;
  const tokenMatches = options.token === undefined ? () => false : createTokenCheck(options.token);
  /** Responses being streamed, each with the controller that ends it. */
  const streaming = new Map<ServerResponse, AbortController>();
  /** Per connection: its responses not yet done, in arrival order (pipelined requests queue behind the first). */
  const unanswered = new WeakMap<Socket, Set<ServerResponse>>();
  /**
   * Connections being refused, with why (for the log): the error is written
   * once, and a handler left reading a body on one is not an error.
   */
  const refusals = new WeakMap<Socket, string>();

  function context(req: IncomingMessage, res: ServerResponse, signal: AbortSignal, params: Record<string, string>, authenticated: boolean): RequestContext {
    const target = req.url ?? '/';
    const queryStart = target.indexOf('?');
    return {
      req,
      res,
      signal,
      method: req.method ?? 'GET',
      target,
      path: queryStart === -1 ? target : target.slice(0, queryStart),
      query: new URLSearchParams(queryStart === -1 ? '' : target.slice(queryStart + 1)),
      params,
      callerIp: req.socket.remoteAddress ?? '',
      authenticated,
      body: (limit) => readBody(req, limit),
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<Reply> {
    // RFC 9112 §3.2 (Node's requireHostHeader, turned off so that the answer is ours).
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      throw new CourierError('MALFORMED_REQUEST', 'malformed request: an HTTP/1.1 request must carry a Host header');
    }
    checkOnce(req, 'host', 'MALFORMED_REQUEST');
    if (req.headers.host !== undefined && !HOST.test(req.headers.host)) {
      throw new CourierError('MALFORMED_REQUEST', `malformed request: Host "${req.headers.host}" is not a host[:port]`);
    }
    // Node keeps the first of two Authorization headers: which one counts must never be a guess.
    checkOnce(req, 'authorization', 'UNAUTHORIZED');
    const target = req.url ?? '/';
    const method = req.method ?? 'GET';
    const queryStart = target.indexOf('?');
    const path = queryStart === -1 ? target : target.slice(0, queryStart);
    const found = matchRoute(routes, method, path);
    if (found === undefined) {
      if (options.fallback) return options.fallback(context(req, res, signal, {}, false));
      throw new CourierError('ROUTE_NOT_FOUND', `no route for ${method} ${path}`);
    }
    if ('methodNotAllowed' in found) {
      const reply = courierErrorReply(new CourierError('METHOD_NOT_ALLOWED', `method ${method} not allowed on ${path}`), COURIER_ERRORS, now())!;
      return { ...reply, headers: { ...reply.headers, Allow: found.methodNotAllowed.join(', ') } };
    }
    if (!found.route.rawQuery) checkQueryEncoding(queryStart === -1 ? '' : target.slice(queryStart + 1));
    const ctx = context(req, res, signal, found.params, false);
    const authenticated = found.route.auth !== false && tokenMatches(req, ctx.query);
    if (found.route.auth === true && !authenticated) {
      throw new CourierError('UNAUTHORIZED', `missing or invalid token: send Authorization: Bearer <${options.tokenName}>`);
    }
    // Route errors are always the Courier API's shape: only the fallback speaks the host's own.
    try {
      return await found.route.handler({ ...ctx, authenticated });
    } catch (error) {
      const reply = courierErrorReply(error, COURIER_ERRORS, now());
      if (reply) return reply;
      throw error;
    }
  }

  const listener: RequestListener = (req, res) => {
    const controller = new AbortController();
    const pending = unanswered.get(req.socket) ?? new Set<ServerResponse>();
    unanswered.set(req.socket, pending);
    pending.add(res);
    // 'close' before the response finished: the client went away. Whatever it held lets go.
    res.once('close', () => {
      if (!res.writableFinished) controller.abort(new Error('the client closed the connection'));
      streaming.delete(res);
      pending.delete(res);
    });
    // While closing, a connection that finishes its reply is not kept alive: close() would wait for it to time out.
    res.once('finish', () => {
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
    handle(req, res, controller.signal)
      .then((reply) => {
        if (closing && !reply.written) reply.headers = { ...reply.headers, Connection: 'close' };
        return reply.stream ? sendStream(res, reply, controller) : writeReply(res, reply);
      })
      .catch((error: unknown) => {
        const gone = abandoned(req, res, error, controller.signal);
        if (gone !== undefined) {
          logger.debug({ method: req.method, path: req.url?.split('?')[0], reason: gone }, 'request abandoned');
          return;
        }
        let reply = courierErrorReply(error, shape, now());
        // An outage the client is told about (STORE_UNAVAILABLE) keeps the driver's own words for the operator.
        if (error instanceof CourierError && error.cause !== undefined) {
          logger.warn({ err: error.cause, code: error.code, path: req.url?.split('?')[0] }, error.message);
        }
        if (!reply) {
          logger.error({ err: error, method: req.method, path: req.url?.split('?')[0] }, 'unhandled error in request');
          reply = internalError(shape, now());
        }
        if (res.headersSent) {
          res.destroy();
          return;
        }
        writeReply(res, reply);
      });
  };

  /**
   * Why a failed request needs no answer and is no error: the client went
   * away (closed the connection, or stopped sending its body) or the
   * connection was refused (the refusal is its answer). Undefined otherwise,
   * also for an error that is not the abort itself (a real failure is still
   * reported, even when the client has left meanwhile).
   */
  function abandoned(req: IncomingMessage, res: ServerResponse, error: unknown, signal: AbortSignal): string | undefined {
    if (res.writableFinished) return undefined;
    const refusal = refusals.get(req.socket);
    const isAbort =
      error === signal.reason ||
      (error instanceof Error && ((error as NodeJS.ErrnoException).code === 'ECONNRESET' || error.name === 'AbortError'));
    if (!isAbort) return undefined;
    if (refusal !== undefined) return refusal;
    if (!req.socket.destroyed && !res.destroyed) return undefined;
    return req.complete ? 'the client closed the connection before the reply' : 'the client aborted the request body';
  }

  /**
   * Answers `problem` on a connection Node will parse no more of, then closes
   * it: after the replies to the requests that arrived whole before it (see
   * the header). One still reading its body never completes: not waited for.
   */
  function refuse(socket: Socket, problem: CourierError, reason = `the connection was refused: ${problem.message}`): void {
    if (refusals.has(socket)) return;
    refusals.set(socket, reason);
    const raw = rawErrorResponse(problem, shape, now());
    const before = [...(unanswered.get(socket) ?? [])].filter((res) => res.req.complete && !res.writableFinished);
    let left = before.length;
    const send = () => {
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      socket.setTimeout(CLOSE_GRACE_MS);
      socket.once('timeout', () => socket.destroy());
      socket.end(raw);
    };
    if (left === 0) return send();
    for (const res of before) {
      let counted = false;
      const done = () => {
        if (counted) return;
        counted = true;
        if (--left === 0) send();
      };
      // Node's own 'finish' handler (added before ours) has handed the socket on by now: ours is the next write.
      res.once('finish', done);
      res.once('close', done);
    }
  }

  async function sendStream(res: ServerResponse, reply: Reply, controller: AbortController): Promise<void> {
    const source = reply.stream!;
    const { signal } = controller;
    streaming.set(res, controller);
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', ...reply.headers };
    res.writeHead(reply.status, headers);
    res.flushHeaders();
    const iterator = source[Symbol.asyncIterator]();
    const stopped = new Promise<'stopped'>((resolve) => {
      if (signal.aborted) resolve('stopped');
      signal.addEventListener('abort', () => resolve('stopped'), { once: true });
    });
    const ends: Promise<'stopped' | { last: Uint8Array | string }>[] = [stopped];
    if (reply.cut) ends.push(reply.cut.then((last) => ({ last })));
    let finished = false;
    let last: Uint8Array | string | undefined;
    try {
      while (!signal.aborted) {
        const step = await Promise.race([iterator.next(), ...ends]);
        if (step === 'stopped') break;
        if ('last' in step) {
          last = step.last;
          break;
        }
        if (step.done) {
          finished = true;
          break;
        }
        if (!res.write(step.value)) {
          const drained = await Promise.race([new Promise<'drained'>((resolve) => res.once('drain', () => resolve('drained'))), ...ends]);
          if (typeof drained === 'object') {
            last = drained.last;
            break;
          }
        }
      }
    } finally {
      streaming.delete(res);
      if (!finished) release(source, iterator);
      if (last !== undefined && !res.writableEnded && !res.destroyed) {
        // A client that does not read its last words within the grace is not waited for.
        const timer = setTimeout(() => res.destroy(), CLOSE_GRACE_MS);
        res.once('close', () => clearTimeout(timer));
        res.end(last);
      }
      if (!res.writableEnded && !res.destroyed) res.end();
    }
  }

  /** Lets the producer clean up; its `finally` may run later (see Reply.stream's HAZARD). */
  function release(source: NonNullable<Reply['stream']>, iterator: AsyncIterator<unknown>): void {
    if (source instanceof Readable) {
      source.destroy();
      return;
    }
    iterator.return?.().catch((error: unknown) => logger.warn({ err: error }, 'a reply stream failed while closing'));
  }

  const bodyTimeoutMs = options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  const server = createServer(
    {
      requestTimeout: bodyTimeoutMs,
      headersTimeout: Math.min(HEADERS_TIMEOUT_MS, bodyTimeoutMs),
      connectionsCheckingInterval: timeoutCheckInterval(bodyTimeoutMs),
      requireHostHeader: false,
      ...(options.maxHeaderBytes === undefined ? {} : { maxHeaderSize: options.maxHeaderBytes }),
    },
    listener,
  );
  server.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
    const code = clientErrorCode(error.code);
    // The client stopped mid-request (a FIN before the body's end, or a reset); after a FIN it may still read our answer.
    if (error.code === 'HPE_INVALID_EOF_STATE' || error.code === 'ECONNRESET') {
      const problem = new CourierError(code, 'malformed request: the connection ended before the request did');
      if (socket.writable) refuse(socket, problem, 'the client aborted the request body');
      else {
        if (!refusals.has(socket)) refusals.set(socket, 'the client aborted the request body');
        socket.destroy();
      }
      return;
    }
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    refuse(
      socket,
      code === 'REQUEST_TIMEOUT'
        ? new CourierError(code, `the request did not arrive whole within ${bodyTimeoutMs} ms (COURIER_BODY_TIMEOUT)`)
        : new CourierError(code, `malformed request: ${error.code ?? error.message}`),
    );
  });
  // Any Expect but 100-continue (which Node answers and then emits 'request').
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const problem = new CourierError('EXPECTATION_FAILED', `Expect: ${req.headers.expect ?? ''} is not supported (only 100-continue is)`);
    writeReply(res, courierErrorReply(problem, shape, now())!);
  });
  // Courier is no proxy; without this listener Node would drop the connection without a word.
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    socket.on('error', (error) => logger.debug({ err: error }, 'a refused CONNECT connection failed'));
    refuse(socket, new CourierError('MALFORMED_REQUEST', `malformed request: CONNECT ${req.url ?? ''} is not supported (this is not a proxy)`));
  });

  let closing: Promise<void> | undefined;
  return {
    server,
    listener,
    listen(port, host) {
      return new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeIdleConnections();
        for (const controller of streaming.values()) controller.abort(new Error('the server is shutting down'));
      });
      return closing;
    },
  };
}
