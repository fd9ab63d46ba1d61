/**
 * Work keys: claims an instance group's members share so each message runs
 * once among them (the worker kit's `courierDedupe` claims an
 * Upstash-Message-Id before its handler runs and releases it if the handler
 * fails). A claim lasts a TTL rather than forever: it only has to outlive
 * the message's retries, and the store's purge forgets it afterwards.
 *
 * At-least-once still holds underneath: a worker that dies after claiming
 * and before finishing leaves the key held until its TTL ends, so a retry
 * within that time is answered "already claimed" and the work is not redone.
 * Workers pick a TTL to match how long such a loss is acceptable.
 */
import type { Clock } from '../core/clock.js';
import { CourierError } from '../core/errors.js';
import type { WorkKeyStore } from '../store/port.js';

/** What the HTTP layer calls. */
export interface WorkKeyClaims {
  /** True when `key` is now held in `scope` for `ttlMs`; false while another claim holds it. */
  claim(scope: string, key: string, ttlMs: number): Promise<boolean>;
  /** Frees the key; NOT_FOUND when no claim is stored. */
  release(scope: string, key: string): Promise<void>;
}

export class WorkKeys implements WorkKeyClaims {
  constructor(private readonly deps: { store: WorkKeyStore; clock: Clock }) {}

  claim(scope: string, key: string, ttlMs: number): Promise<boolean> {
    const at = this.deps.clock.now();
    return this.deps.store.claimWorkKey(scope, key, at + ttlMs, at);
  }

  async release(scope: string, key: string): Promise<void> {
    if (!(await this.deps.store.releaseWorkKey(scope, key))) {
      throw new CourierError('WORK_KEY_NOT_FOUND', `work key "${key}" is not claimed in "${scope}"`);
    }
  }
}
