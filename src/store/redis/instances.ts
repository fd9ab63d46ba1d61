/**
 * Instance groups and their instances on Redis (the gateway's registry): P:ig:<group> settings hashes
 * indexed by P:igroups, P:ins:<group> instances (see instance-heartbeat.lua). Reads here; writes are
 * the instance-*.lua scripts.
 */
import type { InstanceGroupRecord, InstanceGroupSettings, InstanceRecord } from '../../core/instance.js';
import type { InstanceStore } from '../port.js';
import {
  firstHealthJson,
  groupSettingsJson,
  instanceFrom,
  instanceGroupFrom,
  instanceHealthJson,
  registrationJson,
} from '../rows.js';
import { pipelineResults, type RedisContext } from './context.js';

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

async function instanceGroups({ redis, key }: RedisContext, names: string[]): Promise<InstanceGroupRecord[]> {
  const pipeline = redis.pipeline();
  for (const name of names) pipeline.hmget(key('ig', name), 'settings', 'created', 'updated');
  const results = await pipelineResults(pipeline);
  return names.flatMap((name, index) => {
    const [settings, created, updated] = results[index] as (string | null)[];
    if (!settings) return [];
    return [instanceGroupFrom({ name, settings, createdAt: Number(created), updatedAt: Number(updated) })];
  });
}

/** A group written by a script answering { created, updated } with the settings it was given. */
const writtenGroup = (settings: InstanceGroupSettings, stored: string, [created, updated]: string[]): InstanceGroupRecord =>
  instanceGroupFrom({ name: settings.name, settings: stored, createdAt: Number(created), updatedAt: Number(updated) });

/** The port's instance-group verbs. */
export function redisInstances(ctx: RedisContext): InstanceStore {
  const { redis, scripts, key } = ctx;
  return {
    async heartbeatInstance(registration, groupDefaults, at) {
      const stored = registrationJson(registration);
      const [registeredAt, health] = (await scripts.run('instance-heartbeat', [
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
    },

    async deregisterInstance(group, id) {
      return (await scripts.run('instance-deregister', [group, id])) === 1;
    },

    async listInstances(group) {
      const groups = group === undefined ? (await redis.smembers(key('igroups'))).sort() : [group];
      const pipeline = redis.pipeline();
      for (const name of groups) pipeline.hgetall(key('ins', name));
      const results = await pipelineResults(pipeline);
      return groups.flatMap((name, index) => instancesOf(name, results[index] as Record<string, string>));
    },

    async setInstanceHealth(group, id, health) {
      return (await scripts.run('instance-health', [group, id, instanceHealthJson(health)])) === 1;
    },

    async saveInstanceGroup(settings, at) {
      const stored = groupSettingsJson(settings);
      const answer = (await scripts.run('instance-group-save', [settings.name, stored, String(at)])) as string[];
      return writtenGroup(settings, stored, answer);
    },

    async replaceInstanceGroup(expectedUpdatedAt, next, at) {
      const stored = groupSettingsJson(next);
      const expected = expectedUpdatedAt === undefined ? '' : String(expectedUpdatedAt);
      const answer = (await scripts.run('instance-group-replace', [next.name, stored, expected, String(at)])) as string[];
      // An empty answer: another writer changed (or created) the group first.
      return answer.length === 0 ? undefined : writtenGroup(next, stored, answer);
    },

    async getInstanceGroup(name) {
      return (await instanceGroups(ctx, [name]))[0];
    },

    async listInstanceGroups() {
      return instanceGroups(ctx, (await redis.smembers(key('igroups'))).sort());
    },

    async deleteInstanceGroup(name) {
      return (await scripts.run('instance-group-delete', [name])) === 1;
    },
  };
}
