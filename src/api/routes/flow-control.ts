/** Flow-control management, /v2/flowControl and /v2/globalParallelism (spec §11.9). */
import { invalid } from '../../core/errors.js';
import type { FlowControlChange } from '../../core/flow-control.js';
import { checkFlowControlKey } from '../destination.js';
import { json, ok, pathParam, type RequestContext, type Route } from '../http.js';
import { renderFlowControl } from '../render.js';
import type { ApiServices } from '../services.js';

const MAX_PERIOD_SECONDS = 7 * 86_400;

const keyParam = (ctx: RequestContext): string => checkFlowControlKey(pathParam(ctx, 'key'), 'key');

function wholeNumber(query: URLSearchParams, name: string, max: number): number | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw invalid(name, `must be a whole number ≥ 1, got "${value}"`);
  if (Number(value) > max) throw invalid(name, `must be at most ${max}, got ${value}`);
  return Number(value);
}

function flag(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  if (value === null || value === 'false') return false;
  if (value === 'true') return true;
  throw invalid(name, `must be "true" or "false", got "${value}"`);
}

export function flowControlRoutes(services: ApiServices): Route[] {
  const { flowControl, limits } = services;

  function changeOf(ctx: RequestContext): FlowControlChange {
    const { query } = ctx;
    switch (ctx.params.action) {
      case 'pause':
        return { kind: 'pause' };
      case 'resume':
        return { kind: 'resume' };
      case 'resetRate':
        return { kind: 'resetRate' };
      case 'unpin':
        if (!query.has('parallelism') && !query.has('rate')) throw invalid('query', 'name what to unpin: parallelism=true and/or rate=true');
        return { kind: 'unpin', parallelism: flag(query, 'parallelism'), rate: flag(query, 'rate') };
      default: {
        const pin: FlowControlChange = { kind: 'pin' };
        const parallelism = wholeNumber(query, 'parallelism', limits.maxParallelism);
        const rate = wholeNumber(query, 'rate', Number.MAX_SAFE_INTEGER);
        const period = wholeNumber(query, 'period', MAX_PERIOD_SECONDS);
        if (parallelism !== undefined) pin.parallelism = parallelism;
        if (rate !== undefined) pin.rate = rate;
        if (period !== undefined) pin.periodMs = period * 1000;
        if (parallelism === undefined && rate === undefined && period === undefined) {
          throw invalid('query', 'name what to pin: parallelism, rate and/or period (seconds)');
        }
        return pin;
      }
    }
  }

  return [
    {
      methods: ['GET'],
      pattern: /^\/v2\/globalParallelism\/?$/,
      auth: true,
      handler: async () => {
        const { max, count } = flowControl.globalParallelism();
        return json(200, { parallelismMax: max, parallelismCount: count });
      },
    },
    {
      methods: ['GET'],
      pattern: /^\/v2\/flowControl\/?$/,
      auth: true,
      handler: async () => json(200, (await flowControl.list()).map(renderFlowControl)),
    },
    {
      methods: ['POST'],
      pattern: /^\/v2\/flowControl\/(?<key>[^/]+)\/(?<action>pause|resume|pin|unpin|resetRate)\/?$/,
      auth: true,
      handler: async (ctx) => {
        await flowControl.change(keyParam(ctx), changeOf(ctx));
        return ok();
      },
    },
    {
      methods: ['GET'],
      pattern: /^\/v2\/flowControl\/(?<key>[^/]+)\/?$/,
      auth: true,
      handler: async (ctx) => json(200, renderFlowControl(await flowControl.get(keyParam(ctx)))),
    },
  ];
}
