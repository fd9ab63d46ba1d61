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
