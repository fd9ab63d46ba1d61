/**
 * De-duplication by `Upstash-Message-Id`. Delivery is at-least-once: a crash
 * or a timeout after the handler ran brings the same message again. A worker
 * claims a message id before running its handler and keeps the claim once the
 * handler succeeds, so the repeat is answered 200 without running twice.
 */

export interface Dedupe {
  /**
   * True when this caller now owns the id; false when it is already done or
   * another delivery of it is running. Must be atomic across every process
   * that shares the store.
   */
  claim(messageId: string): Promise<boolean>;
  /** Forgets a claim whose handler failed, so the retry runs it again. */
  release(messageId: string): Promise<void>;
}

export interface MemoryDedupeOptions {
  /** Ids remembered at most; the oldest claim is forgotten first. */
  max?: number;
  /** How long a claim is remembered. Longer than the whole retry schedule of a message (QStash's default 4 attempts span about 33 min). */
  ttlMs?: number;
  /** Milliseconds since the epoch; injected by tests. */
  now?: () => number;
}

/**
 * In-process de-duplication: per worker process only, and forgotten on
 * restart. Enough when one process serves the deliveries; several instances
 * behind one group need a shared store.
 */
export function memoryDedupe(options: MemoryDedupeOptions = {}): Dedupe {
  const max = options.max ?? 10_000;
  const ttlMs = options.ttlMs ?? 24 * 60 * 60 * 1000;
  const now = options.now ?? Date.now;
  // A Map iterates in insertion order, and a claim is never refreshed, so the
  // first entry is always the oldest: eviction and expiry both read from the front.
  const claimedAt = new Map<string, number>();

  function forgetExpired(at: number): void {
    for (const [id, time] of claimedAt) {
      if (at - time < ttlMs) break;
      claimedAt.delete(id);
    }
  }

  return {
    async claim(messageId) {
      const at = now();
      forgetExpired(at);
      if (claimedAt.has(messageId)) return false;
      claimedAt.set(messageId, at);
      if (claimedAt.size > max) {
        const oldest = claimedAt.keys().next();
        if (!oldest.done) claimedAt.delete(oldest.value);
      }
      return true;
    },
    async release(messageId) {
      claimedAt.delete(messageId);
    },
  };
}
