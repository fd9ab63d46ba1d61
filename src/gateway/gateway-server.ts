/**
 * `courier gateway`: the stand-alone gateway, seed 000's "LB Worker", for
 * users who keep hosted QStash. QStash delivers signed webhooks here; the
 * gateway verifies each one, rewrites legacy paths, picks a live instance of
 * one group and forwards the request to it untouched (signature included),
 * relaying the instance's answer.
 *
 * Per delivery, in this order:
 *   read the body (bounded: 413) → verify the signature over the raw bytes
 *   (401, never retried by QStash) → normalise the path (404 outside the
 *   accepted prefixes) → choose an instance (503 + Retry-After when none)
 *   → forward (502 when it cannot be reached; QStash retries) → relay.
 *
 * Unlike the seed's worker, the registry lives in the store Courier is
 * configured with (COURIER_STORE): there is no second storage system, and so
 * no provider failover chain. `provider` in /health names that store.
 *
 * Also served: `GET|HEAD /health`, and the instance endpoints of
 * api/routes/instances.ts (heartbeat, deregistration, group settings), so
 * instances register with the gateway itself. Those are matched before the
 * delivery routes and carry their own credentials (COURIER_TOKEN or
 * QSTASH_TOKEN, or a group's registration secret).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { createTokenCheck } from '../api/auth.js';
import { json, matchRoute, readBody, writeReply, type Reply, type RequestContext, type Route } from '../api/http.js';
import { instanceRoutes } from '../api/routes/instances.js';
import { workKeyRoutes } from '../api/routes/work-keys.js';
import { systemClock, type Clock } from '../core/clock.js';
import { CourierError } from '../core/errors.js';
import { defaultGroupSettings } from '../core/instance.js';
import { createLogger, PURGE_INTERVAL_MS } from '../server.js';
import { openStore } from '../store/open-store.js';
import type { Store } from '../store/port.js';
import { DeliveryVerificationError, verifyDelivery } from '../worker/verify.js';
import type { GatewayConfig, SignatureSettings } from './gateway-config.js';
import { Balancer, isLive } from './balancer.js';
import { createForwarder, forwardedRequestHeaders, type Forwarder } from './forward.js';
import { usableInstances } from './health.js';
import { InstanceService } from './instance-service.js';
import { WorkKeys } from './work-keys.js';
import { isRoutedPath, normaliseTarget } from './paths.js';
import { InstanceRegistry } from './registry.js';

export interface GatewayOverrides {
  clock?: Clock;
  logger?: Logger;
  store?: Store;
}

export interface GatewayServer {
  readonly url: string;
  readonly port: number;
  readonly logger: Logger;
  readonly registry: InstanceRegistry;
  readonly balancer: Balancer;
  close(): Promise<void>;
}

/** The seed's error body: `{ error, message?, …, timestamp }`. */
function failure(status: number, error: string, fields: Record<string, unknown>, now: number, headers?: Record<string, string>): Reply {
  return { status, json: { error, ...fields, timestamp: new Date(now).toISOString() }, ...(headers ? { headers } : {}) };
}

/**
 * Verifies a delivery as hosted QStash signs it, then applies the seed's
 * expiration window to `iat`, which the SDK's Receiver does not check.
 */
async function verifySignature(
  settings: SignatureSettings,
  publicUrl: string | undefined,
  req: IncomingMessage,
  rawBody: Uint8Array,
  now: number,
): Promise<void> {
  const header = req.headers['upstash-signature'];
  const claims = await verifyDelivery({
    signature: Array.isArray(header) ? header[0] : header,
    rawBody,
    ...(publicUrl === undefined ? {} : { publicUrl, path: req.url ?? '/' }),
    keys: settings.keys,
    clockToleranceSeconds: settings.clockToleranceSeconds,
    now,
  });
  if (settings.expirationWindowSeconds === 0) return;
  if (typeof claims.iat !== 'number') {
    throw new DeliveryVerificationError('SIGNATURE_INVALID', 'the token has no iat claim, so its age cannot be checked against SIGNATURE_EXPIRATION_WINDOW');
  }
  const ageSeconds = now / 1000 - claims.iat;
  if (ageSeconds > settings.expirationWindowSeconds) {
    throw new DeliveryVerificationError(
      'SIGNATURE_EXPIRED',
      `the token was issued ${Math.floor(ageSeconds)} s ago, beyond SIGNATURE_EXPIRATION_WINDOW (${settings.expirationWindowSeconds} s)`,
    );
  }
  if (ageSeconds < -settings.clockToleranceSeconds) {
    throw new DeliveryVerificationError('SIGNATURE_NOT_YET_VALID', 'the token was issued in the future (iat), beyond the clock tolerance');
  }
}

export async function startGateway(config: GatewayConfig, overrides: GatewayOverrides = {}): Promise<GatewayServer> {
  const logger = overrides.logger ?? createLogger(config.logLevel).child({ component: 'gateway' });
  const clock = overrides.clock ?? systemClock;
  const store = overrides.store ?? (await openStore(config.store));
  const groupDefaults = (name: string) => defaultGroupSettings(name, config.registry);
  const registry = new InstanceRegistry({ store, clock, logger, groupDefaults, refreshMs: config.registry.refreshMs });
  const balancer = new Balancer({ registry, clock, logger });
  const forwarder = createForwarder({ timeoutMs: config.forwardTimeoutMs });
  let server: Server | undefined;
  try {
    await registry.start();
    balancer.start();
    const instances = new InstanceService({ registry, balancer, clock });
    const routes = [
      ...instanceRoutes(instances, groupDefaults, () => clock.now()),
      ...workKeyRoutes(new WorkKeys({ store, clock }), (group, authenticated, secret) => instances.authorize(group, authenticated, secret)),
    ];
    server = createGatewayHttpServer({ config, logger, clock, store, registry, balancer, forwarder, routes });
    await listen(server, config.port, config.host);
  } catch (error) {
    await shutDown({ server, registry, balancer, forwarder, store });
    throw error;
  }
  const startedServer = server;
  // Workers' dedupe claims expire; with no Courier node on this store, nobody else sweeps them.
  // Cut-offs of 0 leave logs and DLQ entries alone, so a Courier node sharing the store is unaffected.
  const sweep = setInterval(() => {
    store.purge({ logsBefore: 0, deadLettersBefore: 0, dedupBefore: clock.now() }).catch((error: unknown) => {
      logger.error({ err: error }, 'sweeping expired work keys failed');
    });
  }, PURGE_INTERVAL_MS);
  sweep.unref();

  if (!config.signature) {
    logger.warn(
      '!!! SIGNATURE VERIFICATION IS OFF (GATEWAY_INSECURE_SKIP_SIGNATURE / SKIP_SIGNATURE_VERIFY): anyone who can reach this gateway can send work to your instances. For tests only. !!!',
    );
  } else if (config.publicUrl === undefined) {
    logger.warn(
      'GATEWAY_PUBLIC_URL is not set: the URL a delivery was signed for (sub) is not compared, so a token signed for any endpoint sharing these signing keys is accepted here',
    );
  }
  if (config.token === undefined) {
    logger.warn(
      'no COURIER_TOKEN or QSTASH_TOKEN: instances can register here only with a group registration secret, set through a Courier node sharing this store',
    );
  }

  const port = (startedServer.address() as AddressInfo).port;
  logger.info({ port, group: config.group, store: config.store.kind, routes: config.routePrefixes }, `Courier gateway listening on port ${port}`);
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    logger,
    registry,
    balancer,
    close() {
      clearInterval(sweep);
      closing ??= shutDown({ server: startedServer, registry, balancer, forwarder, store });
      return closing;
    },
  };
}

interface GatewayParts {
  config: GatewayConfig;
  logger: Logger;
  clock: Clock;
  store: Store;
  registry: InstanceRegistry;
  balancer: Balancer;
  forwarder: Forwarder;
  routes: Route[];
}

function createGatewayHttpServer(parts: GatewayParts): Server {
  const { config, logger, clock, registry, balancer, forwarder, routes } = parts;
  const tokenMatches = config.token === undefined ? () => false : createTokenCheck(config.token);
  const startedAtSeconds = Math.floor(clock.now() / 1000);

  function health(): Reply {
    const now = clock.now();
    const view = registry.group(config.group);
    const live = view ? view.instances.filter((instance) => isLive(instance, view.settings, now)) : [];
    const activeInstances = view ? usableInstances(live, view.settings, now).usable.length : 0;
    return json(200, {
      status: 'ok',
      activeInstances,
      provider: config.store.kind,
      timestamp: new Date(now).toISOString(),
      // The seed's field: despite its name, the time the gateway started, in Unix seconds.
      uptime: startedAtSeconds,
    });
  }

  async function instanceEndpoint(req: IncomingMessage, route: Route, params: Record<string, string>, target: string): Promise<Reply> {
    const queryStart = target.indexOf('?');
    const query = new URLSearchParams(queryStart === -1 ? '' : target.slice(queryStart + 1));
    const authenticated = route.auth !== false && tokenMatches(req, query);
    if (route.auth === true && !authenticated) {
      return json(401, { error: 'missing or invalid token: send Authorization: Bearer <COURIER_TOKEN>' });
    }
    const ctx: RequestContext = {
      req,
      method: req.method ?? 'GET',
      target,
      path: queryStart === -1 ? target : target.slice(0, queryStart),
      query,
      params,
      callerIp: req.socket.remoteAddress ?? '',
      authenticated,
      body: (limit) => readBody(req, limit),
    };
    try {
      return await route.handler(ctx);
    } catch (error) {
      if (error instanceof CourierError) return json(error.status, { error: error.message });
      throw error;
    }
  }

  async function deliver(req: IncomingMessage, res: ServerResponse, target: string): Promise<Reply | undefined> {
    const messageId = headerValue(req, 'upstash-message-id') ?? null;
    let body: Buffer;
    try {
      body = await readBody(req, config.maxBodyBytes);
    } catch (error) {
      if (!(error instanceof CourierError) || error.status !== 413) throw error;
      return failure(413, 'Payload Too Large', { message: error.message }, clock.now(), { Connection: 'close' });
    }

    if (config.signature) {
      try {
        await verifySignature(config.signature, config.publicUrl, req, body, clock.now());
      } catch (error) {
        if (!(error instanceof DeliveryVerificationError)) throw error;
        logger.warn({ reason: error.reason, qstashMsgId: messageId, path: target.split('?')[0] }, 'signature verification failed');
        return failure(401, 'Signature verification failed', { message: error.message, code: error.reason }, clock.now());
      }
    }

    const { path, search } = normaliseTarget(target, config.pathAliases);
    if (!isRoutedPath(path, config.routePrefixes)) {
      return failure(404, 'Not Found', { message: `no route for ${path}` }, clock.now());
    }

    const region = headerValue(req, 'courier-region');
    const choice = balancer.choose(config.group, region === undefined ? {} : { region });
    if (!('chosen' in choice)) {
      const retryAfter = 'unavailable' in choice ? choice.unavailable.retryAfterSeconds : DEFAULT_RETRY_AFTER_SECONDS;
      const reason = 'unavailable' in choice ? choice.unavailable.reason : `no instance has registered in group "${config.group}"`;
      logger.warn({ group: config.group, qstashMsgId: messageId, reason, retryAfter }, 'no active instance available');
      return failure(503, 'No active instances available', { message: reason, qstashMsgId: messageId }, clock.now(), {
        'Retry-After': String(retryAfter),
      });
    }

    const { instance, finish } = choice.chosen;
    const result = await forwarder.forward(
      {
        method: req.method ?? 'POST',
        instanceUrl: instance.url,
        target: path + search,
        headers: forwardedRequestHeaders(req.rawHeaders, req.headers, { remoteAddress: req.socket.remoteAddress, originalTarget: target }),
        body,
      },
      res,
    );
    if (result.relayed) {
      finish(result.status < 500 && result.complete);
      logger.debug({ instance: instance.id, status: result.status, path, qstashMsgId: messageId }, 'delivery forwarded');
      return undefined;
    }
    if ('aborted' in result) {
      // QStash gave up on us (its own timeout); that says nothing about the instance.
      finish(true);
      return undefined;
    }
    finish(false);
    logger.error({ err: result.error, instance: instance.id, url: instance.url, qstashMsgId: messageId }, 'forwarding to the instance failed');
    return failure(502, 'Bad Gateway', { message: `instance "${instance.id}" could not be reached: ${result.error.message}`, qstashMsgId: messageId }, clock.now());
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = req.url ?? '/';
    const method = req.method ?? 'GET';
    const path = target.split('?')[0] ?? target;
    if (path === '/health' && (method === 'GET' || method === 'HEAD')) return writeReply(res, health());
    const found = matchRoute(routes, method, path);
    if (found === 'method-not-allowed') return writeReply(res, json(405, { error: `method ${method} not allowed on ${path}` }));
    if (found !== undefined) return writeReply(res, await instanceEndpoint(req, found.route, found.params, target));
    const reply = await deliver(req, res, target);
    if (reply !== undefined) writeReply(res, reply);
  }

  const server = createServer({ requestTimeout: 300_000 }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger.error({ err: error, method: req.method, path: req.url?.split('?')[0] }, 'unhandled error in gateway request');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      writeReply(res, failure(500, 'Internal Server Error', { message: 'the gateway failed to handle the request' }, clock.now()));
    });
  });
  server.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    const body = JSON.stringify({ error: 'Bad Request', message: `malformed request: ${error.code ?? error.message}`, timestamp: new Date(clock.now()).toISOString() });
    socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  return server;
}

/** The seed's Retry-After, for a group no instance has ever registered in. */
const DEFAULT_RETRY_AFTER_SECONDS = 60;

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Stops taking requests, lets the forwards in flight finish, then stops the registry and closes the store. */
async function shutDown(parts: {
  server: Server | undefined;
  registry: InstanceRegistry;
  balancer: Balancer;
  forwarder: Forwarder;
  store: Store;
}): Promise<void> {
  const { server } = parts;
  if (server?.listening) {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }
  await parts.balancer.stop();
  parts.registry.stop();
  await parts.forwarder.close();
  await parts.store.close();
}
