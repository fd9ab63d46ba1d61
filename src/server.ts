/**
 * The composition root of the Courier server: config → store → services →
 * HTTP (api/app.ts on api/host.ts). The store adapter is picked by
 * store/open-store.ts from COURIER_STORE; gateway-server.ts is the other root.
 */
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { createApp } from './api/app.js';
import type { ApiServices } from './api/services.js';
import { HealthService } from './health/health-service.js';
import { systemClock, type Clock } from './core/clock.js';
import type { Config } from './core/config.js';
import { createEventBus, type EventBus } from './core/events.js';
import { logDeliveryEvents } from './delivery/delivery-log.js';
import { Dispatcher } from './delivery/dispatcher.js';
import { createPooledClient, type DeliveryClient } from './delivery/http-client.js';
import { DeadLetterService } from './messages/dead-letter-service.js';
import { MessageService } from './messages/message-service.js';
import { KeyRing } from './messages/signing-keys.js';
import { FlowControlService } from './flow-control/flow-control-service.js';
import { QueueService } from './queues/queue-service.js';
import { ScheduleService } from './schedules/schedule-service.js';
import { Scheduler } from './schedules/scheduler.js';
import { UrlGroupService } from './url-groups/url-group-service.js';
import { instanceRoutes } from './api/routes/instances.js';
import { defaultGroupSettings } from './core/instance.js';
import { Balancer } from './gateway/balancer.js';
import { createGroupRouter } from './gateway/group-router.js';
import { InstanceService } from './gateway/instance-service.js';
import { InstanceRegistry } from './gateway/registry.js';
import { WorkKeys } from './gateway/work-keys.js';
import type { Store } from './store/port.js';
import { openStore } from './store/open-store.js';
import { createLogger } from './logging.js';
import { recordMessageStatus } from './streams/message-status.js';
import { startRetentionSweep } from './retention.js';
import { StreamHub } from './streams/hub.js';
import { StreamService } from './streams/stream-service.js';
import { streamTokenSecret } from './streams/tokens.js';

const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

export interface CourierServer {
  readonly url: string;
  readonly port: number;
  readonly keys: KeyRing;
  readonly logger: Logger;
  /** The domain events of this process (core/events.ts): subscribe here, not in the loops. */
  readonly events: EventBus;
  /** Fires the schedule ticks due now; tests that step the clock call it instead of waiting. */
  readonly scheduler: { runDue(): Promise<number> };
  /** Task streams on this node: the retention step (tests that step the clock call it) and the SSE followers served now. */
  readonly streams: { expire(): Promise<{ closedIdle: number; removed: number }>; readonly followers: number };
  close(): Promise<void>;
}

export interface CourierOverrides {
  clock?: Clock;
  client?: DeliveryClient;
  logger?: Logger;
  store?: Store;
}

export async function startCourier(config: Config, overrides: CourierOverrides = {}): Promise<CourierServer> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const clock = overrides.clock ?? systemClock;
  const events = createEventBus({
    onListenerError: (error, name) => logger.error({ err: error, event: name }, 'an event listener failed'),
  });
  const store = overrides.store ?? (await openStore(config.store, clock.now()));
  const keys = await KeyRing.open(store, config);
  const client =
    overrides.client ??
    createPooledClient({
      connectionsPerOrigin: config.delivery.connectionsPerOrigin,
      maxResponseBytes: config.delivery.maxResponseBytes,
      maxResponseBufferBytes: config.delivery.maxResponseBufferBytes,
    });
  const groupDefaults = (name: string) => defaultGroupSettings(name, config.gateway);
  const registry = new InstanceRegistry({
    store,
    clock,
    logger: logger.child({ component: 'registry' }),
    groupDefaults,
    refreshMs: config.gateway.registryRefreshMs,
  });
  await registry.start();
  const balancer = new Balancer({ registry, clock, events, logger: logger.child({ component: 'gateway' }) });
  const deliveryLogger = logger.child({ component: 'delivery' });
  logDeliveryEvents(events, deliveryLogger);
  const messageStatus = recordMessageStatus({
    store,
    events,
    clock,
    logger: logger.child({ component: 'streams' }),
    tokenSecret: streamTokenSecret(keys.token),
    maxEvents: config.streams.maxEvents,
  });
  const dispatcher = new Dispatcher({
    store,
    client,
    clock,
    logger: deliveryLogger,
    events,
    currentSigningKey: () => keys.current(),
    options: { ...config.delivery, defaultTimeoutMs: config.limits.defaultTimeoutMs },
    router: createGroupRouter(balancer),
    streamHeaders: (claimed, timeoutMs, now) => messageStatus.deliveryHeaders(claimed, timeoutMs, now),
  });
  const notifyDue = (dueAt: number) => dispatcher.wake(dueAt);

  const health = new HealthService({
    store,
    storeKind: store.constructor.name,
    version: VERSION,
    inFlight: () => dispatcher.inFlightCount,
  });

  const messages = new MessageService({
    store,
    clock,
    events,
    limits: config.limits,
    delivery: {
      notifyDue,
      handoffCapacity: () => dispatcher.handoffCapacity(),
      deliver: (claimed) => dispatcher.deliver(claimed),
    },
    instanceGroupExists: (name) => registry.group(name) !== undefined,
  });
  // The scheduler and the schedule service need each other: the service wakes the scheduler, which fires through it.
  let scheduler: Scheduler | undefined;
  const schedules = new ScheduleService({ store, clock, events, messages, wakeScheduler: () => scheduler?.wake() });
  scheduler = new Scheduler({
    store,
    clock,
    logger: logger.child({ component: 'scheduler' }),
    fireTicks: (due) => schedules.fireTicks(due),
  });

  const hub = new StreamHub({
    store,
    events,
    logger: logger.child({ component: 'streams' }),
    settings: {
      maxFollowers: config.streams.maxFollowers,
      followerBufferBytes: config.streams.followerBufferBytes,
      keepAliveMs: config.streams.keepAliveMs,
    },
  });
  const streams = new StreamService({ store, events, clock, hub, settings: config.streams, tokenSecret: streamTokenSecret(keys.token) });

  const services: ApiServices = {
    clock,
    limits: config.limits,
    messages,
    deadLetters: new DeadLetterService({ store, clock, events, notifyDue }),
    queues: new QueueService({ store, clock, notifyDue }),
    flowControl: new FlowControlService({
      store,
      clock,
      notifyDue,
      globalParallelism: () => ({ max: config.delivery.maxInFlight, count: dispatcher.inFlightCount }),
    }),
    urlGroups: new UrlGroupService({ store, clock }),
    schedules,
    instances: new InstanceService({ registry, balancer, clock }),
    instanceGroupDefaults: groupDefaults,
    workKeys: new WorkKeys({ store, clock }),
    keys,
    streams,
    health: {
      ready: () => health.ready(),
      report: () => health.report(),
      detailedPublic: config.health.detailedPublic,
    },
  };
  const host = createApp(services, { token: keys.token, logger, bodyTimeoutMs: config.http.bodyTimeoutMs });
  const port = await host.listen(config.port, config.host);
  balancer.start();
  dispatcher.start();
  scheduler.start();
  // Work stored through another node sharing the store wakes this one at once (stores with pushNotify).
  const stopWatching = await store.watchWork(notifyDue);
  // Appends made through other nodes reach this node's stream followers (stores with pushNotify).
  await hub.start();

  const stopRetention = startRetentionSweep({ store, clock, logger, retention: config.retention, expireStreams: () => streams.expire() });

  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    keys,
    logger,
    events,
    scheduler,
    streams: {
      expire: () => streams.expire(),
      get followers() {
        return hub.followerCount;
      },
    },
    close() {
      closing ??= (async () => {
        stopRetention();
        await stopWatching();
        await scheduler.stop();
        registry.stop();
        await balancer.stop();
        await host.close();
        await hub.close();
        await dispatcher.stop();
        await messageStatus.stop();
        await client.close();
        await health.close();
        await store.close();
      })();
      return closing;
    },
  };
}
