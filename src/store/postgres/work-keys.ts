/**
 * Work-key claims on PostgreSQL (the worker kit's shared de-duplication; see
 * Store.claimWorkKey). Nodes race for one key, so a claim is one INSERT … ON
 * CONFLICT: a concurrent claimer waits on the row the winner wrote, then sees
 * its live expiry and changes nothing.
 */
import type { WorkKeyStore } from '../port.js';
import { exec, type Pg } from './sql.js';

/** The port's work-key verbs. */
export function postgresWorkKeys(pg: Pg): WorkKeyStore {
  return {
    async claimWorkKey(scope: string, key: string, expiresAt: number, at: number) {
      const db = pg.sql;
      const changed = await exec(
        db,
        `INSERT INTO work_keys (scope, key, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (scope, key) DO UPDATE SET expires_at = excluded.expires_at
         WHERE work_keys.expires_at <= $4`,
        [scope, key, expiresAt, at],
      );
      return changed > 0;
    },

    async releaseWorkKey(scope: string, key: string) {
      const db = pg.sql;
      return (await exec(db, 'DELETE FROM work_keys WHERE scope = $1 AND key = $2', [scope, key])) > 0;
    },
  };
}
