/** Flow-control keys' management (spec §11.9); enforcement is in the store's claim. */
import type { Clock } from '../core/clock.js';
import { CourierError } from '../core/errors.js';
import type { FlowControlChange, FlowControlState } from '../core/flow-control.js';
import type { FlowControlStore } from '../store/port.js';

export class FlowControlService {
  constructor(
    private readonly deps: {
      store: FlowControlStore;
      clock: Clock;
      notifyDue: (dueAt: number) => void;
      /** The engine-wide cap on attempts in flight at once, and how many are in flight now. */
      globalParallelism: () => { max: number; count: number };
    },
  ) {}

  async get(key: string): Promise<FlowControlState> {
    const state = await this.deps.store.getFlowControl(key, this.deps.clock.now());
    if (!state) throw notFound(key);
    return state;
  }

  list(): Promise<FlowControlState[]> {
    return this.deps.store.listFlowControls(this.deps.clock.now());
  }

  async change(key: string, change: FlowControlChange): Promise<void> {
    if (!(await this.deps.store.changeFlowControl(key, change, this.deps.clock.now()))) throw notFound(key);
    // Every change but a pause can let waiting messages start now.
    if (change.kind !== 'pause') this.deps.notifyDue(this.deps.clock.now());
  }

  globalParallelism(): { max: number; count: number } {
    return this.deps.globalParallelism();
  }
}

const notFound = (key: string) => new CourierError('FLOW_CONTROL_KEY_NOT_FOUND', `flow-control key "${key}" not found`);
