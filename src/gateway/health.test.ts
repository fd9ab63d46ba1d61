import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_OUTLIER,
  type InstanceHealth,
  type InstanceRecord,
  type OutlierSettings,
} from '../core/instance.js';
import {
  OutlierDetector,
  decayedEjections,
  isEjected,
  isHealthy,
  readmitted,
  retryAfterSeconds,
  selectTier,
  slowStartFactor,
  usableInstances,
} from './health.js';

const T0 = Date.parse('2026-01-10T08:00:00.000Z');
const FRESH: InstanceHealth = { ejections: 0 };
const ROOMY = { total: 10, ejectedNow: 0 };

const outlier = (overrides: Partial<OutlierSettings> = {}): OutlierSettings => ({ ...DEFAULT_OUTLIER, ...overrides });

function instance(id: string, overrides: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    group: 'workers',
    id,
    url: `http://${id}.internal:8080`,
    status: 'active',
    startedAt: T0 - 60_000,
    weight: 1,
    priority: 0,
    capabilities: [],
    lastHeartbeat: T0,
    registeredAt: T0 - 60_000,
    health: { ejections: 0 },
    ...overrides,
  };
}

/** Feeds results one by one; returns the index (0-based) of the result that ejected, and the ejection. */
function feed(detector: OutlierDetector, id: string, results: boolean[], health: InstanceHealth = FRESH, now = T0) {
  for (const [index, ok] of results.entries()) {
    const verdict = detector.recordResult(id, ok, now, ROOMY, health);
    if (verdict) return { index, health: verdict.eject };
  }
  return undefined;
}

const failures = (n: number) => Array.from({ length: n }, () => false);

describe('OutlierDetector: consecutive failures', () => {
  it('ejects on the 5th consecutive failure for base × 1', () => {
    const ejected = feed(new OutlierDetector(outlier()), 'a', failures(10));
    assert.deepEqual(ejected, { index: 4, health: { ejections: 1, ejectedUntil: T0 + 30_000 } });
  });

  it('a success resets the count', () => {
    const detector = new OutlierDetector(outlier());
    assert.equal(feed(detector, 'a', [false, false, false, false, true, false, false, false, false]), undefined);
    assert.equal(feed(detector, 'a', [false])?.index, 0);
  });

  it('counts each instance separately', () => {
    const detector = new OutlierDetector(outlier({ consecutiveFailures: 2 }));
    assert.equal(feed(detector, 'a', [false]), undefined);
    assert.equal(feed(detector, 'b', [false]), undefined);
    assert.equal(feed(detector, 'a', [false])?.index, 0);
  });

  it('lasts base × (ejections + 1), capped at maxEjectionMs, and keeps the other health fields', () => {
    const detector = new OutlierDetector(outlier({ consecutiveFailures: 1, baseEjectionMs: 30_000, maxEjectionMs: 100_000 }));
    const previous: InstanceHealth = { ejections: 2, readmittedAt: T0 - 5_000, checkedHealthy: true };
    assert.deepEqual(detector.recordResult('a', false, T0, ROOMY, previous), {
      eject: { ejections: 3, ejectedUntil: T0 + 90_000, readmittedAt: T0 - 5_000, checkedHealthy: true },
    });
    assert.deepEqual(detector.recordResult('b', false, T0, ROOMY, { ejections: 3 }), {
      eject: { ejections: 4, ejectedUntil: T0 + 100_000 },
    });
  });

  it('is off when consecutiveFailures is 0', () => {
    const detector = new OutlierDetector(outlier({ consecutiveFailures: 0, failureRatePercent: 0 }));
    assert.equal(feed(detector, 'a', failures(500)), undefined);
  });

  it('starts afresh after an ejection', () => {
    const detector = new OutlierDetector(outlier({ consecutiveFailures: 3 }));
    const first = feed(detector, 'a', failures(3));
    assert.equal(first?.index, 2);
    // Back after the ejection: two failures are not enough, the earlier ones no longer count.
    const back = readmitted(first?.health ?? FRESH, T0 + 30_000) ?? FRESH;
    assert.equal(feed(detector, 'a', failures(2), back, T0 + 30_000), undefined);
    assert.deepEqual(feed(detector, 'a', failures(1), back, T0 + 31_000), {
      index: 0,
      health: { ejections: 2, ejectedUntil: T0 + 31_000 + 60_000, readmittedAt: T0 + 30_000 },
    });
  });

  it('ignores results that arrive while the instance is ejected', () => {
    const detector = new OutlierDetector(outlier({ consecutiveFailures: 2 }));
    const ejectedHealth: InstanceHealth = { ejections: 1, ejectedUntil: T0 + 10_000 };
    assert.equal(feed(detector, 'a', failures(5), ejectedHealth, T0), undefined);
    const back = readmitted(ejectedHealth, T0 + 10_000) ?? FRESH;
    assert.equal(feed(detector, 'a', failures(1), back, T0 + 10_000), undefined);
  });
});

describe('OutlierDetector: failure rate', () => {
  const settings = outlier({ consecutiveFailures: 0, failureRatePercent: 50, minimumRequests: 10, windowSize: 20 });

  it('waits for minimumRequests results before judging the rate', () => {
    const detector = new OutlierDetector(settings);
    // Fail, succeed, fail…: at least half fail from the first result, but the rate
    // counts only from the 10th, and only a failure ejects: the 11th result.
    const results = Array.from({ length: 12 }, (_, i) => i % 2 === 1);
    assert.equal(feed(detector, 'a', results)?.index, 10);
  });

  it('does not eject below the threshold', () => {
    const detector = new OutlierDetector(settings);
    // 3 successes then 2 failures, repeated: 40 %, under 50 %, in every window.
    const results = Array.from({ length: 200 }, (_, i) => i % 5 < 3);
    assert.equal(feed(detector, 'a', results), undefined);
  });

  it('judges only the last windowSize results', () => {
    const detector = new OutlierDetector(settings);
    // 20 successes then failures: the window must slide to 10 of 20 failing before it ejects.
    const results = [...Array.from({ length: 20 }, () => true), ...failures(20)];
    assert.equal(feed(detector, 'a', results)?.index, 29);
  });
});

describe('OutlierDetector: maxEjectionPercent', () => {
  it('never ejects beyond the share, but always allows one', () => {
    const detector = new OutlierDetector(outlier({ consecutiveFailures: 1, maxEjectionPercent: 50 }));
    assert.ok(detector.recordResult('a', false, T0, { total: 4, ejectedNow: 1 }, FRESH));
    assert.equal(detector.recordResult('b', false, T0, { total: 4, ejectedNow: 2 }, FRESH), undefined);
    // 10 % of 3 rounds down to 0, yet one instance may still be ejected.
    const strict = new OutlierDetector(outlier({ consecutiveFailures: 1, maxEjectionPercent: 10 }));
    assert.ok(strict.recordResult('a', false, T0, { total: 3, ejectedNow: 0 }, FRESH));
    assert.equal(strict.recordResult('b', false, T0, { total: 3, ejectedNow: 1 }, FRESH), undefined);
  });

  it('ejects a refused outlier on its next failure once room frees up', () => {
    const detector = new OutlierDetector(outlier({ consecutiveFailures: 3, maxEjectionPercent: 50 }));
    for (let i = 0; i < 5; i += 1) assert.equal(detector.recordResult('a', false, T0, { total: 2, ejectedNow: 1 }, FRESH), undefined);
    assert.ok(detector.recordResult('a', false, T0, { total: 2, ejectedNow: 0 }, FRESH));
  });

  it('forget drops an instance’s counters', () => {
    const detector = new OutlierDetector(outlier({ consecutiveFailures: 2 }));
    assert.equal(feed(detector, 'a', [false]), undefined);
    detector.forget('a');
    assert.equal(feed(detector, 'a', [false]), undefined);
    assert.equal(feed(detector, 'a', [false])?.index, 0);
  });
});

describe('isEjected and readmitted', () => {
  const ejected: InstanceHealth = { ejections: 2, ejectedUntil: T0 + 60_000, checkedHealthy: true };

  it('is ejected strictly before ejectedUntil', () => {
    assert.equal(isEjected(ejected, T0 + 59_999), true);
    assert.equal(isEjected(ejected, T0 + 60_000), false);
    assert.equal(isEjected(FRESH, T0), false);
  });

  it('re-admits once the ejection has run out, starting slow start then', () => {
    assert.equal(readmitted(ejected, T0 + 59_999), undefined);
    assert.deepEqual(readmitted(ejected, T0 + 75_000), { ejections: 2, readmittedAt: T0 + 75_000, checkedHealthy: true });
    assert.equal(readmitted(FRESH, T0), undefined);
  });
});

describe('decayedEjections', () => {
  const settings = outlier({ maxEjectionMs: 300_000 });

  it('resets the count after maxEjectionMs since re-admission, not before', () => {
    const back: InstanceHealth = { ejections: 3, readmittedAt: T0 };
    assert.equal(decayedEjections(back, T0 + 299_999, settings), undefined);
    assert.deepEqual(decayedEjections(back, T0 + 300_000, settings), { ejections: 0, readmittedAt: T0 });
  });

  it('counts from an expired ejection nobody recorded the re-admission of', () => {
    const expired: InstanceHealth = { ejections: 1, ejectedUntil: T0, readmittedAt: T0 - 1_000_000 };
    assert.equal(decayedEjections(expired, T0 + 100_000, settings), undefined);
    assert.equal(decayedEjections(expired, T0 + 300_000, settings)?.ejections, 0);
  });

  it('leaves ejected and never-ejected instances alone', () => {
    assert.equal(decayedEjections({ ejections: 2, ejectedUntil: T0 + 1_000_000, readmittedAt: T0 - 1_000_000 }, T0, settings), undefined);
    assert.equal(decayedEjections({ ejections: 0, readmittedAt: T0 - 1_000_000 }, T0, settings), undefined);
  });
});

describe('slowStartFactor', () => {
  const health: InstanceHealth = { ejections: 0, readmittedAt: T0 };

  it('ramps linearly from 0.1 to 1 over slowStartMs', () => {
    assert.equal(slowStartFactor(health, T0, 60_000), 0.1);
    assert.equal(slowStartFactor(health, T0 + 30_000, 60_000), 0.55);
    assert.ok(Math.abs(slowStartFactor(health, T0 + 20_000, 60_000) - 0.4) < 1e-12);
    assert.equal(slowStartFactor(health, T0 + 60_000, 60_000), 1);
    assert.equal(slowStartFactor(health, T0 + 600_000, 60_000), 1);
  });

  it('is 1 when slow start is off or the instance has no readmittedAt', () => {
    assert.equal(slowStartFactor(health, T0, 0), 1);
    assert.equal(slowStartFactor(FRESH, T0, 60_000), 1);
  });

  it('holds the floor when another node’s clock put readmittedAt in the future', () => {
    assert.equal(slowStartFactor(health, T0 - 5_000, 60_000), 0.1);
  });
});

describe('usableInstances', () => {
  const settings = { panicThresholdPercent: 50 };
  const ejected = (id: string) => instance(id, { health: { ejections: 1, ejectedUntil: T0 + 30_000 } });
  const failingChecks = (id: string) => instance(id, { health: { ejections: 0, checkedHealthy: false } });

  it('uses the healthy ones: not ejected, not checked unhealthy (unknown counts as healthy)', () => {
    const live = [instance('a'), ejected('b'), failingChecks('c'), instance('d', { health: { ejections: 0, checkedHealthy: true } })];
    const { usable, panic } = usableInstances(live, settings, T0);
    assert.equal(panic, false);
    assert.deepEqual(usable.map((i) => i.id), ['a', 'd']);
  });

  it('panics below the threshold and uses every live instance', () => {
    const live = [instance('a'), ejected('b'), failingChecks('c'), ejected('d'), instance('e')];
    const { usable, panic } = usableInstances(live, settings, T0);
    assert.equal(panic, true);
    assert.deepEqual(usable.map((i) => i.id), ['a', 'b', 'c', 'd', 'e']);
  });

  it('counts an ejection that has run out as healthy', () => {
    const live = [instance('a'), ejected('b')];
    assert.equal(usableInstances(live, { panicThresholdPercent: 100 }, T0).panic, true);
    assert.deepEqual(usableInstances(live, { panicThresholdPercent: 100 }, T0 + 30_000), {
      usable: live,
      panic: false,
    });
  });

  it('with the threshold at 0 never panics: an all-unhealthy group has nothing usable', () => {
    assert.deepEqual(usableInstances([ejected('a'), failingChecks('b')], { panicThresholdPercent: 0 }, T0), {
      usable: [],
      panic: false,
    });
  });

  it('never uses a draining instance, not even in panic', () => {
    const live = [instance('a', { status: 'draining' }), ejected('b'), instance('c')];
    assert.deepEqual(usableInstances(live, settings, T0).usable.map((i) => i.id), ['c']);
    const panicked = usableInstances([instance('a', { status: 'draining' }), ejected('b')], settings, T0);
    assert.deepEqual([panicked.panic, panicked.usable.map((i) => i.id)], [true, ['b']]);
    assert.equal(isHealthy(instance('a', { status: 'draining' }), T0), false);
  });

  it('has nothing usable and no panic when nothing is live', () => {
    assert.deepEqual(usableInstances([], settings, T0), { usable: [], panic: false });
  });
});

describe('selectTier', () => {
  const affinity = { regionAffinity: true };
  const ids = (instances: InstanceRecord[]) => instances.map((i) => i.id);
  const group = [
    instance('p0-eu', { priority: 0, region: 'eu', capabilities: ['download'] }),
    instance('p0-us', { priority: 0, region: 'us', capabilities: ['download', 'upload'] }),
    instance('p1-eu', { priority: 1, region: 'eu', capabilities: ['download', 'upload', 'gpu'] }),
    instance('p2-ap', { priority: 2, region: 'ap', capabilities: ['gpu'] }),
  ];

  it('uses the best priority tier only', () => {
    assert.deepEqual(ids(selectTier(group, {}, affinity)), ['p0-eu', 'p0-us']);
    assert.deepEqual(ids(selectTier(group.slice(2), {}, affinity)), ['p1-eu']);
  });

  it('filters by capability before choosing the tier', () => {
    assert.deepEqual(ids(selectTier(group, { capability: 'gpu' }, affinity)), ['p1-eu']);
    assert.deepEqual(ids(selectTier(group, { capability: 'upload' }, affinity)), ['p0-us']);
    assert.deepEqual(selectTier(group, { capability: 'video' }, affinity), []);
  });

  it('prefers the region within the tier, and falls back to the whole tier', () => {
    assert.deepEqual(ids(selectTier(group, { region: 'us' }, affinity)), ['p0-us']);
    // No tier-0 instance in ap: region affinity never moves work to a worse tier.
    assert.deepEqual(ids(selectTier(group, { region: 'ap' }, affinity)), ['p0-eu', 'p0-us']);
    assert.deepEqual(ids(selectTier(group, { region: 'eu', capability: 'upload' }, affinity)), ['p0-us']);
  });

  it('ignores the region when affinity is off', () => {
    assert.deepEqual(ids(selectTier(group, { region: 'us' }, { regionAffinity: false })), ['p0-eu', 'p0-us']);
  });

  it('returns nothing for nothing usable', () => {
    assert.deepEqual(selectTier([], { region: 'eu' }, affinity), []);
  });
});

describe('retryAfterSeconds', () => {
  const noChecks = {};
  const checks = {
    healthCheck: { path: '/health', intervalMs: 10_000, timeoutMs: 2_000, healthyThreshold: 2, unhealthyThreshold: 3 },
  };

  it('is the time until the soonest ejection ends, rounded up', () => {
    const instances = [
      instance('a', { health: { ejections: 2, ejectedUntil: T0 + 60_000 } }),
      instance('b', { health: { ejections: 1, ejectedUntil: T0 + 12_300 } }),
    ];
    assert.equal(retryAfterSeconds(instances, checks, T0), 13);
  });

  it('is at least 1 second', () => {
    const instances = [instance('a', { health: { ejections: 1, ejectedUntil: T0 + 20 } })];
    assert.equal(retryAfterSeconds(instances, noChecks, T0), 1);
  });

  it('is the check interval when active checks hold instances out', () => {
    const instances = [instance('a', { health: { ejections: 0, checkedHealthy: false } })];
    assert.equal(retryAfterSeconds(instances, checks, T0), 10);
  });

  it('is the seed’s 60 s when nothing is live, or nothing says when an instance returns', () => {
    assert.equal(retryAfterSeconds([], checks, T0), 60);
    assert.equal(retryAfterSeconds([], noChecks, T0), 60);
    assert.equal(retryAfterSeconds([instance('a', { health: { ejections: 0, checkedHealthy: false } })], noChecks, T0), 60);
    // An ejection that already ran out promises nothing.
    assert.equal(retryAfterSeconds([instance('a', { health: { ejections: 1, ejectedUntil: T0 - 1 } })], noChecks, T0), 60);
  });
});
