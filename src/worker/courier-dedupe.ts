/**
 * De-duplication shared by every instance of a group, held in Courier's store
 * through its work-key API:
 *
 *   claim(id)   → POST   /v1/work-keys/<group>/<id>/claim {"ttlSeconds"} → {"claimed": true|false}
 *   release(id) → DELETE /v1/work-keys/<group>/<id>   (404: nothing held, which is what release wants)
 *
 * A claim that cannot be made (network failure, timeout, any non-2xx answer)
 * throws, so the worker answers 500 and the delivery is retried: running the
 * handler without a claim could run it twice. A failed release also throws;
 * the worker reports it, and the claim then lasts until its TTL.
 */
import type { Dedupe } from './dedupe.js';

type Credentials = { token: string; registrationSecret?: never } | { registrationSecret: string; token?: never };

export type CourierDedupeOptions = Credentials & {
  /** Courier's base URL, e.g. `https://courier.example.com`. */
  courierUrl: string;
  /** The instance group the claims are shared in (its registration secret works as a credential). */
  group: string;
  /**
   * How long a claim is held: longer than the whole retry schedule of a
   * message (QStash's default 4 attempts span about 33 min), and also how
   * long a claim made by an instance that died mid-handler blocks the retry.
   * 1 s to 7 days; default 24 h.
   */
  ttlMs?: number;
  /** Per request; default 10 s. */
  timeoutMs?: number;
  /** Injected by tests; defaults to the global fetch. */
  fetch?: typeof fetch;
};

export class CourierDedupeError extends Error {
  readonly status: number | undefined;

  constructor(message: string, status?: number, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'CourierDedupeError';
    this.status = status;
  }
}

const DEFAULT_TTL_MS = 24 * 60 * 60 * 1000;
/** The API's bounds on ttlSeconds. */
const MIN_TTL_MS = 1_000;
const MAX_TTL_MS = 7 * 24 * 60 * 60 * 1000;
const DEFAULT_TIMEOUT_MS = 10_000;

export function courierDedupe(options: CourierDedupeOptions): Dedupe {
  const send = options.fetch ?? fetch;
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  if (!(ttlMs >= MIN_TTL_MS && ttlMs <= MAX_TTL_MS)) throw new RangeError(`courierDedupe: ttlMs must be 1000 to ${MAX_TTL_MS}, got ${ttlMs}`);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const base = `${options.courierUrl.replace(/\/+$/, '')}/v1/work-keys/${encodeURIComponent(options.group)}/`;
  const authorization: Record<string, string> =
    options.token !== undefined ? { authorization: `Bearer ${options.token}` } : { 'courier-registration-secret': options.registrationSecret };

  async function request(method: 'POST' | 'DELETE', url: string, body?: unknown): Promise<Response> {
    try {
      return await send(url, {
        method,
        headers: { ...authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new CourierDedupeError(`${method} ${url} failed: ${error instanceof Error ? error.message : String(error)}`, undefined, {
        cause: error,
      });
    }
  }

  const failure = async (method: string, url: string, response: Response): Promise<CourierDedupeError> =>
    new CourierDedupeError(`${method} ${url} answered ${response.status}: ${(await response.text()).slice(0, 200)}`, response.status);

  return {
    async claim(messageId) {
      const url = `${base}${encodeURIComponent(messageId)}/claim`;
      const response = await request('POST', url, { ttlSeconds: ttlMs / 1000 });
      if (!response.ok) throw await failure('POST', url, response);
      const answer = (await response.json().catch(() => undefined)) as { claimed?: unknown } | undefined;
      if (typeof answer?.claimed !== 'boolean') throw new CourierDedupeError(`POST ${url} answered without a "claimed" boolean`, response.status);
      return answer.claimed;
    },
    async release(messageId) {
      const url = `${base}${encodeURIComponent(messageId)}`;
      const response = await request('DELETE', url);
      if (response.status === 404) {
        await response.body?.cancel();
        return;
      }
      if (!response.ok) throw await failure('DELETE', url, response);
      await response.body?.cancel();
    },
  };
}
