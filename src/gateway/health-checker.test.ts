import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { HealthCheckSettings, InstanceHealth, InstanceRecord } from '../core/instance.js';
import { ManualClock, ManualTimer } from '../../test/helpers/clock.js';
import { eventually, startDestination, type Destination } from '../../test/helpers/destination.js';
import { ActiveHealthChecker, probeUrl, type ActiveHealthCheckerOptions } from './health-checker.js';

const SETTINGS: HealthCheckSettings = {
  path: '/health',
  intervalMs: 25,
  timeoutMs: 150,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
};

function instanceAt(id: string, destination: Destination, health: InstanceHealth = { ejections: 0 }): InstanceRecord {
  return {
    group: 'workers',
    id,
    url: destination.origin,
    status: 'active',
    startedAt: Date.now(),
    weight: 1,
    priority: 0,
    capabilities: [],
    lastHeartbeat: Date.now(),
    registeredAt: Date.now(),
    health,
  };
}

interface Transition {
  id: string;
  healthy: boolean;
  /** Probes the instance's server had received when the verdict changed. */
  probesSoFar: number;
}

/** A checker over `instances`, recording every transition, stopped after the test. */
function startChecker(
  instances: () => InstanceRecord[],
  settings: Partial<HealthCheckSettings> = {},
  onTransition?: (id: string, healthy: boolean) => void,
  seams: Pick<ActiveHealthCheckerOptions, 'clock' | 'scheduleRound'> = {},
) {
  const transitions: Transition[] = [];
  const checker = new ActiveHealthChecker({
    ...seams,
    settings: { ...SETTINGS, ...settings },
    instances,
    onTransition(id, healthy) {
      onTransition?.(id, healthy);
      const destination = destinations.get(id);
      transitions.push({ id, healthy, probesSoFar: destination?.arrivals.length ?? -1 });
    },
  });
  checkers.push(checker);
  checker.start();
  return { checker, transitions };
}

const destinations = new Map<string, Destination>();
const checkers: ActiveHealthChecker[] = [];

async function destination(id: string, script: Destination['script']): Promise<Destination> {
  const started = await startDestination(script);
  destinations.set(id, started);
  return started;
}

after(async () => {
  await Promise.all(checkers.map((checker) => checker.stop()));
  await Promise.all([...destinations.values()].map((d) => d.close()));
});

describe('ActiveHealthChecker', () => {
  it('marks a 2xx instance healthy and 5xx and hanging ones unhealthy, each once, after its threshold', async () => {
    const up = await destination('up', () => ({ status: 204 }));
    const broken = await destination('broken', () => ({ status: 500, body: 'no' }));
    const hanging = await destination('hanging', () => ({ hang: true }));
    const instances = [instanceAt('up', up), instanceAt('broken', broken), instanceAt('hanging', hanging)];
    const { transitions } = startChecker(() => instances, { healthyThreshold: 3, unhealthyThreshold: 2 });

    await eventually(() => (transitions.length === 3 ? true : undefined), 5_000, 'three verdicts');
    // Several more rounds: a verdict that stays the same is never reported again.
    const seen = up.arrivals.length;
    await up.waitFor(seen + 6);
    const byId = Object.fromEntries(transitions.map((t) => [t.id, t]));
    assert.equal(transitions.length, 3);
    assert.deepEqual([byId.up?.healthy, byId.broken?.healthy, byId.hanging?.healthy], [true, false, false]);
    // The first verdict only after a full threshold of probes.
    assert.equal(byId.up?.probesSoFar, 3);
    assert.equal(byId.broken?.probesSoFar, 2);
    assert.equal(byId.hanging?.probesSoFar, 2);
    assert.ok(up.arrivals.every((arrival) => arrival.method === 'GET' && arrival.path === '/health'));
  });

  it('follows an instance that flips, needing a full streak each way', async () => {
    let status = 200;
    const flipping = await destination('flipping', () => ({ status }));
    const instances = [instanceAt('flipping', flipping)];
    const { transitions } = startChecker(() => instances, { healthyThreshold: 2, unhealthyThreshold: 3 });

    await eventually(() => (transitions.length === 1 ? true : undefined), 5_000, 'healthy');
    status = 503;
    const failingFrom = flipping.arrivals.length;
    await eventually(() => (transitions.length === 2 ? true : undefined), 5_000, 'unhealthy');
    status = 200;
    const passingFrom = flipping.arrivals.length;
    await eventually(() => (transitions.length === 3 ? true : undefined), 5_000, 'healthy again');

    assert.deepEqual(transitions.map((t) => t.healthy), [true, false, true]);
    // The server reads `status` as each probe arrives, so the streaks start exactly at the flips.
    const [, down, up] = transitions;
    assert.equal((down?.probesSoFar ?? 0) - failingFrom, 3);
    assert.equal((up?.probesSoFar ?? 0) - passingFrom, 2);
  });

  it('starts from the stored verdict: a recorded failure needs the rise threshold, a recorded pass is not reported again', async () => {
    const server = await destination('stored', () => ({ status: 200 }));
    const instances = [
      instanceAt('was-down', server, { ejections: 0, checkedHealthy: false }),
      instanceAt('was-up', server, { ejections: 0, checkedHealthy: true }),
    ];
    const { transitions } = startChecker(() => instances);
    await eventually(() => (transitions.length > 0 ? true : undefined), 5_000, 'a verdict');
    await server.waitFor(server.arrivals.length + 8);
    assert.deepEqual(transitions.map((t) => [t.id, t.healthy]), [['was-down', true]]);
  });

  it('never overlaps rounds: a hanging instance gets one probe at a time, and holds the others to its pace', async () => {
    const hanging = await destination('slow', () => ({ hang: true }));
    const quick = await destination('quick', () => ({ status: 200 }));
    const instances = [instanceAt('slow', hanging), instanceAt('quick', quick)];
    startChecker(() => instances, { intervalMs: 10, timeoutMs: 120 });
    await hanging.waitFor(5);
    await quick.waitFor(4);
    // Overlapping rounds would probe every 10 ms and so have several probes open on the hanging
    // instance at once; each probe instead waits for the previous one to time out.
    assert.equal(hanging.maxConcurrent, 1, 'probes open at once on the hanging instance');
    assert.ok(Math.abs(quick.arrivals.length - hanging.arrivals.length) <= 1, `${quick.arrivals.length} vs ${hanging.arrivals.length}`);
  });

  it('starts the next round an interval after the previous one started: at once after a round longer than that', async () => {
    // The probe's own duration is read on the injected clock: the server moves it as each probe arrives.
    const clock = new ManualClock();
    const timer = new ManualTimer();
    let roundTakesMs = 0;
    const server = await destination('paced', () => {
      clock.advance(roundTakesMs);
      return { status: 200 };
    });
    const instances = [instanceAt('paced', server)];
    startChecker(() => instances, { intervalMs: 100 }, undefined, { clock, scheduleRound: timer.schedule });
    assert.deepEqual(timer.delays, [0], 'the first round is due at once');
    await timer.fireAndWait();
    roundTakesMs = 30;
    await timer.fireAndWait();
    roundTakesMs = 250;
    await timer.fireAndWait();
    roundTakesMs = 100;
    await timer.fireAndWait();
    assert.deepEqual(timer.delays, [0, 100, 70, 0, 0]);
    assert.equal(server.arrivals.length, 4, 'one probe per round');
  });

  it('tries a transition again next round when recording it failed', async () => {
    const server = await destination('flaky-store', () => ({ status: 200 }));
    const instances = [instanceAt('flaky-store', server)];
    let calls = 0;
    const { transitions } = startChecker(
      () => instances,
      { healthyThreshold: 1 },
      () => {
        calls += 1;
        if (calls === 1) throw new Error('store unavailable');
      },
    );
    await eventually(() => (transitions.length === 1 ? true : undefined), 5_000, 'the retried transition');
    await server.waitFor(server.arrivals.length + 5);
    assert.equal(calls, 2);
    assert.deepEqual(transitions.map((t) => t.healthy), [true]);
  });

  it('reads the instance list each round: a newcomer is probed, a leaver no more', async () => {
    const first = await destination('first', () => ({ status: 200 }));
    const second = await destination('second', () => ({ status: 200 }));
    let instances = [instanceAt('first', first)];
    startChecker(() => instances);
    await first.waitFor(2);
    instances = [instanceAt('second', second)];
    await second.waitFor(3);
    const firstProbes = first.arrivals.length;
    await second.waitFor(second.arrivals.length + 3);
    assert.equal(first.arrivals.length, firstProbes);
  });

  it('stop() aborts a hanging probe at once and schedules nothing afterwards', { timeout: 30_000 }, async () => {
    const hanging = await destination('stopped', () => ({ hang: true }));
    const instances = [instanceAt('stopped', hanging)];
    const timer = new ManualTimer();
    // A probe timeout far beyond the test's own: stop() resolving at all shows it aborted the probe.
    const { checker, transitions } = startChecker(() => instances, { timeoutMs: 600_000, unhealthyThreshold: 1 }, undefined, {
      scheduleRound: timer.schedule,
    });
    timer.fire();
    await hanging.waitFor(1);
    await checker.stop();
    assert.equal(timer.isPending, false, 'no round is scheduled after stop()');
    assert.equal(hanging.arrivals.length, 1);
    // The aborted probe is not a failure of the instance.
    assert.deepEqual(transitions, []);
  });
});

describe('probeUrl', () => {
  it('joins the base URL and the path with exactly one slash, keeping the base path', () => {
    assert.equal(probeUrl('http://10.0.0.5:8080', '/health'), 'http://10.0.0.5:8080/health');
    assert.equal(probeUrl('http://10.0.0.5:8080/', '/health'), 'http://10.0.0.5:8080/health');
    assert.equal(probeUrl('https://w.example.com/app/', 'healthz'), 'https://w.example.com/app/healthz');
  });
});
