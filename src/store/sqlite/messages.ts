/**
 * Messages on SQLite: accepting (with dedup, queues, flow-control keys and the
 * hand-off), leasing, settling and canceling. Each verb is one transaction on
 * the one connection, so none interleaves with another.
 */
import { randomUUID } from 'node:crypto';
import type { MessageSpec, NewMessage } from '../../core/message.js';
import type { CancelSelection, ClaimRequest, EnqueueResult, Handoff, Lease, MessageStore, SettleResult, Settlement } from '../port.js';
import { responseBodyColumn, responseDetail, specColumns, specFromRow } from '../rows.js';
import { inList, messageFilterCondition, whereClause, type Condition } from './filters.js';
import { applyMessageConfig, countAttempts, flowControlCandidates, flowControlNextDueAt, type Candidate } from './flow-control.js';
import { admitWaiting, ensureQueue, queuesNextDueAt } from './queues.js';
import type { Sql } from './sql.js';

interface MessageStateRow {
  seq: number;
  state: string;
  lease_id: string | null;
  cancel_requested: number;
}

/** The lease a hand-off gives a message it stores as active, or undefined to store it pending. */
export type OfferLease = (spec: MessageSpec, origin: string) => { id: string; until: number } | undefined;

/**
 * Inserts one message (or finds its dedup holder): waiting in its queue,
 * pending, or active under the lease `offerLease` returns for its origin.
 * Runs inside a caller's transaction.
 */
export function insertMessage(
  sql: Sql,
  message: NewMessage,
  at: number,
  offerLease?: OfferLease,
): EnqueueResult {
  const { spec, dedup } = message;
  if (dedup) {
    const holder = sql.stmt('SELECT message_id, expires_at FROM dedup_keys WHERE key = ?').get(dedup.key) as
      | { message_id: string; expires_at: number }
      | undefined;
    if (holder && holder.expires_at > at) return { messageId: holder.message_id, deduplicated: true };
    sql.stmt(
      `INSERT INTO dedup_keys (key, message_id, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at`,
    ).run(dedup.key, spec.messageId, dedup.expiresAt);
  }
  const columns = specColumns(spec);
  if (spec.flowControl) applyMessageConfig(sql, spec.flowControl, at);
  const waits = spec.queueName !== undefined && message.queueSlot === undefined;
  if (waits) ensureQueue(sql, spec.queueName!, at);
  const gated = waits || spec.flowControl !== undefined || message.queueSlot !== undefined;
  const lease = gated ? undefined : offerLease?.(spec, columns.origin);
  const { seq } = sql.stmt(
    `INSERT INTO messages (id, state, lease_id, lease_until, due_at, created_at, origin, url, host, path, labels,
       caller_ip, topic_name, schedule_id, queue_name, flow_control_key, queue_slot, spec, body)
     VALUES (@id, @state, @lease_id, @lease_until, @due_at, @created_at, @origin, @url, @host, @path, @labels,
       @caller_ip, @topic_name, @schedule_id, @queue_name, @flow_control_key, @queue_slot, @spec, @body)
     RETURNING seq`,
  ).get({
    ...columns,
    state: lease ? 'active' : waits ? 'waiting' : 'pending',
    lease_id: lease?.id ?? null,
    lease_until: lease?.until ?? null,
    queue_slot: message.queueSlot ?? null,
  }) as { seq: number };
  sql.appendEvent(seq, at, 'CREATED');
  if (!lease) return { messageId: spec.messageId, deduplicated: false };
  sql.appendEvent(seq, at, 'ACTIVE');
  return { messageId: spec.messageId, deduplicated: false, leaseId: lease.id };
}

function settleOne(sql: Sql, settlement: Settlement): SettleResult {
  const row = sql.stmt('SELECT seq, state, lease_id, cancel_requested FROM messages WHERE id = ?').get(
    settlement.messageId,
  ) as MessageStateRow | undefined;
  if (!row || row.state !== 'active' || row.lease_id !== settlement.leaseId) return 'leaseLost';
  const { at, response } = settlement;
  const body = responseBodyColumn(response);
  let result: SettleResult = 'settled';
  switch (settlement.kind) {
    case 'ack':
      sql.finish(row.seq, 'delivered', at);
      sql.appendEvent(row.seq, at, 'DELIVERED', responseDetail(response), body);
      break;
    case 'retry':
      sql.appendEvent(row.seq, at, 'ERROR', responseDetail(response), body);
      if (row.cancel_requested) {
        sql.finish(row.seq, 'canceled', at);
        sql.appendEvent(row.seq, at, 'CANCELED');
        result = 'canceled';
      } else {
        sql.stmt(
          `UPDATE messages SET state = 'pending', due_at = ?, retried = retried + 1, lease_id = NULL, lease_until = NULL
           WHERE seq = ?`,
        ).run(settlement.nextAt, row.seq);
        sql.appendEvent(row.seq, at, 'RETRY', JSON.stringify({ nextDeliveryTime: settlement.nextAt }));
      }
      break;
    case 'deadLetter':
      sql.finish(row.seq, 'failed', at);
      sql.appendEvent(row.seq, at, 'ERROR', responseDetail(response), body);
      sql.appendEvent(row.seq, at, 'FAILED', responseDetail(undefined, { error: settlement.failure }));
      sql.stmt(
        `INSERT INTO dead_letters (dlq_id, message_seq, created_at, response_status, response, response_body)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ).run(settlement.dlqId, row.seq, at, response.status ?? null, responseDetail(response), body);
      break;
  }
  for (const followUp of settlement.followUps) insertMessage(sql, followUp, at);
  return result;
}

/** The port's message verbs. */
export function sqliteMessages(sql: Sql): MessageStore {
  return {
    async enqueue(messages: NewMessage[], at: number, handoff?: Handoff) {
      if (!handoff || handoff.limit <= 0) {
        return sql.transaction(() => messages.map((message) => insertMessage(sql, message, at)));
      }
      const lease = { id: randomUUID(), until: at + handoff.leaseMs };
      const excluded = new Set(handoff.excludeOrigins ?? []);
      let left = handoff.limit;
      // Offered only to messages actually stored (a deduplicated one never gets here), so `left` counts hand-offs.
      const offerLease = (spec: MessageSpec, origin: string) => {
        if (left === 0 || spec.notBefore > at || excluded.has(origin)) return undefined;
        left -= 1;
        return lease;
      };
      return sql.transaction(() => messages.map((message) => insertMessage(sql, message, at, offerLease)));
    },

    async getMessage(messageId: string) {
      const row = sql.stmt(
        `SELECT state, retried, due_at, spec, body FROM messages WHERE id = ? AND state IN ('waiting', 'pending', 'active')`,
      ).get(messageId) as { state: 'waiting' | 'pending' | 'active'; retried: number; due_at: number; spec: string; body: Buffer } | undefined;
      if (!row) return undefined;
      const state = row.state === 'active' ? 'active' : 'pending';
      return { spec: specFromRow(row), state, retried: row.retried, dueAt: row.due_at };
    },

    async claimDue(request: ClaimRequest) {
      const { now, limit, leaseMs } = request;
      const exclude = request.excludeOrigins ?? [];
      const leaseId = randomUUID();
      const until = now + leaseMs;
      const originCondition = exclude.length > 0 ? `AND origin NOT IN (${exclude.map(() => '?').join(', ')})` : '';
      return sql.transaction(() => {
        admitWaiting(sql, now);
        // Oldest due first across all kinds, a stalled message (expired lease) due at its lease end;
        // otherwise a steady backlog of due pending work would starve it. Each kind uses its own index.
        const free = sql.stmt(
          `SELECT seq, due_at AS at FROM messages WHERE state = 'pending' AND flow_control_key IS NULL AND due_at <= ?
           ${originCondition} ORDER BY due_at LIMIT ?`,
        ).all(now, ...exclude, limit) as Candidate[];
        const stalled = sql.stmt(
          `SELECT seq, lease_until AS at, flow_control_key AS key FROM messages WHERE state = 'active' AND lease_until <= ? ${originCondition}
           ORDER BY lease_until LIMIT ?`,
        ).all(now, ...exclude, limit) as Candidate[];
        const keyed = flowControlCandidates(sql, now, limit, originCondition, exclude);
        const chosen = [...free, ...stalled, ...keyed].sort((a, b) => a.at - b.at).slice(0, limit);
        const lease = sql.stmt(
          `UPDATE messages SET state = 'active', lease_id = ?, lease_until = ? WHERE seq = ?
           RETURNING seq, id, retried, spec, body`,
        );
        const attemptsByKey = new Map<string, number>();
        const claimed = chosen.map(({ seq, key }) => {
          const row = lease.get(leaseId, until, seq) as { seq: number; retried: number; spec: string; body: Buffer };
          sql.appendEvent(row.seq, now, 'ACTIVE');
          // A redelivery after an expired lease is an attempt too, and counts against its key's rate.
          if (key) attemptsByKey.set(key, (attemptsByKey.get(key) ?? 0) + 1);
          return { spec: specFromRow(row), retried: row.retried, leaseId };
        });
        for (const [key, attempts] of attemptsByKey) countAttempts(sql, key, attempts, now);
        return claimed;
      });
    },

    async extendLeases(leases: Lease[], until: number) {
      const extend = sql.stmt(
        `UPDATE messages SET lease_until = ? WHERE id = ? AND lease_id = ? AND state = 'active'`,
      );
      sql.transaction(() => {
        for (const lease of leases) extend.run(until, lease.messageId, lease.leaseId);
      });
    },

    async nextDueAt(now: number) {
      const row = sql.stmt(
        `SELECT min(at) AS at FROM (
           SELECT min(due_at) AS at FROM messages WHERE state = 'pending' AND flow_control_key IS NULL AND due_at > ?
           UNION ALL SELECT min(lease_until) FROM messages WHERE state = 'active' AND lease_until > ?)`,
      ).get(now, now) as { at: number | null };
      const times = [row.at ?? undefined, queuesNextDueAt(sql, now), flowControlNextDueAt(sql, now)].filter(
        (at): at is number => at !== undefined,
      );
      return times.length > 0 ? Math.min(...times) : undefined;
    },

    async settle(batch: Settlement[]) {
      return sql.transaction(() => batch.map((settlement) => settleOne(sql, settlement)));
    },

    async cancel(selection: CancelSelection, at: number) {
      const condition: Condition = { sql: [`m.state IN ('waiting', 'pending', 'active')`, 'm.cancel_requested = 0'], params: [] };
      let limit = -1;
      if ('messageIds' in selection) {
        if (selection.messageIds.length === 0) return 0;
        inList('m.id', selection.messageIds, condition);
      } else {
        if ('filter' in selection) {
          const filter = messageFilterCondition(selection.filter, 'm.created_at');
          condition.sql.push(...filter.sql);
          condition.params.push(...filter.params);
        }
        limit = selection.limit ?? -1;
      }
      return sql.transaction(() => {
        const rows = sql.stmt(
          `SELECT m.seq, m.state FROM messages m ${whereClause(condition)} ORDER BY m.seq LIMIT ?`,
        ).all(...condition.params, limit) as { seq: number; state: string }[];
        for (const row of rows) {
          if (row.state !== 'active') {
            sql.cancelNow(row.seq, at);
          } else {
            sql.appendEvent(row.seq, at, 'CANCEL_REQUESTED');
            sql.stmt('UPDATE messages SET cancel_requested = 1 WHERE seq = ?').run(row.seq);
          }
        }
        return rows.length;
      });
    },

    /** One process owns the file and wakes itself on its own writes: nothing to watch. */
    async watchWork() {
      return async () => undefined;
    },
  };
}
