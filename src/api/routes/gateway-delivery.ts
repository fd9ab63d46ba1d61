/**
 * What the stand-alone gateway answers outside its instance endpoints: its
 * `GET|HEAD /health`, and every other request as a delivery from hosted
 * QStash. Per delivery, in this order:
 *
 *   read the body (bounded: 413) → verify the signature over the raw bytes
 *   (401, never retried by QStash) → normalise the path (404 outside the
 *   accepted prefixes) → choose an instance (503 + Retry-After when none)
 *   → forward (502 when it cannot be reached; QStash retries) → relay.
 *
 * Failures are CourierErrors; the host renders them in the gateway's own
 * error shape (api/error-reply.ts GATEWAY_ERRORS), which is its contract.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { CourierError } from '../../core/errors.js';
import { isLive, type Balancer } from '../../gateway/balancer.js';
import { forwardedRequestHeaders, type Forwarder } from '../../gateway/forward.js';
import type { GatewayConfig } from '../../gateway/gateway-config.js';
import { usableInstances } from '../../gateway/health.js';
import { isRoutedPath, normaliseTarget } from '../../gateway/paths.js';
import type { InstanceRegistry } from '../../gateway/registry.js';
import { verifySignature } from '../../gateway/signature.js';
import { DeliveryVerificationError } from '../../worker/verify.js';
import { json, type Reply, type RequestContext } from '../http.js';

/** The seed's Retry-After, for a group no instance has ever registered in. */
const DEFAULT_RETRY_AFTER_SECONDS = 60;

export interface GatewayDeliveryParts {
  config: GatewayConfig;
  logger: Logger;
  clock: Clock;
  registry: InstanceRegistry;
  balancer: Balancer;
  forwarder: Forwarder;
}

export function gatewayDelivery(parts: GatewayDeliveryParts): (ctx: RequestContext) => Promise<Reply> {
  const { config, logger, clock, registry, balancer, forwarder } = parts;
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

  async function deliver(ctx: RequestContext): Promise<Reply> {
    const { req, target } = ctx;
    const messageId = headerValue(req, 'upstash-message-id') ?? null;
    const body = await ctx.body(config.maxBodyBytes);

    if (config.signature) {
      try {
        await verifySignature(config.signature, config.publicUrl, { signature: headerValue(req, 'upstash-signature'), rawBody: body, target }, clock.now());
      } catch (error) {
        if (!(error instanceof DeliveryVerificationError)) throw error;
        logger.warn({ reason: error.reason, qstashMsgId: messageId, path: ctx.path }, 'signature verification failed');
        throw new CourierError('SIGNATURE_INVALID', error.message, undefined, {
          title: 'Signature verification failed',
          details: { code: error.reason },
        });
      }
    }

    const { path, search } = normaliseTarget(target, config.pathAliases);
    if (!isRoutedPath(path, config.routePrefixes)) throw new CourierError('ROUTE_NOT_FOUND', `no route for ${path}`);

    const region = headerValue(req, 'courier-region');
    const choice = balancer.choose(config.group, region === undefined ? {} : { region });
    if (!('chosen' in choice)) {
      const retryAfter = 'unavailable' in choice ? choice.unavailable.retryAfterSeconds : DEFAULT_RETRY_AFTER_SECONDS;
      const reason = 'unavailable' in choice ? choice.unavailable.reason : `no instance has registered in group "${config.group}"`;
      logger.warn({ group: config.group, qstashMsgId: messageId, reason, retryAfter }, 'no active instance available');
      throw new CourierError('NO_ACTIVE_INSTANCE', reason, undefined, {
        title: 'No active instances available',
        details: { qstashMsgId: messageId },
        retryAfterSeconds: retryAfter,
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
      ctx.res,
    );
    if (result.relayed) {
      finish(result.status < 500 && result.complete);
      logger.debug({ instance: instance.id, status: result.status, path, qstashMsgId: messageId }, 'delivery forwarded');
      return { status: result.status, written: true };
    }
    if ('aborted' in result) {
      // QStash gave up on us (its own timeout); that says nothing about the instance.
      finish(true);
      return { status: 499, written: true };
    }
    finish(false);
    logger.error({ err: result.error, instance: instance.id, url: instance.url, qstashMsgId: messageId }, 'forwarding to the instance failed');
    throw new CourierError('INSTANCE_UNREACHABLE', `instance "${instance.id}" could not be reached: ${result.error.message}`, undefined, {
      details: { qstashMsgId: messageId },
    });
  }

  return async (ctx) => {
    if (ctx.path === '/health' && (ctx.method === 'GET' || ctx.method === 'HEAD')) return health();
    return deliver(ctx);
  };
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}
