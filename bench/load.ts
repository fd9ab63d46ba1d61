/**
 * Load generation: the three ways a message can reach the sink (straight,
 * single publish through Courier, batch publish through Courier) and the two
 * ways of pacing them (closed loop for throughput, open loop for latency).
 */
import { Pool } from 'undici';
import { encodeMessage, preciseNow } from './protocol.js';
import { sleep } from './processes.js';

/** One way of getting messages to the sink. Every request carries `unitSize` messages (the last may carry fewer). */
export interface Target {
  readonly unitSize: number;
  /** Sends messages first … first+count−1, each stamped `sentAt`. Rejects on anything but success. */
  send(run: string, first: number, count: number, sentAt: number): Promise<void>;
  close(): Promise<void>;
}

function newPool(origin: string, connections: number): Pool {
  return new Pool(origin, {
    connections,
    // Idle connections stay open between measurement phases (warm-up → timed run).
    keepAliveTimeout: 30_000,
    // Bounded, so a hung server fails the run instead of hanging it.
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
}

function rejected(what: string, statusCode: number, body: string): never {
  throw new Error(`${what} answered ${statusCode}: ${body.slice(0, 300)}`);
}

/** (a) The ceiling: the runner posts each message straight to the sink. */
export class DirectTarget implements Target {
  readonly unitSize = 1;
  private readonly pool: Pool;
  private readonly path: string;

  constructor(sinkUrl: string, connections: number) {
    const url = new URL(sinkUrl);
    this.pool = newPool(url.origin, connections);
    this.path = url.pathname;
  }

  async send(run: string, first: number, _count: number, sentAt: number): Promise<void> {
    const res = await this.pool.request({
      method: 'POST',
      path: this.path,
      headers: { 'content-type': 'application/json' },
      body: encodeMessage(run, first, sentAt),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) rejected('sink', res.statusCode, text);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/**
 * One message per request to a Courier route: (b) `/v2/publish/<destination>`
 * (QStash takes the destination pasted raw), `/v2/enqueue/<queue>/<destination>`,
 * or `/v2/publish/<url group>`. With `fanOut`, the answer must be an array of
 * that many `{messageId,url}` (one per group endpoint), or the send fails.
 */
export class CourierRouteTarget implements Target {
  readonly unitSize = 1;
  private readonly pool: Pool;
  private readonly authorization: string;

  constructor(
    courierOrigin: string,
    token: string,
    private readonly path: string,
    connections: number,
    private readonly fanOut?: number,
  ) {
    this.pool = newPool(courierOrigin, connections);
    this.authorization = `Bearer ${token}`;
  }

  async send(run: string, first: number, _count: number, sentAt: number): Promise<void> {
    const res = await this.pool.request({
      method: 'POST',
      path: this.path,
      headers: { authorization: this.authorization, 'content-type': 'application/json' },
      body: encodeMessage(run, first, sentAt),
    });
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode > 299) rejected(`POST ${this.path}`, res.statusCode, text);
    if (this.fanOut === undefined) return;
    let accepted: unknown;
    try {
      accepted = JSON.parse(text);
    } catch {
      accepted = undefined;
    }
    if (!Array.isArray(accepted) || accepted.length !== this.fanOut) {
      throw new Error(`POST ${this.path}: expected an array of ${this.fanOut} messages, got: ${text.slice(0, 300)}`);
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** (c) `POST /v2/batch` with `unitSize` messages per request. */
export class BatchPublishTarget implements Target {
  private readonly pool: Pool;
  private readonly authorization: string;
  // The JSON-escaped prefix of every batch entry, built once.
  private readonly entryPrefix: string;

  constructor(
    courierOrigin: string,
    token: string,
    destination: string,
    connections: number,
    readonly unitSize: number,
  ) {
    this.pool = newPool(courierOrigin, connections);
    this.authorization = `Bearer ${token}`;
    this.entryPrefix = `{"destination":${JSON.stringify(destination)},"headers":{"content-type":"application/json"},"body":`;
  }

  async send(run: string, first: number, count: number, sentAt: number): Promise<void> {
    const entries: string[] = [];
    for (let seq = first; seq < first + count; seq++) {
      entries.push(`${this.entryPrefix}${JSON.stringify(encodeMessage(run, seq, sentAt))}}`);
    }
    const res = await this.pool.request({
      method: 'POST',
      path: '/v2/batch',
      headers: { authorization: this.authorization, 'content-type': 'application/json' },
      body: `[${entries.join(',')}]`,
    });
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode > 299) rejected('POST /v2/batch', res.statusCode, text);
    // A 2xx that accepted fewer messages than sent would otherwise surface only as a stall.
    let accepted: unknown;
    try {
      accepted = JSON.parse(text);
    } catch {
      accepted = undefined;
    }
    if (!Array.isArray(accepted) || accepted.length !== count) {
      throw new Error(`POST /v2/batch: sent ${count} messages, response was not an array of ${count}: ${text.slice(0, 300)}`);
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/**
 * Several nodes behind one client, as a round-robin load balancer would
 * spread them: request k goes to node k mod n. With C requests in flight
 * each node has about C/n.
 */
export class RoundRobinTarget implements Target {
  readonly unitSize: number;
  private next = 0;

  constructor(private readonly targets: Target[]) {
    if (targets.length === 0) throw new Error('RoundRobinTarget needs at least one target');
    this.unitSize = targets[0]!.unitSize;
  }

  send(run: string, first: number, count: number, sentAt: number): Promise<void> {
    const target = this.targets[this.next]!;
    this.next = (this.next + 1) % this.targets.length;
    return target.send(run, first, count, sentAt);
  }

  async close(): Promise<void> {
    await Promise.all(this.targets.map((t) => t.close()));
  }
}

export interface SendTimes {
  /** preciseNow() just before the first request */
  firstSendAt: number;
  /** preciseNow() when the last response arrived */
  lastAckAt: number;
}

/**
 * Closed loop, for throughput: `concurrency` workers each keep one request in
 * flight, taking the next unit of messages as soon as their previous one is
 * answered. Each message is stamped with its actual send time.
 */
export async function closedLoop(target: Target, run: string, total: number, concurrency: number): Promise<SendTimes> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    try {
      while (!failed && next < total) {
        const first = next;
        const count = Math.min(target.unitSize, total - first);
        next += count;
        await target.send(run, first, count, preciseNow());
      }
    } catch (error) {
      // Stop the other workers too: the measurement is void.
      failed = true;
      throw error;
    }
  };
  const firstSendAt = preciseNow();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { firstSendAt, lastAckAt: preciseNow() };
}

export interface PacedSendTimes extends SendTimes {
  /** the furthest the generator fell behind its own schedule; large values mean the figures are suspect */
  maxLagMs: number;
}

/**
 * Open loop, for latency: unit k is sent at start + k × unitSize / rate,
 * whether or not earlier requests have been answered, so a slow server cannot
 * slow the offered load down (no coordinated omission). Messages are stamped
 * with their *scheduled* time, so any queueing, including in the client's own
 * connection pool, counts as latency.
 */
export async function openLoop(target: Target, run: string, total: number, ratePerSec: number): Promise<PacedSendTimes> {
  const intervalMs = (target.unitSize / ratePerSec) * 1000;
  const units = Math.ceil(total / target.unitSize);
  const pending: Promise<void>[] = [];
  let error: unknown;
  let maxLagMs = 0;
  let unit = 0;
  const start = preciseNow();
  while (unit < units && error === undefined) {
    const now = preciseNow();
    // Timers fire late by up to a millisecond or so; send everything that is
    // due, so the average rate stays exactly as offered.
    while (unit < units && start + unit * intervalMs <= now) {
      const scheduledAt = start + unit * intervalMs;
      maxLagMs = Math.max(maxLagMs, now - scheduledAt);
      const first = unit * target.unitSize;
      const count = Math.min(target.unitSize, total - first);
      pending.push(target.send(run, first, count, scheduledAt).catch((e: unknown) => void (error ??= e)));
      unit++;
    }
    if (unit < units) await sleep(Math.max(0, start + unit * intervalMs - preciseNow()));
  }
  await Promise.all(pending);
  if (error !== undefined) throw error instanceof Error ? error : new Error(String(error));
  return { firstSendAt: start, lastAckAt: preciseNow(), maxLagMs };
}
