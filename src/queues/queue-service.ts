/** Queue management (spec §3.2). Enqueueing itself is a publish with a queue name (messages/). */
import type { Clock } from '../core/clock.js';
import { CourierError } from '../core/errors.js';
import type { QueueRecord, QueueSettings } from '../core/queue.js';
import type { QueueStore } from '../store/port.js';

export class QueueService {
  constructor(private readonly deps: { store: QueueStore; clock: Clock; notifyDue: (dueAt: number) => void }) {}

  async upsert(settings: QueueSettings): Promise<void> {
    await this.deps.store.upsertQueue(settings, this.deps.clock.now());
    // More parallelism or an unpause may admit waiting messages at once.
    this.deps.notifyDue(this.deps.clock.now());
  }

  async get(name: string): Promise<QueueRecord> {
    const queue = await this.deps.store.getQueue(name);
    if (!queue) throw notFound(name);
    return queue;
  }

  list(): Promise<QueueRecord[]> {
    return this.deps.store.listQueues();
  }

  async setPaused(name: string, paused: boolean): Promise<void> {
    if (!(await this.deps.store.setQueuePaused(name, paused, this.deps.clock.now()))) throw notFound(name);
    if (!paused) this.deps.notifyDue(this.deps.clock.now());
  }

  async delete(name: string): Promise<void> {
    if (!(await this.deps.store.deleteQueue(name, this.deps.clock.now()))) throw notFound(name);
  }
}

const notFound = (name: string) => new CourierError('QUEUE_NOT_FOUND', `queue "${name}" not found`);
