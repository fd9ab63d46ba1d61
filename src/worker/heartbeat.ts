/**
 * Registration and heartbeats of a worker instance with Courier's instance
 * registry (`POST /v1/instances/heartbeat`), and deregistration on stop.
 *
 * Lifecycle: a beat at once → one every interval → on failure, retries with
 * a doubling delay (capped at the interval) until a beat succeeds → `stop()`:
 * one last beat with status "draining", then `DELETE /v1/instances/<group>/<id>`.
 * Nothing here throws into the caller: failures go to `onError`, because a
 * registry outage must not take a working instance down.
 */

export interface InstanceDescription {
  id: string;
  /** The base URL Courier delivers to: a delivery to `group:<name>/<path>` goes to `<url>/<path>`. */
  url: string;
  hostname?: string;
  region?: string;
  /** Relative share of the group's deliveries; default 1. */
  weight?: number;
  /** Tier: lower is preferred; default 0. */
  priority?: number;
  capabilities?: string[];
  maxInFlight?: number;
  /** Milliseconds since the epoch; defaults to when the heartbeat starts. */
  startedAt?: number;
}

type Credentials = { token: string; registrationSecret?: never } | { registrationSecret: string; token?: never };

export type HeartbeatOptions = Credentials & {
  /** Courier's base URL, e.g. `https://courier.example.com`. */
  courierUrl: string;
  group: string;
  instance: InstanceDescription;
  /** Overrides the interval Courier answers with (`heartbeatIntervalSeconds`). */
  intervalMs?: number;
  /** First retry delay after a failed beat; it doubles up to the interval. Default 1 s. */
  retryInitialMs?: number;
  /** Per request; default 10 s. */
  timeoutMs?: number;
  onError?: (error: Error) => void;
  /** Injected by tests; defaults to the global fetch. */
  fetch?: typeof fetch;
};

export interface Heartbeat {
  /** Sends a final "draining" beat, deregisters, and stops beating. Never rejects. */
  stop: () => Promise<void>;
}

export class HeartbeatError extends Error {
  readonly status: number | undefined;

  constructor(message: string, status?: number, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'HeartbeatError';
    this.status = status;
  }
}

/** The seed's interval, used until Courier says otherwise. */
const DEFAULT_INTERVAL_MS = 300_000;
const DEFAULT_RETRY_INITIAL_MS = 1_000;
const DEFAULT_TIMEOUT_MS = 10_000;

export function startHeartbeat(options: HeartbeatOptions): Heartbeat {
  const send = options.fetch ?? fetch;
  const base = options.courierUrl.replace(/\/+$/, '');
  const startedAt = options.instance.startedAt ?? Date.now();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const retryInitialMs = options.retryInitialMs ?? DEFAULT_RETRY_INITIAL_MS;
  const authorization: Record<string, string> =
    options.token !== undefined ? { authorization: `Bearer ${options.token}` } : { 'courier-registration-secret': options.registrationSecret };

  let intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  let failures = 0;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();

  const report = (error: unknown): void => {
    const wrapped = error instanceof Error ? error : new HeartbeatError(String(error));
    try {
      options.onError?.(wrapped);
    } catch {
      return;
    }
  };

  async function request(method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
    let response: Response;
    try {
      response = await send(base + path, {
        method,
        headers: { ...authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new HeartbeatError(`${method} ${path} failed: ${error instanceof Error ? error.message : String(error)}`, undefined, { cause: error });
    }
    const text = await response.text();
    if (!response.ok) throw new HeartbeatError(`${method} ${path} answered ${response.status}: ${text.slice(0, 200)}`, response.status);
    try {
      return text ? (JSON.parse(text) as unknown) : undefined;
    } catch {
      return undefined;
    }
  }

  function beat(status: 'active' | 'draining'): Promise<unknown> {
    const { id, url, hostname, region, weight, priority, capabilities, maxInFlight } = options.instance;
    return request('POST', '/v1/instances/heartbeat', {
      group: options.group,
      id,
      url,
      hostname,
      region,
      status,
      startedAt,
      weight: weight ?? 1,
      priority: priority ?? 0,
      capabilities: capabilities ?? [],
      maxInFlight,
    });
  }

  async function tick(): Promise<void> {
    try {
      const answer = await beat('active');
      failures = 0;
      const advised = (answer as { heartbeatIntervalSeconds?: unknown } | undefined)?.heartbeatIntervalSeconds;
      if (options.intervalMs === undefined && typeof advised === 'number' && advised > 0) intervalMs = advised * 1000;
    } catch (error) {
      failures++;
      report(error);
    }
    if (stopped) return;
    const delay = failures === 0 ? intervalMs : Math.min(intervalMs, retryInitialMs * 2 ** (failures - 1));
    timer = setTimeout(() => {
      running = tick();
    }, delay);
    // The heartbeat alone must not keep a process alive whose server has closed.
    (timer as { unref?: () => void }).unref?.();
  }

  running = tick();

  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        stopped = true;
        clearTimeout(timer);
        await running;
        await beat('draining').catch(report);
        const path = `/v1/instances/${encodeURIComponent(options.group)}/${encodeURIComponent(options.instance.id)}`;
        await request('DELETE', path).catch(report);
      })();
      return stopping;
    },
  };
}
