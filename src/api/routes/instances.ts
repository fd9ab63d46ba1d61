/**
 * Instance groups (the gateway, seed 000): instances register and heartbeat
 * under /v1/instances; operators read them and tune each group under
 * /v1/instance-groups. Durations are seconds on the wire.
 */
import { z } from 'zod';
import { STRATEGIES } from '../../core/instance.js';
import type { InstanceService } from '../../gateway/instance-service.js';
import { checkName, parseDestinationUrl } from '../destination.js';
import { json, nameParam, ok, readJson, type RequestContext, type Route } from '../http.js';
import { renderGroup } from '../render.js';

const SECRET_HEADER = 'courier-registration-secret';
const name = z.string().min(1).max(128);
/** Free text an instance reports, kept by the store: PostgreSQL cannot hold NUL, so no store may be given it. */
const text = (max: number) => z.string().max(max).refine((value) => !value.includes('\0'), 'must not contain NUL');
const seconds = (max: number) => z.number().positive().max(max);
const percent = z.number().min(0).max(100);

const Heartbeat = z.object({
  group: name,
  id: name,
  url: z.string(),
  hostname: text(255).optional(),
  region: text(64).optional(),
  status: z.enum(['active', 'draining']).default('active'),
  /** Epoch milliseconds, as the seed's records carry it; defaults to now. */
  startedAt: z.number().int().nonnegative().optional(),
  weight: z.number().positive().max(10_000).default(1),
  priority: z.number().int().min(0).max(1000).default(0),
  capabilities: z.array(text(64).min(1)).max(64).default([]),
  maxInFlight: z.number().int().positive().max(100_000).optional(),
}).strict();

const GroupSettings = z.object({
  strategy: z.enum(STRATEGIES).optional(),
  regionAffinity: z.boolean().optional(),
  heartbeatIntervalSeconds: seconds(86_400).optional(),
  staleAfterSeconds: seconds(7 * 86_400).optional(),
  slowStartSeconds: z.number().min(0).max(3_600).optional(),
  panicThresholdPercent: percent.optional(),
  outlier: z.object({
    consecutiveFailures: z.number().int().min(0).max(1_000).optional(),
    failureRatePercent: percent.optional(),
    minimumRequests: z.number().int().min(1).max(100_000).optional(),
    windowSize: z.number().int().min(1).max(10_000).optional(),
    baseEjectionSeconds: seconds(86_400).optional(),
    maxEjectionSeconds: seconds(7 * 86_400).optional(),
    maxEjectionPercent: percent.optional(),
  }).strict().optional(),
  healthCheck: z.object({
    path: text(1024).startsWith('/').default('/health'),
    intervalSeconds: seconds(3_600).default(10),
    timeoutSeconds: seconds(300).default(2),
    healthyThreshold: z.number().int().min(1).max(100).default(2),
    unhealthyThreshold: z.number().int().min(1).max(100).default(3),
  }).strict().nullable().optional(),
  /** A secret instances may heartbeat with instead of the API token; null removes it. Only its hash is kept. */
  registrationSecret: z.string().min(16, 'must be at least 16 characters').max(256).nullable().optional(),
}).strict();

const ms = (value: number) => Math.round(value * 1000);
const msIfSet = (value: number | undefined) => (value === undefined ? undefined : ms(value));

/** The wire's settings (seconds, a clear secret) as the domain's patch (milliseconds); what is absent stays absent. */
function groupPatch(body: z.infer<typeof GroupSettings>): Parameters<InstanceService['updateGroup']>[1] {
  const { outlier = {}, healthCheck, heartbeatIntervalSeconds, staleAfterSeconds, slowStartSeconds, ...same } = body;
  const { baseEjectionSeconds, maxEjectionSeconds, ...sameOutlier } = outlier;
  return {
    ...same,
    heartbeatIntervalMs: msIfSet(heartbeatIntervalSeconds),
    staleAfterMs: msIfSet(staleAfterSeconds),
    slowStartMs: msIfSet(slowStartSeconds),
    outlier: { ...sameOutlier, baseEjectionMs: msIfSet(baseEjectionSeconds), maxEjectionMs: msIfSet(maxEjectionSeconds) },
    healthCheck:
      healthCheck &&
      {
        path: healthCheck.path,
        intervalMs: ms(healthCheck.intervalSeconds),
        timeoutMs: ms(healthCheck.timeoutSeconds),
        healthyThreshold: healthCheck.healthyThreshold,
        unhealthyThreshold: healthCheck.unhealthyThreshold,
      },
  };
}

/** The fields given replace the group's current ones (or the defaults, for a new group); the rest stay. */


export function instanceRoutes(instances: InstanceService, now: () => number): Route[] {
  const secretOf = (ctx: RequestContext) => {
    const value = ctx.req.headers[SECRET_HEADER];
    return typeof value === 'string' ? value : undefined;
  };

  async function heartbeat(ctx: RequestContext) {
    const body = await readJson(ctx, Heartbeat);
    const group = checkName(body.group, 'group');
    const id = checkName(body.id, 'id');
    // Credentials before any write: the token, or this group's registration secret.
    instances.authorize(group, ctx.authenticated, secretOf(ctx));
    const url = parseDestinationUrl(body.url, 'url');
    const { instance, settings } = await instances.heartbeat({
      group,
      id,
      url,
      ...(body.hostname === undefined ? {} : { hostname: body.hostname }),
      ...(body.region === undefined ? {} : { region: body.region }),
      status: body.status,
      startedAt: body.startedAt ?? now(),
      weight: body.weight,
      priority: body.priority,
      capabilities: body.capabilities,
      ...(body.maxInFlight === undefined ? {} : { maxInFlight: body.maxInFlight }),
    });
    return json(200, {
      instance,
      heartbeatIntervalSeconds: settings.heartbeatIntervalMs / 1000,
      staleAfterSeconds: settings.staleAfterMs / 1000,
    });
  }

  async function deregister(ctx: RequestContext) {
    const group = nameParam(ctx, 'group', 'group');
    instances.authorize(group, ctx.authenticated, secretOf(ctx));
    await instances.deregister(group, nameParam(ctx, 'id', 'id'));
    return ok();
  }

  async function saveGroup(ctx: RequestContext) {
    const groupName = nameParam(ctx, 'name', 'name');
    const patch = groupPatch(await readJson(ctx, GroupSettings));
    return json(200, renderGroup(await instances.updateGroup(groupName, patch)));
  }

  const groupPattern = /^\/v1\/instance-groups\/(?<name>[^/]+)\/?$/;
  return [
    { methods: ['POST'], pattern: /^\/v1\/instances\/heartbeat\/?$/, auth: 'optional', handler: heartbeat },
    { methods: ['DELETE'], pattern: /^\/v1\/instances\/(?<group>[^/]+)\/(?<id>[^/]+)\/?$/, auth: 'optional', handler: deregister },
    {
      methods: ['GET'],
      pattern: /^\/v1\/instances\/?$/,
      auth: true,
      handler: async (ctx) => {
        const group = ctx.query.get('group');
        return json(200, instances.list(group === null ? undefined : checkName(group, 'group')));
      },
    },
    { methods: ['GET'], pattern: /^\/v1\/instance-groups\/?$/, auth: true, handler: async () => json(200, instances.listGroups().map(renderGroup)) },
    { methods: ['GET'], pattern: groupPattern, auth: true, handler: async (ctx) => json(200, renderGroup(instances.getGroup(nameParam(ctx, 'name', 'name')))) },
    { methods: ['PUT'], pattern: groupPattern, auth: true, handler: saveGroup },
    {
      methods: ['DELETE'],
      pattern: groupPattern,
      auth: true,
      handler: async (ctx) => {
        await instances.deleteGroup(nameParam(ctx, 'name', 'name'));
        return ok();
      },
    },
  ];
}


