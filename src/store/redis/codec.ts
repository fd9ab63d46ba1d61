/** Conversions between the port's types and what the Redis scripts take and give back. */
import type { AttemptResponse, DeadLetter, LogEvent, LogState, MessageSpec, NewMessage } from '../../core/message.js';
import { urlParts } from '../../core/message.js';

type StoredSpec = Omit<MessageSpec, 'body'>;
export type Arg = string | Buffer;

export const DEFAULT_PERIOD_MS = 1_000;

export const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

export const specJson = (spec: MessageSpec): string => {
  const { body: _body, ...rest } = spec;
  return JSON.stringify(rest satisfies StoredSpec);
};

export function specFrom(json: string | Buffer, body: Buffer | null | undefined): MessageSpec {
  const stored = JSON.parse(json.toString()) as StoredSpec;
  const bytes = body ?? Buffer.alloc(0);
  return { ...stored, body: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

/**
 * The MSG_ARGS fields lib.lua's insert_message reads, in its order. `eligible` says whether a handoff may
 * lease it (due by `at`, origin not excluded); the script adds the rest of the rule.
 */
export function messageArgs(message: NewMessage, eligible = false): Arg[] {
  const { spec, dedup, queueSlot } = message;
  const fc = spec.flowControl;
  return [
    spec.messageId,
    specJson(spec),
    toBuffer(spec.body),
    String(spec.notBefore),
    String(spec.createdAt),
    spec.queueName ?? '',
    queueSlot ?? '',
    fc?.key ?? '',
    fc?.parallelism === undefined ? '' : String(fc.parallelism),
    fc?.rate === undefined ? '' : String(fc.rate),
    String(fc?.periodMs ?? DEFAULT_PERIOD_MS),
    dedup?.key ?? '',
    dedup ? String(dedup.expiresAt) : '',
    urlParts(spec.url).origin,
    spec.scheduleId ?? '',
    eligible ? '1' : '0',
  ];
}

/** The response parts of an event or DLQ entry, minus the body (kept as its own field). */
export interface ResponseDetail {
  status?: number;
  headers?: Record<string, string[]>;
  error?: string;
  durationMs?: number;
  nextDeliveryTime?: number;
}

export function responseDetail(response: AttemptResponse | undefined, extra: Partial<ResponseDetail> = {}): string {
  const detail: ResponseDetail = { ...extra };
  if (response) {
    if (response.status !== undefined) detail.status = response.status;
    if (response.headers) detail.headers = response.headers;
    if (response.error !== undefined) detail.error = response.error;
    detail.durationMs = response.durationMs;
  }
  return JSON.stringify(detail);
}

export const responseBody = (response: AttemptResponse): Buffer =>
  response.body && response.body.byteLength > 0 ? toBuffer(response.body) : Buffer.alloc(0);

export function responseFrom(detail: ResponseDetail, body: Buffer | null | undefined): AttemptResponse {
  const response: AttemptResponse = { durationMs: detail.durationMs ?? 0 };
  if (detail.status !== undefined) response.status = detail.status;
  if (detail.headers) response.headers = detail.headers;
  if (detail.error !== undefined) response.error = detail.error;
  if (body && body.byteLength > 0) response.body = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  return response;
}

type MaybeBuffer = Buffer | null | undefined;

export function eventFrom(
  time: number,
  state: string,
  spec: MessageSpec,
  detail: MaybeBuffer,
  body: MaybeBuffer,
): LogEvent {
  const event: LogEvent = { time, state: state as LogState, spec };
  if (detail && detail.length > 0) {
    const parsed = JSON.parse(detail.toString()) as ResponseDetail;
    if (parsed.error !== undefined) event.error = parsed.error;
    if (parsed.nextDeliveryTime !== undefined) event.nextDeliveryTime = parsed.nextDeliveryTime;
    if (parsed.status !== undefined || parsed.durationMs !== undefined) event.response = responseFrom(parsed, body);
  }
  return event;
}

export function deadLetterFrom(
  dlqId: string,
  createdAt: number,
  spec: MessageSpec,
  detail: Buffer,
  body: MaybeBuffer,
): DeadLetter {
  return { dlqId, createdAt, spec, response: responseFrom(JSON.parse(detail.toString()) as ResponseDetail, body) };
}

/** A numeric field that may be unset (stored as an empty string). */
export const optionalNumber = (value: string | Buffer | null | undefined): number | undefined =>
  value === null || value === undefined || value.length === 0 ? undefined : Number(value.toString());
