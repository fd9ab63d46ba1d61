/**
 * Numbered migrations for the SQLite store. A migration that has landed is
 * never edited: add the next number instead.
 */
import type { Database } from 'better-sqlite3';

interface Migration {
  version: number;
  name: string;
  sql: string;
}

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'messages, events, dead letters, dedup keys, credentials',
    sql: `
      CREATE TABLE credentials (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        token TEXT NOT NULL,
        current_signing_key TEXT NOT NULL,
        next_signing_key TEXT NOT NULL
      );

      -- One row per message for its whole life; finished rows stay until the
      -- log retention ends, because log entries and DLQ entries show them.
      CREATE TABLE messages (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'delivered', 'failed', 'canceled')),
        due_at INTEGER NOT NULL,
        retried INTEGER NOT NULL DEFAULT 0,
        lease_id TEXT,
        lease_until INTEGER,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        finished_at INTEGER,
        created_at INTEGER NOT NULL,
        -- Denormalised from spec for filtering and claiming.
        origin TEXT NOT NULL,
        url TEXT NOT NULL,
        host TEXT NOT NULL,
        path TEXT NOT NULL,
        labels TEXT NOT NULL,
        caller_ip TEXT NOT NULL,
        topic_name TEXT,
        schedule_id TEXT,
        queue_name TEXT,
        flow_control_key TEXT,
        spec TEXT NOT NULL,
        body BLOB NOT NULL
      );
      -- Partial indexes keep the claim path independent of how many finished
      -- messages the table holds.
      CREATE INDEX messages_pending_due ON messages (due_at) WHERE state = 'pending';
      CREATE INDEX messages_active_lease ON messages (lease_until) WHERE state = 'active';
      CREATE INDEX messages_finished ON messages (finished_at) WHERE finished_at IS NOT NULL;

      CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        message_seq INTEGER NOT NULL,
        time INTEGER NOT NULL,
        state TEXT NOT NULL,
        detail TEXT,
        response_body BLOB
      );
      CREATE INDEX events_message ON events (message_seq);
      CREATE INDEX events_time ON events (time);

      CREATE TABLE dead_letters (
        seq INTEGER PRIMARY KEY,
        dlq_id TEXT NOT NULL UNIQUE,
        message_seq INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        response_status INTEGER,
        response TEXT NOT NULL,
        response_body BLOB
      );
      CREATE INDEX dead_letters_message ON dead_letters (message_seq);

      CREATE TABLE dedup_keys (
        key TEXT PRIMARY KEY,
        message_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    name: 'drop events_time: purge removes events with their message, never by time alone',
    sql: 'DROP INDEX IF EXISTS events_time;',
  },
];

export function migrate(db: Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const applied = new Set(
    db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[],
  );
  for (const migration of MIGRATIONS) {
    if (applied.has(migration.version)) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        migration.version,
        migration.name,
        Date.now(),
      );
    })();
  }
}
