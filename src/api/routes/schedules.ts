/**
 * /v2/schedules (spec §7) and Courier's extensions: trigger-now and run
 * history. The id routes are matched before the raw-destination create route.
 */
import { invalid } from '../../core/errors.js';
import { canonicalHeaderName } from '../../core/headers.js';
import type { ScheduleTemplate } from '../../core/schedule.js';
import { checkName } from '../destination.js';
import { json, nameParam, ok, type RequestContext, type Route } from '../http.js';
import { parsePublishHeaders, type IncomingHeaders } from '../publish-headers.js';
import { count } from '../query.js';
import { renderSchedule, renderScheduleRun } from '../render.js';
import type { ApiServices } from '../services.js';
import { destinationAfter, publishedJson, resolveDestination } from './publish.js';

const CREATE_PREFIX = '/v2/schedules/';
const DEFAULT_RUNS = 20;
const MAX_RUNS = 100;
/** Headers a publish takes that make no sense on something that repeats. */
const NOT_FOR_SCHEDULES: Record<string, string> = {
  'upstash-not-before': 'is not supported for schedules; use Upstash-Delay, which applies to each run',
  'upstash-deduplication-id': 'is not supported for schedules: every run would be a duplicate of the first',
  'upstash-content-based-deduplication': 'is not supported for schedules: every run would be a duplicate of the first',
};

function header(ctx: RequestContext, name: string): string | undefined {
  const value = ctx.req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

export function scheduleRoutes(services: ApiServices): Route[] {
  const { schedules, limits, clock } = services;
  const id = (ctx: RequestContext) => nameParam(ctx, 'id', 'scheduleId');

  async function create(ctx: RequestContext) {
    const cron = header(ctx, 'upstash-cron');
    if (cron === undefined || cron.trim() === '') throw invalid('Upstash-Cron', 'is required, e.g. "*/15 * * * *"');
    for (const [name, problem] of Object.entries(NOT_FOR_SCHEDULES)) {
      if (ctx.req.headers[name] !== undefined) throw invalid(canonicalHeaderName(name), problem);
    }
    const destination = resolveDestination(destinationAfter(ctx.target, ctx.target.indexOf(CREATE_PREFIX) + CREATE_PREFIX.length), 'destination');
    const scheduleId = header(ctx, 'upstash-schedule-id');
    const queueName = header(ctx, 'upstash-queue-name');
    const template: ScheduleTemplate = {
      destination: 'url' in destination ? destination.url : destination.group,
      options: parsePublishHeaders(ctx.req.headers, limits, clock.now()),
      body: await ctx.body(limits.maxBodyBytes),
      callerIp: ctx.callerIp,
    };
    if (queueName !== undefined) template.queueName = checkName(queueName.trim(), 'Upstash-Queue-Name');
    const saved = await schedules.save({
      cron,
      template,
      ...(scheduleId === undefined ? {} : { scheduleId: checkName(scheduleId.trim(), 'Upstash-Schedule-Id') }),
    });
    return json(200, { scheduleId: saved });
  }

  return [
    {
      methods: ['PATCH', 'POST'],
      pattern: /^\/v2\/schedules\/(?<id>[^/]+)\/(?<action>pause|resume)\/?$/,
      auth: true,
      handler: async (ctx) => {
        await schedules.setPaused(id(ctx), ctx.params.action === 'pause');
        return ok();
      },
    },
    {
      methods: ['POST'],
      pattern: /^\/v2\/schedules\/(?<id>[^/]+)\/trigger\/?$/,
      auth: true,
      handler: async (ctx) => {
        const scheduleId = id(ctx);
        const published = await schedules.trigger(scheduleId);
        return json(200, { scheduleId, messages: published.map(publishedJson) });
      },
    },
    {
      methods: ['GET'],
      pattern: /^\/v2\/schedules\/(?<id>[^/]+)\/runs\/?$/,
      auth: true,
      handler: async (ctx) => {
        const runs = await schedules.runs(id(ctx), count(ctx.query, DEFAULT_RUNS, MAX_RUNS));
        return json(200, { runs: runs.map(renderScheduleRun) });
      },
    },
    {
      methods: ['GET'],
      pattern: /^\/v2\/schedules\/?$/,
      auth: true,
      handler: async () => json(200, (await schedules.list()).map((view) => renderSchedule(view, limits.defaultRetries))),
    },
    {
      methods: ['GET'],
      pattern: /^\/v2\/schedules\/(?<id>[^/]+)\/?$/,
      auth: true,
      handler: async (ctx) => json(200, renderSchedule(await schedules.get(id(ctx)), limits.defaultRetries)),
    },
    {
      methods: ['DELETE'],
      pattern: /^\/v2\/schedules\/(?<id>[^/]+)\/?$/,
      auth: true,
      handler: async (ctx) => {
        await schedules.delete(id(ctx));
        return ok();
      },
    },
    { methods: ['POST'], pattern: /^\/v2\/schedules\/./, auth: true, handler: create },
  ];
}
