/**
 * Queues, flow-control keys, URL groups, schedules, instance groups and work keys on Redis: reads here,
 * writes through their scripts.
 */
import type { Redis } from 'ioredis';
import type { FlowControlChange, FlowControlState } from '../../core/flow-control.js';
import type { QueueRecord, QueueSettings } from '../../core/queue.js';
import type { ScheduleDefinition, ScheduleRecord, ScheduleRun } from '../../core/schedule.js';
import type { Endpoint, EndpointSelector, UrlGroup } from '../../core/url-group.js';
import type { InstanceGroupRecord, InstanceGroupSettings, InstanceHealth, InstanceRecord, InstanceRegistration } from '../../core/instance.js';
import type { EndpointRemoval } from '../port.js';
import {
  firstHealthJson,
  groupSettingsJson,
  instanceFrom,
  instanceGroupFrom,
  instanceHealthJson,
  registrationJson,
  scheduleFrom,
  scheduleRunFrom,
  specFrom,
  templateJson,
  toBuffer,
} from '../rows.js';
import { optionalNumber } from './codec.js';
import type { Scripts } from './scripts.js';

type Row = (Buffer | null)[];
const text = (value: Buffer | string | null | undefined): string => (value ?? '').toString();

const SCHEDULE_FIELDS = ['cron', 'dest', 'tpl', 'body', 'paused', 'created', 'updated', 'next', 'last', 'ids', 'err'];

/** A group's instances from its P:ins:<group> hash (fields r:/t:/c:/h: + id, see instance-heartbeat.lua), by id. */
function instancesOf(group: string, fields: Record<string, string>): InstanceRecord[] {
  const ids = Object.keys(fields)
    .filter((field) => field.startsWith('r:'))
    .map((field) => field.slice(2))
    .sort();
  return ids.map((id) =>
    instanceFrom({
      group,
      id,
      registration: fields[`r:${id}`]!,
      lastHeartbeat: Number(fields[`t:${id}`]),
      registeredAt: Number(fields[`c:${id}`]),
      health: fields[`h:${id}`]!,
    }),
  );
}

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

export class RedisTopology {
  constructor(
    private readonly redis: Redis,
    private readonly scripts: Scripts,
    private readonly key: (...parts: string[]) => string,
  ) {}

  private async exec(pipeline: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
    return ((await pipeline.exec()) ?? []).map(([error, value]) => {
      if (error) throw error;
      return value;
    });
  }

  // ── queues ──
  async upsertQueue(settings: QueueSettings, at: number): Promise<void> {
    const { name, parallelism, paused } = settings;
    await this.scripts.run('queue-upsert', [name, String(parallelism), paused ? '1' : '0', String(at)]);
  }

  async setQueuePaused(name: string, paused: boolean, at: number): Promise<boolean> {
    return (await this.scripts.run('queue-pause', [name, paused ? '1' : '0', String(at)])) === 1;
  }

  async deleteQueue(name: string, at: number): Promise<boolean> {
    return (await this.scripts.run('queue-delete', [name, String(at)])) === 1;
  }

  async queues(names: string[]): Promise<QueueRecord[]> {
    const pipeline = this.redis.pipeline();
    for (const name of names) {
      pipeline.hmget(this.key('q', name), 'par', 'paused', 'created', 'updated');
      pipeline.zcard(this.key('qw', name));
      pipeline.scard(this.key('qs', name));
    }
    const results = await this.exec(pipeline);
    const out: QueueRecord[] = [];
    names.forEach((name, index) => {
      const [par, paused, created, updated] = results[index * 3] as (string | null)[];
      if (par === null || par === undefined) return;
      out.push({
        name,
        parallelism: Number(par),
        paused: paused === '1',
        lag: (results[index * 3 + 1] as number) + (results[index * 3 + 2] as number),
        createdAt: Number(created),
        updatedAt: Number(updated),
      });
    });
    return out;
  }

  async listQueues(): Promise<QueueRecord[]> {
    return this.queues((await this.redis.smembers(this.key('queues'))).sort());
  }

  // ── flow control ──
  async flowControls(keys: string[], now: number): Promise<FlowControlState[]> {
    const pipeline = this.redis.pipeline();
    for (const key of keys) {
      pipeline.hmget(this.key('fck', key), 'par', 'rate', 'period', 'paused', 'pp', 'pr', 'rc', 'rps');
      pipeline.zcount(this.key('fcp', key), '-inf', now);
      pipeline.scard(this.key('fca', key));
    }
    const results = await this.exec(pipeline);
    const out: FlowControlState[] = [];
    keys.forEach((key, index) => {
      const [par, rate, period, paused, pp, pr, rc, rps] = results[index * 3] as (string | null)[];
      if (period === null || period === undefined) return;
      const windowOver = now >= Number(rps) + Number(period);
      const state: FlowControlState = {
        key,
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

  async listFlowControls(now: number): Promise<FlowControlState[]> {
    return this.flowControls((await this.redis.smembers(this.key('fckeys'))).sort(), now);
  }

  async changeFlowControl(key: string, change: FlowControlChange, at: number): Promise<boolean> {
    const args = [key, change.kind, String(at)];
    const optional = (value: number | undefined): string => (value === undefined ? '' : String(value));
    if (change.kind === 'pin') {
      args.push(optional(change.parallelism), optional(change.rate), optional(change.periodMs));
    }
    if (change.kind === 'unpin') args.push(change.parallelism ? '1' : '0', change.rate ? '1' : '0');
    return (await this.scripts.run('flow-control-change', args)) === 1;
  }

  // ── URL groups ──
  async addEndpoints(group: string, endpoints: Endpoint[], at: number): Promise<void> {
    const plain = endpoints.map((e) => (e.name === undefined ? { url: e.url } : { name: e.name, url: e.url }));
    await this.scripts.run('url-group-add', [group, String(at), JSON.stringify(plain)]);
  }

  async removeEndpoints(
    group: string,
    endpoints: EndpointSelector[],
    at: number,
  ): Promise<EndpointRemoval | undefined> {
    const plain = endpoints.map((e) => ({
      ...(e.name !== undefined && { name: e.name }),
      ...(e.url !== undefined && { url: e.url }),
    }));
    const answer = (await this.scripts.run('url-group-remove', [group, String(at), JSON.stringify(plain)])) as (
      | string
      | number
    )[];
    if (answer[0] === 'unknown') return undefined;
    if (answer[0] === 'notFound') return { notFound: endpoints[Number(answer[1])]! };
    return { removed: Number(answer[1]), groupDeleted: answer[2] === '1' };
  }

  async urlGroups(names: string[]): Promise<UrlGroup[]> {
    const pipeline = this.redis.pipeline();
    for (const name of names) pipeline.hmget(this.key('g', name), 'created', 'updated', 'eps');
    const results = await this.exec(pipeline);
    const out: UrlGroup[] = [];
    names.forEach((name, index) => {
      const [created, updated, eps] = results[index] as (string | null)[];
      if (!eps) return;
      const parsed = JSON.parse(eps) as unknown;
      const endpoints = (Array.isArray(parsed) ? parsed : []).map((e: { name?: string; url: string }): Endpoint =>
        e.name === undefined ? { url: e.url } : { name: e.name, url: e.url },
      );
      out.push({ name, endpoints, createdAt: Number(created), updatedAt: Number(updated) });
    });
    return out;
  }

  async listUrlGroups(): Promise<UrlGroup[]> {
    return this.urlGroups((await this.redis.smembers(this.key('groups'))).sort());
  }

  async deleteUrlGroup(name: string): Promise<boolean> {
    const [[, deleted]] = (await this.redis.multi().del(this.key('g', name)).srem(this.key('groups'), name).exec()) as [
      [Error | null, number],
    ];
    return deleted > 0;
  }

  // ── schedules ──
  async saveSchedule(definition: ScheduleDefinition, nextAt: number | undefined, at: number): Promise<void> {
    const { template } = definition;
    await this.scripts.run('schedule-save', [
      definition.scheduleId,
      definition.cron,
      template.destination,
      templateJson(template),
      toBuffer(template.body),
      nextAt === undefined ? '' : String(nextAt),
      String(at),
    ]);
  }

  async schedules(ids: string[]): Promise<ScheduleRecord[]> {
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmgetBuffer(this.key('s', id), ...SCHEDULE_FIELDS);
    const results = await this.exec(pipeline);
    return ids.flatMap((id, index) => scheduleOf(id, results[index] as Row) ?? []);
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    return this.schedules(await this.redis.zrange(this.key('schedules'), '0', '-1'));
  }

  async schedulesTargeting(group: string): Promise<string[]> {
    return (await this.redis.smembers(this.key('sdest', group))).sort();
  }

  async deleteSchedule(scheduleId: string): Promise<boolean> {
    return (await this.scripts.run('schedule-delete', [scheduleId])) === 1;
  }

  async setSchedulePaused(
    scheduleId: string,
    paused: boolean,
    nextAt: number | undefined,
    at: number,
  ): Promise<boolean> {
    const next = nextAt === undefined ? '' : String(nextAt);
    return (await this.scripts.run('schedule-pause', [scheduleId, paused ? '1' : '0', next, String(at)])) === 1;
  }

  async dueSchedules(now: number, limit: number): Promise<ScheduleRecord[]> {
    const ids = await this.redis.zrangebyscore(this.key('snext'), '-inf', now, 'LIMIT', 0, limit);
    // The records are read after the index: a tick another node fired in between has moved `nextAt` on, and
    // firing with that moved value as the expected tick would pass fire-schedules' compare-and-set and fire
    // the next tick early (seen in the multi-node test: every schedule twice at one tick).
    return (await this.schedules(ids)).filter((schedule) => !schedule.paused && schedule.nextAt !== undefined && schedule.nextAt <= now);
  }

  async nextScheduleAt(): Promise<number | undefined> {
    const first = await this.redis.zrange(this.key('snext'), '0', '0', 'WITHSCORES');
    return first.length > 1 ? Number(first[1]) : undefined;
  }

  async listScheduleRuns(scheduleId: string, count: number): Promise<ScheduleRun[]> {
    // Members are %012d(seq) .. messageId (see lib.lua).
    const members = await this.redis.zrevrange(this.key('sr', scheduleId), 0, count - 1);
    const ids = members.map((member) => member.slice(12));
    const pipeline = this.redis.pipeline();
    for (const id of ids) {
      pipeline.hmget(this.key('m', id), 'state', 'created', 'fin', 'retried', 'spec');
      pipeline.lrange(this.key('me', id), 0, -1);
    }
    const results = await this.exec(pipeline);
    const eventsPipeline = this.redis.pipeline();
    const eventCounts = ids.map((_, index) => {
      const seqs = results[index * 2 + 1] as string[];
      for (const seq of seqs) eventsPipeline.hmget(this.key('ev', seq), 's', 'd');
      return seqs.length;
    });
    const events = (await this.exec(eventsPipeline)) as (string | null)[][];
    let offset = 0;
    const runs: ScheduleRun[] = [];
    ids.forEach((id, index) => {
      const [state, created, fin, retried, specJson] = results[index * 2] as (string | null)[];
      const own = events.slice(offset, offset + eventCounts[index]!);
      offset += eventCounts[index]!;
      if (!state || !specJson) return;
      const spec = specFrom(specJson, null);
      const lastAttempt = own.reverse().find(([s]) => s === 'DELIVERED' || s === 'ERROR');
      const run = scheduleRunFrom({
        messageId: id,
        url: spec.url,
        state,
        trigger: spec.scheduleTrigger,
        createdAt: Number(created),
        finishedAt: optionalNumber(fin),
        retried: Number(retried),
        lastAttempt: lastAttempt?.[1],
      });
      runs.push(run);
    });
    return runs;
  }

  // ── instance groups ──
  async heartbeatInstance(registration: InstanceRegistration, groupDefaults: InstanceGroupSettings, at: number): Promise<InstanceRecord> {
    const stored = registrationJson(registration);
    const [registeredAt, health] = (await this.scripts.run('instance-heartbeat', [
      registration.group,
      registration.id,
      stored,
      groupSettingsJson(groupDefaults),
      firstHealthJson(at),
      String(at),
    ])) as [string, string];
    return instanceFrom({
      group: registration.group,
      id: registration.id,
      registration: stored,
      lastHeartbeat: at,
      registeredAt: Number(registeredAt),
      health,
    });
  }

  async deregisterInstance(group: string, id: string): Promise<boolean> {
    return (await this.scripts.run('instance-deregister', [group, id])) === 1;
  }

  async listInstances(group?: string): Promise<InstanceRecord[]> {
    const groups = group === undefined ? (await this.redis.smembers(this.key('igroups'))).sort() : [group];
    const pipeline = this.redis.pipeline();
    for (const name of groups) pipeline.hgetall(this.key('ins', name));
    const results = await this.exec(pipeline);
    return groups.flatMap((name, index) => instancesOf(name, results[index] as Record<string, string>));
  }

  async setInstanceHealth(group: string, id: string, health: InstanceHealth): Promise<boolean> {
    return (await this.scripts.run('instance-health', [group, id, instanceHealthJson(health)])) === 1;
  }

  async saveInstanceGroup(settings: InstanceGroupSettings, at: number): Promise<InstanceGroupRecord> {
    const stored = groupSettingsJson(settings);
    const created = (await this.scripts.run('instance-group-save', [settings.name, stored, String(at)])) as string;
    return instanceGroupFrom({ name: settings.name, settings: stored, createdAt: Number(created), updatedAt: at });
  }

  async instanceGroups(names: string[]): Promise<InstanceGroupRecord[]> {
    const pipeline = this.redis.pipeline();
    for (const name of names) pipeline.hmget(this.key('ig', name), 'settings', 'created', 'updated');
    const results = await this.exec(pipeline);
    return names.flatMap((name, index) => {
      const [settings, created, updated] = results[index] as (string | null)[];
      if (!settings) return [];
      return [instanceGroupFrom({ name, settings, createdAt: Number(created), updatedAt: Number(updated) })];
    });
  }

  async listInstanceGroups(): Promise<InstanceGroupRecord[]> {
    return this.instanceGroups((await this.redis.smembers(this.key('igroups'))).sort());
  }

  async deleteInstanceGroup(name: string): Promise<boolean> {
    return (await this.scripts.run('instance-group-delete', [name])) === 1;
  }

  // ── work keys ──
  async claimWorkKey(scope: string, key: string, expiresAt: number, at: number): Promise<boolean> {
    return (await this.scripts.run('work-key-claim', [scope, key, String(expiresAt), String(at)])) === 1;
  }

  async releaseWorkKey(scope: string, key: string): Promise<boolean> {
    return (await this.scripts.run('work-key-release', [scope, key])) === 1;
  }
}
