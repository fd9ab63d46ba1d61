/**
 * How the port's types are stored, and read back, by every adapter (SQLite,
 * PostgreSQL, Redis): a spec as JSON beside its body, a response as a JSON
 * detail beside its body, a schedule's template as JSON beside its body.
 */
import type { Page } from './port.js';
import type { AttemptResponse, DeadLetter, LogEvent, LogState, MessageSpec } from '../core/message.js';
import type { InstanceGroupRecord, InstanceGroupSettings, InstanceHealth, InstanceRecord, InstanceRegistration } from '../core/instance.js';
import { urlParts } from '../core/message.js';
import type { PublishOptions } from '../core/publish-options.js';
import type { ScheduleRecord, ScheduleRun, ScheduleTemplate } from '../core/schedule.js';

type StoredSpec = Omit<MessageSpec, 'body'>;
type Bytes = Buffer | null | undefined;

export const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const toBytes = (buffer: Bytes): Uint8Array => (buffer ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : new Uint8Array(0));

/** A spec without its body, which is stored on its own. */
export function specJson(spec: MessageSpec): string {
  const { body: _body, ...rest } = spec;
  return JSON.stringify(rest satisfies StoredSpec);
}

export function specFrom(json: string | Buffer, body: Bytes): MessageSpec {
  return { ...(JSON.parse(json.toString()) as StoredSpec), body: toBytes(body) };
}

export function specColumns(spec: MessageSpec): Record<string, unknown> & { origin: string } {
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
    spec: specJson(spec),
    body: toBuffer(spec.body),
  };
}

export function specFromRow(row: { spec: string; body: Buffer }): MessageSpec {
  return specFrom(row.spec, row.body);
}

/** The response parts of an event or DLQ entry, minus the body (stored on its own). */
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
  return body && body.byteLength > 0 ? toBuffer(body) : null;
}

export function responseFrom(detail: ResponseDetail, body: Bytes): AttemptResponse {
  const response: AttemptResponse = { durationMs: detail.durationMs ?? 0 };
  if (detail.status !== undefined) response.status = detail.status;
  if (detail.headers) response.headers = detail.headers;
  if (detail.error !== undefined) response.error = detail.error;
  if (body && body.byteLength > 0) response.body = toBytes(body);
  return response;
}

/** A log event from its stored parts; `detail` is the JSON ResponseDetail, if any. */
export function eventFrom(time: number, state: string, spec: MessageSpec, detail: string | Buffer | null | undefined, body: Bytes): LogEvent {
  const event: LogEvent = { time, state: state as LogState, spec };
  if (detail && detail.length > 0) {
    const parsed = JSON.parse(detail.toString()) as ResponseDetail;
    if (parsed.error !== undefined) event.error = parsed.error;
    if (parsed.nextDeliveryTime !== undefined) event.nextDeliveryTime = parsed.nextDeliveryTime;
    if (parsed.status !== undefined || parsed.durationMs !== undefined) event.response = responseFrom(parsed, body);
  }
  return event;
}

export function deadLetterFrom(dlqId: string, createdAt: number, spec: MessageSpec, detail: string | Buffer, body: Bytes): DeadLetter {
  return { dlqId, createdAt, spec, response: responseFrom(JSON.parse(detail.toString()) as ResponseDetail, body) };
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
  return eventFrom(row.time, row.state, specFromRow(row), row.detail, row.response_body);
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
  return deadLetterFrom(row.dlq_id, row.created_at, specFromRow(row), row.response, row.response_body);
}

/** A schedule's template minus destination and body, which are stored on their own. */
interface StoredTemplate {
  options: PublishOptions;
  queueName?: string;
  callerIp: string;
}

export function templateJson(template: ScheduleTemplate): string {
  const stored: StoredTemplate = { options: template.options, callerIp: template.callerIp };
  if (template.queueName !== undefined) stored.queueName = template.queueName;
  return JSON.stringify(stored);
}

/** A schedule as each adapter reads it back; absent optional values are undefined. */
export interface StoredSchedule {
  id: string;
  cron: string;
  destination: string;
  template: string;
  body: Bytes;
  paused: boolean;
  createdAt: number;
  updatedAt: number;
  nextAt: number | undefined;
  lastAt: number | undefined;
  lastMessageIds: string;
  lastError: string | undefined;
}

export function scheduleFrom(stored: StoredSchedule): ScheduleRecord {
  const template = JSON.parse(stored.template) as StoredTemplate;
  const record: ScheduleRecord = {
    scheduleId: stored.id,
    cron: stored.cron,
    template: { destination: stored.destination, options: template.options, body: toBytes(stored.body), callerIp: template.callerIp },
    paused: stored.paused,
    createdAt: stored.createdAt,
    updatedAt: stored.updatedAt,
    lastMessageIds: JSON.parse(stored.lastMessageIds || '[]') as string[],
  };
  if (template.queueName !== undefined) record.template.queueName = template.queueName;
  if (stored.nextAt !== undefined) record.nextAt = stored.nextAt;
  if (stored.lastAt !== undefined) record.lastAt = stored.lastAt;
  if (stored.lastError) record.lastError = stored.lastError;
  return record;
}

/** A `schedules` row of the SQL adapters (SQLite stores `paused` as 0/1, PostgreSQL as a boolean). */
export interface ScheduleRow {
  id: string;
  cron: string;
  destination: string;
  template: string;
  body: Buffer;
  paused: number | boolean;
  created_at: number;
  updated_at: number;
  next_at: number | null;
  last_at: number | null;
  last_message_ids: string;
  last_error: string | null;
}

export function scheduleFromRow(row: ScheduleRow): ScheduleRecord {
  return scheduleFrom({
    id: row.id,
    cron: row.cron,
    destination: row.destination,
    template: row.template,
    body: row.body,
    paused: row.paused === true || row.paused === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    nextAt: row.next_at ?? undefined,
    lastAt: row.last_at ?? undefined,
    lastMessageIds: row.last_message_ids,
    lastError: row.last_error ?? undefined,
  });
}

const RUN_STATES: Record<string, ScheduleRun['state']> = {
  waiting: 'IN_PROGRESS',
  pending: 'IN_PROGRESS',
  active: 'IN_PROGRESS',
  delivered: 'SUCCESS',
  failed: 'FAIL',
  canceled: 'CANCELED',
};

/** One run of a schedule: its message's state, and the last attempt's detail (the latest DELIVERED or ERROR event's). */
export function scheduleRunFrom(run: {
  messageId: string;
  url: string;
  state: string;
  trigger: string | null | undefined;
  createdAt: number;
  finishedAt: number | undefined;
  retried: number;
  lastAttempt: string | null | undefined;
}): ScheduleRun {
  const out: ScheduleRun = {
    messageId: run.messageId,
    url: run.url,
    trigger: run.trigger === 'manual' ? 'manual' : 'cron',
    state: RUN_STATES[run.state] ?? 'IN_PROGRESS',
    createdAt: run.createdAt,
    retried: run.retried,
  };
  if (run.finishedAt !== undefined) out.finishedAt = run.finishedAt;
  if (run.lastAttempt) {
    const detail = JSON.parse(run.lastAttempt) as ResponseDetail;
    if (detail.status !== undefined) out.responseStatus = detail.status;
    if (detail.durationMs !== undefined) out.durationMs = detail.durationMs;
    if (detail.error !== undefined) out.error = detail.error;
  }
  return out;
}

/** A run as both SQL adapters select it: the message's columns and its last attempt's detail. */
export interface ScheduleRunRow {
  id: string;
  url: string;
  state: string;
  created_at: number;
  finished_at: number | null;
  retried: number;
  trigger: string | null;
  last_attempt: string | null;
}

export function scheduleRunFromRow(row: ScheduleRunRow): ScheduleRun {
  return scheduleRunFrom({
    messageId: row.id,
    url: row.url,
    state: row.state,
    trigger: row.trigger,
    createdAt: row.created_at,
    finishedAt: row.finished_at ?? undefined,
    retried: row.retried,
    lastAttempt: row.last_attempt,
  });
}

/**
 * Instance groups and instances, as every adapter stores them: a group's
 * settings as JSON beside its name; an instance's registration and health as
 * JSON beside its key (group, id) and its two times. JSON.stringify drops
 * undefined members, so an unset optional field reads back absent.
 */
type StoredRegistration = Omit<InstanceRegistration, 'group' | 'id'>;
type StoredGroupSettings = Omit<InstanceGroupSettings, 'name'>;

export function registrationJson(registration: InstanceRegistration): string {
  const { group: _group, id: _id, ...rest } = registration;
  return JSON.stringify(rest satisfies StoredRegistration);
}

export const instanceHealthJson = (health: InstanceHealth): string => JSON.stringify(health);

/** The health of an instance seen for the first time (see Store.heartbeatInstance). */
export const firstHealthJson = (at: number): string => instanceHealthJson({ ejections: 0, readmittedAt: at });

export function groupSettingsJson(settings: InstanceGroupSettings): string {
  // A record passed as settings keeps its times in their own columns, not in the JSON.
  const { name: _name, createdAt: _createdAt, updatedAt: _updatedAt, ...rest } = settings as Partial<InstanceGroupRecord> & InstanceGroupSettings;
  return JSON.stringify(rest satisfies StoredGroupSettings);
}

/** An instance as each adapter reads it back. */
export interface StoredInstance {
  group: string;
  id: string;
  registration: string;
  lastHeartbeat: number;
  registeredAt: number;
  health: string;
}

export function instanceFrom(stored: StoredInstance): InstanceRecord {
  return {
    ...(JSON.parse(stored.registration) as StoredRegistration),
    group: stored.group,
    id: stored.id,
    lastHeartbeat: stored.lastHeartbeat,
    registeredAt: stored.registeredAt,
    health: JSON.parse(stored.health) as InstanceHealth,
  };
}

export function instanceGroupFrom(stored: { name: string; settings: string; createdAt: number; updatedAt: number }): InstanceGroupRecord {
  return {
    ...(JSON.parse(stored.settings) as StoredGroupSettings),
    name: stored.name,
    createdAt: stored.createdAt,
    updatedAt: stored.updatedAt,
  };
}

/** An `instances` row of the SQL adapters. */
export interface InstanceRow {
  group_name: string;
  id: string;
  registration: string;
  last_heartbeat: number;
  registered_at: number;
  health: string;
}

export function instanceFromRow(row: InstanceRow): InstanceRecord {
  return instanceFrom({
    group: row.group_name,
    id: row.id,
    registration: row.registration,
    lastHeartbeat: row.last_heartbeat,
    registeredAt: row.registered_at,
    health: row.health,
  });
}

/** An `instance_groups` row of the SQL adapters. */
export interface InstanceGroupRow {
  name: string;
  settings: string;
  created_at: number;
  updated_at: number;
}

export function instanceGroupFromRow(row: InstanceGroupRow): InstanceGroupRecord {
  return instanceGroupFrom({ name: row.name, settings: row.settings, createdAt: row.created_at, updatedAt: row.updated_at });
}

/** A page of rows already cut to the page size; its cursor, the last row's seq, is set only when more rows follow. */
export function seqPage<Row extends { seq: number }, T>(rows: readonly Row[], more: boolean, map: (row: Row) => T): Page<T> {
  const page: Page<T> = { items: rows.map(map) };
  const last = rows.at(-1);
  if (more && last) page.cursor = String(last.seq);
  return page;
}
