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
  {
    version: 3,
    name: 'queues, flow control, URL groups, schedules; messages gain the waiting state and queue slots',
    // SQLite cannot change a CHECK constraint in place, so messages is rebuilt
    // (the documented 12-step procedure, inside this migration's transaction).
    sql: `
      CREATE TABLE messages_v3 (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL CHECK (state IN ('waiting', 'pending', 'active', 'delivered', 'failed', 'canceled')),
        due_at INTEGER NOT NULL,
        retried INTEGER NOT NULL DEFAULT 0,
        lease_id TEXT,
        lease_until INTEGER,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        finished_at INTEGER,
        created_at INTEGER NOT NULL,
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
        -- The queue whose slot this message holds (from admission, or taken
        -- over from its source as a callback) until it finishes.
        queue_slot TEXT,
        spec TEXT NOT NULL,
        body BLOB NOT NULL
      );
      INSERT INTO messages_v3 (seq, id, state, due_at, retried, lease_id, lease_until, cancel_requested, finished_at,
        created_at, origin, url, host, path, labels, caller_ip, topic_name, schedule_id, queue_name, flow_control_key,
        spec, body)
      SELECT seq, id, state, due_at, retried, lease_id, lease_until, cancel_requested, finished_at,
        created_at, origin, url, host, path, labels, caller_ip, topic_name, schedule_id, queue_name, flow_control_key,
        spec, body FROM messages;
      DROP TABLE messages;
      ALTER TABLE messages_v3 RENAME TO messages;

      -- Claim paths: free messages by due time; flow-controlled ones per key.
      CREATE INDEX messages_pending_due ON messages (due_at) WHERE state = 'pending' AND flow_control_key IS NULL;
      CREATE INDEX messages_pending_key ON messages (flow_control_key, due_at)
        WHERE state = 'pending' AND flow_control_key IS NOT NULL;
      CREATE INDEX messages_active_key ON messages (flow_control_key) WHERE state = 'active' AND flow_control_key IS NOT NULL;
      CREATE INDEX messages_active_lease ON messages (lease_until) WHERE state = 'active';
      CREATE INDEX messages_waiting ON messages (queue_name, due_at, seq) WHERE state = 'waiting';
      CREATE INDEX messages_queue_slot ON messages (queue_slot) WHERE queue_slot IS NOT NULL;
      CREATE INDEX messages_schedule ON messages (schedule_id, seq) WHERE schedule_id IS NOT NULL;
      CREATE INDEX messages_finished ON messages (finished_at) WHERE finished_at IS NOT NULL;

      CREATE TABLE queues (
        name TEXT PRIMARY KEY,
        parallelism INTEGER NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE flow_control_keys (
        key TEXT PRIMARY KEY,
        parallelism INTEGER,
        rate INTEGER,
        period_ms INTEGER NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        pinned_parallelism INTEGER NOT NULL DEFAULT 0,
        pinned_rate INTEGER NOT NULL DEFAULT 0,
        rate_count INTEGER NOT NULL DEFAULT 0,
        rate_period_start INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE url_groups (
        name TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE url_group_endpoints (
        seq INTEGER PRIMARY KEY,
        group_name TEXT NOT NULL,
        name TEXT,
        url TEXT NOT NULL
      );
      CREATE INDEX url_group_endpoints_group ON url_group_endpoints (group_name, seq);

      CREATE TABLE schedules (
        id TEXT PRIMARY KEY,
        cron TEXT NOT NULL,
        destination TEXT NOT NULL,
        template TEXT NOT NULL,
        body BLOB NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        next_at INTEGER,
        last_at INTEGER,
        last_message_ids TEXT NOT NULL DEFAULT '[]',
        last_error TEXT
      ) WITHOUT ROWID;
      CREATE INDEX schedules_next ON schedules (next_at) WHERE paused = 0 AND next_at IS NOT NULL;
      CREATE INDEX schedules_destination ON schedules (destination);
    `,
  },
  {
    version: 4,
    name: 'instance groups and their instances (the gateway)',
    sql: `
      CREATE TABLE instance_groups (
        name TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      -- Registration and health are JSON (rows.ts): the gateway reads whole
      -- groups and never filters on their fields in SQL.
      CREATE TABLE instances (
        group_name TEXT NOT NULL,
        id TEXT NOT NULL,
        registration TEXT NOT NULL,
        last_heartbeat INTEGER NOT NULL,
        registered_at INTEGER NOT NULL,
        health TEXT NOT NULL,
        PRIMARY KEY (group_name, id)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 5,
    name: 'work keys (the worker kit de-duplicates through them)',
    sql: `
      CREATE TABLE work_keys (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (scope, key)
      ) WITHOUT ROWID;
      CREATE INDEX work_keys_expiry ON work_keys (expires_at);
    `,
  },
  {
    version: 6,
    name: 'row counts kept by triggers, so the backlog figures cost one read, not a scan',
    // /health/detailed counted messages by state on the event loop: with 200,000 stored, each count
    // held every publish for tens of milliseconds. Triggers keep the counts in the same transaction as
    // the change, so every verb (and any future one) keeps them true without knowing about them.
    // HAZARD: a migration that rebuilds messages or dead_letters (as migration 3 did) drops these
    // triggers with the table: it must recreate them and recount.
    sql: `
      CREATE TABLE row_counts (
        name TEXT PRIMARY KEY,
        n INTEGER NOT NULL
      ) WITHOUT ROWID;
      INSERT INTO row_counts (name, n) SELECT 'messages:' || state, count(*) FROM messages GROUP BY state;
      INSERT INTO row_counts (name, n) SELECT 'dead_letters', count(*) FROM dead_letters;

      CREATE TRIGGER messages_count_insert AFTER INSERT ON messages BEGIN
        INSERT INTO row_counts (name, n) VALUES ('messages:' || new.state, 1) ON CONFLICT (name) DO UPDATE SET n = n + 1;
      END;
      CREATE TRIGGER messages_count_state AFTER UPDATE OF state ON messages WHEN old.state IS NOT new.state BEGIN
        UPDATE row_counts SET n = n - 1 WHERE name = 'messages:' || old.state;
        INSERT INTO row_counts (name, n) VALUES ('messages:' || new.state, 1) ON CONFLICT (name) DO UPDATE SET n = n + 1;
      END;
      CREATE TRIGGER messages_count_delete AFTER DELETE ON messages BEGIN
        UPDATE row_counts SET n = n - 1 WHERE name = 'messages:' || old.state;
      END;
      CREATE TRIGGER dead_letters_count_insert AFTER INSERT ON dead_letters BEGIN
        INSERT INTO row_counts (name, n) VALUES ('dead_letters', 1) ON CONFLICT (name) DO UPDATE SET n = n + 1;
      END;
      CREATE TRIGGER dead_letters_count_delete AFTER DELETE ON dead_letters BEGIN
        UPDATE row_counts SET n = n - 1 WHERE name = 'dead_letters';
      END;
    `,
  },
  {
    version: 7,
    name: 'task streams and their events',
    // Ids compare byte-wise (SQLite's BINARY collation), the order listStreams pages in on every store.
    sql: `
      CREATE TABLE streams (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL CHECK (state IN ('open', 'ended', 'failed')),
        last_seq INTEGER NOT NULL,
        first_seq INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        ended_at INTEGER,
        message_id TEXT,
        writer_closed INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID;
      CREATE INDEX streams_state ON streams (state, id);
      -- Retention's two scans: open streams by last write, closed ones by end.
      CREATE INDEX streams_idle ON streams (updated_at) WHERE state = 'open';
      CREATE INDEX streams_ended ON streams (ended_at) WHERE ended_at IS NOT NULL;
      CREATE TABLE stream_events (
        stream_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        json INTEGER NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (stream_id, seq)
      ) WITHOUT ROWID;
    `,
  },
];

/** Applies the migrations not yet applied, each in its own transaction; `at` is recorded as when. */
export function migrate(db: Database, at: number): void {
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
        at,
      );
    })();
  }
}
