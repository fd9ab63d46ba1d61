/**
 * The HTTP host under both roots (server.ts, gateway-server.ts): it builds
 * each request's context, checks the token, matches the route table, writes
 * whole and streaming replies, turns every error into a response through the
 * one mapping (error-reply.ts), answers Node's parser errors, listens, and
 * closes gracefully.
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
import { matchRoute, readBody, writeReply, type Reply, type RequestContext, type Route } from './http.js';

/** Long uploads and slow callers get five minutes before Node answers 408 itself. */
const REQUEST_TIMEOUT_MS = 300_000;

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
}

export interface Host {
  readonly server: Server;
  /** The host without a port, for in-process tests and for mounting. */
  readonly listener: RequestListener;
  /** Resolves with the port listened on. */
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

export function createHost(options: HostOptions): Host {
  const { routes, logger, now } = options;
  const shape = options.errorShape ?? COURIER_ERRORS;
  const tokenMatches = options.token === undefined ? () => false : createTokenCheck(options.token);
  /** Responses being streamed, each with the controller that ends it. */
  const streaming = new Map<ServerResponse, AbortController>();

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
    // 'close' before the response finished: the client went away. Whatever it held lets go.
    res.once('close', () => {
      if (!res.writableFinished) controller.abort(new Error('the client closed the connection'));
      streaming.delete(res);
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
    let finished = false;
    try {
      while (!signal.aborted) {
        const step = await Promise.race([iterator.next(), stopped]);
        if (step === 'stopped') break;
        if (step.done) {
          finished = true;
          break;
        }
        if (!res.write(step.value)) {
          await Promise.race([new Promise((resolve) => res.once('drain', resolve)), stopped]);
        }
      }
    } finally {
      streaming.delete(res);
      if (!finished) release(source, iterator);
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

  const server = createServer(
    { requestTimeout: REQUEST_TIMEOUT_MS, ...(options.maxHeaderBytes === undefined ? {} : { maxHeaderSize: options.maxHeaderBytes }) },
    listener,
  );
  server.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    const problem = new CourierError(clientErrorCode(error.code), `malformed request: ${error.code ?? error.message}`);
    socket.end(rawErrorResponse(problem, shape, now()));
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
