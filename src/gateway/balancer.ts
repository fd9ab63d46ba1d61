/**
 * Choosing one instance of a group for one attempt, from memory only.
 *
 * The pipeline (health.ts and strategies.ts hold the rules):
 *   live (active or draining, heartbeat within staleAfterMs)
 *   → usable (not ejected, not failed by active checks; all active ones in panic)
 *   → the message's tier (capability filter, best priority tier, region affinity)
 *   → below each instance's maxInFlight on this node
 *   → the group's strategy, with weights scaled by slow start.
 * Nothing here reads the store: the registry keeps the groups in memory, and
 * health transitions (ejections, re-admissions, check verdicts) are written
 * through it, off the delivery path.
 *
 * Every choice must be finished with the attempt's outcome: that releases the
 * in-flight count and feeds outlier detection.
 *
 * Events (core/events.ts): `instance.health-changed` when an instance is
 * ejected or re-admitted (as the transition is decided; recording it in the
 * store follows), and when an active check's verdict flips (once recorded).
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { EventSink } from '../core/events.js';
import type { InstanceGroupRecord, InstanceHealth, InstanceRecord } from '../core/instance.js';
import { ActiveHealthChecker } from './health-checker.js';
import { decayedEjections, isEjected, OutlierDetector, readmitted, retryAfterSeconds, selectTier, slowStartFactor, usableInstances } from './health.js';
import type { InstanceRegistry } from './registry.js';
import { createStrategy, type Strategy } from './strategies.js';

export interface RouteRequest {
  region?: string;
  capability?: string;
  /** The instance the previous attempt failed on: skipped when any other candidate is left (Envoy's previous_hosts). */
  avoid?: string;
}

export interface ChosenInstance {
  instance: InstanceRecord;
  /** Chosen while most of the group was unhealthy, ignoring health (Envoy's panic mode). */
  panic: boolean;
  /** The attempt's outcome: ok = a response that is not a server-side failure. Call exactly once. */
  finish(ok: boolean): void;
}

export type Choice =
  | { chosen: ChosenInstance }
  | { unavailable: { reason: string; retryAfterSeconds: number } }
  | { unknownGroup: true };

/** A group whose instances are all at their maxInFlight frees up within moments, not a minute. */
const BUSY_RETRY_AFTER_SECONDS = 1;
const MAX_STRATEGIES_PER_GROUP = 64;

interface GroupState {
  /** Rebuilt when the group's strategy or outlier settings change. */
  /** The settings object the state was built for: the registry replaces it on change, so identity says when to look again. */
  settings: InstanceGroupRecord;
  settingsKey: string;
  /**
   * One strategy per candidate set (the tier's instance ids): messages that
   * need different capabilities or regions see different sets, and one shared
   * round-robin counter over alternating sets could send every message of one
   * kind to the same instance.
   */
  strategies: Map<string, Strategy>;
  outliers: OutlierDetector;
  inFlight: Map<string, number>;
  checker?: { key: string; checker: ActiveHealthChecker };
}

export interface BalancerDeps {
  registry: InstanceRegistry;
  clock: Clock;
  logger: Logger;
  events: EventSink;
  random?: () => number;
}

export class Balancer {
  private readonly states = new Map<string, GroupState>();
  private running = false;

  constructor(private readonly deps: BalancerDeps) {}

  /** Starts the groups' active health checks, and follows registry changes (new groups, changed settings). */
  start(): void {
    this.running = true;
    this.deps.registry.onChange(() => this.syncCheckers());
    this.syncCheckers();
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all([...this.states.values()].map(async (state) => state.checker?.checker.stop()));
  }

  choose(groupName: string, request: RouteRequest): Choice {
    const view = this.deps.registry.group(groupName);
    if (!view) return { unknownGroup: true };
    const now = this.deps.clock.now();
    const { settings } = view;
    const state = this.stateFor(settings);
    const live = view.instances.filter((instance) => isLive(instance, settings, now));
    for (const instance of live) this.recordRecovery(instance, settings, now);

    const { usable, panic } = usableInstances(live, settings, now);
    const tier = selectTier(usable, request, settings);
    const open = tier.filter((instance) => instance.maxInFlight === undefined || (state.inFlight.get(instance.id) ?? 0) < instance.maxInFlight);
    const others = request.avoid === undefined ? open : open.filter((instance) => instance.id !== request.avoid);
    const candidates = (others.length > 0 ? others : open)
      .map((instance) => ({
        id: instance.id,
        weight: instance.weight * slowStartFactor(instance.health, now, settings.slowStartMs),
        inFlight: state.inFlight.get(instance.id) ?? 0,
      }));
    const picked = this.strategyFor(state, settings, tier).pick(candidates);
    if (!picked) return { unavailable: unavailability(groupName, live, usable, tier, request, settings, now) };

    const instance = tier.find((candidate) => candidate.id === picked.id)!;
    state.inFlight.set(instance.id, picked.inFlight + 1);
    let finished = false;
    return {
      chosen: {
        instance,
        panic,
        finish: (ok) => {
          if (finished) return;
          finished = true;
          const left = (state.inFlight.get(instance.id) ?? 1) - 1;
          if (left <= 0) state.inFlight.delete(instance.id);
          else state.inFlight.set(instance.id, left);
          this.recordOutcome(groupName, instance.id, ok);
        },
      },
    };
  }

  /** Attempts in flight from this node, per instance id. */
  inFlight(groupName: string): ReadonlyMap<string, number> {
    return this.states.get(groupName)?.inFlight ?? new Map();
  }

  private stateFor(settings: InstanceGroupRecord): GroupState {
    let state = this.states.get(settings.name);
    // Called per delivery: the key is computed only when the registry handed over a new settings object.
    if (state?.settings === settings) return state;
    const settingsKey = JSON.stringify([settings.strategy, settings.outlier]);
    if (state?.settingsKey === settingsKey) {
      state.settings = settings;
    } else {
      state = {
        settings,
        settingsKey,
        strategies: new Map(),
        outliers: new OutlierDetector(settings.outlier),
        inFlight: state?.inFlight ?? new Map(),
        ...(state?.checker ? { checker: state.checker } : {}),
      };
      this.states.set(settings.name, state);
    }
    return state;
  }

  private strategyFor(state: GroupState, settings: InstanceGroupRecord, tier: readonly InstanceRecord[]): Strategy {
    const key = tier.map((instance) => instance.id).join('\n');
    let strategy = state.strategies.get(key);
    if (!strategy) {
      // Membership churn makes new sets; old ones are dropped wholesale rather than tracked.
      if (state.strategies.size >= MAX_STRATEGIES_PER_GROUP) state.strategies.clear();
      strategy = createStrategy(settings.strategy, this.deps.random);
      state.strategies.set(key, strategy);
    }
    return strategy;
  }

  private recordOutcome(groupName: string, instanceId: string, ok: boolean): void {
    const view = this.deps.registry.group(groupName);
    const instance = view?.instances.find((candidate) => candidate.id === instanceId);
    if (!view || !instance) return;
    const now = this.deps.clock.now();
    const live = view.instances.filter((candidate) => isLive(candidate, view.settings, now));
    const ejectedNow = live.filter((candidate) => isEjected(candidate.health, now)).length;
    const verdict = this.stateFor(view.settings).outliers.recordResult(instanceId, ok, now, { total: live.length, ejectedNow }, instance.health);
    if (!verdict) return;
    this.deps.logger.warn(
      { group: groupName, instance: instanceId, ejectedUntil: verdict.eject.ejectedUntil, ejections: verdict.eject.ejections },
      'instance ejected after failed attempts',
    );
    this.deps.events.emit('instance.health-changed', {
      group: groupName,
      instanceId,
      healthy: false,
      reason: 'ejected',
      ejectedUntil: verdict.eject.ejectedUntil,
      at: now,
    });
    this.persist(groupName, instanceId, verdict.eject);
  }

  /** An ejection that ran out is recorded as a re-admission (slow start counts from it); old ejections are forgiven. */
  private recordRecovery(instance: InstanceRecord, settings: InstanceGroupRecord, now: number): void {
    const back = readmitted(instance.health, now);
    if (back) {
      this.deps.logger.info({ group: instance.group, instance: instance.id }, 'instance re-admitted after its ejection');
      this.deps.events.emit('instance.health-changed', { group: instance.group, instanceId: instance.id, healthy: true, reason: 'readmitted', at: now });
      this.persist(instance.group, instance.id, back);
      return;
    }
    const forgiven = decayedEjections(instance.health, now, settings.outlier);
    if (forgiven) this.persist(instance.group, instance.id, forgiven);
  }

  private persist(group: string, id: string, health: InstanceHealth): void {
    this.deps.registry.setHealth(group, id, health).catch((error: unknown) => {
      this.deps.logger.error({ err: error, group, instance: id }, 'could not record an instance health change');
    });
  }

  private syncCheckers(): void {
    if (!this.running) return;
    const now = () => this.deps.clock.now();
    for (const { settings } of this.deps.registry.allGroups()) {
      const state = this.stateFor(settings);
      const key = JSON.stringify(settings.healthCheck ?? null);
      if (state.checker?.key === key) continue;
      void state.checker?.checker.stop();
      delete state.checker;
      if (!settings.healthCheck) continue;
      const name = settings.name;
      const checker = new ActiveHealthChecker({
        settings: settings.healthCheck,
        instances: () => {
          const view = this.deps.registry.group(name);
          return view ? view.instances.filter((instance) => isLive(instance, view.settings, now())) : [];
        },
        onTransition: async (instanceId, healthy, detail) => {
          const instance = this.deps.registry.group(name)?.instances.find((candidate) => candidate.id === instanceId);
          if (!instance) return;
          // Coming back healthy is a re-admission: slow start ramps from here.
          const health: InstanceHealth = healthy && instance.health.checkedHealthy === false
            ? { ...instance.health, checkedHealthy: true, readmittedAt: now() }
            : { ...instance.health, checkedHealthy: healthy };
          await this.deps.registry.setHealth(name, instanceId, health);
          this.deps.events.emit('instance.health-changed', {
            group: name,
            instanceId,
            healthy,
            reason: healthy ? 'check-passed' : 'check-failed',
            detail,
            at: now(),
          });
        },
        logger: this.deps.logger,
      });
      state.checker = { key, checker };
      checker.start();
    }
    for (const [name, state] of this.states) {
      if (this.deps.registry.group(name)) continue;
      void state.checker?.checker.stop();
      this.states.delete(name);
    }
  }
}

export function isLive(instance: InstanceRecord, settings: InstanceGroupRecord, now: number): boolean {
  return instance.lastHeartbeat + settings.staleAfterMs >= now;
}

function unavailability(
  groupName: string,
  live: readonly InstanceRecord[],
  usable: readonly InstanceRecord[],
  tier: readonly InstanceRecord[],
  request: RouteRequest,
  settings: InstanceGroupRecord,
  now: number,
): { reason: string; retryAfterSeconds: number } {
  const retryAfter = retryAfterSeconds(live, settings, now);
  if (live.length === 0) return { reason: `no live instance in group "${groupName}"`, retryAfterSeconds: retryAfter };
  if (usable.length === 0) return { reason: `no healthy instance in group "${groupName}"`, retryAfterSeconds: retryAfter };
  if (tier.length === 0) {
    return { reason: `no instance in group "${groupName}" has capability "${request.capability}"`, retryAfterSeconds: retryAfter };
  }
  return { reason: `every instance of group "${groupName}" is at its maxInFlight`, retryAfterSeconds: BUSY_RETRY_AFTER_SECONDS };
}
