/**
 * Errors with stable codes. Domain code throws these; `api/errors.ts` is the
 * one place that turns them into HTTP responses, so a code's status never
 * drifts between routes.
 */
export const ERROR_STATUS = {
  INVALID_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  MESSAGE_NOT_FOUND: 404,
  DLQ_ENTRY_NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  NOT_SUPPORTED: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  STORE_UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class CourierError extends Error {
  readonly code: ErrorCode;
  /** The request field the error is about (a header, query key or body path), when there is one. */
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, field?: string) {
    super(message);
    this.name = 'CourierError';
    this.code = code;
    this.field = field;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

/** A 400 about one named input. The message always starts with the field's name. */
export function invalid(field: string, problem: string): CourierError {
  return new CourierError('INVALID_REQUEST', `${field}: ${problem}`, field);
}
