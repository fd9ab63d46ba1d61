/**
 * Store contract cases for the gateway's instance registry: instance groups
 * and the instances that heartbeat into them. runStoreContract calls this
 * inside its suite, so every case runs on that suite's fresh, empty store.
 *
 * Records are compared strictly, so an optional field left unset must come
 * back absent, not undefined or null.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import {
  defaultGroupSettings,
  type InstanceGroupSettings,
  type InstanceHealth,
  type InstanceRecord,
  type InstanceRegistration,
} from '../../src/core/instance.js';
import type { Store } from '../../src/store/port.js';

export interface InstanceKit {
  /** The current case's store (set by the suite's beforeEach). */
  store: () => Store;
  /** Closes the store and opens the same data again; undefined when the store cannot be reopened in a test. */
  reopen: () => Promise<Store> | undefined;
  /** The base time every case counts from. */
  T: number;
}

/** Only the required fields: every optional one is unset. */
function registration(group: string, id: string, overrides: Partial<InstanceRegistration> = {}): InstanceRegistration {
  return {
    group,
    id,
    url: `http://127.0.0.1:9000/${group}/${id}`,
    status: 'active',
    startedAt: 1_699_999_000_000,
    weight: 1,
    priority: 0,
    capabilities: [],
    ...overrides,
  };
}

/** Every optional field set. */
function fullRegistration(group: string, id: string): InstanceRegistration {
  return registration(group, id, {
    hostname: 'worker-1.internal',
    region: 'eu-west',
    weight: 3,
    priority: 2,
    capabilities: ['download', 'upload'],
    maxInFlight: 8,
  });
}

function fullSettings(name: string): InstanceGroupSettings {
  return {
    ...defaultGroupSettings(name),
    strategy: 'least-in-flight',
    regionAffinity: false,
    heartbeatIntervalMs: 10_000,
    staleAfterMs: 30_000,
    outlier: { ...defaultGroupSettings(name).outlier, consecutiveFailures: 3, failureRatePercent: 40 },
    slowStartMs: 60_000,
    healthCheck: { path: '/health', intervalMs: 5_000, timeoutMs: 1_000, healthyThreshold: 2, unhealthyThreshold: 3 },
    panicThresholdPercent: 30,
    registrationSecretHash: 'a'.repeat(64),
  };
}

/** What the port promises a heartbeat stores, for an instance first seen at `registeredAt`. */
function recordOf(
  reg: InstanceRegistration,
  lastHeartbeat: number,
  registeredAt = lastHeartbeat,
  health: InstanceHealth = { ejections: 0, readmittedAt: registeredAt },
): InstanceRecord {
  return { ...reg, lastHeartbeat, registeredAt, health };
}

const keysOf = (records: InstanceRecord[]): string[] => records.map((r) => `${r.group}/${r.id}`);

export function runInstanceCases(kit: InstanceKit): void {
  const { T } = kit;
  const store = (): Store => kit.store();

  describe('instance groups', () => {
    it('a first heartbeat creates the group with the given defaults and the instance, registered and seen at that time', async () => {
      const reg = registration('workers', 'w1');
      const defaults = defaultGroupSettings('workers');
      const stored = await store().heartbeatInstance(reg, defaults, T);
      assert.deepEqual(stored, recordOf(reg, T));
      assert.deepEqual(await store().listInstances('workers'), [recordOf(reg, T)]);
      assert.deepEqual(await store().getInstanceGroup('workers'), { ...defaults, createdAt: T, updatedAt: T });
    });

    it('a later heartbeat replaces the registration and the heartbeat time, keeping registeredAt and health', async () => {
      const defaults = defaultGroupSettings('workers');
      await store().heartbeatInstance(fullRegistration('workers', 'w1'), defaults, T);
      const health: InstanceHealth = { ejections: 2, ejectedUntil: T + 30_000, readmittedAt: T, checkedHealthy: false };
      assert.equal(await store().setInstanceHealth('workers', 'w1', health), true);
      // Fields the instance stopped sending are gone: the registration is replaced, not merged.
      const changed = registration('workers', 'w1', { url: 'http://127.0.0.1:9001', status: 'draining', weight: 5, capabilities: ['batch'] });
      const stored = await store().heartbeatInstance(changed, defaults, T + 300_000);
      const expected = recordOf(changed, T + 300_000, T, health);
      assert.deepEqual(stored, expected);
      assert.deepEqual(await store().listInstances('workers'), [expected]);
    });

    it('a heartbeat into an existing group leaves its settings and times alone', async () => {
      const settings = fullSettings('workers');
      await store().saveInstanceGroup(settings, T);
      await store().heartbeatInstance(registration('workers', 'w1'), defaultGroupSettings('workers'), T + 1_000);
      assert.deepEqual(await store().getInstanceGroup('workers'), { ...settings, createdAt: T, updatedAt: T });
    });

    it('lists one group’s instances by id, and every group’s by group, then id', async () => {
      const defaults = (name: string) => defaultGroupSettings(name);
      for (const [group, id] of [['b', 'y'], ['a', 'z'], ['b', 'x'], ['a', 'm'], ['c', 'k']] as const) {
        await store().heartbeatInstance(registration(group, id), defaults(group), T);
      }
      assert.deepEqual(keysOf(await store().listInstances('b')), ['b/x', 'b/y']);
      assert.deepEqual(keysOf(await store().listInstances()), ['a/m', 'a/z', 'b/x', 'b/y', 'c/k']);
      assert.deepEqual(await store().listInstances('unknown'), []);
      assert.deepEqual((await store().listInstanceGroups()).map((g) => g.name), ['a', 'b', 'c']);
    });

    it('replaces an instance’s health, and answers false for an unknown instance', async () => {
      await store().heartbeatInstance(registration('workers', 'w1'), defaultGroupSettings('workers'), T);
      const ejected: InstanceHealth = { ejections: 1, ejectedUntil: T + 30_000, readmittedAt: T, checkedHealthy: true };
      assert.equal(await store().setInstanceHealth('workers', 'w1', ejected), true);
      assert.deepEqual((await store().listInstances('workers'))[0]?.health, ejected);
      // Replaced wholly: fields the new health leaves unset are gone.
      const readmitted: InstanceHealth = { ejections: 1, readmittedAt: T + 30_000 };
      assert.equal(await store().setInstanceHealth('workers', 'w1', readmitted), true);
      assert.deepEqual((await store().listInstances('workers'))[0]?.health, readmitted);
      assert.equal(await store().setInstanceHealth('workers', 'w2', readmitted), false);
      assert.equal(await store().setInstanceHealth('elsewhere', 'w1', readmitted), false);
      assert.deepEqual(keysOf(await store().listInstances()), ['workers/w1'], 'no instance appears from a health write');
    });

    it('deregisters a known instance, keeping its group; false for an unknown one', async () => {
      const defaults = defaultGroupSettings('workers');
      await store().heartbeatInstance(registration('workers', 'w1'), defaults, T);
      await store().heartbeatInstance(registration('workers', 'w2'), defaults, T);
      assert.equal(await store().deregisterInstance('workers', 'w1'), true);
      assert.deepEqual(keysOf(await store().listInstances('workers')), ['workers/w2']);
      assert.equal(await store().deregisterInstance('workers', 'w1'), false);
      assert.equal(await store().deregisterInstance('elsewhere', 'w2'), false);
      assert.equal(await store().deregisterInstance('workers', 'w2'), true);
      assert.ok(await store().getInstanceGroup('workers'), 'an emptied group stays');
    });

    it('a deregistered instance that heartbeats again is registered afresh', async () => {
      const reg = registration('workers', 'w1');
      await store().heartbeatInstance(reg, defaultGroupSettings('workers'), T);
      await store().setInstanceHealth('workers', 'w1', { ejections: 3, ejectedUntil: T + 90_000 });
      await store().deregisterInstance('workers', 'w1');
      assert.deepEqual(await store().heartbeatInstance(reg, defaultGroupSettings('workers'), T + 5_000), recordOf(reg, T + 5_000));
    });

    it('saving a group creates it, then replaces its settings keeping createdAt and moving updatedAt', async () => {
      const first = fullSettings('workers');
      assert.deepEqual(await store().saveInstanceGroup(first, T), { ...first, createdAt: T, updatedAt: T });
      const second: InstanceGroupSettings = { ...defaultGroupSettings('workers'), strategy: 'weighted-round-robin' };
      const saved = await store().saveInstanceGroup(second, T + 60_000);
      assert.deepEqual(saved, { ...second, createdAt: T, updatedAt: T + 60_000 });
      assert.deepEqual(await store().getInstanceGroup('workers'), saved);
      assert.deepEqual(await store().listInstanceGroups(), [saved]);
      assert.equal(await store().getInstanceGroup('unknown'), undefined);
    });

    it('a save at a time not after the last write still moves updatedAt forward', async () => {
      await store().saveInstanceGroup(defaultGroupSettings('workers'), T);
      const again = await store().saveInstanceGroup({ ...defaultGroupSettings('workers'), strategy: 'least-in-flight' }, T);
      assert.equal(again.updatedAt, T + 1);
      assert.equal((await store().saveInstanceGroup(defaultGroupSettings('workers'), T - 5_000)).updatedAt, T + 2);
    });

    it('replaceInstanceGroup creates a group only while it is absent', async () => {
      const settings = fullSettings('workers');
      assert.deepEqual(await store().replaceInstanceGroup(undefined, settings, T), { ...settings, createdAt: T, updatedAt: T });
      assert.equal(await store().replaceInstanceGroup(undefined, defaultGroupSettings('workers'), T + 1), undefined);
      assert.deepEqual(await store().getInstanceGroup('workers'), { ...settings, createdAt: T, updatedAt: T });
    });

    it('replaceInstanceGroup replaces the settings only while updatedAt is the one read, and never to the same updatedAt', async () => {
      const read = await store().saveInstanceGroup(defaultGroupSettings('workers'), T);
      const next: InstanceGroupSettings = { ...defaultGroupSettings('workers'), strategy: 'least-in-flight' };
      // Same millisecond as the read: the write still moves updatedAt, so a second writer holding `read` misses.
      const replaced = await store().replaceInstanceGroup(read.updatedAt, next, T);
      assert.deepEqual(replaced, { ...next, createdAt: T, updatedAt: T + 1 });
      assert.equal(await store().replaceInstanceGroup(read.updatedAt, defaultGroupSettings('workers'), T + 10), undefined);
      assert.equal(await store().replaceInstanceGroup(T + 1, defaultGroupSettings('unknown'), T + 10), undefined);
      assert.deepEqual(await store().getInstanceGroup('workers'), replaced);
    });

    it('of concurrent replaces from one read, exactly one wins', async () => {
      const read = await store().saveInstanceGroup(defaultGroupSettings('workers'), T);
      const answers = await Promise.all(
        [1, 2, 3, 4].map((weight) =>
          store().replaceInstanceGroup(read.updatedAt, { ...defaultGroupSettings('workers'), panicThresholdPercent: weight * 10 }, T + 5),
        ),
      );
      const winners = answers.filter((answer) => answer !== undefined);
      assert.equal(winners.length, 1);
      assert.deepEqual(await store().getInstanceGroup('workers'), winners[0]);
    });

    it('round-trips optional fields: absent when unset, intact when set', async () => {
      const bare = registration('bare', 'w1');
      const full = fullRegistration('full', 'w1');
      await store().heartbeatInstance(bare, defaultGroupSettings('bare'), T);
      await store().heartbeatInstance(full, fullSettings('full'), T);
      const [bareRecord, fullRecord] = await store().listInstances();
      assert.deepEqual(bareRecord, recordOf(bare, T));
      for (const field of ['hostname', 'region', 'maxInFlight'] as const) assert.ok(!(field in bareRecord), `${field} is absent`);
      assert.deepEqual(fullRecord, recordOf(full, T));
      const bareGroup = await store().getInstanceGroup('bare');
      for (const field of ['healthCheck', 'registrationSecretHash'] as const) assert.ok(!(field in bareGroup!), `${field} is absent`);
      assert.deepEqual(bareGroup, { ...defaultGroupSettings('bare'), createdAt: T, updatedAt: T });
      assert.deepEqual(await store().getInstanceGroup('full'), { ...fullSettings('full'), createdAt: T, updatedAt: T });
    });

    it('deleting a group removes its instances, leaves other groups alone, and answers false the second time', async () => {
      for (const [group, id] of [['doomed', 'w1'], ['doomed', 'w2'], ['kept', 'w1']] as const) {
        await store().heartbeatInstance(registration(group, id), defaultGroupSettings(group), T);
      }
      assert.equal(await store().deleteInstanceGroup('doomed'), true);
      assert.equal(await store().getInstanceGroup('doomed'), undefined);
      assert.deepEqual(await store().listInstances('doomed'), []);
      assert.deepEqual(keysOf(await store().listInstances()), ['kept/w1']);
      assert.deepEqual((await store().listInstanceGroups()).map((g) => g.name), ['kept']);
      assert.equal(await store().deleteInstanceGroup('doomed'), false);
      // A heartbeat after the delete starts the group over from the defaults it brings.
      const reg = registration('doomed', 'w1');
      assert.deepEqual(await store().heartbeatInstance(reg, defaultGroupSettings('doomed'), T + 1), recordOf(reg, T + 1));
      assert.deepEqual(await store().getInstanceGroup('doomed'), { ...defaultGroupSettings('doomed'), createdAt: T + 1, updatedAt: T + 1 });
    });

    it('concurrent first heartbeats of one instance into one new group leave one group and one instance', async () => {
      const reg = registration('workers', 'w1');
      const times = [0, 1, 2, 3, 4].map((n) => T + n);
      const answers = await Promise.all(times.map((at) => store().heartbeatInstance(reg, defaultGroupSettings('workers'), at)));
      const instances = await store().listInstances();
      assert.equal(instances.length, 1);
      const [only] = instances;
      assert.ok(times.includes(only!.registeredAt), 'registered by one of the heartbeats');
      assert.ok(answers.every((answer) => answer.registeredAt === only!.registeredAt), 'every heartbeat saw that registration');
      assert.deepEqual(only!.health, { ejections: 0, readmittedAt: only!.registeredAt });
      const groups = await store().listInstanceGroups();
      assert.equal(groups.length, 1);
      assert.ok(times.includes(groups[0]!.createdAt));
    });

    it('concurrent first heartbeats of several instances into one new group register them all in one group', async () => {
      const ids = ['w1', 'w2', 'w3', 'w4', 'w5'];
      await Promise.all(ids.map((id) => store().heartbeatInstance(registration('workers', id), defaultGroupSettings('workers'), T)));
      assert.deepEqual(keysOf(await store().listInstances()), ids.map((id) => `workers/${id}`));
      assert.deepEqual((await store().listInstanceGroups()).map((g) => g.name), ['workers']);
    });

    it('keeps groups, instances and health across a reopen', async (t: TestContext) => {
      const settings = fullSettings('workers');
      await store().saveInstanceGroup(settings, T);
      const reg = fullRegistration('workers', 'w1');
      await store().heartbeatInstance(reg, defaultGroupSettings('workers'), T + 1);
      const health: InstanceHealth = { ejections: 1, ejectedUntil: T + 30_000, readmittedAt: T + 1 };
      await store().setInstanceHealth('workers', 'w1', health);
      const reopening = kit.reopen();
      if (!reopening) return t.skip('this store cannot be reopened in a test');
      const reopened = await reopening;
      assert.deepEqual(await reopened.listInstances(), [recordOf(reg, T + 1, T + 1, health)]);
      assert.deepEqual(await reopened.getInstanceGroup('workers'), { ...settings, createdAt: T, updatedAt: T });
    });
  });
}
