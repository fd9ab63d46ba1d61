/**
 * Fires due schedule ticks. It only enqueues (ScheduleService.fireTick);
 * delivery does the rest. Each tick is claimed in the store by compare-and-set
 * on the schedule's next tick, so nodes sharing a store fire it exactly once.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { ScheduleRecord } from '../core/schedule.js';
import type { ScheduleStore } from '../store/port.js';

/** Ticks fired per store round trip; between batches the event loop serves requests and deliveries. */
const BATCH = 100;
/** Longest sleep: schedules saved through another node sharing the store are noticed this soon. */
const MAX_SLEEP_MS = 15_000;
const ERROR_BACKOFF_MS = 1_000;

export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private pass: Promise<number> | undefined;
  private passRequested = false;

  constructor(
    private readonly deps: {
      store: Pick<ScheduleStore, 'dueSchedules' | 'nextScheduleAt'>;
      clock: Clock;
      logger: Logger;
      /** Fires due ticks; returns how many fired. */
      fireTicks: (due: ScheduleRecord[]) => Promise<number>;
    },
  ) {}

  start(): void {
    this.running = true;
    this.wake();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.pass?.catch(() => undefined);
  }

  /** The earliest tick may have changed (a schedule was saved or resumed). */
  wake(): void {
    if (!this.running) return;
    void this.runDue().catch(() => undefined);
  }

  /**
   * Fires every tick due now and re-arms the timer for the next one. Returns
   * how many ticks this call fired. Concurrent calls share one pass (plus one
   * more if asked during it), so a tick is never fired twice by this node.
   */
  async runDue(): Promise<number> {
    if (this.pass) {
      // The running pass may have looked before this call's ticks fell due: one more pass follows it.
      this.passRequested = true;
      return this.pass.then(async (fired) => fired + (await (this.pass ?? Promise.resolve(0))));
    }
    this.pass = this.fireDue().finally(() => {
      this.pass = undefined;
      if (this.passRequested) {
        this.passRequested = false;
        this.wake();
      }
    });
    return this.pass;
  }

  private async fireDue(): Promise<number> {
    const { store, clock, logger } = this.deps;
    let fired = 0;
    try {
      for (;;) {
        const due = await store.dueSchedules(clock.now(), BATCH);
        if (due.length > 0) fired += await this.deps.fireTicks(due);
        if (due.length < BATCH || !this.running) break;
        // The SQLite store answers synchronously: without a turn of the event loop here, a
        // minute boundary with thousands of schedules would hold off every request until all had fired.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const next = await store.nextScheduleAt();
      this.arm(Math.min(next ?? Number.POSITIVE_INFINITY, clock.now() + MAX_SLEEP_MS));
    } catch (error) {
      logger.error({ err: error }, 'scheduler: firing ticks failed; retrying shortly');
      this.arm(clock.now() + ERROR_BACKOFF_MS);
    }
    return fired;
  }

  private arm(at: number): void {
    if (!this.running) return;
    // Re-armed after every pass: the earliest tick may have moved later (deleted, paused).
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.wake(), Math.max(0, at - this.deps.clock.now()));
    this.timer.unref?.();
  }
}
