/** Turns the port's filters into SQL conditions over `messages m` (and the table the dates apply to). */
import type { DeadLetterFilter, MessageFilter } from '../port.js';
import { messageFilterColumns } from '../sql-common.js';
import { array, OID, type Db, type Params } from './sql.js';

/** `column = ANY(values)`: one placeholder whatever the number of values. */
export function inList(db: Db, column: string, values: readonly (string | number)[], params: Params, oid: number = OID.text): string {
  return `${column} = ANY(${params.add(array(db, values, oid))})`;
}

export function messageFilterConditions(db: Db, filter: MessageFilter | undefined, dateColumn: string, params: Params): string[] {
  const conditions: string[] = [];
  if (!filter) return conditions;
  for (const [key, column] of messageFilterColumns) {
    const values = filter[key];
    if (values && values.length > 0) conditions.push(inList(db, column, values, params));
  }
  if (filter.label && filter.label.length > 0) {
    conditions.push(`m.labels::jsonb ?| ${params.add(array(db, filter.label, OID.text))}::text[]`);
  }
  if (filter.fromDate !== undefined) conditions.push(`${dateColumn} >= ${params.add(filter.fromDate)}`);
  if (filter.toDate !== undefined) conditions.push(`${dateColumn} <= ${params.add(filter.toDate)}`);
  return conditions;
}

export function deadLetterFilterConditions(db: Db, filter: DeadLetterFilter, params: Params): string[] {
  const conditions = messageFilterConditions(db, filter, 'd.created_at', params);
  if (filter.messageId && filter.messageId.length > 0) conditions.push(inList(db, 'm.id', filter.messageId, params));
  if (filter.responseStatus && filter.responseStatus.length > 0) {
    conditions.push(inList(db, 'd.response_status', filter.responseStatus, params, OID.int4));
  }
  return conditions;
}

export function whereClause(conditions: string[]): string {
  return conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
}
