/** One measurement phase, shared by the core scenarios (run.ts) and the feature scenarios (features.ts). */
import type { SendTimes } from './load.js';
import type { ResetRequest, SinkStats } from './protocol.js';
import type { SinkProcess } from './sink-process.js';

/** Courier retries a failed delivery after ~12 s; allow a few retries before calling it stuck. */
export const STALL_TIMEOUT_MS = 45_000;

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Whatever moves the messages (a Courier, a cluster, a pg-boss worker): its recent output explains a failure. */
export interface Describable {
  describe(): string;
}

export interface DeliverOptions {
  /** how the sink counts (default: one delivery per body sequence number) */
  sinkKey?: Omit<ResetRequest, 'run' | 'expected'>;
  /** allowed time per expected delivery on top of a minute; default 10 ms (a floor of 100/s) */
  msPerDelivery?: number;
}

/**
 * Points the sink at a new run id, sends, and waits until every expected
 * delivery has arrived. Any failure carries Courier's recent output.
 */
export async function deliver<T extends SendTimes>(
  sink: SinkProcess,
  courier: Describable | undefined,
  runId: string,
  expected: number,
  send: () => Promise<T>,
  options: DeliverOptions = {},
): Promise<{ sent: T; stats: SinkStats }> {
  const describeFailure = () => (courier === undefined ? '' : courier.describe());
  await sink.reset(runId, expected, options.sinkKey);
  let sent: T;
  try {
    sent = await send();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${runId}: sending failed: ${message}\n${describeFailure()}`, { cause: error });
  }
  const stats = await sink
    .waitForAll(expected, {
      stallTimeoutMs: STALL_TIMEOUT_MS,
      // Generous: a minute plus a floor rate; the stall check catches real hangs sooner.
      totalTimeoutMs: 60_000 + expected * (options.msPerDelivery ?? 10),
      describeFailure,
    })
    .catch((error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`${runId}: ${message}`, { cause: error });
    });
  return { sent, stats };
}

export function perSecond(messages: number, fromMs: number, toMs: number | null): number {
  if (toMs === null || toMs <= fromMs) throw new Error('no arrival time recorded');
  return messages / ((toMs - fromMs) / 1000);
}
