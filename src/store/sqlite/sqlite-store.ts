/**
 * The embedded SQLite store (better-sqlite3, WAL). Every port verb runs as one
 * SQLite transaction; better-sqlite3 is synchronous, so a transaction never
 * interleaves with another on this connection. Each area of the port is its
 * own module (messages.ts, queues.ts, …); this file opens the file, recovers
 * what the previous process left in flight, and composes the areas.
 *
 * Durability: WAL with synchronous=NORMAL survives a crash of the process
 * (kill -9) with every committed transaction; `synchronous: 'full'` also
 * survives power loss at the cost of an fsync per commit.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { guardDriverFailures } from '../driver-failures.js';
import type { CredentialStore, MaintenanceStore, Store } from '../port.js';
import { credentialStatements, credentialsFromRow, purgeStatements, signingKeysFromRow, type CredentialRow } from '../sql-common.js';
import { sqliteFlowControls } from './flow-control.js';
import { sqliteHistory } from './history.js';
import { sqliteInstances } from './instances.js';
import { sqliteMessages } from './messages.js';
import { migrate } from './migrations.js';
import { sqliteQueues } from './queues.js';
import { sqliteSchedules } from './schedules.js';
import { Sql } from './sql.js';
import { sqliteStreams } from './streams.js';
import { sqliteUrlGroups } from './url-groups.js';
import { sqliteWorkKeys } from './work-keys.js';

export interface SqliteStoreOptions {
  /** A file path, or ':memory:'. */
  path: string;
  synchronous?: 'normal' | 'full';
  /** Now, by the caller's clock: leases of the previous process end at this time (the store reads no clock). */
  openedAt: number;
}

export function openSqliteStore(options: SqliteStoreOptions): Store {
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true, mode: 0o700 });
  const db = new Database(options.path);
  // Exclusive locking: one Courier process owns the file, which is what
  // makes releasing every lease at open (below) safe.
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('foreign_keys = OFF');
  migrate(db, options.openedAt);
  const sql = new Sql(db);
  releaseLeasesOfDeadProcess(sql, options.openedAt);
  const store: Store = {
    ...maintenance(sql),
    ...credentials(sql),
    ...sqliteMessages(sql),
    ...sqliteHistory(sql),
    ...sqliteQueues(sql),
    ...sqliteFlowControls(sql),
    ...sqliteUrlGroups(sql),
    ...sqliteSchedules(sql),
    ...sqliteInstances(sql),
    ...sqliteWorkKeys(sql),
    ...sqliteStreams(sql),
  };
  return guardDriverFailures(store, isDriverFailure);
}

/**
 * Whoever held leases before this open is gone (the file is exclusive), so
 * its in-flight messages are due again now rather than when the lease ends.
 * A cancel asked for during that attempt is honoured here.
 */
function releaseLeasesOfDeadProcess(sql: Sql, now: number): void {
  sql.transaction(() => {
    const canceled = sql
      .stmt(`UPDATE messages SET state = 'canceled', finished_at = ?, lease_id = NULL, lease_until = NULL
             WHERE state = 'active' AND cancel_requested = 1 RETURNING seq`)
      .all(now) as { seq: number }[];
    for (const { seq } of canceled) sql.appendEvent(seq, now, 'CANCELED');
    sql.stmt(`UPDATE messages SET state = 'pending', lease_id = NULL, lease_until = NULL WHERE state = 'active'`).run();
  });
}

/**
 * The engine's own failures to reach the file: busy, I/O, full disk, a file
 * that cannot be opened or is corrupt. Constraint violations and misuse are
 * bugs, not outages, and stay internal errors.
 */
const OUTAGE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|CORRUPT|NOTADB|READONLY|PROTOCOL)/;

function isDriverFailure(error: unknown): boolean {
  if (error instanceof Database.SqliteError) return OUTAGE_CODES.test(error.code);
  // better-sqlite3 throws a TypeError once the connection is closed.
  return error instanceof TypeError && /database connection is not open/.test(error.message);
}

const CREDENTIALS = credentialStatements(() => '?');
const PURGE = purgeStatements(() => '?');

function credentials(sql: Sql): CredentialStore {
  return {
    async ensureCredentials(proposed) {
      sql.stmt(CREDENTIALS.insertUnlessPresent).run(proposed.token, proposed.currentSigningKey, proposed.nextSigningKey);
      return credentialsFromRow(sql.stmt(CREDENTIALS.select).get() as CredentialRow);
    },

    async rotateSigningKeys(freshNext) {
      return signingKeysFromRow(sql.stmt(CREDENTIALS.rotate).get(freshNext) as CredentialRow | undefined);
    },
  };
}

/** The backlog from the counts migration 6's triggers keep, not a scan of messages. */
const SQLITE_STATS = `SELECT
  coalesce(sum(n) FILTER (WHERE name IN ('messages:waiting', 'messages:pending')), 0) AS pending,
  coalesce(sum(n) FILTER (WHERE name = 'messages:active'), 0) AS active,
  coalesce(sum(n) FILTER (WHERE name = 'dead_letters'), 0) AS dead_letters
  FROM row_counts`;

function maintenance(sql: Sql): MaintenanceStore {
  return {
    capabilities: { exclusive: true, pushNotify: false },

    async stats() {
      // O(1): it runs on the event loop, and health probes poll it (migration 6 keeps these counts).
      const row = sql.stmt(SQLITE_STATS).get() as { pending: number; active: number; dead_letters: number };
      return { pending: row.pending, active: row.active, deadLetters: row.dead_letters };
    },

    async purge(request) {
      return sql.transaction(() => {
        const deadLetters = sql.stmt(PURGE.deadLetters).run(request.deadLettersBefore).changes;
        const events = sql.stmt(PURGE.events).run(request.logsBefore).changes;
        const messages = sql.stmt(PURGE.messages).run(request.logsBefore).changes;
        sql.stmt(PURGE.dedupKeys).run(request.dedupBefore);
        sql.stmt(PURGE.workKeys).run(request.dedupBefore);
        return { messages, events, deadLetters };
      });
    },

    async ping() {
      sql.stmt('SELECT 1').get();
    },

    async close() {
      if (sql.db.open) sql.db.close();
    },
  };
}
