/** Work-key claims on SQLite (the worker kit's shared de-duplication; see Store.claimWorkKey). */
import type { WorkKeyStore } from '../port.js';
import type { Sql } from './sql.js';

/** The port's work-key verbs. */
export function sqliteWorkKeys(sql: Sql): WorkKeyStore {
  return {
    /** One upsert: it inserts a free key, or takes over an expired claim; a live claim leaves the row unchanged. */
    async claimWorkKey(scope: string, key: string, expiresAt: number, at: number) {
      return (
        sql
          .stmt(`INSERT INTO work_keys (scope, key, expires_at) VALUES (?, ?, ?)
                 ON CONFLICT (scope, key) DO UPDATE SET expires_at = excluded.expires_at
                 WHERE work_keys.expires_at <= ?`)
          .run(scope, key, expiresAt, at).changes > 0
      );
    },

    async releaseWorkKey(scope: string, key: string) {
      return sql.stmt('DELETE FROM work_keys WHERE scope = ? AND key = ?').run(scope, key).changes > 0;
    },
  };
}
