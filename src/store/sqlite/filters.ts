/** Turns the port's filters into SQL conditions over `messages m` (and the table the dates apply to). */
import type { DeadLetterFilter, MessageFilter } from '../port.js';
import { messageFilterColumns } from '../sql-common.js';

export interface Condition {
  sql: string[];
  params: unknown[];
}

function placeholders(count: number): string {
  return Array.from({ length: count }, () => '?').join(', ');
}

export function messageFilterCondition(filter: MessageFilter | undefined, dateColumn: string): Condition {
  const condition: Condition = { sql: [], params: [] };
  if (!filter) return condition;
  for (const [key, column] of messageFilterColumns) {
    const values = filter[key];
    if (!values || values.length === 0) continue;
    condition.sql.push(`${column} IN (${placeholders(values.length)})`);
    condition.params.push(...values);
  }
  if (filter.label && filter.label.length > 0) {
    condition.sql.push(
      `EXISTS (SELECT 1 FROM json_each(m.labels) WHERE json_each.value IN (${placeholders(filter.label.length)}))`,
    );
    condition.params.push(...filter.label);
  }
  if (filter.fromDate !== undefined) {
    condition.sql.push(`${dateColumn} >= ?`);
    condition.params.push(filter.fromDate);
  }
  if (filter.toDate !== undefined) {
    condition.sql.push(`${dateColumn} <= ?`);
    condition.params.push(filter.toDate);
  }
  return condition;
}

export function deadLetterFilterCondition(filter: DeadLetterFilter): Condition {
  const condition = messageFilterCondition(filter, 'd.created_at');
  if (filter.messageId && filter.messageId.length > 0) {
    condition.sql.push(`m.id IN (${placeholders(filter.messageId.length)})`);
    condition.params.push(...filter.messageId);
  }
  if (filter.responseStatus && filter.responseStatus.length > 0) {
    condition.sql.push(`d.response_status IN (${placeholders(filter.responseStatus.length)})`);
    condition.params.push(...filter.responseStatus);
  }
  return condition;
}

export function inList(column: string, values: readonly unknown[], condition: Condition): void {
  condition.sql.push(`${column} IN (${placeholders(values.length)})`);
  condition.params.push(...values);
}

export function whereClause(condition: Condition): string {
  return condition.sql.length === 0 ? '' : `WHERE ${condition.sql.join(' AND ')}`;
}
