/**
 * The instance registry as the delivery path sees it: every group's settings
 * and instances, held in memory and re-read from the store every
 * `refreshMs`, so choosing an instance never waits on the store.
 *
 * Writes go to the store first and then into the cache, so a heartbeat or an
 * ejection made through this node is seen here at once; one made through
 * another node sharing the store is seen at the next refresh (default 1 s).
 * A refresh replaces the cache wholesale (the store is the truth), except
 * that a write made through this node and not yet known to be in the store
 * when the refresh began its read is applied again on top: otherwise an
 * ejection written while a refresh was reading would be undone for up to
 * `refreshMs`.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { InstanceGroupRecord, InstanceGroupSettings, InstanceHealth, InstanceRecord, InstanceRegistration } from '../core/instance.js';
import { CourierError } from '../core/errors.js';
import type { InstanceStore } from '../store/port.js';

/** A read-modify-write that loses this many races in a row gives up with CONFLICT rather than spin. */
const MAX_UPDATE_ATTEMPTS = 10;

export interface GroupView {
  settings: InstanceGroupRecord;
  /** Every registered instance, live or not, ordered by id. */
  instances: InstanceRecord[];
}

export interface InstanceRegistryDeps {
  store: InstanceStore;
  clock: Clock;
  logger: Logger;
  /** The settings a group gets when its first instance registers. */
  groupDefaults: (name: string) => InstanceGroupSettings;
  refreshMs: number;
}

export class InstanceRegistry {
  private groups = new Map<string, GroupView>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private readonly listeners = new Set<() => void>();
  /** This node's writes, each re-applied to refreshes that may have read the store before it landed. */
  private overlays: { apply: (groups: Map<string, GroupView>) => void; landed: boolean }[] = [];

  constructor(private readonly deps: InstanceRegistryDeps) {}

  /** Loads the registry once, then keeps it fresh until stop(). */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((error: unknown) => this.deps.logger.error({ err: error }, 'instance registry refresh failed'));
    }, this.deps.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Called after every change this node sees (its own writes and each refresh). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  group(name: string): GroupView | undefined {
    return this.groups.get(name);
  }

  allGroups(): GroupView[] {
    return [...this.groups.values()];
  }

  /** Re-reads every group and instance; concurrent callers share one read. */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const reflected = new Set(this.overlays.filter((overlay) => overlay.landed));
        const [settings, instances] = await Promise.all([this.deps.store.listInstanceGroups(), this.deps.store.listInstances()]);
        const next = new Map<string, GroupView>(settings.map((group) => [group.name, { settings: group, instances: [] }]));
        for (const instance of instances) next.get(instance.group)?.instances.push(instance);
        this.overlays = this.overlays.filter((overlay) => !reflected.has(overlay));
        for (const overlay of this.overlays) overlay.apply(next);
        this.groups = next;
        this.changed();
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  async heartbeat(registration: InstanceRegistration): Promise<{ instance: InstanceRecord; settings: InstanceGroupRecord }> {
    const { store, clock, groupDefaults } = this.deps;
    const instance = await store.heartbeatInstance(registration, groupDefaults(registration.group), clock.now());
    const settings = this.groups.get(instance.group)?.settings ?? (await store.getInstanceGroup(instance.group));
    if (!settings) throw new Error(`instance group "${instance.group}" vanished during a heartbeat`);
    await this.overlay(async () => undefined, (groups) => {
      const view = groups.get(instance.group) ?? { settings, instances: [] };
      view.instances = upsertById(view.instances, instance);
      groups.set(instance.group, view);
    });
    return { instance, settings };
  }

  async deregister(group: string, id: string): Promise<boolean> {
    const removed = await this.deps.store.deregisterInstance(group, id);
    await this.overlay(async () => undefined, (groups) => {
      const view = groups.get(group);
      if (view) view.instances = view.instances.filter((instance) => instance.id !== id);
    });
    return removed;
  }

  /** Records a health transition (an ejection, a re-admission, a check verdict) for every node. */
  async setHealth(group: string, id: string, health: InstanceHealth): Promise<void> {
    // The cache changes first, so the very next choice on this node already sees it.
    await this.overlay(
      () => this.deps.store.setInstanceHealth(group, id, health),
      (groups) => {
        const view = groups.get(group);
        const current = view?.instances.find((instance) => instance.id === id);
        if (view && current) view.instances = upsertById(view.instances, { ...current, health });
      },
    );
  }

  async saveGroup(settings: InstanceGroupSettings): Promise<InstanceGroupRecord> {
    const record = await this.deps.store.saveInstanceGroup(settings, this.deps.clock.now());
    await this.cacheGroup(record);
    return record;
  }

  /**
   * A read-modify-write of a group's settings (its defaults if it does not
   * exist yet), atomic against every other writer on every node: the store's
   * compare-and-set on updatedAt refuses a write based on a stale read, and
   * the change is applied again to what is there now.
   */
  async updateGroup(name: string, change: (current: InstanceGroupSettings) => InstanceGroupSettings): Promise<InstanceGroupRecord> {
    for (let attempt = 1; ; attempt++) {
      const current = await this.deps.store.getInstanceGroup(name);
      const next = { ...change(current ?? this.deps.groupDefaults(name)), name };
      const record = await this.deps.store.replaceInstanceGroup(current?.updatedAt, next, this.deps.clock.now());
      if (record) {
        await this.cacheGroup(record);
        return record;
      }
      if (attempt >= MAX_UPDATE_ATTEMPTS) {
        throw new CourierError('CONFLICT', `instance group "${name}" was changed by others on each of ${attempt} attempts; try again`);
      }
    }
  }

  private async cacheGroup(record: InstanceGroupRecord): Promise<void> {
    await this.overlay(async () => undefined, (groups) => {
      groups.set(record.name, { settings: record, instances: groups.get(record.name)?.instances ?? [] });
    });
  }

  async deleteGroup(name: string): Promise<boolean> {
    const deleted = await this.deps.store.deleteInstanceGroup(name);
    await this.overlay(async () => undefined, (groups) => groups.delete(name));
    return deleted;
  }

  /**
   * Applies a change to the cache now, and to every refresh until one began
   * reading after `write` had landed in the store. Writes that already
   * happened pass a no-op `write`: their overlay has landed at once, and only
   * refreshes already reading when it was made re-apply it.
   */
  private async overlay(write: () => Promise<unknown>, apply: (groups: Map<string, GroupView>) => void): Promise<void> {
    const overlay = { apply, landed: false };
    this.overlays.push(overlay);
    apply(this.groups);
    this.changed();
    try {
      await write();
    } finally {
      overlay.landed = true;
    }
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}

function upsertById(instances: readonly InstanceRecord[], instance: InstanceRecord): InstanceRecord[] {
  const others = instances.filter((existing) => existing.id !== instance.id);
  return [...others, instance].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
