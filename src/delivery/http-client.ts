/**
 * Outgoing HTTP for deliveries: one keep-alive undici Pool per destination
 * origin. `undici.request` (not fetch) because a delivery must be able to send
 * a body with GET/DELETE (spec §18), must not follow redirects (a 3xx is a
 * failed attempt), and must cap how much of a response it reads.
 */
import { Pool, errors as undiciErrors } from 'undici';
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
    async send(request) {
      const started = performance.now();
      const { origin, target } = urlParts(request.url);
      // The attempt's whole deadline, headers and body. A plain timer, not AbortSignal.timeout,
      // which costs a weak reference and a finalizer per request on this hot path.
      const deadline = new AbortController();
      const timer = setTimeout(() => deadline.abort(new DOMException('deadline', 'TimeoutError')), request.timeoutMs);
      try {
        const response = await poolFor(origin).request({
          path: target,
          method: request.method,
          headers: request.headers,
          body: request.body.byteLength > 0 || request.method !== 'GET' ? request.body : null,
          headersTimeout: request.timeoutMs,
          bodyTimeout: request.timeoutMs,
          signal: deadline.signal,
        });
        const chunks: Buffer[] = [];
        let kept = 0;
        for await (const chunk of response.body as AsyncIterable<Buffer>) {
          if (kept < options.maxResponseBytes) {
            const part = chunk.subarray(0, options.maxResponseBytes - kept);
            chunks.push(part);
            kept += part.byteLength;
          }
        }
        return {
          status: response.statusCode,
          headers: headerLists(response.headers),
          body: Buffer.concat(chunks),
          durationMs: Math.round(performance.now() - started),
        };
      } catch (error) {
        return { error: describeError(error, request.timeoutMs), durationMs: Math.round(performance.now() - started) };
      } finally {
        clearTimeout(timer);
      }
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
