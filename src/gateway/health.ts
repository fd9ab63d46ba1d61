/**
 * Which instances of a group may take a delivery, as pure functions of the
 * stored records and a clock (`now` is always a parameter; no timers here).
 *
 * Glossary
 * - live: has heartbeated within the group's `staleAfterMs` (the registry decides).
 * - ejected: passive outlier detection took it out until `health.ejectedUntil`.
 * - checked unhealthy: active health checks' verdict (`health.checkedHealthy === false`).
 * - healthy: live, `status: 'active'`, not ejected and not checked unhealthy.
 * - usable: what the strategy may pick from: the healthy ones, or in panic
 *   every live active one.
 *
 * The pipeline, per attempt: usableInstances → selectTier (capability, then
 * priority tier, then region) → weights × slowStartFactor → strategy.pick.
 *
 * Semantics, and where they come from
 * - Outlier ejection (Envoy's outlier detection): inline, on each attempt's
 *   result, by consecutive failures or by failure rate over a sliding window.
 *   An ejection lasts base × (ejections so far + 1), capped at max (Envoy's
 *   base_ejection_time / max_ejection_time). Never more than
 *   `maxEjectionPercent` of the group at once, but always at least one, so a
 *   group of two can still shed its broken half. Envoy sweeps on an interval
 *   and decrements its multiplier while a host stays healthy; we have no
 *   sweep, so `decayedEjections` resets the count to 0 after a whole
 *   `maxEjectionMs` without a new ejection, and the registry calls it when it
 *   handles the instance (e.g. on heartbeat).
 * - Re-admission: an ejection simply runs out; whoever notices first
 *   (`readmitted`) records `readmittedAt`, which starts slow start.
 * - Slow start (Envoy's slow start with aggression 1 and min weight 10 %):
 *   the weight ramps linearly from 10 % to 100 % over `slowStartMs` from
 *   `readmittedAt`. Unlike Envoy, whose ramp is max(10 %, t / window) and so
 *   sits flat at the floor for the first tenth, ours starts at the floor and
 *   rises at once: 0.1 + 0.9 × t / window. The floor keeps a re-admitted
 *   instance in the rotation from its first moment, so it gets traffic to
 *   warm up on.
 * - Panic (Envoy's panic threshold, default 50 %): when fewer than
 *   `panicThresholdPercent` of the live instances are healthy, health is
 *   ignored and every live one is used. A cascade (ejecting more and more
 *   instances as the survivors overload) is worse than sending some traffic
 *   to instances that may fail; the retry policy absorbs those failures.
 *   0 turns panic off: an all-unhealthy group then answers "no instance".
 * - Active checks (HAProxy's rise/fall): see health-checker.ts. Their
 *   verdict is one more input to "healthy" here.
 *
 * Draining instances (`status: 'draining'`) asked for no new work, so they
 * are never usable, not even in panic, and do not count towards the panic
 * share.
 *
 * Health is written to the store only on transitions (ejection,
 * re-admission, decay, a check flipping): the functions here return the new
 * InstanceHealth for the caller to persist, or undefined when nothing changed.
 */
import type { InstanceGroupSettings, InstanceHealth, InstanceRecord, OutlierSettings } from '../core/instance.js';

/** Per-instance counters for passive outlier detection. Kept in memory: an attempt's result is never a store write. */
interface ResultHistory {
  consecutiveFailures: number;
  /** Ring buffer of the last `windowSize` results, 1 = failure. */
  window: Uint8Array;
  next: number;
  size: number;
  failures: number;
}

/**
 * Passive outlier detection for one group. Counters live on this node only:
 * each node judges the attempts it made, and the ejection it decides is
 * shared through the store, so any node's verdict takes the instance out for
 * all of them. The settings are read on every result but the window is sized
 * once per instance: build a new detector when a group's settings change.
 */
export class OutlierDetector {
  private readonly histories = new Map<string, ResultHistory>();

  constructor(private readonly settings: OutlierSettings) {}

  /**
   * Counts one attempt's result. Returns the health to persist when the
   * instance is to be ejected now, else undefined. Only a failure ejects,
   * whichever rule it trips. Results that arrive while the instance is
   * ejected (attempts sent before the ejection, or in panic) are not
   * counted: it starts afresh when re-admitted.
   */
  recordResult(
    instanceId: string,
    ok: boolean,
    now: number,
    groupState: { total: number; ejectedNow: number },
    health: InstanceHealth,
  ): { eject: InstanceHealth } | undefined {
    if (isEjected(health, now)) return undefined;
    const history = this.historyFor(instanceId);
    record(history, ok);
    if (ok || !this.isOutlier(history)) return undefined;

    const allowed = Math.max(1, Math.floor((groupState.total * this.settings.maxEjectionPercent) / 100));
    // Over the cap the counters are kept, so the next failure tries again once room frees up.
    if (groupState.ejectedNow + 1 > allowed) return undefined;

    this.histories.delete(instanceId);
    const ejections = health.ejections + 1;
    const durationMs = Math.min(this.settings.baseEjectionMs * ejections, this.settings.maxEjectionMs);
    return { eject: { ...health, ejections, ejectedUntil: now + durationMs } };
  }

  /** Drops the counters of an instance that left the group. */
  forget(instanceId: string): void {
    this.histories.delete(instanceId);
  }

  private isOutlier(history: ResultHistory): boolean {
    const { consecutiveFailures, failureRatePercent, minimumRequests } = this.settings;
    if (consecutiveFailures > 0 && history.consecutiveFailures >= consecutiveFailures) return true;
    return (
      failureRatePercent > 0 &&
      history.size > 0 &&
      history.size >= minimumRequests &&
      history.failures * 100 >= failureRatePercent * history.size
    );
  }

  private historyFor(instanceId: string): ResultHistory {
    let history = this.histories.get(instanceId);
    if (!history) {
      history = {
        consecutiveFailures: 0,
        window: new Uint8Array(Math.max(1, this.settings.windowSize)),
        next: 0,
        size: 0,
        failures: 0,
      };
      this.histories.set(instanceId, history);
    }
    return history;
  }
}

function record(history: ResultHistory, ok: boolean): void {
  history.consecutiveFailures = ok ? 0 : history.consecutiveFailures + 1;
  const failed = ok ? 0 : 1;
  if (history.size === history.window.length) history.failures -= history.window[history.next] ?? 0;
  else history.size += 1;
  history.window[history.next] = failed;
  history.failures += failed;
  history.next = (history.next + 1) % history.window.length;
}

export function isEjected(health: InstanceHealth, now: number): boolean {
  return health.ejectedUntil !== undefined && now < health.ejectedUntil;
}

/** An ejection that has run out → the health to persist (ejection cleared, slow start from now); else undefined. */
export function readmitted(health: InstanceHealth, now: number): InstanceHealth | undefined {
  if (health.ejectedUntil === undefined || now < health.ejectedUntil) return undefined;
  const next: InstanceHealth = { ...health, readmittedAt: now };
  delete next.ejectedUntil;
  return next;
}

/**
 * The ejection count back at 0 once the instance has gone a whole
 * `maxEjectionMs` without being ejected, counted from when it came back (the
 * later of `readmittedAt` and an expired `ejectedUntil`, in case nobody
 * recorded the re-admission). Returns the health to persist, or undefined
 * when there is nothing to forgive yet.
 */
export function decayedEjections(health: InstanceHealth, now: number, settings: OutlierSettings): InstanceHealth | undefined {
  if (health.ejections === 0 || isEjected(health, now)) return undefined;
  const back = Math.max(health.readmittedAt ?? -Infinity, health.ejectedUntil ?? -Infinity);
  if (back === -Infinity || now - back < settings.maxEjectionMs) return undefined;
  return { ...health, ejections: 0 };
}

/** Envoy's default min_weight_percent: low enough to protect a cold instance, high enough that it still gets picked. */
const SLOW_START_FLOOR = 0.1;

/** Share of full weight an instance gets now: 1, or 0.1 → 1 linearly over `slowStartMs` after `readmittedAt`. */
export function slowStartFactor(health: InstanceHealth, now: number, slowStartMs: number): number {
  if (slowStartMs <= 0 || health.readmittedAt === undefined) return 1;
  // A negative elapsed time is another node's clock running ahead: treat it as just re-admitted.
  const elapsed = Math.max(0, now - health.readmittedAt);
  if (elapsed >= slowStartMs) return 1;
  return SLOW_START_FLOOR + (1 - SLOW_START_FLOOR) * (elapsed / slowStartMs);
}

export function isHealthy(instance: InstanceRecord, now: number): boolean {
  return instance.status === 'active' && !isEjected(instance.health, now) && instance.health.checkedHealthy !== false;
}

export function usableInstances(
  live: readonly InstanceRecord[],
  settings: Pick<InstanceGroupSettings, 'panicThresholdPercent'>,
  now: number,
): { usable: InstanceRecord[]; panic: boolean } {
  const active = live.filter((instance) => instance.status === 'active');
  const healthy = active.filter((instance) => isHealthy(instance, now));
  const panic = active.length > 0 && healthy.length * 100 < settings.panicThresholdPercent * active.length;
  return { usable: panic ? active : healthy, panic };
}

/**
 * Narrows the usable instances to the ones the strategy chooses from:
 * capability filter first (a message that needs a capability must never go
 * to an instance without it), then the best priority tier that has any
 * instance (lower `priority` is better; the next tier is used only when
 * every better one is empty), then region affinity within that tier (the
 * request's region if any instance of the tier is there, else the whole
 * tier: affinity is a preference, never a reason to fail).
 */
export function selectTier(
  usable: readonly InstanceRecord[],
  request: { region?: string; capability?: string },
  settings: Pick<InstanceGroupSettings, 'regionAffinity'>,
): InstanceRecord[] {
  const { capability, region } = request;
  const capable = capability === undefined ? usable : usable.filter((instance) => instance.capabilities.includes(capability));
  if (capable.length === 0) return [];
  let bestPriority = Infinity;
  for (const instance of capable) bestPriority = Math.min(bestPriority, instance.priority);
  const tier = capable.filter((instance) => instance.priority === bestPriority);
  if (!settings.regionAffinity || region === undefined) return tier;
  const local = tier.filter((instance) => instance.region === region);
  return local.length > 0 ? local : tier;
}

/** The seed's Retry-After when nothing says when an instance will be back. */
const DEFAULT_RETRY_AFTER_SECONDS = 60;

/**
 * Retry-After (seconds) for "no instance available": the earliest expected
 * recovery. The soonest end of an ejection among the live instances; else,
 * when active checks have marked some live instance unhealthy, the next
 * check interval (the earliest a check can run again); else the seed's 60 s,
 * e.g. when no instance is live at all and only a heartbeat can help.
 * Always a whole number of seconds, at least 1.
 */
export function retryAfterSeconds(
  instances: readonly InstanceRecord[],
  settings: Pick<InstanceGroupSettings, 'healthCheck'>,
  now: number,
): number {
  let soonestReturn = Infinity;
  for (const instance of instances) {
    if (instance.status === 'active' && isEjected(instance.health, now)) {
      soonestReturn = Math.min(soonestReturn, instance.health.ejectedUntil ?? Infinity);
    }
  }
  let waitMs: number;
  if (soonestReturn !== Infinity) waitMs = soonestReturn - now;
  else if (settings.healthCheck && instances.some((instance) => instance.health.checkedHealthy === false)) {
    waitMs = settings.healthCheck.intervalMs;
  } else return DEFAULT_RETRY_AFTER_SECONDS;
  return Math.max(1, Math.ceil(waitMs / 1000));
}
