/**
 * Numbered migrations for the PostgreSQL store. A migration that has landed is
 * never edited: add the next number instead. Several nodes may start at once
 * against one database, so all of them run under one transaction-scoped
 * advisory lock: the first node migrates, the others wait and find nothing left.
 */
import type { Client } from './sql.js';

interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Namespaces our advisory lock (first key) so it cannot collide with an application's locks on the same database. */
const MIGRATION_LOCK_CLASS = 0x636f7572; // 'cour'

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'messages, events, dead letters, dedup keys, credentials, queues, flow control, URL groups, schedules',
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
        seq BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL CHECK (state IN ('waiting', 'pending', 'active', 'delivered', 'failed', 'canceled')),
        due_at BIGINT NOT NULL,
        retried INTEGER NOT NULL DEFAULT 0,
        lease_id TEXT,
        lease_until BIGINT,
        cancel_requested BOOLEAN NOT NULL DEFAULT false,
        finished_at BIGINT,
        created_at BIGINT NOT NULL,
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
        -- The queue whose slot this message holds (from admission, or taken
        -- over from its source as a callback) until it finishes.
        queue_slot TEXT,
        spec TEXT NOT NULL,
        body BYTEA NOT NULL
      );
      -- Claim paths: each kind of claimable message has its own partial index,
      -- so claiming does not slow down as finished messages accumulate.
      CREATE INDEX messages_pending_due ON messages (due_at) WHERE state = 'pending' AND flow_control_key IS NULL;
      CREATE INDEX messages_pending_key ON messages (flow_control_key, due_at)
        WHERE state = 'pending' AND flow_control_key IS NOT NULL;
      CREATE INDEX messages_active_key ON messages (flow_control_key) WHERE state = 'active' AND flow_control_key IS NOT NULL;
      CREATE INDEX messages_active_lease ON messages (lease_until) WHERE state = 'active';
      CREATE INDEX messages_waiting ON messages (queue_name, due_at, seq) WHERE state = 'waiting';
      CREATE INDEX messages_queue_slot ON messages (queue_slot) WHERE queue_slot IS NOT NULL;
      CREATE INDEX messages_schedule ON messages (schedule_id, seq) WHERE schedule_id IS NOT NULL;
      CREATE INDEX messages_finished ON messages (finished_at) WHERE finished_at IS NOT NULL;

      CREATE TABLE events (
        seq BIGSERIAL PRIMARY KEY,
        message_seq BIGINT NOT NULL,
        time BIGINT NOT NULL,
        state TEXT NOT NULL,
        detail TEXT,
        response_body BYTEA
      );
      CREATE INDEX events_message ON events (message_seq);

      CREATE TABLE dead_letters (
        seq BIGSERIAL PRIMARY KEY,
        dlq_id TEXT NOT NULL UNIQUE,
        message_seq BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        response_status INTEGER,
        response TEXT NOT NULL,
        response_body BYTEA
      );
      CREATE INDEX dead_letters_message ON dead_letters (message_seq);

      CREATE TABLE dedup_keys (
        key TEXT PRIMARY KEY,
        message_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL
      );

      CREATE TABLE queues (
        name TEXT PRIMARY KEY,
        parallelism INTEGER NOT NULL,
        paused BOOLEAN NOT NULL DEFAULT false,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );

      CREATE TABLE flow_control_keys (
        key TEXT PRIMARY KEY,
        parallelism INTEGER,
        rate INTEGER,
        period_ms BIGINT NOT NULL,
        paused BOOLEAN NOT NULL DEFAULT false,
        pinned_parallelism BOOLEAN NOT NULL DEFAULT false,
        pinned_rate BOOLEAN NOT NULL DEFAULT false,
        rate_count INTEGER NOT NULL DEFAULT 0,
        rate_period_start BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );

      CREATE TABLE url_groups (
        name TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE TABLE url_group_endpoints (
        seq BIGSERIAL PRIMARY KEY,
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
        body BYTEA NOT NULL,
        paused BOOLEAN NOT NULL DEFAULT false,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        next_at BIGINT,
        last_at BIGINT,
        last_message_ids TEXT NOT NULL DEFAULT '[]',
        last_error TEXT
      );
      CREATE INDEX schedules_next ON schedules (next_at) WHERE paused = false AND next_at IS NOT NULL;
      CREATE INDEX schedules_destination ON schedules (destination);
    `,
  },
  {
    version: 2,
    name: 'instance groups and their instances (the gateway)',
    sql: `
      CREATE TABLE instance_groups (
        name TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      -- Registration and health are JSON text (rows.ts, shared with the other
      -- stores): the gateway reads whole groups and never filters on their fields.
      CREATE TABLE instances (
        group_name TEXT NOT NULL,
        id TEXT NOT NULL,
        registration TEXT NOT NULL,
        last_heartbeat BIGINT NOT NULL,
        registered_at BIGINT NOT NULL,
        health TEXT NOT NULL,
        PRIMARY KEY (group_name, id)
      );
    `,
  },
  {
    version: 3,
    name: 'work keys (the worker kit de-duplicates through them)',
    sql: `
      CREATE TABLE work_keys (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (scope, key)
      );
      CREATE INDEX work_keys_expiry ON work_keys (expires_at);
    `,
  },
  {
    version: 4,
    name: 'task streams and their events',
    // Ids are COLLATE "C" (byte-wise), so listStreams pages in the order every store uses,
    // whatever the database's collation, and the primary key's index serves that order.
    // data is BYTEA holding UTF-8: TEXT cannot hold U+0000, which a JSON string may carry.
    sql: `
      CREATE TABLE streams (
        id TEXT COLLATE "C" PRIMARY KEY,
        state TEXT NOT NULL CHECK (state IN ('open', 'ended', 'failed')),
        last_seq BIGINT NOT NULL,
        first_seq BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        ended_at BIGINT,
        message_id TEXT,
        writer_closed BOOLEAN NOT NULL DEFAULT false
      );
      CREATE INDEX streams_state ON streams (state, id);
      -- Retention's two scans: open streams by last write, closed ones by end.
      CREATE INDEX streams_idle ON streams (updated_at) WHERE state = 'open';
      CREATE INDEX streams_ended ON streams (ended_at) WHERE ended_at IS NOT NULL;
      CREATE TABLE stream_events (
        stream_id TEXT COLLATE "C" NOT NULL,
        seq BIGINT NOT NULL,
        type TEXT NOT NULL,
        data BYTEA NOT NULL,
        json BOOLEAN NOT NULL,
        at BIGINT NOT NULL,
        PRIMARY KEY (stream_id, seq)
      );
    `,
  },
];

/** Every table a migration made, for tests that empty the store between cases. */
export const TABLES = [
  'credentials', 'messages', 'events', 'dead_letters', 'dedup_keys', 'queues',
  'flow_control_keys', 'url_groups', 'url_group_endpoints', 'schedules',
  'instance_groups', 'instances', 'work_keys', 'streams', 'stream_events',
] as const;

/** Creates `schema` if given and applies the migrations not yet applied, in one transaction; `at` is recorded as when. */
export async function migrate(sql: Client, schema: string | undefined, at: number): Promise<void> {
  await sql.begin(async (tx) => {
    await tx.unsafe('SELECT pg_advisory_xact_lock($1, hashtext($2))', [MIGRATION_LOCK_CLASS, schema ?? 'public']);
    if (schema !== undefined) await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await tx.unsafe(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at BIGINT NOT NULL
    )`);
    const applied = new Set((await tx.unsafe('SELECT version FROM schema_migrations')).map((row) => row.version as number));
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      await tx.unsafe(migration.sql);
      await tx.unsafe('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        at,
      ]);
    }
  });
}
