/**
 * The Courier API: its route table, in matching order. Every error,
 * including those Node's parser raises before a request exists, is answered
 * as JSON `{"error": "...", "code": "..."}` by the host (host.ts).
 */
import type { Logger } from 'pino';
import { createHost, type Host } from './host.js';
import type { Route } from './http.js';
import { deadLetterRoutes } from './routes/dead-letters.js';
import { flowControlRoutes } from './routes/flow-control.js';
import { messageRoutes } from './routes/messages.js';
import { publishRoutes } from './routes/publish.js';
import { queueRoutes } from './routes/queues.js';
import { scheduleRoutes } from './routes/schedules.js';
import { streamRoutes } from './routes/streams.js';
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
    ...streamRoutes(services),
    ...instanceRoutes(services.instances, () => services.clock.now()),
    ...workKeyRoutes(services.workKeys, (group, authenticated, secret) => services.instances.authorize(group, authenticated, secret)),
  ];
}

/** The Courier API on the one host (host.ts); the root listens and closes it. */
export function createApp(services: ApiServices, options: { token: string; logger: Logger; bodyTimeoutMs?: number }): Host {
  return createHost({
    routes: createRoutes(services),
    token: options.token,
    logger: options.logger,
    now: () => services.clock.now(),
    tokenName: 'QSTASH_TOKEN',
    maxHeaderBytes: MAX_HEADER_BYTES,
    ...(options.bodyTimeoutMs === undefined ? {} : { bodyTimeoutMs: options.bodyTimeoutMs }),
  });
}
