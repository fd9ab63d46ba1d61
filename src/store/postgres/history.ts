/**
 * What happened, read back: the event log and the DLQ. Cursors are the seq
 * (BIGSERIAL) of the last item returned, so paging is stable while new rows
 * arrive: events page newest first below the cursor, DLQ entries oldest
 * first above it.
 */
import type { DeadLetter, LogEvent } from '../../core/message.js';
import type { DeadLetterSelection, EnqueueResult, EventQuery, HistoryStore, Page } from '../port.js';
import { deadLetterFromRow, eventFromRow, seqPage, type DeadLetterRow, type EventRow } from '../rows.js';
import { deadLetterFilterConditions, inList, messageFilterConditions, whereClause } from './filters.js';
import { adhoc, array, earliest, exec, OID, Params, type Db, type Pg } from './sql.js';
import { insertMessages } from './writes.js';

const IN_PROGRESS_STATES = ['ACTIVE', 'RETRY', 'ERROR'];

async function deadLetterRows(
  db: Db,
  selection: DeadLetterSelection,
  columns: string,
  lock = '',
): Promise<{ rows: DeadLetterRow[]; more: boolean }> {
  const params = new Params();
  let conditions: string[];
  let limit = 'ALL';
  if ('dlqIds' in selection) {
    if (selection.dlqIds.length === 0) return { rows: [], more: false };
    conditions = [inList(db, 'd.dlq_id', selection.dlqIds, params)];
  } else {
    conditions = deadLetterFilterConditions(db, selection.filter, params);
    if (selection.cursor !== undefined) conditions.push(`d.seq > ${params.add(Number(selection.cursor))}`);
    limit = params.add(selection.count + 1);
  }
  const found = await adhoc<DeadLetterRow>(
    db,
    `SELECT ${columns} FROM dead_letters d JOIN messages m ON m.seq = d.message_seq
     ${whereClause(conditions)} ORDER BY d.seq LIMIT ${limit} ${lock}`,
    params.values,
  );
  const more = 'count' in selection && found.length > selection.count;
  if (more) found.pop();
  return { rows: found, more };
}

async function deadLetterPage(db: Db, selection: DeadLetterSelection): Promise<Page<DeadLetter>> {
  const { rows, more } = await deadLetterRows(db, selection, 'd.seq, d.dlq_id, d.created_at, d.response, d.response_body, m.spec, m.body');
  return seqPage(rows, more, deadLetterFromRow);
}

/** The port's log and DLQ verbs. */
export function postgresHistory(pg: Pg): HistoryStore {
  return {
    async listEvents(query: EventQuery) {
      const db = pg.sql;
      const params = new Params();
      const conditions =
        query.messageIds && query.messageIds.length > 0
          ? [inList(db, 'm.id', query.messageIds, params)]
          : messageFilterConditions(db, query.filter, 'e.time', params);
      if (query.states && query.states.length > 0) {
        const states = query.states.flatMap((state) => (state === 'IN_PROGRESS' ? IN_PROGRESS_STATES : [state]));
        conditions.push(inList(db, 'e.state', states, params));
      }
      if (query.cursor !== undefined) conditions.push(`e.seq < ${params.add(Number(query.cursor))}`);
      const found = await adhoc<EventRow>(
        db,
        `SELECT e.seq, e.time, e.state, e.detail, e.response_body, m.spec, m.body
         FROM events e JOIN messages m ON m.seq = e.message_seq
         ${whereClause(conditions)} ORDER BY e.seq DESC LIMIT ${params.add(query.count + 1)}`,
        params.values,
      );
      return seqPage(found.slice(0, query.count), found.length > query.count, eventFromRow);
    },

    async listDeadLetters(selection: DeadLetterSelection) {
      return deadLetterPage(pg.sql, selection);
    },

    async getDeadLetter(dlqId) {
      return (await deadLetterPage(pg.sql, { dlqIds: [dlqId] })).items[0];
    },

    async replayDeadLetters(items, at) {
      if (items.length === 0) return [];
      const replayed = await pg.transaction(async (tx) => {
        const results: (EnqueueResult | undefined)[] = [];
        let dueAt: number | undefined;
        for (const { dlqId, message } of items) {
          // DELETE takes the entry's row lock: of two concurrent replays, the second finds it gone.
          if ((await exec(tx, 'DELETE FROM dead_letters WHERE dlq_id = $1', [dlqId])) === 0) {
            results.push(undefined);
            continue;
          }
          const inserted = await insertMessages(tx, [message], at);
          results.push(inserted.results[0]);
          dueAt = earliest(dueAt, inserted.dueAt);
        }
        return { results, dueAt };
      });
      pg.notifier.tell(replayed.dueAt);
      return replayed.results;
    },

    async deleteDeadLetters(selection: DeadLetterSelection) {
      return pg.transaction(async (db) => {
        const { rows, more } = await deadLetterRows(db, selection, 'd.seq', 'FOR UPDATE OF d');
        const seqs = rows.map((row) => row.seq);
        const deleted = seqs.length === 0 ? 0 : await exec(db, 'DELETE FROM dead_letters WHERE seq = ANY($1::bigint[])', [array(db, seqs, OID.int8)]);
        const last = rows.at(-1);
        return more && last ? { deleted, cursor: String(last.seq) } : { deleted };
      });
    },
  };
}
