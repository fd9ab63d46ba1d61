/**
 * The one mapping from errors to responses, for both hosts. Status and code
 * come from core/errors.ts; only the body's shape differs per host:
 *
 * - `courier`: `{"error": "<message>", "code": "<STABLE_CODE>"}`. The SDKs
 *   read `error`; `code` is for clients that branch on what went wrong.
 * - `gateway`: the stand-alone gateway's contract with the seed it replaces,
 *   `{ error: "<title>", message, …details, timestamp }`, and no `code`
 *   (a signature failure's detail carries its own `code`, the reason).
 *
 * An error that is not a CourierError is a bug: it is logged with the
 * request, and the client gets a 500 INTERNAL that says nothing of it.
 */
import { STATUS_CODES } from 'node:http';
import { CourierError, ERROR_STATUS, type ErrorCode } from '../core/errors.js';
import type { Reply } from './http.js';

export interface ErrorShape {
  body(error: CourierError, now: number): unknown;
  /** What a 500 says: nothing of the error itself. */
  readonly internalMessage: string;
}

export const COURIER_ERRORS: ErrorShape = {
  body: (error) => ({ error: error.message, code: error.code }),
  internalMessage: 'internal error',
};

export const GATEWAY_ERRORS: ErrorShape = {
  body: (error, now) => ({
    error: error.options.title ?? STATUS_CODES[error.status] ?? 'Error',
    message: error.message,
    ...error.options.details,
    timestamp: new Date(now).toISOString(),
  }),
  internalMessage: 'the gateway failed to handle the request',
};

/**
 * Errors after which the connection is not reused: a body we refused is not
 * read any further (closing is cheaper than draining it), and a request we
 * could not make sense of leaves no trustworthy place where the next begins.
 */
const CLOSES_CONNECTION: ReadonlySet<ErrorCode> = new Set(['PAYLOAD_TOO_LARGE', 'MALFORMED_REQUEST', 'EXPECTATION_FAILED', 'REQUEST_TIMEOUT']);

/** The reply for an error a handler threw; `undefined` when it is not ours (the caller logs it, then uses `internalError`). */
export function courierErrorReply(error: unknown, shape: ErrorShape, now: number): Reply | undefined {
  if (!(error instanceof CourierError)) return undefined;
  const headers: Record<string, string> = {};
  if (error.options.retryAfterSeconds !== undefined) headers['Retry-After'] = String(error.options.retryAfterSeconds);
  if (CLOSES_CONNECTION.has(error.code)) headers.Connection = 'close';
  return { status: error.status, json: shape.body(error, now), ...(Object.keys(headers).length > 0 ? { headers } : {}) };
}

export function internalError(shape: ErrorShape, now: number): Reply {
  return courierErrorReply(new CourierError('INTERNAL', shape.internalMessage), shape, now)!;
}

/** Node's parser refused the bytes before a request existed (`clientError`): the code and message for it. */
export function clientErrorCode(nodeCode: string | undefined): ErrorCode {
  if (nodeCode === 'HPE_HEADER_OVERFLOW') return 'HEADERS_TOO_LARGE';
  if (nodeCode === 'ERR_HTTP_REQUEST_TIMEOUT') return 'REQUEST_TIMEOUT';
  return 'MALFORMED_REQUEST';
}

/** The raw HTTP/1.1 response for a `clientError`: there is no ServerResponse to write it with. */
export function rawErrorResponse(error: CourierError, shape: ErrorShape, now: number): string {
  const status = ERROR_STATUS[error.code];
  const body = JSON.stringify(shape.body(error, now));
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}
