/**
 * The adapter edge: a driver's failure to reach its engine (a refused or
 * dropped connection, a busy or failing disk) becomes one domain error,
 * `STORE_UNAVAILABLE` (503, with Retry-After), so a store outage is an answer
 * a client can act on rather than a 500. Each adapter says which of its
 * driver's errors are outages; everything else passes through unchanged.
 */
import { CourierError } from '../core/errors.js';

/** Seconds a client is told to wait before trying again. */
const RETRY_AFTER_SECONDS = 1;

export function storeUnavailable(cause: unknown): CourierError {
  const error = new CourierError('STORE_UNAVAILABLE', 'the store cannot be reached right now; try again shortly', undefined, {
    retryAfterSeconds: RETRY_AFTER_SECONDS,
  });
  // The driver's own words stay in the server's log, never in the response.
  error.cause = cause;
  return error;
}

/** The same store, each verb's driver outages turned into STORE_UNAVAILABLE. */
export function guardDriverFailures<S extends object>(store: S, isDriverFailure: (error: unknown) => boolean): S {
  const guarded: Record<string, unknown> = {};
  for (const [name, member] of Object.entries(store)) {
    if (typeof member !== 'function') {
      guarded[name] = member;
      continue;
    }
    const verb = member as (...args: unknown[]) => Promise<unknown>;
    guarded[name] = async (...args: unknown[]) => {
      try {
        return await verb(...args);
      } catch (error) {
        throw isDriverFailure(error) ? storeUnavailable(error) : error;
      }
    };
  }
  return guarded as S;
}
