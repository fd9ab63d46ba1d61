/**
 * Instance groups as the API sees them: registration (heartbeats), the
 * group's settings, and a view of each instance's state for operators.
 */
import type { Clock } from '../core/clock.js';
import { CourierError } from '../core/errors.js';
import { matchesDigest, secretDigest } from '../core/secrets.js';
import {
  applyGroupPatch,
  type InstanceGroupPatch,
  type InstanceGroupRecord,
  type InstanceRecord,
  type InstanceRegistration,
} from '../core/instance.js';
import { isLive, type Balancer } from './balancer.js';
import { isEjected, slowStartFactor } from './health.js';
import type { InstanceRegistry } from './registry.js';

/** What an operator sees of an instance: its record, plus what this node makes of it now. */
export interface InstanceView extends InstanceRecord {
  state: 'healthy' | 'ejected' | 'unhealthy' | 'draining' | 'stale';
  /** Share of full weight now (slow start), 0–1. */
  weightFactor: number;
  /** Attempts in flight to it from this node. */
  inFlight: number;
}

/** A registration secret as stored: its SHA-256, in hex. */
export const hashSecret = (secret: string): string => secretDigest(secret).toString('hex');

export class InstanceService {
  constructor(private readonly deps: { registry: InstanceRegistry; balancer: Balancer; clock: Clock }) {}

  /**
   * A heartbeat is allowed with the API token, or with the group's
   * registration secret (compared as SHA-256 digests, in constant time).
   */
  authorize(group: string, authenticated: boolean, presentedSecret: string | undefined): void {
    if (authenticated) return;
    const stored = this.deps.registry.group(group)?.settings.registrationSecretHash;
    if (presentedSecret !== undefined && stored !== undefined && matchesDigest(presentedSecret, Buffer.from(stored, 'hex'))) return;
    throw new CourierError('UNAUTHORIZED', 'missing or invalid credentials: send Authorization: Bearer <token> or the group\'s Courier-Registration-Secret');
  }

  heartbeat(registration: InstanceRegistration): Promise<{ instance: InstanceRecord; settings: InstanceGroupRecord }> {
    return this.deps.registry.heartbeat(registration);
  }

  async deregister(group: string, id: string): Promise<void> {
    if (!(await this.deps.registry.deregister(group, id))) throw new CourierError('INSTANCE_NOT_FOUND', `instance "${id}" not found in group "${group}"`);
  }

  list(group?: string): InstanceView[] {
    const groups = group === undefined ? this.deps.registry.allGroups() : [this.getView(group)];
    return groups.flatMap((view) => view.instances.map((instance) => this.describe(instance, view.settings)));
  }

  getGroup(name: string): InstanceGroupRecord {
    return this.getView(name).settings;
  }

  listGroups(): InstanceGroupRecord[] {
    return this.deps.registry.allGroups().map((view) => view.settings);
  }

  /** Applies an operator's change to a group's settings (creating the group from its defaults if needed), atomically. */
  updateGroup(name: string, patch: InstanceGroupPatch & { registrationSecret?: string | null }): Promise<InstanceGroupRecord> {
    const { registrationSecret, ...settings } = patch;
    const secret =
      registrationSecret === undefined ? {} : { registrationSecretHash: registrationSecret === null ? null : hashSecret(registrationSecret) };
    return this.deps.registry.updateGroup(name, (current) => applyGroupPatch(current, { ...settings, ...secret }));
  }

  async deleteGroup(name: string): Promise<void> {
    if (!(await this.deps.registry.deleteGroup(name))) throw new CourierError('INSTANCE_GROUP_NOT_FOUND', `instance group "${name}" not found`);
  }

  exists(name: string): boolean {
    return this.deps.registry.group(name) !== undefined;
  }

  private getView(name: string) {
    const view = this.deps.registry.group(name);
    if (!view) throw new CourierError('INSTANCE_GROUP_NOT_FOUND', `instance group "${name}" not found`);
    return view;
  }

  private describe(instance: InstanceRecord, settings: InstanceGroupRecord): InstanceView {
    const now = this.deps.clock.now();
    const state: InstanceView['state'] = !isLive(instance, settings, now)
      ? 'stale'
      : instance.status === 'draining'
        ? 'draining'
        : isEjected(instance.health, now)
          ? 'ejected'
          : instance.health.checkedHealthy === false
            ? 'unhealthy'
            : 'healthy';
    return {
      ...instance,
      state,
      weightFactor: slowStartFactor(instance.health, now, settings.slowStartMs),
      inFlight: this.deps.balancer.inFlight(instance.group).get(instance.id) ?? 0,
    };
  }
}
