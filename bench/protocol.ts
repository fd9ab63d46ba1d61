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

export interface ResetRequest {
  run: string;
  expected: number;
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
  /** preciseNow() of the first and of the last first-arrival; null before any */
  firstArrival: number | null;
  lastArrival: number | null;
}

export interface SinkReport extends SinkStats {
  /** arrival − send timestamp in ms, one per unique message, in arrival order */
  latenciesMs: number[];
}

/** The first line the sink prints on stdout once it listens. */
export interface SinkReadyLine {
  event: 'listening';
  port: number;
}
