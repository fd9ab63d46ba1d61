/**
 * The response bytes that all attempts in flight may hold together
 * (COURIER_MAX_RESPONSE_BUFFER_BYTES), on top of each attempt's own cap
 * (COURIER_MAX_RESPONSE_BYTES).
 *
 * Semantics: first come, first served, per chunk. An attempt takes bytes as
 * its body arrives and gives them all back when it ends (its stored body
 * then moves to the settle batch, which the store writes within a tick).
 * When the budget cannot grant all of a chunk's kept part, the attempt keeps
 * what it was granted and no more: a stored body is always a prefix of the
 * real one, so bytes freed later cannot be used to fill a gap. A small body
 * is kept whole whenever the budget has room for it; under a flood of large
 * bodies, later attempts store less, or an empty body. Without this, 1,000
 * attempts in flight could hold 1,000 × 1 MiB.
 */
export interface ResponseBudget {
  /** Takes up to `wanted` bytes; returns how many were granted (0 when the budget is spent). */
  take(wanted: number): number;
  give(bytes: number): void;
  /** Bytes held now by attempts in flight. */
  readonly held: number;
}

export function createResponseBudget(limit: number): ResponseBudget {
  let held = 0;
  return {
    take(wanted) {
      const granted = Math.max(0, Math.min(wanted, limit - held));
      held += granted;
      return granted;
    },
    give(bytes) {
      held = Math.max(0, held - bytes);
    },
    get held() {
      return held;
    },
  };
}
