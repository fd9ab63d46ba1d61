/**
 * Schedules on Redis: P:s:<id> hashes, indexed by P:schedules (all), P:snext (next tick, unpaused only)
 * and P:sdest:<group> (by destination); P:sr:<id> lists each schedule's messages. Reads here; writes and
 * firings are scripts (schedule-*.lua, fire-schedules.lua).
 */
import type { ScheduleRecord, ScheduleRun } from '../../core/schedule.js';
import type { ScheduleStore } from '../port.js';
import { scheduleFrom, scheduleRunFrom, specFrom, templateJson, toBuffer } from '../rows.js';
import { enqueueResults, messageArgs, optionalNumber, type Arg } from './codec.js';
import { pipelineResults, text, type RedisContext, type Row } from './context.js';

const SCHEDULE_FIELDS = ['cron', 'dest', 'tpl', 'body', 'paused', 'created', 'updated', 'next', 'last', 'ids', 'err'];

function scheduleOf(id: string, row: Row): ScheduleRecord | undefined {
  const [cron, dest, tpl, body, paused, created, updated, next, last, ids, err] = row;
  if (!cron || !tpl) return undefined;
  return scheduleFrom({
    id,
    cron: cron.toString(),
    destination: text(dest),
    template: tpl.toString(),
    body,
    paused: text(paused) === '1',
    createdAt: Number(text(created)),
    updatedAt: Number(text(updated)),
    nextAt: optionalNumber(next),
    lastAt: optionalNumber(last),
    lastMessageIds: text(ids),
    lastError: err && err.length > 0 ? err.toString() : undefined,
  });
}

async function schedules({ redis, key }: RedisContext, ids: string[]): Promise<ScheduleRecord[]> {
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hmgetBuffer(key('s', id), ...SCHEDULE_FIELDS);
  const results = await pipelineResults(pipeline);
  return ids.flatMap((id, index) => scheduleOf(id, results[index] as Row) ?? []);
}

/** The port's schedule verbs. */
export function redisSchedules(ctx: RedisContext): ScheduleStore {
  const { redis, scripts, key } = ctx;
  return {
    async saveSchedule(definition, nextAt, at) {
      const { template } = definition;
      await scripts.run('schedule-save', [
        definition.scheduleId,
        definition.cron,
        template.destination,
        templateJson(template),
        toBuffer(template.body),
        nextAt === undefined ? '' : String(nextAt),
        String(at),
      ]);
    },

    async getSchedule(scheduleId) {
      return (await schedules(ctx, [scheduleId]))[0];
    },

    async listSchedules() {
      return schedules(ctx, await redis.zrange(key('schedules'), '0', '-1'));
    },

    async schedulesTargeting(group) {
      return (await redis.smembers(key('sdest', group))).sort();
    },

    async deleteSchedule(scheduleId) {
      return (await scripts.run('schedule-delete', [scheduleId])) === 1;
    },

    async setSchedulePaused(scheduleId, paused, nextAt, at) {
      const next = nextAt === undefined ? '' : String(nextAt);
      return (await scripts.run('schedule-pause', [scheduleId, paused ? '1' : '0', next, String(at)])) === 1;
    },

    async dueSchedules(now, limit) {
      const ids = await redis.zrangebyscore(key('snext'), '-inf', now, 'LIMIT', 0, limit);
      // The records are read after the index: a tick another node fired in between has moved `nextAt` on, and
      // firing with that moved value as the expected tick would pass fire-schedules' compare-and-set and fire
      // the next tick early (seen in the multi-node test: every schedule twice at one tick).
      return (await schedules(ctx, ids)).filter(
        (schedule) => !schedule.paused && schedule.nextAt !== undefined && schedule.nextAt <= now,
      );
    },

    async nextScheduleAt() {
      const first = await redis.zrange(key('snext'), '0', '0', 'WITHSCORES');
      return first.length > 1 ? Number(first[1]) : undefined;
    },

    async fireSchedules(firings, at) {
      if (firings.length === 0) return [];
      const args: Arg[] = [String(at), String(firings.length)];
      for (const firing of firings) {
        args.push(
          firing.scheduleId,
          firing.expectedNextAt === undefined ? '' : String(firing.expectedNextAt),
          firing.nextAt === undefined ? '' : String(firing.nextAt),
          firing.error ?? '',
          JSON.stringify(firing.messages.map((message) => message.spec.messageId)),
          String(firing.messages.length),
        );
        for (const message of firing.messages) args.push(...messageArgs(message));
      }
      const flat = (await scripts.run('fire-schedules', args)) as string[];
      let i = 0;
      return firings.map(() => {
        const count = Number(flat[i++]);
        if (count < 0) return undefined;
        const results = enqueueResults(flat, i, count);
        i += count * 3;
        return results;
      });
    },

    async listScheduleRuns(scheduleId, count) {
      // Members are %012d(seq) .. messageId (see lib.lua).
      const members = await redis.zrevrange(key('sr', scheduleId), 0, count - 1);
      const ids = members.map((member) => member.slice(12));
      const pipeline = redis.pipeline();
      for (const id of ids) {
        pipeline.hmget(key('m', id), 'state', 'created', 'fin', 'retried', 'spec');
        pipeline.lrange(key('me', id), 0, -1);
      }
      const results = await pipelineResults(pipeline);
      const eventsPipeline = redis.pipeline();
      const eventCounts = ids.map((_, index) => {
        const seqs = results[index * 2 + 1] as string[];
        for (const seq of seqs) eventsPipeline.hmget(key('ev', seq), 's', 'd');
        return seqs.length;
      });
      const events = (await pipelineResults(eventsPipeline)) as (string | null)[][];
      let offset = 0;
      const runs: ScheduleRun[] = [];
      ids.forEach((id, index) => {
        const [state, created, fin, retried, specJson] = results[index * 2] as (string | null)[];
        const own = events.slice(offset, offset + eventCounts[index]!);
        offset += eventCounts[index]!;
        if (!state || !specJson) return;
        const spec = specFrom(specJson, null);
        const lastAttempt = own.reverse().find(([s]) => s === 'DELIVERED' || s === 'ERROR');
        runs.push(
          scheduleRunFrom({
            messageId: id,
            url: spec.url,
            state,
            trigger: spec.scheduleTrigger,
            createdAt: Number(created),
            finishedAt: optionalNumber(fin),
            retried: Number(retried),
            lastAttempt: lastAttempt?.[1],
          }),
        );
      });
      return runs;
    },
  };
}
