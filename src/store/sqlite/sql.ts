/** The connection helpers every SQLite table module shares: a bounded statement cache and the event log. */
import type Database from 'better-sqlite3';

/**
 * Filters with `IN (?, ?, …)` lists make a distinct statement per list length,
 * so the cache is bounded; the hot statements are re-prepared at once.
 */
const MAX_CACHED_STATEMENTS = 256;

export class Sql {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(readonly db: Database.Database) {}

  stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      if (this.statements.size >= MAX_CACHED_STATEMENTS) this.statements.clear();
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /** Runs `work` as one transaction (nested calls join the outer one). */
  transaction<T>(work: () => T): T {
    return this.db.transaction(work)();
  }

  appendEvent(messageSeq: number, time: number, state: string, detail?: string, body?: Buffer | null): void {
    this.stmt('INSERT INTO events (message_seq, time, state, detail, response_body) VALUES (?, ?, ?, ?, ?)').run(
      messageSeq,
      time,
      state,
      detail ?? null,
      body ?? null,
    );
  }

  /** A finished message leaves its lease and its queue slot. */
  finish(seq: number, state: 'delivered' | 'failed' | 'canceled', at: number): void {
    this.stmt(
      `UPDATE messages SET state = ?, finished_at = ?, lease_id = NULL, lease_until = NULL, queue_slot = NULL
       WHERE seq = ?`,
    ).run(state, at, seq);
  }

  /** CANCEL_REQUESTED + CANCELED for a message that is not in flight. */
  cancelNow(seq: number, at: number): void {
    this.appendEvent(seq, at, 'CANCEL_REQUESTED');
    this.finish(seq, 'canceled', at);
    this.appendEvent(seq, at, 'CANCELED');
  }
}

export const placeholders = (count: number): string => Array.from({ length: count }, () => '?').join(', ');

/** Thrown inside a transaction to roll it back; carries the caller's answer out. */
export class Rollback<T> extends Error {
  constructor(readonly answer: T) {
    super('rollback');
  }
}
