/** Conversions between the port's types and stored rows, shared by the SQL adapters (SQLite, PostgreSQL). */
import type { AttemptResponse, DeadLetter, LogEvent, LogState, MessageSpec } from '../core/message.js';
import { urlParts } from '../core/message.js';

type StoredSpec = Omit<MessageSpec, 'body'>;

export function specColumns(spec: MessageSpec): Record<string, unknown> & { origin: string } {
  const { body, ...rest } = spec;
  const { origin, host, path } = urlParts(spec.url);
  return {
    id: spec.messageId,
    due_at: spec.notBefore,
    created_at: spec.createdAt,
    origin,
    url: spec.url,
    host,
    path,
    labels: JSON.stringify(spec.labels),
    caller_ip: spec.callerIp,
    topic_name: spec.topicName ?? null,
    schedule_id: spec.scheduleId ?? null,
    queue_name: spec.queueName ?? null,
    flow_control_key: spec.flowControl?.key ?? null,
    spec: JSON.stringify(rest satisfies StoredSpec),
    body: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
  };
}

export function specFromRow(row: { spec: string; body: Buffer }): MessageSpec {
  const stored = JSON.parse(row.spec) as StoredSpec;
  return { ...stored, body: new Uint8Array(row.body.buffer, row.body.byteOffset, row.body.byteLength) };
}

/** The response parts of an event or DLQ entry, minus the body (kept as a BLOB). */
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

export function responseBodyColumn(response: AttemptResponse | undefined): Buffer | null {
  const body = response?.body;
  return body && body.byteLength > 0 ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : null;
}

function responseFrom(detail: ResponseDetail, body: Buffer | null): AttemptResponse {
  const response: AttemptResponse = { durationMs: detail.durationMs ?? 0 };
  if (detail.status !== undefined) response.status = detail.status;
  if (detail.headers) response.headers = detail.headers;
  if (detail.error !== undefined) response.error = detail.error;
  if (body) response.body = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  return response;
}

export interface EventRow {
  seq: number;
  time: number;
  state: string;
  detail: string | null;
  response_body: Buffer | null;
  spec: string;
  body: Buffer;
}

export function eventFromRow(row: EventRow): LogEvent {
  const event: LogEvent = { time: row.time, state: row.state as LogState, spec: specFromRow(row) };
  if (row.detail) {
    const detail = JSON.parse(row.detail) as ResponseDetail;
    if (detail.error !== undefined) event.error = detail.error;
    if (detail.nextDeliveryTime !== undefined) event.nextDeliveryTime = detail.nextDeliveryTime;
    if (detail.status !== undefined || detail.durationMs !== undefined) {
      event.response = responseFrom(detail, row.response_body);
    }
  }
  return event;
}

export interface DeadLetterRow {
  seq: number;
  dlq_id: string;
  created_at: number;
  response: string;
  response_body: Buffer | null;
  spec: string;
  body: Buffer;
}

export function deadLetterFromRow(row: DeadLetterRow): DeadLetter {
  return {
    dlqId: row.dlq_id,
    createdAt: row.created_at,
    spec: specFromRow(row),
    response: responseFrom(JSON.parse(row.response) as ResponseDetail, row.response_body),
  };
}
