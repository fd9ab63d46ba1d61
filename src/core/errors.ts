/**
 * Errors with stable codes: the one list of codes and their HTTP status.
 * Domain code throws these; `api/error-reply.ts` is the one place that turns
 * them into HTTP responses, so a code's status never drifts between routes.
 * Codes are a contract: clients branch on them, so a code is never renamed
 * or reused for something else (add a new one instead). The README's
 * "Error codes" table lists them with their meaning.
 */
export const ERROR_STATUS = {
  INVALID_REQUEST: 400,
  INVALID_CRON: 400,
  MALFORMED_REQUEST: 400,
  UNAUTHORIZED: 401,
  SIGNATURE_INVALID: 401,
  NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  MESSAGE_NOT_FOUND: 404,
  DLQ_ENTRY_NOT_FOUND: 404,
  QUEUE_NOT_FOUND: 404,
  SCHEDULE_NOT_FOUND: 404,
  URL_GROUP_NOT_FOUND: 404,
  ENDPOINT_NOT_FOUND: 404,
  FLOW_CONTROL_KEY_NOT_FOUND: 404,
  INSTANCE_NOT_FOUND: 404,
  INSTANCE_GROUP_NOT_FOUND: 404,
  WORK_KEY_NOT_FOUND: 404,
  STREAM_NOT_FOUND: 404,
  NOT_SUPPORTED: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  CONFLICT: 409,
  STREAM_CLOSED: 409,
  STREAM_SEQ_GAP: 409,
  STREAM_FULL: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  EXPECTATION_FAILED: 417,
  HEADERS_TOO_LARGE: 431,
  INTERNAL: 500,
  INSTANCE_UNREACHABLE: 502,
  STORE_UNAVAILABLE: 503,
  NO_ACTIVE_INSTANCE: 503,
  TOO_MANY_FOLLOWERS: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface CourierErrorOptions {
  /**
   * Extra fields of the gateway's error body (`{ error, message, …, timestamp }`),
   * and its `error` title when it is not the status's reason phrase.
   */
  details?: Record<string, unknown>;
  title?: string;
  /** Sent as Retry-After: when the client may try again. */
  retryAfterSeconds?: number;
}

export class CourierError extends Error {
  readonly code: ErrorCode;
  /** The request field the error is about (a header, query key or body path), when there is one. */
  readonly field: string | undefined;
  readonly options: CourierErrorOptions;

  constructor(code: ErrorCode, message: string, field?: string, options: CourierErrorOptions = {}) {
    super(message);
    this.name = 'CourierError';
    this.code = code;
    this.field = field;
    this.options = options;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

/** A 400 about one named input. The message always starts with the field's name. */
export function invalid(field: string, problem: string): CourierError {
  return new CourierError('INVALID_REQUEST', `${field}: ${problem}`, field);
}
