/** Work-key claims on SQLite (the worker kit's shared de-duplication; see Store.claimWorkKey). */
import type { Sql } from './sql.js';

export class SqliteWorkKeys {
  constructor(private readonly sql: Sql) {}

  /** One upsert: it inserts a free key, or takes over an expired claim; a live claim leaves the row unchanged. */
  claim(scope: string, key: string, expiresAt: number, at: number): boolean {
    return (
      this.sql
        .stmt(`INSERT INTO work_keys (scope, key, expires_at) VALUES (?, ?, ?)
               ON CONFLICT (scope, key) DO UPDATE SET expires_at = excluded.expires_at
               WHERE work_keys.expires_at <= ?`)
        .run(scope, key, expiresAt, at).changes > 0
    );
  }

  release(scope: string, key: string): boolean {
    return this.sql.stmt('DELETE FROM work_keys WHERE scope = ? AND key = ?').run(scope, key).changes > 0;
  }

  purge(expiredBefore: number): void {
    this.sql.stmt('DELETE FROM work_keys WHERE expires_at < ?').run(expiredBefore);
  }
}
