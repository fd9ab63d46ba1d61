/** URL groups (spec §8). Fan-out happens when a message is published to one (messages/). */
import type { Clock } from '../core/clock.js';
import { CourierError } from '../core/errors.js';
import type { Endpoint, EndpointSelector, UrlGroup } from '../core/url-group.js';
import type { ScheduleStore, UrlGroupStore } from '../store/port.js';

export class UrlGroupService {
  constructor(private readonly deps: { store: UrlGroupStore & Pick<ScheduleStore, 'schedulesTargeting'>; clock: Clock }) {}

  addEndpoints(group: string, endpoints: Endpoint[]): Promise<void> {
    return this.deps.store.addEndpoints(group, endpoints, this.deps.clock.now());
  }

  /** Removing a group's last endpoint removes the group, which a schedule may still target (A30). */
  async removeEndpoints(group: string, endpoints: EndpointSelector[]): Promise<void> {
    const current = await this.get(group);
    const remaining = current.endpoints.filter((endpoint) => !endpoints.some((gone) => matches(endpoint, gone)));
    if (remaining.length === 0) await this.refuseIfScheduled(group, 'removing its last endpoint would delete it');
    const result = await this.deps.store.removeEndpoints(group, endpoints, this.deps.clock.now());
    if (!result) throw notFound(group);
    if ('notFound' in result) {
      const { name, url } = result.notFound;
      const described = [name !== undefined ? `name "${name}"` : '', url !== undefined ? `url "${url}"` : ''].filter(Boolean).join(' and ');
      throw new CourierError('ENDPOINT_NOT_FOUND', `URL group "${group}" has no endpoint with ${described}; nothing was removed`, 'endpoints');
    }
  }

  async get(name: string): Promise<UrlGroup> {
    const group = await this.deps.store.getUrlGroup(name);
    if (!group) throw notFound(name);
    return group;
  }

  list(): Promise<UrlGroup[]> {
    return this.deps.store.listUrlGroups();
  }

  async delete(name: string): Promise<void> {
    await this.refuseIfScheduled(name, 'it cannot be deleted');
    if (!(await this.deps.store.deleteUrlGroup(name))) throw notFound(name);
  }

  /** The docs warn that a group a schedule publishes to must not vanish under it. */
  private async refuseIfScheduled(group: string, consequence: string): Promise<void> {
    const schedules = await this.deps.store.schedulesTargeting(group);
    if (schedules.length === 0) return;
    throw new CourierError(
      'CONFLICT',
      `URL group "${group}" is the destination of schedule(s) ${schedules.map((id) => `"${id}"`).join(', ')}, so ${consequence}; delete or change those schedules first`,
    );
  }
}

const matches = (endpoint: Endpoint, selector: EndpointSelector): boolean =>
  (selector.name === undefined || endpoint.name === selector.name) && (selector.url === undefined || endpoint.url === selector.url);

const notFound = (name: string) => new CourierError('URL_GROUP_NOT_FOUND', `URL group "${name}" not found`);
