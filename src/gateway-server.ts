/**
 * The composition root of `courier gateway`: the stand-alone gateway, seed
 * 000's "LB Worker", for users who keep hosted QStash. QStash delivers
 * signed webhooks here; the gateway verifies each one, rewrites legacy
 * paths, picks a live instance of one group and forwards the request to it
 * untouched (signature included), relaying the instance's answer
 * (api/routes/gateway-delivery.ts).
 *
 * Unlike the seed's worker, the registry lives in the store Courier is
 * configured with (COURIER_STORE): there is no second storage system, and so
 * no provider failover chain. `provider` in /health names that store.
 *
 * Also served, on the same host (api/host.ts) and matched before the
 * deliveries: the instance endpoints of api/routes/instances.ts (heartbeat,
 * deregistration, group settings) and the work keys, so instances register
 * with the gateway itself. They carry their own credentials (COURIER_TOKEN or
 * QSTASH_TOKEN, or a group's registration secret) and answer errors in the
 * Courier API's shape; deliveries answer in the seed's.
 */
import type { Logger } from 'pino';
import { GATEWAY_ERRORS } from './api/error-reply.js';
import { createHost, type Host } from './api/host.js';
import { gatewayDelivery } from './api/routes/gateway-delivery.js';
import { instanceRoutes } from './api/routes/instances.js';
import { workKeyRoutes } from './api/routes/work-keys.js';
import { systemClock, type Clock } from './core/clock.js';
import { createEventBus, type EventBus } from './core/events.js';
import { defaultGroupSettings } from './core/instance.js';
import { Balancer } from './gateway/balancer.js';
import { createForwarder } from './gateway/forward.js';
import type { GatewayConfig } from './gateway/gateway-config.js';
import { InstanceService } from './gateway/instance-service.js';
import { InstanceRegistry } from './gateway/registry.js';
import { WorkKeys } from './gateway/work-keys.js';
import { createLogger } from './logging.js';
import { startRetentionSweep } from './retention.js';
import { openStore } from './store/open-store.js';
import type { Store } from './store/port.js';

export interface GatewayOverrides {
  clock?: Clock;
  logger?: Logger;
  store?: Store;
}

export interface GatewayServer {
  readonly url: string;
  readonly port: number;
  readonly logger: Logger;
  /** The domain events of this gateway (core/events.ts): so far, instances' health changes. */
  readonly events: EventBus;
  readonly registry: InstanceRegistry;
  readonly balancer: Balancer;
  close(): Promise<void>;
}

export async function startGateway(config: GatewayConfig, overrides: GatewayOverrides = {}): Promise<GatewayServer> {
  const logger = overrides.logger ?? createLogger(config.logLevel).child({ component: 'gateway' });
  const clock = overrides.clock ?? systemClock;
  const store = overrides.store ?? (await openStore(config.store, clock.now()));
  const groupDefaults = (name: string) => defaultGroupSettings(name, config.registry);
  const registry = new InstanceRegistry({ store, clock, logger, groupDefaults, refreshMs: config.registry.refreshMs });
  const events = createEventBus({
    onListenerError: (error, name) => logger.error({ err: error, event: name }, 'an event listener failed'),
  });
  const balancer = new Balancer({ registry, clock, logger, events });
  const forwarder = createForwarder({ timeoutMs: config.forwardTimeoutMs });
  let host: Host | undefined;
  /** Stops taking requests, lets the forwards in flight finish, then stops the registry and closes the store. */
  const shutDown = async () => {
    await host?.close();
    await balancer.stop();
    registry.stop();
    await forwarder.close();
    await store.close();
  };
  let port: number;
  try {
    await registry.start();
    balancer.start();
    const instances = new InstanceService({ registry, balancer, clock });
    host = createHost({
      routes: [
        ...instanceRoutes(instances, () => clock.now()),
        ...workKeyRoutes(new WorkKeys({ store, clock }), (group, authenticated, secret) => instances.authorize(group, authenticated, secret)),
      ],
      token: config.token,
      tokenName: 'COURIER_TOKEN',
      logger,
      now: () => clock.now(),
      errorShape: GATEWAY_ERRORS,
      bodyTimeoutMs: config.bodyTimeoutMs,
      fallback: gatewayDelivery({ config, logger, clock, registry, balancer, forwarder }),
    });
    port = await host.listen(config.port, config.host);
  } catch (error) {
    await shutDown();
    throw error;
  }
  // Workers' dedupe claims expire; with no Courier node on this store, nobody else sweeps them.
  const stopSweep = startRetentionSweep({ store, clock, logger });

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

  logger.info({ port, group: config.group, store: config.store.kind, routes: config.routePrefixes }, `Courier gateway listening on port ${port}`);
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    logger,
    events,
    registry,
    balancer,
    close() {
      stopSweep();
      closing ??= shutDown();
      return closing;
    },
  };
}
