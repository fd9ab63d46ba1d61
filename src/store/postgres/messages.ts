/**
 * Messages on PostgreSQL: accepting, leasing, settling and canceling. The
 * statements are in writes.ts, claims.ts and settle.ts; this area decides
 * which need a transaction, retries lost deadlocks, and tells other nodes of
 * work it made due (after the commit, so they can see it).
 */
import type { MessageStore, SettleResult } from '../port.js';
import { specFromRow } from '../rows.js';
import * as claims from './claims.js';
import { cancel, settle } from './settle.js';
import { earliest, first, type Pg } from './sql.js';
import { insertMessages, needsTransaction } from './writes.js';

/** The port's message verbs. */
export function postgresMessages(pg: Pg): MessageStore {
  return {
    async enqueue(messages, at, handoff) {
      if (messages.length === 0) return [];
      // A plain batch is one INSERT statement, atomic by itself: no transaction round trips.
      const write = (db: Parameters<typeof insertMessages>[0]) => insertMessages(db, messages, at, handoff);
      const inserted = needsTransaction(messages) ? await pg.transaction(write) : await pg.retrying(() => write(pg.sql));
      pg.notifier.tell(inserted.dueAt);
      return inserted.results;
    },

    async getMessage(messageId) {
      const row = await first<{ state: string; retried: number; due_at: number; spec: string; body: Buffer }>(
        pg.sql,
        `SELECT state, retried, due_at, spec, body FROM messages WHERE id = $1 AND state IN ('waiting', 'pending', 'active')`,
        [messageId],
      );
      if (!row) return undefined;
      return { spec: specFromRow(row), state: row.state === 'active' ? 'active' : 'pending', retried: row.retried, dueAt: row.due_at };
    },

    async claimDue(request) {
      return pg.retrying(() => claims.claimDue(pg.sql, request, (work) => pg.begin(work)));
    },

    async extendLeases(leases, until) {
      await pg.retrying(() => claims.extendLeases(pg.sql, leases, until));
    },

    async nextDueAt(now) {
      return claims.nextDueAt(pg.sql, now);
    },

    async settle(batch) {
      if (batch.length === 0) return [];
      const distinct = new Set(batch.map((s) => s.messageId)).size === batch.length;
      const hasFollowUps = batch.some((s) => s.followUps.length > 0);
      // The common batch is one statement, atomic by itself (settle.ts).
      const settled =
        distinct && !hasFollowUps
          ? await pg.retrying(() => settle(pg.sql, batch))
          : await pg.transaction(async (tx) => {
              // One message twice in a batch: settled one after the other, as the port's sequential reading says.
              const parts = distinct ? [batch] : batch.map((s) => [s]);
              const results: SettleResult[] = [];
              let dueAt: number | undefined;
              for (const part of parts) {
                const outcome = await settle(tx, part);
                results.push(...outcome.results);
                dueAt = earliest(dueAt, outcome.dueAt);
              }
              return { results, dueAt };
            });
      pg.notifier.tell(settled.dueAt);
      return settled.results;
    },

    async cancel(selection, at) {
      const { affected, freed } = await pg.transaction((tx) => cancel(tx, selection, at));
      // A canceled message may have held a queue slot: the next one may start.
      if (freed) pg.notifier.tell(at);
      return affected;
    },

    /** LISTEN on the driver's dedicated connection; it re-listens by itself after a reconnect. */
    async watchWork(onWork) {
      const { unlisten } = await pg.sql.listen(pg.channel, (payload) => {
        const dueAt = Number(payload);
        if (Number.isFinite(dueAt)) onWork(dueAt);
      });
      return async () => {
        // close() already ended the listening connection, and with it the LISTEN.
        if (!pg.closed) await unlisten();
      };
    },
  };
}
