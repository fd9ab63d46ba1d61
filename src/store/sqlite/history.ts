/** What happened, read back: the event log and the DLQ (its entries are written by settle, in messages.ts). */
import type { DeadLetter, LogEvent } from '../../core/message.js';
import type { DeadLetterSelection, EventQuery, HistoryStore, Page } from '../port.js';
import { deadLetterFilterCondition, inList, messageFilterCondition, whereClause, type Condition } from './filters.js';
import { deadLetterFromRow, eventFromRow, seqPage, type DeadLetterRow, type EventRow } from '../rows.js';
import { insertMessage } from './messages.js';
import type { Sql } from './sql.js';

const IN_PROGRESS_STATES = ['ACTIVE', 'RETRY', 'ERROR'];

function deadLetterRows(sql: Sql, selection: DeadLetterSelection, columns: string): { rows: DeadLetterRow[]; more: boolean } {
  let condition: Condition;
  let limit = -1;
  if ('dlqIds' in selection) {
    if (selection.dlqIds.length === 0) return { rows: [], more: false };
    condition = { sql: [], params: [] };
    inList('d.dlq_id', selection.dlqIds, condition);
  } else {
    condition = deadLetterFilterCondition(selection.filter);
    if (selection.cursor !== undefined) {
      condition.sql.push('d.seq > ?');
      condition.params.push(Number(selection.cursor));
    }
    limit = selection.count + 1;
  }
  const rows = sql.stmt(
    `SELECT ${columns} FROM dead_letters d JOIN messages m ON m.seq = d.message_seq
     ${whereClause(condition)} ORDER BY d.seq LIMIT ?`,
  ).all(...condition.params, limit) as DeadLetterRow[];
  const more = 'count' in selection && rows.length > selection.count;
  if (more) rows.pop();
  return { rows, more };
}

function deadLetterPage(sql: Sql, selection: DeadLetterSelection): Page<DeadLetter> {
  const { rows, more } = deadLetterRows(sql, selection, 'd.seq, d.dlq_id, d.created_at, d.response, d.response_body, m.spec, m.body');
  return seqPage(rows, more, deadLetterFromRow);
}

/** The port's log and DLQ verbs. */
export function sqliteHistory(sql: Sql): HistoryStore {
  return {
    async listEvents(query: EventQuery) {
      let condition: Condition;
      if (query.messageIds && query.messageIds.length > 0) {
        condition = { sql: [], params: [] };
        inList('m.id', query.messageIds, condition);
      } else {
        condition = messageFilterCondition(query.filter, 'e.time');
      }
      if (query.states && query.states.length > 0) {
        const states = query.states.flatMap((state) => (state === 'IN_PROGRESS' ? IN_PROGRESS_STATES : [state]));
        inList('e.state', states, condition);
      }
      if (query.cursor !== undefined) {
        condition.sql.push('e.seq < ?');
        condition.params.push(Number(query.cursor));
      }
      const rows = sql.stmt(
        `SELECT e.seq, e.time, e.state, e.detail, e.response_body, m.spec, m.body
         FROM events e JOIN messages m ON m.seq = e.message_seq
         ${whereClause(condition)} ORDER BY e.seq DESC LIMIT ?`,
      ).all(...condition.params, query.count + 1) as EventRow[];
      return seqPage(rows.slice(0, query.count), rows.length > query.count, eventFromRow);
    },

    async listDeadLetters(selection: DeadLetterSelection) {
      return deadLetterPage(sql, selection);
    },

    async getDeadLetter(dlqId) {
      return deadLetterPage(sql, { dlqIds: [dlqId] }).items[0];
    },

    async replayDeadLetters(items, at) {
      const remove = sql.stmt('DELETE FROM dead_letters WHERE dlq_id = ?');
      return sql.transaction(() =>
        items.map(({ dlqId, message }) => (remove.run(dlqId).changes === 0 ? undefined : insertMessage(sql, message, at))),
      );
    },

    async deleteDeadLetters(selection: DeadLetterSelection) {
      return sql.transaction(() => {
        const { rows, more } = deadLetterRows(sql, selection, 'd.seq');
        const remove = sql.stmt('DELETE FROM dead_letters WHERE seq = ?');
        for (const row of rows) remove.run(row.seq);
        const last = rows.at(-1);
        return more && last ? { deleted: rows.length, cursor: String(last.seq) } : { deleted: rows.length };
      });
    },
  };
}
