/**
 * Outgoing HTTP for deliveries: one keep-alive undici Pool per destination
 * origin. `undici.request` (not fetch) because a delivery must be able to send
 * a body with GET/DELETE (spec §18), must not follow redirects (a 3xx is a
 * failed attempt), and must cap how much of a response it reads.
 *
 * What an attempt holds and how long it lasts:
 * - It keeps at most `maxResponseBytes` of the body (what is stored for logs,
 *   DLQ and callbacks), and less when the budget shared by all attempts in
 *   flight runs short (response-budget.ts). Past what it keeps it reads at
 *   most DISCARD_ALLOWANCE more, dropping it, and then cuts the response off
 *   (aborts, which destroys the socket) instead of draining a huge body.
 * - One deadline, `timeoutMs` from send() to the body's last byte: waiting
 *   for a socket, connecting, headers and body all count. undici's own
 *   `bodyTimeout` is idle time per chunk, so a body trickling a byte at a
 *   time never trips it; the deadline timer does.
 * - An attempt that gives up (deadline or cut-off) aborts its request, so
 *   undici destroys its socket; origin-pool.ts keeps undici from opening a
 *   useless replacement connection for it.
 */
import { errors as undiciErrors, type Dispatcher, type Pool } from 'undici';
import { urlParts, type AttemptResponse, type HttpMethod } from '../core/message.js';
import { ATTEMPT, createOriginPool, type AttemptMark, type MarkedDispatchOptions } from './origin-pool.js';
import { createResponseBudget, type ResponseBudget } from './response-budget.js';

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
  /** Response bytes kept per attempt for logs, DLQ and callbacks; the rest is dropped (see the header). */
  maxResponseBytes: number;
  /** Response bytes all attempts in flight may keep together (response-budget.ts); unbounded if absent. */
  maxResponseBufferBytes?: number;
  /** Idle pools are closed after this long, so a million one-off origins do not pile up sockets. */
  idlePoolMs?: number;
}

/**
 * Bytes an attempt reads and drops past what it keeps before it cuts the
 * response off. Reading a little more lets a body just over the cap end
 * normally and its connection serve the next attempt (a new connection
 * costs a handshake); anything larger is cheaper to cut than to drain.
 */
const DISCARD_ALLOWANCE = 64 * 1024;
/**
 * How long an idle socket stays open for the next attempt to the same
 * origin. Only sockets that served a full response are kept: one whose
 * attempt gave up is destroyed (see the header).
 */
const KEEP_ALIVE_MS = 30_000;

export function createPooledClient(options: PooledClientOptions): DeliveryClient {
  const pools = new Map<string, { pool: Pool; lastUsed: number }>();
  const idlePoolMs = options.idlePoolMs ?? 60_000;
  const budget = createResponseBudget(options.maxResponseBufferBytes ?? Number.POSITIVE_INFINITY);
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
        pool: createOriginPool(origin, { connections: options.connectionsPerOrigin, keepAliveTimeoutMs: KEEP_ALIVE_MS }),
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
        const handler = new AttemptHandler(request.timeoutMs, options.maxResponseBytes, budget, resolve);
        const dispatch: MarkedDispatchOptions = {
          path: target,
          method: request.method,
          headers: request.headers,
          body: request.body.byteLength > 0 || request.method !== 'GET' ? request.body : null,
          // Backstops only: the attempt's own deadline (started earlier, in send) ends it first.
          headersTimeout: request.timeoutMs,
          bodyTimeout: request.timeoutMs,
          [ATTEMPT]: handler,
        };
        poolFor(origin).dispatch(dispatch, handler);
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
 * path. It resolves once, with the first of: the whole response, the kept
 * part of a response it cut off, the deadline, or an error.
 */
class AttemptHandler implements Dispatcher.DispatchHandler, AttemptMark {
  abandoned = false;
  private readonly started = performance.now();
  private readonly chunks: Buffer[] = [];
  /** Body bytes kept, all of them taken from the budget. */
  private kept = 0;
  /** The most this attempt may keep; lowered to what it has when the budget runs short. */
  private cap: number;
  private dropped = 0;
  private declaredLength: number | undefined;
  private status: number | undefined;
  private headers: Record<string, string[]> = {};
  private controller: Dispatcher.DispatchController | undefined;
  private readonly timer: NodeJS.Timeout;
  private done = false;

  constructor(
    private readonly timeoutMs: number,
    maxResponseBytes: number,
    private readonly budget: ResponseBudget,
    private readonly resolve: (response: AttemptResponse) => void,
  ) {
    this.cap = maxResponseBytes;
    this.timer = setTimeout(() => this.expire(), timeoutMs);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // The deadline passed while the attempt waited for a socket: it is over before it is sent.
    if (this.done) this.abandon(new DeadlineError(this.timeoutMs));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // 1xx informational responses come before the real one and are skipped.
    if (statusCode < 200) return;
    this.status = statusCode;
    this.headers = headerLists(headers);
    const length = Number(headers['content-length']);
    if (Number.isSafeInteger(length) && length >= 0) this.declaredLength = length;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.done) return;
    let keep = Math.min(this.cap - this.kept, chunk.byteLength);
    if (keep > 0) {
      const granted = this.budget.take(keep);
      if (granted < keep) this.cap = this.kept + granted;
      keep = granted;
    }
    if (keep > 0) {
      // A copy: a view would hold on to undici's whole read buffer, not just the kept bytes.
      this.chunks.push(Buffer.from(chunk.subarray(0, keep)));
      this.kept += keep;
    }
    this.dropped += chunk.byteLength - keep;
    if (this.dropped === 0) return;
    const toDrop = this.declaredLength === undefined ? this.dropped : this.declaredLength - this.kept;
    if (this.dropped > DISCARD_ALLOWANCE || toDrop > DISCARD_ALLOWANCE) this.cutOff();
  }

  onResponseEnd(): void {
    this.finish(this.keptResponse());
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.finish({ error: describeError(error, this.timeoutMs) });
  }

  /** The body goes on past what is kept: the attempt ends with what it has, and stops reading. */
  private cutOff(): void {
    this.finish(this.keptResponse());
    // Paused first so the parser stops at this chunk; aborted after it returns, from outside undici's callback.
    this.controller?.pause();
    queueMicrotask(() => this.abandon(new ResponseCutOffError()));
  }

  private expire(): void {
    this.finish({ error: timeoutMessage(this.timeoutMs) });
    this.abandon(new DeadlineError(this.timeoutMs));
  }

  /** Gives up the request: marked first, so the pool opens no connection for it (origin-pool.ts). */
  private abandon(reason: Error): void {
    this.abandoned = true;
    this.controller?.abort(reason);
  }

  private keptResponse(): Omit<AttemptResponse, 'durationMs'> {
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.kept);
    return { status: this.status, headers: this.headers, body };
  }

  private finish(outcome: Omit<AttemptResponse, 'durationMs'>): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.budget.give(this.kept);
    this.chunks.length = 0;
    this.resolve({ ...outcome, durationMs: Math.round(performance.now() - this.started) });
  }
}

class DeadlineError extends Error {
  override readonly name = 'TimeoutError';
  constructor(timeoutMs: number) {
    super(`no complete response within ${timeoutMs} ms`);
  }
}

class ResponseCutOffError extends Error {
  constructor() {
    super('response body cut off past the bytes kept');
  }
}

const timeoutMessage = (timeoutMs: number) => `timeout: no complete response within ${timeoutMs} ms`;

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
    return timeoutMessage(timeoutMs);
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const cause = (error as { cause?: { code?: unknown; message?: string } }).cause;
    const detail = typeof code === 'string' ? code : typeof cause?.code === 'string' ? cause.code : undefined;
    return detail ? `${detail}: ${error.message}` : error.message;
  }
  return String(error);
}
