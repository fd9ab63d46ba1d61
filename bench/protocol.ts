/**
 * What the runner and the sink (two processes) agree on: the message body,
 * the control endpoints and the shape of the sink's report.
 */

/**
 * Wall-clock milliseconds with sub-millisecond resolution. Both processes run
 * on the same machine, so `timeOrigin + now()` is comparable across them,
 * unlike `Date.now()` (1 ms steps) or `performance.now()` alone (per process).
 */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * A message body. Kept tiny so the benchmark measures the message path and
 * not payload copying; `r` tags the measurement so a stray delivery from an
 * earlier one is counted as stale rather than as progress.
 */
export interface MessageBody {
  /** measurement id */
  r: string;
  /** sequence number, 0 ≤ s < expected */
  s: number;
  /** send timestamp (preciseNow() in the runner) */
  t: number;
}

export function encodeMessage(run: string, seq: number, sentAt: number): string {
  // Hand-built rather than JSON.stringify: it runs once per message on the hot path.
  return `{"r":"${run}","s":${seq},"t":${sentAt}}`;
}

/** Everything under this path prefix is control traffic; anything else is a delivery. */
export const CONTROL_PREFIX = '/_control/';

/**
 * How the sink tells deliveries apart, i.e. what one expected unit is:
 *  - `seq`: the body's sequence number (one delivery per published message);
 *  - `seq-path`: the body's sequence number × `paths` + the path's trailing
 *    index (a message fanned out to `paths` endpoints `…/<0…paths−1>`);
 *  - `path`: the path's trailing index alone, in paths `…/<run>/<index>`,
 *    for deliveries whose body the runner does not control per delivery
 *    (a schedule's template). The run id sits in the path instead.
 */
export type SinkKey = 'seq' | 'seq-path' | 'path';

export interface ResetRequest {
  run: string;
  /** unique units expected (deliveries, not published messages) */
  expected: number;
  /** default `seq` */
  key?: SinkKey;
  /** endpoints per message, for `seq-path` */
  paths?: number;
  /**
   * Required for `path`: wall-clock ms (Date.now()) of when the deliveries
   * became due. Arrivals before `from` count as `early`, after `to` as `late`,
   * and latency is measured from `from` instead of the body's send stamp.
   */
  window?: { from: number; to: number };
  /** a request header (lower case) to count on each unique arrival, e.g. upstash-schedule-id */
  countHeader?: string;
}

export interface SinkStats {
  run: string;
  expected: number;
  /** distinct sequence numbers seen: the only figure that counts as throughput */
  unique: number;
  /** repeat arrivals of a sequence number already seen */
  duplicates: number;
  /** deliveries tagged with another measurement's id */
  stale: number;
  /** bodies that did not parse or carried an out-of-range sequence number */
  malformed: number;
  /** first arrivals whose `Upstash-Retried` header was above 0 */
  retried: number;
  /** arrivals before / after the reset's `window` (e.g. another cron tick) */
  early: number;
  late: number;
  /** unique arrivals that carried the reset's `countHeader`, and how many distinct values it had */
  withHeader: number;
  distinctHeaderValues: number;
  /** preciseNow() (Date.now() in `path` mode) of the first and of the last first-arrival; null before any */
  firstArrival: number | null;
  lastArrival: number | null;
}

export interface SinkReport extends SinkStats {
  /** arrival − send timestamp (− `window.from` in `path` mode) in ms, one per unique message, in arrival order */
  latenciesMs: number[];
}

/** The first line the sink prints on stdout once it listens. */
export interface SinkReadyLine {
  event: 'listening';
  port: number;
}
