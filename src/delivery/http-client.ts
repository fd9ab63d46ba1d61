/**
 * Outgoing HTTP for deliveries: one keep-alive undici Pool per destination
 * origin. `undici.request` (not fetch) because a delivery must be able to send
 * a body with GET/DELETE (spec §18), must not follow redirects (a 3xx is a
 * failed attempt), and must cap how much of a response it reads.
 */
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';
import { urlParts, type AttemptResponse, type HttpMethod } from '../core/message.js';

export interface OutgoingRequest {
  url: string;
  method: HttpMethod;
  headers: Record<string, string>;
  body: Uint8Array;
  timeoutMs: number;
}

/** Injected into delivery so tests can count or shape requests without global mocks. */
export interface DeliveryClient {
  send(request: OutgoingRequest): Promise<AttemptResponse>;
  close(): Promise<void>;
}

export interface PooledClientOptions {
  /** Sockets per origin; also the most attempts in flight to one origin. */
  connectionsPerOrigin: number;
  /** Response bytes kept for logs, DLQ and callbacks; the rest is read and dropped. */
  maxResponseBytes: number;
  /** Idle pools are closed after this long, so a million one-off origins do not pile up sockets. */
  idlePoolMs?: number;
}

export function createPooledClient(options: PooledClientOptions): DeliveryClient {
  const pools = new Map<string, { pool: Pool; lastUsed: number }>();
  const idlePoolMs = options.idlePoolMs ?? 60_000;
  const sweep = setInterval(() => {
    const cutoff = Date.now() - idlePoolMs;
    for (const [origin, entry] of pools) {
      if (entry.lastUsed < cutoff && entry.pool.stats.pending === 0 && entry.pool.stats.running === 0) {
        pools.delete(origin);
        void entry.pool.close();
      }
    }
  }, idlePoolMs);
  sweep.unref();

  function poolFor(origin: string): Pool {
    let entry = pools.get(origin);
    if (!entry) {
      entry = {
        pool: new Pool(origin, {
          connections: options.connectionsPerOrigin,
          pipelining: 1,
          keepAliveTimeout: 30_000,
        }),
        lastUsed: 0,
      };
      pools.set(origin, entry);
    }
    entry.lastUsed = Date.now();
    return entry.pool;
  }

  return {
    send(request) {
      const { origin, target } = urlParts(request.url);
      return new Promise<AttemptResponse>((resolve) => {
        poolFor(origin).dispatch(
          {
            path: target,
            method: request.method,
            headers: request.headers,
            body: request.body.byteLength > 0 || request.method !== 'GET' ? request.body : null,
            headersTimeout: request.timeoutMs,
            bodyTimeout: request.timeoutMs,
          },
          new AttemptHandler(request.timeoutMs, options.maxResponseBytes, resolve),
        );
      });
    },
    async close() {
      clearInterval(sweep);
      // The dispatcher has already waited its grace for attempts in flight; what still hangs is
      // abandoned: its lease runs out (or the exclusive store releases it on open) and it is redelivered.
      await Promise.all([...pools.values()].map(({ pool }) => pool.destroy()));
      pools.clear();
    },
  };
}

/**
 * One attempt on undici's dispatch level: the response arrives as callbacks,
 * without the promise, readable stream and async iterator that
 * `request()` builds per response, which showed in profiles of the delivery
 * path. The whole attempt has one deadline, headers and body together.
 */
class AttemptHandler implements Dispatcher.DispatchHandler {
  private readonly started = performance.now();
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private status: number | undefined;
  private headers: Record<string, string[]> = {};
  private timer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly maxResponseBytes: number,
    private readonly resolve: (response: AttemptResponse) => void,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // Called again if undici retries the request on a fresh socket; the deadline keeps running from the first.
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => controller.abort(new DeadlineError(this.timeoutMs)), this.timeoutMs);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // 1xx informational responses come before the real one and are skipped.
    if (statusCode < 200) return;
    this.status = statusCode;
    this.headers = headerLists(headers);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.kept >= this.maxResponseBytes) return;
    const part = chunk.subarray(0, this.maxResponseBytes - this.kept);
    this.chunks.push(part);
    this.kept += part.byteLength;
  }

  onResponseEnd(): void {
    this.finish({ status: this.status, headers: this.headers, body: Buffer.concat(this.chunks, this.kept) });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.finish({ error: describeError(error, this.timeoutMs) });
  }

  private finish(outcome: Omit<AttemptResponse, 'durationMs'>): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.resolve({ ...outcome, durationMs: Math.round(performance.now() - this.started) });
  }
}

class DeadlineError extends Error {
  override readonly name = 'TimeoutError';
  constructor(timeoutMs: number) {
    super(`no complete response within ${timeoutMs} ms`);
  }
}

function headerLists(headers: Record<string, string | string[] | undefined>): Record<string, string[]> {
  const lists: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    lists[name] = Array.isArray(value) ? value : [value];
  }
  return lists;
}

function describeError(error: unknown, timeoutMs: number): string {
  if (
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
  ) {
    return `timeout: no complete response within ${timeoutMs} ms`;
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const cause = (error as { cause?: { code?: unknown; message?: string } }).cause;
    const detail = typeof code === 'string' ? code : typeof cause?.code === 'string' ? cause.code : undefined;
    return detail ? `${detail}: ${error.message}` : error.message;
  }
  return String(error);
}
