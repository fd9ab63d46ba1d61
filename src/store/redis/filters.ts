/**
 * The port's filters, evaluated in TypeScript over pages read from the Redis indexes: the same rules as
 * the SQLite adapter's SQL (values within a key OR'd, keys AND'd, dates inclusive).
 */
import type { MessageSpec } from '../../core/message.js';
import { urlParts } from '../../core/message.js';
import type { DeadLetterFilter, MessageFilter } from '../port.js';

const oneOf = (values: readonly string[] | undefined, value: string | undefined): boolean =>
  !values || values.length === 0 || (value !== undefined && values.includes(value));

export function matchesMessage(spec: MessageSpec, filter: MessageFilter | undefined, time: number): boolean {
  if (!filter) return true;
  const { host, path } = urlParts(spec.url);
  return (
    oneOf(filter.url, spec.url) &&
    oneOf(filter.topicName, spec.topicName) &&
    oneOf(filter.scheduleId, spec.scheduleId) &&
    oneOf(filter.queueName, spec.queueName) &&
    oneOf(filter.flowControlKey, spec.flowControl?.key) &&
    oneOf(filter.callerIp, spec.callerIp) &&
    oneOf(filter.host, host) &&
    oneOf(filter.path, path) &&
    (!filter.label || filter.label.length === 0 || spec.labels.some((label) => filter.label!.includes(label))) &&
    (filter.fromDate === undefined || time >= filter.fromDate) &&
    (filter.toDate === undefined || time <= filter.toDate)
  );
}

export function matchesDeadLetter(
  spec: MessageSpec,
  status: number | undefined,
  filter: DeadLetterFilter,
  createdAt: number,
): boolean {
  return (
    matchesMessage(spec, filter, createdAt) &&
    oneOf(filter.messageId, spec.messageId) &&
    (!filter.responseStatus ||
      filter.responseStatus.length === 0 ||
      (status !== undefined && filter.responseStatus.includes(status)))
  );
}
