/**
 * A clock that follows real time plus an offset the test moves forward, so a
 * schedule's next tick can be reached without waiting for it. Real time keeps
 * flowing underneath, so delivery timers and JWT expiry still behave.
 */
import type { Clock } from '../../src/core/clock.js';

export class SteppedClock implements Clock {
  private offsetMs = 0;

  now(): number {
    return Date.now() + this.offsetMs;
  }

  advance(ms: number): void {
    if (ms < 0) throw new Error('SteppedClock only moves forward');
    this.offsetMs += ms;
  }

  /** Moves to `at` (epoch ms); a time already past is an error, so tests never go back. */
  set(at: number): void {
    this.advance(at - this.now());
  }
}

/** A clock that moves only when the test moves it. */
export class ManualClock implements Clock {
  constructor(private at = 1_704_700_000_000) {}

  now(): number {
    return this.at;
  }

  advance(ms: number): void {
    if (ms < 0) throw new Error('ManualClock only moves forward');
    this.at += ms;
  }
}

/**
 * Stands in for `setTimeout` where code takes a `(run, delayMs) => cancel`
 * scheduler: it records each delay asked for and runs nothing until the test
 * calls `fire()`, so a test reads the pacing instead of timing it.
 */
export class ManualTimer {
  /** Every delay asked for, in order. */
  readonly delays: number[] = [];
  private pending: (() => void) | undefined;
  private waiters: (() => void)[] = [];

  readonly schedule = (run: () => void, delayMs: number): (() => void) => {
    this.delays.push(delayMs);
    this.pending = run;
    for (const waiter of this.waiters.splice(0)) waiter();
    return () => {
      if (this.pending === run) this.pending = undefined;
    };
  };

  /** Whether something is scheduled and not cancelled. */
  get isPending(): boolean {
    return this.pending !== undefined;
  }

  /** Runs what is scheduled now, whatever delay it asked for. */
  fire(): void {
    const run = this.pending;
    if (!run) throw new Error('nothing is scheduled');
    this.pending = undefined;
    run();
  }

  /** Resolves at the next `schedule` call (at once if one is pending). */
  next(): Promise<void> {
    if (this.pending) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Fires what is scheduled and resolves once the next thing is scheduled. */
  async fireAndWait(): Promise<void> {
    this.fire();
    await this.next();
  }
}
