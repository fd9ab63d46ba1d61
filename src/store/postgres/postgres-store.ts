/**
 * The PostgreSQL store (porsager `postgres` driver): several Courier nodes
 * share one database. Every port verb is one statement or one transaction
 * (READ COMMITTED); where nodes race, the verb relies on row locks, SKIP
 * LOCKED or a compare-and-set (see claims.ts, settle.ts, schedules.ts). Each
 * area of the port is its own module; this file opens the pool, migrates,
 * and composes the areas.
 *
 * Not exclusive: another node may hold leases right now, so leases are never
 * released on open; a dead node's leases run out and its messages are
 * claimed again then.
 *
 * Nodes wake each other with NOTIFY on a channel named after the schema,
 * carrying the earliest due time a verb created, sent after its commit and
 * coalesced per node (WorkNotifier); stream appends go out the same way on a
 * second channel (StreamNotifier), as `<lastSeq> <streamId>`.
 */
import { createHash } from 'node:crypto';
import postgres from 'postgres';
import { guardDriverFailures } from '../driver-failures.js';
import type { CredentialStore, MaintenanceStore, Store } from '../port.js';
import { credentialStatements, credentialsFromRow, purgeStatements, signingKeysFromRow, STATS, type CredentialRow } from '../sql-common.js';
import { postgresFlowControls } from './flow-control.js';
import { postgresHistory } from './history.js';
import { postgresInstances } from './instances.js';
import { postgresMessages } from './messages.js';
import { migrate } from './migrations.js';
import { postgresQueues } from './queues.js';
import { postgresSchedules } from './schedules.js';
import { exec, first, StreamNotifier, WorkNotifier, type Client, type Db, type Pg } from './sql.js';
import { postgresStreams } from './streams.js';
import { postgresUrlGroups } from './url-groups.js';
import { postgresWorkKeys } from './work-keys.js';

export interface PostgresStoreOptions {
  /** A postgres:// URL. A `schema` query parameter is taken as the schema when `schema` is not given. */
  url: string;
  /** Tables live in this schema (created if missing); every connection's search_path is set to it. */
  schema?: string;
  maxConnections?: number;
  /** Now, by the caller's clock: recorded with the migrations applied (the store reads no clock). */
  openedAt: number;
}

/** A pool large enough for delivery's claims and settles to overlap with publishes, small enough for many nodes. */
const DEFAULT_MAX_CONNECTIONS = 10;
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
/** Deadlocks are detected and broken by PostgreSQL (40P01); the loser's transaction is simply run again. */
const DEADLOCK = '40P01';
const MAX_ATTEMPTS = 5;

/** Channel names are identifiers (at most 63 bytes): a long schema name is shortened to a hash of it. */
function channelName(kind: 'work' | 'streams', schema: string): string {
  const channel = `courier_${kind}_${schema}`;
  return channel.length <= 63 ? channel : `courier_${kind}_${createHash('sha256').update(schema).digest('hex').slice(0, 32)}`;
}

export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const url = new URL(options.url);
  const schema = options.schema ?? (url.searchParams.get('schema') || undefined);
  // The driver would send unknown URL parameters to the server as settings.
  url.searchParams.delete('schema');
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) throw new Error(`PostgresStore: invalid schema name "${schema}"`);
  const sql = postgres(url.toString(), {
    max: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    onnotice: () => undefined,
    ...(schema !== undefined ? { connection: { search_path: schema } } : {}),
    // Times are epoch milliseconds in BIGINT columns, exact as JS numbers up to 2^53.
    types: { int8: { to: 20, from: [20], serialize: (value: number) => String(value), parse: (value: string) => Number(value) } },
  }) as unknown as Client;
  try {
    await migrate(sql, schema, options.openedAt);
  } catch (error) {
    await sql.end({ timeout: 1 });
    throw error;
  }
  const pg = context(sql, channelName('work', schema ?? 'public'), channelName('streams', schema ?? 'public'));
  const store: Store = {
    ...maintenance(pg),
    ...credentials(pg),
    ...postgresMessages(pg),
    ...postgresHistory(pg),
    ...postgresQueues(pg),
    ...postgresFlowControls(pg),
    ...postgresUrlGroups(pg),
    ...postgresSchedules(pg),
    ...postgresInstances(pg),
    ...postgresWorkKeys(pg),
    ...postgresStreams(pg),
  };
  return guardDriverFailures(store, isPostgresOutage);
}

function context(sql: Client, channel: string, streamChannel: string): Pg & { markClosed(): void } {
  let closed = false;
  const notifier = new WorkNotifier(sql, channel, (error) => {
    console.warn(`PostgresStore: a work notification was not sent: ${(error as Error).message}`);
  });
  const streamNotifier = new StreamNotifier(sql, streamChannel, (error) => {
    console.warn(`PostgresStore: a stream notification was not sent: ${(error as Error).message}`);
  });
  /**
   * Verbs lock rows in a fixed order where they can (queues, then keys, then
   * messages by seq), but a bulk UPDATE's row order is the planner's, so a
   * rare deadlock between two batches is resolved here rather than surfaced.
   */
  const retrying = async <T>(work: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (error) {
        if (attempt >= MAX_ATTEMPTS || (error as { code?: string }).code !== DEADLOCK) throw error;
      }
    }
  };
  const begin = async <T>(work: (tx: Db) => Promise<T>): Promise<T> => (await sql.begin((tx) => work(tx))) as T;
  return {
    sql,
    notifier,
    channel,
    streamNotifier,
    streamChannel,
    get closed() {
      return closed;
    },
    markClosed: () => {
      closed = true;
    },
    retrying,
    begin,
    transaction: (work) => retrying(() => begin(work)),
  };
}

/**
 * The driver's failures to reach the server: a refused, reset or timed-out
 * connection, a pool that cannot connect, and the server going away (admin
 * shutdown, crash, too many connections: SQLSTATE classes 08 and 57P0x, 53300).
 * SQL errors (constraints, syntax) are bugs, not outages.
 */
const OUTAGE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT', '53300', '57P01', '57P02', '57P03']);

function isPostgresOutage(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && (OUTAGE_CODES.has(code) || code.startsWith('08'));
}

const CREDENTIALS = credentialStatements((n) => `$${n}`);
const PURGE = purgeStatements((n) => `$${n}`);

function credentials(pg: Pg): CredentialStore {
  return {
    async ensureCredentials(proposed) {
      await exec(pg.sql, CREDENTIALS.insertUnlessPresent, [proposed.token, proposed.currentSigningKey, proposed.nextSigningKey]);
      const row = await first<CredentialRow>(pg.sql, CREDENTIALS.select);
      if (!row) throw new Error('ensureCredentials: credentials vanished');
      return credentialsFromRow(row);
    },

    async rotateSigningKeys(freshNext) {
      return signingKeysFromRow(await first<CredentialRow>(pg.sql, CREDENTIALS.rotate, [freshNext]));
    },
  };
}

function maintenance(pg: Pg & { markClosed(): void }): MaintenanceStore {
  return {
    capabilities: { exclusive: false, pushNotify: true },

    async stats() {
      const row = await first<{ pending: number; active: number; dead_letters: number }>(pg.sql, STATS);
      return { pending: row?.pending ?? 0, active: row?.active ?? 0, deadLetters: row?.dead_letters ?? 0 };
    },

    async purge(request) {
      return pg.transaction(async (tx) => {
        const deadLetters = await exec(tx, PURGE.deadLetters, [request.deadLettersBefore]);
        const events = await exec(tx, PURGE.events, [request.logsBefore]);
        const messages = await exec(tx, PURGE.messages, [request.logsBefore]);
        await exec(tx, PURGE.dedupKeys, [request.dedupBefore]);
        await exec(tx, PURGE.workKeys, [request.dedupBefore]);
        return { messages, events, deadLetters };
      });
    },

    async ping() {
      await pg.sql.unsafe('SELECT 1');
    },

    async close() {
      if (pg.closed) return;
      pg.markClosed();
      await Promise.all([pg.notifier.drain(), pg.streamNotifier.drain()]);
      await pg.sql.end({ timeout: 5 });
    },
  };
}
