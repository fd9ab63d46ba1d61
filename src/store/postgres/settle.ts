/**
 * Settling attempt outcomes and cancelling on PostgreSQL.
 */
import type { CancelSelection, SettleResult, Settlement } from '../port.js';
import { responseBodyColumn, responseDetail } from '../rows.js';
import { inList, messageFilterConditions, whereClause } from './filters.js';
import { array, earliest, exec, OID, Params, rows, type Db } from './sql.js';
import { appendEvents, insertMessages, type NewEvent } from './writes.js';

/**
 * One statement settles a batch: the lease check is the UPDATE's WHERE (id,
 * lease id, state active), so a settle whose lease is gone changes nothing,
 * and of two concurrent settles of one lease the second, after waiting for the
 * first's row lock, re-checks the WHERE against the settled row and misses.
 * The events and DLQ entries of the settled rows are written by the same
 * statement, from its RETURNING. A retry of a message whose cancel was
 * requested ends canceled instead.
 * $1: the settlements as a JSON array (see INSERT_MESSAGES for why JSON), bodies in base64, `ord` from 1.
 */
const SETTLE = `
  WITH s AS (
    SELECT id, lease_id, kind, at, next_at, detail, decode(body, 'base64') AS body, status, dlq_id, failed_detail, ord
    FROM json_to_recordset($1::text::json) AS s(id text, lease_id text, kind text, at bigint, next_at bigint,
      detail text, body text, status int, dlq_id text, failed_detail text, ord int)
  ), u AS (
    UPDATE messages m SET
      state = CASE
        WHEN s.kind = 'ack' THEN 'delivered' WHEN s.kind = 'deadLetter' THEN 'failed'
        WHEN m.cancel_requested THEN 'canceled' ELSE 'pending' END,
      due_at = CASE WHEN s.kind = 'retry' AND NOT m.cancel_requested THEN s.next_at ELSE m.due_at END,
      retried = CASE WHEN s.kind = 'retry' AND NOT m.cancel_requested THEN m.retried + 1 ELSE m.retried END,
      finished_at = CASE WHEN s.kind = 'retry' AND NOT m.cancel_requested THEN NULL ELSE s.at END,
      lease_id = NULL,
      lease_until = NULL,
      -- A finished message leaves its queue slot.
      queue_slot = CASE WHEN s.kind = 'retry' AND NOT m.cancel_requested THEN m.queue_slot ELSE NULL END
    FROM s JOIN messages old ON old.id = s.id
    WHERE m.id = s.id AND m.lease_id = s.lease_id AND m.state = 'active' AND old.seq = m.seq
    RETURNING m.seq, s.ord, s.kind, s.at, s.next_at, s.detail, s.body, s.status, s.dlq_id, s.failed_detail,
      m.cancel_requested, m.state, old.queue_slot IS NOT NULL OR m.flow_control_key IS NOT NULL AS frees_slot
  ), e AS (
    INSERT INTO events (message_seq, time, state, detail, response_body)
    SELECT u.seq, u.at, ev.state, ev.detail, ev.body FROM u CROSS JOIN LATERAL (VALUES
      (1, CASE WHEN u.kind = 'ack' THEN 'DELIVERED' ELSE 'ERROR' END, u.detail, u.body),
      (2, CASE WHEN u.kind = 'deadLetter' THEN 'FAILED' WHEN u.state = 'canceled' THEN 'CANCELED'
               WHEN u.kind = 'retry' THEN 'RETRY' END,
          CASE WHEN u.kind = 'deadLetter' THEN u.failed_detail
               WHEN u.state = 'pending' THEN '{"nextDeliveryTime":' || u.next_at || '}' END,
          NULL::bytea)
    ) AS ev(n, state, detail, body)
    WHERE ev.state IS NOT NULL ORDER BY u.ord, ev.n
  ), d AS (
    INSERT INTO dead_letters (dlq_id, message_seq, created_at, response_status, response, response_body)
    SELECT dlq_id, seq, at, status, detail, body FROM u WHERE kind = 'deadLetter' ORDER BY ord
  )
  SELECT u.ord, u.state, u.frees_slot FROM u`;

export interface Settled {
  results: SettleResult[];
  /** When the batch made work claimable: a retry's next time, a follow-up's, or now where a queue or key slot was freed. */
  dueAt?: number;
}

/**
 * Settles a batch whose message ids are distinct (the store splits others).
 * Follow-ups of the settled outcomes are stored after it, so with follow-ups
 * the caller runs this inside a transaction.
 */
export async function settle(db: Db, batch: readonly Settlement[]): Promise<Settled> {
  const settlements = batch.map((s, index) => ({
    id: s.messageId,
    lease_id: s.leaseId,
    kind: s.kind,
    at: s.at,
    next_at: s.kind === 'retry' ? s.nextAt : null,
    detail: responseDetail(s.response),
    body: responseBodyColumn(s.response)?.toString('base64') ?? null,
    status: s.response.status ?? null,
    dlq_id: s.kind === 'deadLetter' ? s.dlqId : null,
    failed_detail: s.kind === 'deadLetter' ? responseDetail(undefined, { error: s.failure }) : null,
    ord: index + 1,
  }));
  const settled = await rows<{ ord: number; state: string; frees_slot: boolean }>(db, SETTLE, [JSON.stringify(settlements)]);
  const outcome = new Map(settled.map((row) => [Number(row.ord), row]));
  let dueAt: number | undefined;
  const results = batch.map((settlement, index): SettleResult => {
    const row = outcome.get(index + 1);
    if (!row) return 'leaseLost';
    if (row.state === 'pending' && settlement.kind === 'retry') dueAt = earliest(dueAt, settlement.nextAt);
    if (row.frees_slot) dueAt = earliest(dueAt, settlement.at);
    return row.state === 'canceled' ? 'canceled' : 'settled';
  });
  const followUps = batch.flatMap((s, index) => (results[index] === 'leaseLost' ? [] : s.followUps));
  if (followUps.length > 0) dueAt = earliest(dueAt, (await insertMessages(db, followUps, batch[0]!.at)).dueAt);
  return dueAt === undefined ? { results } : { results, dueAt };
}

/** Cancels pending and waiting messages now; flags active ones for their attempt's outcome to decide. */
export async function cancel(db: Db, selection: CancelSelection, at: number): Promise<{ affected: number; freed: boolean }> {
  const params = new Params();
  const conditions = [`m.state IN ('waiting', 'pending', 'active')`, 'm.cancel_requested = false'];
  let limit = 'ALL';
  if ('messageIds' in selection) {
    if (selection.messageIds.length === 0) return { affected: 0, freed: false };
    conditions.push(inList(db, 'm.id', selection.messageIds, params));
  } else {
    if ('filter' in selection) conditions.push(...messageFilterConditions(db, selection.filter, 'm.created_at', params));
    if (selection.limit !== undefined) limit = params.add(selection.limit);
  }
  const selected = await db.unsafe(
    `SELECT m.seq, m.state FROM messages m ${whereClause(conditions)} ORDER BY m.seq LIMIT ${limit} FOR UPDATE`,
    params.values as never[],
  ) as unknown as { seq: number; state: string }[];
  const events: NewEvent[] = [];
  const now: number[] = [];
  const flagged: number[] = [];
  for (const row of selected) {
    events.push({ seq: row.seq, time: at, state: 'CANCEL_REQUESTED' });
    if (row.state === 'active') {
      flagged.push(row.seq);
    } else {
      now.push(row.seq);
      events.push({ seq: row.seq, time: at, state: 'CANCELED' });
    }
  }
  if (now.length > 0) await finishCanceled(db, now, at);
  if (flagged.length > 0) {
    await exec(db, 'UPDATE messages SET cancel_requested = true WHERE seq = ANY($1::bigint[])', [array(db, flagged, OID.int8)]);
  }
  await appendEvents(db, events);
  return { affected: selected.length, freed: now.length > 0 };
}

/** Canceled messages leave their lease and their queue slot. */
export async function finishCanceled(db: Db, seqs: readonly number[], at: number): Promise<void> {
  await exec(
    db,
    `UPDATE messages SET state = 'canceled', finished_at = $2, lease_id = NULL, lease_until = NULL, queue_slot = NULL
     WHERE seq = ANY($1::bigint[])`,
    [array(db, seqs, OID.int8), at],
  );
}
