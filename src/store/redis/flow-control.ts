/**
 * Flow-control keys on Redis: settings and rate window in P:fck:<key> (index P:fckeys), pending messages
 * in P:fcp:<key>, active ones in P:fca:<key>; read here, changed by flow-control-change.lua.
 */
import type { FlowControlState } from '../../core/flow-control.js';
import type { FlowControlStore } from '../port.js';
import { optionalNumber } from './codec.js';
import { pipelineResults, type RedisContext } from './context.js';

async function flowControls({ redis, key }: RedisContext, keys: string[], now: number): Promise<FlowControlState[]> {
  const pipeline = redis.pipeline();
  for (const fc of keys) {
    pipeline.hmget(key('fck', fc), 'par', 'rate', 'period', 'paused', 'pp', 'pr', 'rc', 'rps');
    pipeline.zcount(key('fcp', fc), '-inf', now);
    pipeline.scard(key('fca', fc));
  }
  const results = await pipelineResults(pipeline);
  const out: FlowControlState[] = [];
  keys.forEach((fc, index) => {
    const [par, rate, period, paused, pp, pr, rc, rps] = results[index * 3] as (string | null)[];
    if (period === null || period === undefined) return;
    const windowOver = now >= Number(rps) + Number(period);
    const state: FlowControlState = {
      key: fc,
      waitListSize: results[index * 3 + 1] as number,
      parallelismCount: results[index * 3 + 2] as number,
      rateCount: windowOver ? 0 : Number(rc),
      periodMs: Number(period),
      ratePeriodStart: Number(rps),
      paused: paused === '1',
      pinnedParallelism: pp === '1',
      pinnedRate: pr === '1',
    };
    const parallelism = optionalNumber(par);
    if (parallelism !== undefined) state.parallelism = parallelism;
    const limit = optionalNumber(rate);
    if (limit !== undefined) state.rate = limit;
    out.push(state);
  });
  return out;
}

const optional = (value: number | undefined): string => (value === undefined ? '' : String(value));

/** The port's flow-control verbs. */
export function redisFlowControls(ctx: RedisContext): FlowControlStore {
  const { redis, scripts, key } = ctx;
  return {
    async getFlowControl(fc, now) {
      return (await flowControls(ctx, [fc], now))[0];
    },

    async listFlowControls(now) {
      return flowControls(ctx, (await redis.smembers(key('fckeys'))).sort(), now);
    },

    async changeFlowControl(fc, change, at) {
      const args = [fc, change.kind, String(at)];
      if (change.kind === 'pin') {
        args.push(optional(change.parallelism), optional(change.rate), optional(change.periodMs));
      }
      if (change.kind === 'unpin') args.push(change.parallelism ? '1' : '0', change.rate ? '1' : '0');
      return (await scripts.run('flow-control-change', args)) === 1;
    },
  };
}
