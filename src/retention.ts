/**
 * The retention sweep, for both roots: every PURGE_INTERVAL_MS it drops
 * expired dedup ids and work-key claims, and, on a Courier node, message
 * logs and DLQ entries past their retention, and task streams: open ones
 * idle past COURIER_STREAM_IDLE are failed, closed ones past
 * COURIER_STREAM_RETENTION purged (`expireStreams`, the stream service's).
 *
 * The gateway passes no `retention`: its cut-offs of 0 leave logs and DLQ
 * entries alone, so a Courier node sharing the store keeps its own policy,
 * while the workers' expired work-key claims are still swept when no Courier
 * node runs on the store.
 */
import type { Logger } from 'pino';
import type { Clock } from './core/clock.js';
import type { MaintenanceStore } from './store/port.js';

/** Clean-up runs this often; each run is one short transaction. */
export const PURGE_INTERVAL_MS = 60_000;

export interface RetentionSweepOptions {
  store: Pick<MaintenanceStore, 'purge'>;
  clock: Clock;
  logger: Logger;
  retention?: { logsMs: number; deadLettersMs: number };
  /** A Courier node's stream retention; the gateway has none. */
  expireStreams?: () => Promise<{ closedIdle: number; removed: number }>;
}

/** Starts the sweep; the returned function stops it. */
export function startRetentionSweep(options: RetentionSweepOptions): () => void {
  const { store, clock, logger, retention, expireStreams } = options;
  const timer = setInterval(() => {
    const now = clock.now();
    store
      .purge({
        logsBefore: retention ? now - retention.logsMs : 0,
        deadLettersBefore: retention ? now - retention.deadLettersMs : 0,
        dedupBefore: now,
      })
      .then((purged) => {
        if (purged.messages + purged.events + purged.deadLetters > 0) logger.info({ purged }, 'retention clean-up');
      })
      .catch((error: unknown) => logger.error({ err: error }, 'retention clean-up failed'));
    expireStreams?.()
      .then((streams) => {
        if (streams.closedIdle + streams.removed > 0) logger.info({ streams }, 'stream retention');
      })
      .catch((error: unknown) => logger.error({ err: error }, 'stream retention failed'));
  }, PURGE_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
