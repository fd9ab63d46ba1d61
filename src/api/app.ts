/**
 * The HTTP server: routes, authentication, and the one place where errors
 * become responses. Every error, including those Node's parser raises before
 * a request exists, is answered as JSON `{"error": "..."}`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { CourierError } from '../core/errors.js';
import { createTokenCheck } from './auth.js';
import { json, matchRoute, readBody, writeReply, type Reply, type RequestContext, type Route } from './http.js';
import { deadLetterRoutes } from './routes/dead-letters.js';
import { flowControlRoutes } from './routes/flow-control.js';
import { messageRoutes } from './routes/messages.js';
import { publishRoutes } from './routes/publish.js';
import { queueRoutes } from './routes/queues.js';
import { scheduleRoutes } from './routes/schedules.js';
import { systemRoutes } from './routes/system.js';
import { urlGroupRoutes } from './routes/url-groups.js';
import { instanceRoutes } from './routes/instances.js';
import { workKeyRoutes } from './routes/work-keys.js';
import type { ApiServices } from './services.js';

/** Node's defaults are 16 KiB of headers; publish options travel in headers, so allow more but stay bounded. */
const MAX_HEADER_BYTES = 64 * 1024;

export function createRoutes(services: ApiServices): Route[] {
  return [
    ...systemRoutes(services),
    ...publishRoutes(services),
    ...messageRoutes(services),
    ...deadLetterRoutes(services),
    ...queueRoutes(services),
    ...flowControlRoutes(services),
    ...urlGroupRoutes(services),
    ...scheduleRoutes(services),
    ...instanceRoutes(services.instances, services.instanceGroupDefaults, () => services.clock.now()),
    ...workKeyRoutes(services.workKeys, (group, authenticated, secret) => services.instances.authorize(group, authenticated, secret)),
  ];
}

function errorReply(error: unknown, logger: Logger, req: IncomingMessage): Reply {
  if (error instanceof CourierError) return json(error.status, { error: error.message });
  logger.error({ err: error, method: req.method, path: req.url?.split('?')[0] }, 'unhandled error in request');
  return json(500, { error: 'internal error' });
}

export function createApp(services: ApiServices, options: { token: string; logger: Logger }): Server {
  const routes = createRoutes(services);
  const tokenMatches = createTokenCheck(options.token);
  const { logger } = options;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = req.url ?? '/';
    const queryStart = target.indexOf('?');
    const path = queryStart === -1 ? target : target.slice(0, queryStart);
    const query = new URLSearchParams(queryStart === -1 ? '' : target.slice(queryStart + 1));
    const method = req.method ?? 'GET';
    const found = matchRoute(routes, method, path);
    if (found === undefined) return writeReply(res, json(404, { error: `no route for ${method} ${path}` }));
    if (found === 'method-not-allowed') return writeReply(res, json(405, { error: `method ${method} not allowed on ${path}` }));
    const authenticated = found.route.auth !== false && tokenMatches(req, query);
    if (found.route.auth === true && !authenticated) {
      return writeReply(res, json(401, { error: 'missing or invalid token: send Authorization: Bearer <QSTASH_TOKEN>' }));
    }
    const ctx: RequestContext = {
      req,
      method,
      target,
      path,
      query,
      params: found.params,
      callerIp: req.socket.remoteAddress ?? '',
      authenticated,
      body: (limit) => readBody(req, limit),
    };
    writeReply(res, await found.route.handler(ctx));
  }

  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: 300_000 }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      const reply = errorReply(error, logger, req);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // A body we refused is not read any further; closing is cheaper than draining it.
      if (reply.status === 413) reply.headers = { Connection: 'close' };
      writeReply(res, reply);
    });
  });

  server.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const body = JSON.stringify({ error: `malformed request: ${error.code ?? error.message}` });
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}
