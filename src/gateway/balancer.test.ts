/**
 * The balancer over a real registry on a real SQLite file, with a stepped
 * clock: shares per strategy, slow start, ejection and re-admission (and
 * that both reach the store), panic mode, tiers, capabilities, regions and
 * per-instance caps.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { SteppedClock } from '../../test/helpers/clock.js';
import { defaultGroupSettings, type InstanceGroupSettings, type InstanceRegistration } from '../core/instance.js';
import type { Store } from '../store/port.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { Balancer, type Choice, type RouteRequest } from './balancer.js';
import { InstanceRegistry } from './registry.js';

const logger = pino({ level: 'silent' });

describe('Balancer', () => {
  let dir: string;
  let store: Store;
  let clock: SteppedClock;
  let registry: InstanceRegistry;
  let balancer: Balancer;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'courier-balancer-'));
    clock = new SteppedClock();
    store = openSqliteStore({ path: join(dir, 'courier.db'), synchronous: 'normal', openedAt: clock.now() });
    registry = new InstanceRegistry({ store, clock, logger, groupDefaults: defaultGroupSettings, refreshMs: 60_000 });
    await registry.start();
    balancer = new Balancer({ registry, clock, logger });
  });

  afterEach(async () => {
    registry.stop();
    await balancer.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const register = (id: string, fields: Partial<InstanceRegistration> = {}) =>
    registry.heartbeat({
      group: 'workers',
      id,
      url: `http://127.0.0.1:1/${id}`,
      status: 'active',
      startedAt: clock.now(),
      weight: 1,
      priority: 0,
      capabilities: [],
      ...fields,
    });

  const configure = (change: Partial<InstanceGroupSettings>) =>
    registry.saveGroup({ ...defaultGroupSettings('workers'), ...change, name: 'workers' });

  function chosenId(choice: Choice): string {
    assert.ok('chosen' in choice, `expected an instance, got ${JSON.stringify(choice)}`);
    return choice.chosen.instance.id;
  }

  /** Picks `count` times, finishing each attempt with `ok(id)`, and counts the picks per instance. */
  function spread(count: number, request: RouteRequest = {}, ok: (id: string) => boolean = () => true): Map<string, number> {
    const counts = new Map<string, number>();
    for (let i = 0; i < count; i++) {
      const choice = balancer.choose('workers', request);
      const id = chosenId(choice);
      counts.set(id, (counts.get(id) ?? 0) + 1);
      if ('chosen' in choice) choice.chosen.finish(ok(id));
    }
    return counts;
  }

  it('answers unknownGroup for a group nobody registered into', () => {
    assert.deepEqual(balancer.choose('nobody', {}), { unknownGroup: true });
  });

  it('spreads round robin evenly over the live instances', async () => {
    await register('a');
    await register('b');
    await register('c');
    assert.deepEqual([...spread(300)].sort(), [['a', 100], ['b', 100], ['c', 100]]);
  });

  it('keeps weighted round robin within ±5 % of 3:1 over 4,000 deliveries', async () => {
    await configure({ strategy: 'weighted-round-robin' });
    await register('heavy', { weight: 3 });
    await register('light', { weight: 1 });
    const counts = spread(4_000);
    const heavyShare = counts.get('heavy')! / 4_000;
    assert.ok(Math.abs(heavyShare - 0.75) <= 0.05 * 0.75, `heavy share ${heavyShare}`);
  });

  it('sends least-in-flight work to the instance with fewer attempts open', async () => {
    await configure({ strategy: 'least-in-flight' });
    await register('a');
    await register('b');
    // Attempts stay open until "a" has four; P2C shares them out, so "b" gets about as many, which are then finished.
    const open: Choice[] = [];
    while (open.filter((choice) => chosenId(choice) === 'a').length < 4) open.push(balancer.choose('workers', {}));
    for (const choice of open) if (chosenId(choice) === 'b' && 'chosen' in choice) choice.chosen.finish(true);
    for (let i = 0; i < 20; i++) {
      const choice = balancer.choose('workers', {});
      assert.equal(chosenId(choice), 'b');
      if ('chosen' in choice) choice.chosen.finish(true);
    }
    assert.equal(balancer.inFlight('workers').get('a'), 4);
  });

  it('skips stale and draining instances, and says when none is live', async () => {
    await configure({ staleAfterMs: 10_000 });
    await register('old');
    clock.advance(20_000);
    await register('draining', { status: 'draining' });
    const choice = balancer.choose('workers', {});
    assert.ok('unavailable' in choice);
    assert.match(choice.unavailable.reason, /no healthy instance|no live instance/);
    assert.equal(choice.unavailable.retryAfterSeconds, 60);
    await register('fresh');
    assert.deepEqual([...spread(5)], [['fresh', 5]]);
  });

  it('ejects an instance after consecutive failures, records it in the store, and re-admits it when the ejection ends', async () => {
    await configure({ outlier: { ...defaultGroupSettings('workers').outlier, consecutiveFailures: 3, baseEjectionMs: 30_000, maxEjectionPercent: 50 } });
    await register('bad');
    await register('good');
    spread(10, {}, (id) => id !== 'bad');
    const stored = (await store.listInstances('workers')).find((instance) => instance.id === 'bad')!;
    assert.equal(stored.health.ejections, 1);
    assert.ok(stored.health.ejectedUntil! > clock.now());

    assert.deepEqual([...spread(20)], [['good', 20]], 'an ejected instance gets nothing');
    const none = balancer.choose('workers', { capability: 'nope' });
    assert.ok('unavailable' in none);

    clock.advance(30_001);
    const counts = spread(20);
    assert.equal(counts.get('bad'), 10, 'back in rotation after the ejection');
    await registry.refresh();
    const readmitted = (await store.listInstances('workers')).find((instance) => instance.id === 'bad')!;
    assert.equal(readmitted.health.ejectedUntil, undefined);
    assert.ok(readmitted.health.readmittedAt! >= clock.now() - 1_000);
  });

  it('never ejects more than the group\'s max ejection share, and answers Retry-After from the soonest return', async () => {
    await configure({ outlier: { ...defaultGroupSettings('workers').outlier, consecutiveFailures: 1, baseEjectionMs: 10_000, maxEjectionPercent: 50 } });
    await register('a');
    await register('b');
    spread(6, {}, () => false);
    const ejected = (await store.listInstances('workers')).filter((instance) => instance.health.ejectedUntil !== undefined);
    assert.equal(ejected.length, 1, 'half of two is one');
  });

  it('ramps a re-admitted instance in slowly (slow start)', async () => {
    await configure({ strategy: 'weighted-round-robin', slowStartMs: 100_000 });
    await register('settled');
    clock.advance(200_000);
    await register('settled');
    await register('newcomer');
    // Just registered: about 10 % of full weight against a full-weight peer.
    const early = spread(1_100).get('newcomer') ?? 0;
    assert.ok(early >= 80 && early <= 120, `newcomer got ${early} of 1,100 at the start of its ramp`);
    clock.advance(100_000);
    const later = spread(1_000).get('newcomer') ?? 0;
    assert.ok(later >= 450 && later <= 550, `newcomer got ${later} of 1,000 after its ramp`);
  });

  it('uses every live instance in panic mode, when too few are healthy', async () => {
    await configure({ panicThresholdPercent: 50 });
    for (const id of ['a', 'b', 'c', 'd']) await register(id);
    const ejectedUntil = clock.now() + 60_000;
    for (const id of ['a', 'b', 'c']) await registry.setHealth('workers', id, { ejections: 1, ejectedUntil });
    const choice = balancer.choose('workers', {});
    assert.ok('chosen' in choice && choice.chosen.panic);
    choice.chosen.finish(true);
    assert.equal(spread(40).size, 4, '1 of 4 healthy is under 50 %: all four take traffic');

    await registry.setHealth('workers', 'a', { ejections: 1, readmittedAt: clock.now() });
    await registry.setHealth('workers', 'b', { ejections: 1, readmittedAt: clock.now() });
    assert.deepEqual([...spread(30).keys()].sort(), ['a', 'b', 'd'], '3 of 4 healthy: no panic, the ejected one is skipped');
  });

  it('prefers the best priority tier, and falls over to the next only when it is empty', async () => {
    await register('primary-1', { priority: 0 });
    await register('primary-2', { priority: 0 });
    await register('backup', { priority: 1 });
    assert.deepEqual([...spread(20).keys()].sort(), ['primary-1', 'primary-2']);
    await registry.deregister('workers', 'primary-1');
    await registry.deregister('workers', 'primary-2');
    assert.deepEqual([...spread(5)], [['backup', 5]]);
  });

  it('filters by capability, and prefers the requested region without requiring it', async () => {
    await register('gpu-eu', { capabilities: ['gpu'], region: 'eu' });
    await register('cpu-us', { capabilities: [], region: 'us' });
    await register('cpu-eu', { capabilities: [], region: 'eu' });
    assert.deepEqual([...spread(10, { capability: 'gpu' })], [['gpu-eu', 10]]);
    assert.deepEqual([...spread(10, { region: 'us' })], [['cpu-us', 10]]);
    assert.equal(spread(30, { region: 'ap' }).size, 3, 'no instance in the region: the whole tier');
    const none = balancer.choose('workers', { capability: 'tpu' });
    assert.ok('unavailable' in none && /capability "tpu"/.test(none.unavailable.reason));
  });

  it('sends a retry to another instance than the one it failed on, while there is one', async () => {
    await register('a');
    await register('b');
    for (let i = 0; i < 10; i++) {
      assert.equal(chosenId(balancer.choose('workers', { avoid: 'a' })), 'b');
      assert.equal(chosenId(balancer.choose('workers', { avoid: 'b' })), 'a');
    }
    await registry.deregister('workers', 'b');
    assert.equal(chosenId(balancer.choose('workers', { avoid: 'a' })), 'a', 'the only instance left is still used');
  });

  it('holds each instance to its maxInFlight on this node', async () => {
    await register('small', { maxInFlight: 2 });
    const open = [balancer.choose('workers', {}), balancer.choose('workers', {})];
    const full = balancer.choose('workers', {});
    assert.ok('unavailable' in full);
    assert.equal(full.unavailable.retryAfterSeconds, 1);
    for (const choice of open) if ('chosen' in choice) choice.chosen.finish(true);
    assert.equal(chosenId(balancer.choose('workers', {})), 'small');
  });
});
