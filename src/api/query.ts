/**
 * Query parameters of the list and bulk endpoints (spec §5.3, §6, §9.1) →
 * the store's filters. Bulk mutations reject unknown keys, so that a typo can
 * never widen a cancel or delete to everything; list endpoints ignore them.
 */
import { invalid } from '../core/errors.js';
import { LOG_STATES, type LogState } from '../core/message.js';
import type { DeadLetterFilter, MessageFilter } from '../core/queries.js';
import { checkText, normaliseUrlFilter } from './destination.js';

/** Keys whose values may legitimately contain commas, so they are never split (ambiguity A15). */
const UNSPLIT = new Set(['url', 'path']);

type ListFilterKey = Exclude<keyof MessageFilter, 'fromDate' | 'toDate'>;

const FILTER_KEYS: Record<string, ListFilterKey> = {
  url: 'url',
  topicName: 'topicName',
  urlGroup: 'topicName',
  scheduleId: 'scheduleId',
  queueName: 'queueName',
  label: 'label',
  flowControlKey: 'flowControlKey',
  callerIp: 'callerIp',
  callerIP: 'callerIp',
  host: 'host',
  path: 'path',
};

/** Every value is checked here before any store sees it: NUL is refused (PostgreSQL cannot compare text holding it). */
export function values(query: URLSearchParams, key: string): string[] {
  const all = query.getAll(key).map((value) => checkText(value, key));
  const split = UNSPLIT.has(key) ? all : all.flatMap((value) => value.split(','));
  return split.map((value) => value.trim()).filter((value) => value.length > 0);
}

/**
 * The latest time a date filter may name: 9999-12-31T23:59:59.999Z. Far past
 * any message, well inside a safe integer and PostgreSQL's bigint, so every
 * store compares it the same way.
 */
export const MAX_EPOCH_MS = 253_402_300_799_999;

function date(query: URLSearchParams, key: string): number | undefined {
  const value = query.get(key);
  if (value === null) return undefined;
  if (!/^\d{1,15}$/.test(value) || Number(value) > MAX_EPOCH_MS) {
    throw invalid(key, `must be a Unix time in milliseconds from 0 to ${MAX_EPOCH_MS}, got "${value}"`);
  }
  return Number(value);
}

export function count(query: URLSearchParams, fallback: number, max: number): number {
  const value = query.get('count');
  if (value === null) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw invalid('count', `must be a whole number from 1 to ${max}, got "${value}"`);
  if (Number(value) > max) throw invalid('count', `must be at most ${max}, got ${value}`);
  return Number(value);
}

export function rejectUnknownKeys(query: URLSearchParams, allowed: ReadonlySet<string>): void {
  for (const key of query.keys()) {
    if (!allowed.has(key)) throw invalid(key, `unknown filter "${key}"; allowed: ${[...allowed].sort().join(', ')}`);
  }
}

/**
 * Bulk mutations: a key that is present must carry a value, so that `?label=`
 * or `?dlqIds=` can never widen a cancel, delete or retry to everything.
 */
export function rejectEmptyValues(query: URLSearchParams): void {
  for (const key of new Set(query.keys())) {
    if (key !== 'qstash_token' && values(query, key).length === 0) throw invalid(key, 'must not be empty');
  }
}

export function messageFilter(query: URLSearchParams, exclude: readonly string[] = []): MessageFilter {
  const filter: MessageFilter = {};
  for (const [key, field] of Object.entries(FILTER_KEYS)) {
    if (exclude.includes(key)) continue;
    const found = key === 'url' ? values(query, key).map(normaliseUrlFilter) : values(query, key);
    if (found.length > 0) filter[field] = [...(filter[field] ?? []), ...found];
  }
  const fromDate = date(query, 'fromDate');
  if (fromDate !== undefined) filter.fromDate = fromDate;
  const toDate = date(query, 'toDate');
  if (toDate !== undefined) filter.toDate = toDate;
  return filter;
}

export function deadLetterFilter(query: URLSearchParams): DeadLetterFilter {
  const filter: DeadLetterFilter = messageFilter(query, ['host', 'path']);
  const messageId = values(query, 'messageId');
  if (messageId.length > 0) filter.messageId = messageId;
  const statuses = values(query, 'responseStatus');
  if (query.has('responseStatus') && statuses.length === 0) throw invalid('responseStatus', 'must not be empty');
  if (statuses.length > 0) {
    filter.responseStatus = statuses.map((status) => {
      if (!/^\d{3}$/.test(status)) throw invalid('responseStatus', `must be an HTTP status code, got "${status}"`);
      return Number(status);
    });
  }
  return filter;
}

/** `CANCELLED` (the docs' spelling) is accepted; `IN_PROGRESS` is the filter-only alias of spec §9.2. */
export function logState(query: URLSearchParams): LogState[] | undefined {
  const value = query.get('state');
  if (value === null || value === '') return undefined;
  const state = value.toUpperCase() === 'CANCELLED' ? 'CANCELED' : value.toUpperCase();
  if (state === 'IN_PROGRESS') return ['ACTIVE', 'RETRY', 'ERROR'];
  if (!(LOG_STATES as readonly string[]).includes(state)) {
    throw invalid('state', `must be one of ${LOG_STATES.join(', ')} or IN_PROGRESS, got "${value}"`);
  }
  return [state as LogState];
}

export function cursor(query: URLSearchParams): string | undefined {
  const value = query.get('cursor');
  if (value === null || value === '') return undefined;
  if (!/^\d{1,18}$/.test(value)) throw invalid('cursor', 'is not a cursor this server returned');
  return value;
}

export const FILTER_QUERY_KEYS = Object.keys(FILTER_KEYS);
