/**
 * The PostgreSQL store (porsager `postgres` driver): several Courier nodes
 * share one database. Every port verb is one statement or one transaction
 * (READ COMMITTED); where nodes race, the verb relies on row locks, SKIP
 * LOCKED or a compare-and-set (see claims.ts, settle.ts, schedules.ts).
 *
 * Not exclusive: another node may hold leases right now, so leases are never
 * released on open; a dead node's leases run out and its messages are
 * claimed again then.
 *
 * Nodes wake each other with NOTIFY on a channel named after the schema,
 * carrying the earliest due time a verb created, sent after its commit and
 * coalesced per node (WorkNotifier).
 */
import { createHash } from 'node:crypto';
import postgres from 'postgres';
import type { ClaimedMessage, DeadLetter, LogEvent, MessageRecord, NewMessage } from '../../core/message.js';
import type {
  CancelSelection,
  ClaimRequest,
  Credentials,
  DeadLetterSelection,
  EndpointRemoval,
  EnqueueResult,
  EventQuery,
  Handoff,
  Lease,
  Page,
  PurgeRequest,
  ScheduleFiring,
  SettleResult,
  Settlement,
  SigningKeys,
  Store,
  StoreCapabilities,
  StoreStats,
} from '../port.js';
import type { FlowControlChange, FlowControlState } from '../../core/flow-control.js';
import type { QueueRecord, QueueSettings } from '../../core/queue.js';
import type { ScheduleDefinition, ScheduleRecord, ScheduleRun } from '../../core/schedule.js';
import type { Endpoint, EndpointSelector, UrlGroup } from '../../core/url-group.js';
import type { InstanceGroupRecord, InstanceGroupSettings, InstanceHealth, InstanceRecord, InstanceRegistration } from '../../core/instance.js';
import { specFromRow } from '../rows.js';
import * as claims from './claims.js';
import * as flowControl from './flow-control.js';
import * as history from './history.js';
import * as instances from './instances.js';
import { migrate } from './migrations.js';
import * as queues from './queues.js';
import * as schedules from './schedules.js';
import { cancel, settle } from './settle.js';
import { earliest, exec, first, WorkNotifier, type Client, type Db } from './sql.js';
import * as urlGroups from './url-groups.js';
import * as workKeys from './work-keys.js';
import { insertMessages, needsTransaction } from './writes.js';

export interface PostgresStoreOptions {
  /** A postgres:// URL. A `schema` query parameter is taken as the schema when `schema` is not given. */
  url: string;
  /** Tables live in this schema (created if missing); every connection's search_path is set to it. */
  schema?: string;
  maxConnections?: number;
}

/** A pool large enough for delivery's claims and settles to overlap with publishes, small enough for many nodes. */
const DEFAULT_MAX_CONNECTIONS = 10;
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
/** Deadlocks are detected and broken by PostgreSQL (40P01); the loser's transaction is simply run again. */
const DEADLOCK = '40P01';
const MAX_ATTEMPTS = 5;

/** Channel names are identifiers (at most 63 bytes): a long schema name is shortened to a hash of it. */
function workChannel(schema: string): string {
  const channel = `courier_work_${schema}`;
  return channel.length <= 63 ? channel : `courier_work_${createHash('sha256').update(schema).digest('hex').slice(0, 32)}`;
}

export class PostgresStore implements Store {
  readonly capabilities: StoreCapabilities = { exclusive: false, pushNotify: true };

  private readonly notifier: WorkNotifier;
  private closed = false;

  private constructor(
    private readonly sql: Client,
    private readonly channel: string,
  ) {
    this.notifier = new WorkNotifier(sql, channel, (error) => {
      console.warn(`PostgresStore: a work notification was not sent: ${(error as Error).message}`);
    });
  }

  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
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
      await migrate(sql, schema);
    } catch (error) {
      await sql.end({ timeout: 1 });
      throw error;
    }
    return new PostgresStore(sql, workChannel(schema ?? 'public'));
  }

  /**
   * Runs `work` again when PostgreSQL broke a deadlock by failing it (40P01).
   * Verbs lock rows in a fixed order where they can (queues, then keys, then
   * messages by seq), but a bulk UPDATE's row order is the planner's, so a
   * rare deadlock between two batches is resolved here rather than surfaced.
   */
  private async retrying<T>(work: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (error) {
        if (attempt >= MAX_ATTEMPTS || (error as { code?: string }).code !== DEADLOCK) throw error;
      }
    }
  }

  private async begin<T>(work: (tx: Db) => Promise<T>): Promise<T> {
    return (await this.sql.begin((tx) => work(tx))) as T;
  }

  private async transaction<T>(work: (db: Db) => Promise<T>): Promise<T> {
    return this.retrying(() => this.begin(work));
  }

  async ensureCredentials(proposed: Credentials): Promise<Credentials> {
    await exec(
      this.sql,
      `INSERT INTO credentials (id, token, current_signing_key, next_signing_key) VALUES (1, $1, $2, $3)
       ON CONFLICT (id) DO NOTHING`,
      [proposed.token, proposed.currentSigningKey, proposed.nextSigningKey],
    );
    const row = await first<{ token: string; current_signing_key: string; next_signing_key: string }>(
      this.sql,
      'SELECT token, current_signing_key, next_signing_key FROM credentials WHERE id = 1',
    );
    if (!row) throw new Error('ensureCredentials: credentials vanished');
    return { token: row.token, currentSigningKey: row.current_signing_key, nextSigningKey: row.next_signing_key };
  }

  async rotateSigningKeys(freshNext: string): Promise<SigningKeys> {
    const row = await first<{ current_signing_key: string; next_signing_key: string }>(
      this.sql,
      `UPDATE credentials SET current_signing_key = next_signing_key, next_signing_key = $1 WHERE id = 1
       RETURNING current_signing_key, next_signing_key`,
      [freshNext],
    );
    if (!row) throw new Error('rotateSigningKeys: no credentials stored yet');
    return { current: row.current_signing_key, next: row.next_signing_key };
  }

  async enqueue(messages: NewMessage[], at: number, handoff?: Handoff): Promise<EnqueueResult[]> {
    if (messages.length === 0) return [];
    // A plain batch is one INSERT statement, atomic by itself: no transaction round trips.
    const write = (db: Db) => insertMessages(db, messages, at, handoff);
    const inserted = needsTransaction(messages) ? await this.transaction(write) : await this.retrying(() => write(this.sql));
    this.notifier.tell(inserted.dueAt);
    return inserted.results;
  }

  async getMessage(messageId: string): Promise<MessageRecord | undefined> {
    const row = await first<{ state: string; retried: number; due_at: number; spec: string; body: Buffer }>(
      this.sql,
      `SELECT state, retried, due_at, spec, body FROM messages WHERE id = $1 AND state IN ('waiting', 'pending', 'active')`,
      [messageId],
    );
    if (!row) return undefined;
    return { spec: specFromRow(row), state: row.state === 'active' ? 'active' : 'pending', retried: row.retried, dueAt: row.due_at };
  }

  async claimDue(request: ClaimRequest): Promise<ClaimedMessage[]> {
    return this.retrying(() => claims.claimDue(this.sql, request, (work) => this.begin(work)));
  }

  async extendLeases(leases: Lease[], until: number): Promise<void> {
    await this.retrying(() => claims.extendLeases(this.sql, leases, until));
  }

  async nextDueAt(now: number): Promise<number | undefined> {
    return claims.nextDueAt(this.sql, now);
  }

  async settle(batch: Settlement[]): Promise<SettleResult[]> {
    if (batch.length === 0) return [];
    const distinct = new Set(batch.map((s) => s.messageId)).size === batch.length;
    const hasFollowUps = batch.some((s) => s.followUps.length > 0);
    // The common batch is one statement, atomic by itself (settle.ts).
    const settled =
      distinct && !hasFollowUps
        ? await this.retrying(() => settle(this.sql, batch))
        : await this.transaction(async (tx) => {
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
    this.notifier.tell(settled.dueAt);
    return settled.results;
  }

  async cancel(selection: CancelSelection, at: number): Promise<number> {
    const { affected, freed } = await this.transaction((tx) => cancel(tx, selection, at));
    // A canceled message may have held a queue slot: the next one may start.
    if (freed) this.notifier.tell(at);
    return affected;
  }

  async listEvents(query: EventQuery): Promise<Page<LogEvent>> {
    return history.listEvents(this.sql, query);
  }

  async listDeadLetters(selection: DeadLetterSelection): Promise<Page<DeadLetter>> {
    return history.listDeadLetters(this.sql, selection);
  }

  async getDeadLetter(dlqId: string): Promise<DeadLetter | undefined> {
    return (await history.listDeadLetters(this.sql, { dlqIds: [dlqId] })).items[0];
  }

  async deleteDeadLetters(selection: DeadLetterSelection): Promise<{ deleted: number; cursor?: string }> {
    return this.transaction((tx) => history.deleteDeadLetters(tx, selection));
  }

  async replayDeadLetters(items: { dlqId: string; message: NewMessage }[], at: number): Promise<(EnqueueResult | undefined)[]> {
    if (items.length === 0) return [];
    const replayed = await this.transaction(async (tx) => {
      const results: (EnqueueResult | undefined)[] = [];
      let dueAt: number | undefined;
      for (const { dlqId, message } of items) {
        // DELETE takes the entry's row lock: of two concurrent replays, the second finds it gone.
        if ((await exec(tx, 'DELETE FROM dead_letters WHERE dlq_id = $1', [dlqId])) === 0) {
          results.push(undefined);
          continue;
        }
        const inserted = await insertMessages(tx, [message], at);
        results.push(inserted.results[0]);
        dueAt = earliest(dueAt, inserted.dueAt);
      }
      return { results, dueAt };
    });
    this.notifier.tell(replayed.dueAt);
    return replayed.results;
  }

  async upsertQueue(settings: QueueSettings, at: number): Promise<void> {
    await queues.upsertQueue(this.sql, settings, at);
    this.notifier.tell(at);
  }

  async getQueue(name: string): Promise<QueueRecord | undefined> {
    return queues.getQueue(this.sql, name);
  }

  async listQueues(): Promise<QueueRecord[]> {
    return queues.listQueues(this.sql);
  }

  async setQueuePaused(name: string, paused: boolean, at: number): Promise<boolean> {
    const found = await queues.setQueuePaused(this.sql, name, paused, at);
    if (found && !paused) this.notifier.tell(at);
    return found;
  }

  async deleteQueue(name: string, at: number): Promise<boolean> {
    return this.transaction((tx) => queues.deleteQueue(tx, name, at));
  }

  async getFlowControl(key: string, now: number): Promise<FlowControlState | undefined> {
    return flowControl.getFlowControl(this.sql, key, now);
  }

  async listFlowControls(now: number): Promise<FlowControlState[]> {
    return flowControl.listFlowControls(this.sql, now);
  }

  async changeFlowControl(key: string, change: FlowControlChange, at: number): Promise<boolean> {
    const found = await flowControl.changeFlowControl(this.sql, key, change, at);
    if (found && change.kind !== 'pause') this.notifier.tell(at);
    return found;
  }

  async addEndpoints(group: string, endpoints: Endpoint[], at: number): Promise<void> {
    await this.transaction((tx) => urlGroups.addEndpoints(tx, group, endpoints, at));
  }

  async removeEndpoints(group: string, endpoints: EndpointSelector[], at: number): Promise<EndpointRemoval | undefined> {
    try {
      return await this.transaction((tx) => urlGroups.removeEndpoints(tx, group, endpoints, at));
    } catch (error) {
      if (error instanceof urlGroups.Rollback) return error.answer as EndpointRemoval;
      throw error;
    }
  }

  async getUrlGroup(name: string): Promise<UrlGroup | undefined> {
    return urlGroups.getUrlGroup(this.sql, name);
  }

  async listUrlGroups(): Promise<UrlGroup[]> {
    return urlGroups.listUrlGroups(this.sql);
  }

  async deleteUrlGroup(name: string): Promise<boolean> {
    return urlGroups.deleteUrlGroup(this.sql, name);
  }

  async saveSchedule(definition: ScheduleDefinition, nextAt: number | undefined, at: number): Promise<void> {
    await schedules.saveSchedule(this.sql, definition, nextAt, at);
  }

  async getSchedule(scheduleId: string): Promise<ScheduleRecord | undefined> {
    return schedules.getSchedule(this.sql, scheduleId);
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    return schedules.listSchedules(this.sql);
  }

  async schedulesTargeting(group: string): Promise<string[]> {
    return schedules.schedulesTargeting(this.sql, group);
  }

  async deleteSchedule(scheduleId: string): Promise<boolean> {
    return schedules.deleteSchedule(this.sql, scheduleId);
  }

  async setSchedulePaused(scheduleId: string, paused: boolean, nextAt: number | undefined, at: number): Promise<boolean> {
    return schedules.setSchedulePaused(this.sql, scheduleId, paused, nextAt, at);
  }

  async dueSchedules(now: number, limit: number): Promise<ScheduleRecord[]> {
    return schedules.dueSchedules(this.sql, now, limit);
  }

  async nextScheduleAt(): Promise<number | undefined> {
    return schedules.nextScheduleAt(this.sql);
  }

  async fireSchedules(firings: ScheduleFiring[], at: number): Promise<(EnqueueResult[] | undefined)[]> {
    if (firings.length === 0) return [];
    const fired = await this.transaction(async (tx) => {
      const results: (EnqueueResult[] | undefined)[] = [];
      let dueAt: number | undefined;
      for (const firing of firings) {
        const messageIds = firing.messages.map((message) => message.spec.messageId);
        if (!(await schedules.recordFiring(tx, firing, messageIds, at))) {
          results.push(undefined);
          continue;
        }
        const inserted = await insertMessages(tx, firing.messages, at);
        results.push(inserted.results);
        dueAt = earliest(dueAt, inserted.dueAt);
      }
      return { results, dueAt };
    });
    this.notifier.tell(fired.dueAt);
    return fired.results;
  }

  async listScheduleRuns(scheduleId: string, count: number): Promise<ScheduleRun[]> {
    return schedules.listScheduleRuns(this.sql, scheduleId, count);
  }

  /** LISTEN on the driver's dedicated connection; it re-listens by itself after a reconnect. */
  async watchWork(onWork: (dueAt: number) => void): Promise<() => Promise<void>> {
    const { unlisten } = await this.sql.listen(this.channel, (payload) => {
      const dueAt = Number(payload);
      if (Number.isFinite(dueAt)) onWork(dueAt);
    });
    return async () => {
      // close() already ended the listening connection, and with it the LISTEN.
      if (!this.closed) await unlisten();
    };
  }

  async heartbeatInstance(registration: InstanceRegistration, groupDefaults: InstanceGroupSettings, at: number): Promise<InstanceRecord> {
    return instances.heartbeatInstance(this.sql, registration, groupDefaults, at);
  }

  async deregisterInstance(group: string, id: string): Promise<boolean> {
    return instances.deregisterInstance(this.sql, group, id);
  }

  async listInstances(group?: string): Promise<InstanceRecord[]> {
    return instances.listInstances(this.sql, group);
  }

  async setInstanceHealth(group: string, id: string, health: InstanceHealth): Promise<boolean> {
    return instances.setInstanceHealth(this.sql, group, id, health);
  }

  async saveInstanceGroup(settings: InstanceGroupSettings, at: number): Promise<InstanceGroupRecord> {
    return instances.saveInstanceGroup(this.sql, settings, at);
  }

  async getInstanceGroup(name: string): Promise<InstanceGroupRecord | undefined> {
    return instances.getInstanceGroup(this.sql, name);
  }

  async listInstanceGroups(): Promise<InstanceGroupRecord[]> {
    return instances.listInstanceGroups(this.sql);
  }

  async deleteInstanceGroup(name: string): Promise<boolean> {
    return instances.deleteInstanceGroup(this.sql, name);
  }

  async claimWorkKey(scope: string, key: string, expiresAt: number, at: number): Promise<boolean> {
    return workKeys.claimWorkKey(this.sql, scope, key, expiresAt, at);
  }

  async releaseWorkKey(scope: string, key: string): Promise<boolean> {
    return workKeys.releaseWorkKey(this.sql, scope, key);
  }

  async stats(): Promise<StoreStats> {
    const row = await first<{ pending: number; active: number; dead_letters: number }>(
      this.sql,
      `SELECT (SELECT count(*) FROM messages WHERE state IN ('waiting', 'pending')) AS pending,
              (SELECT count(*) FROM messages WHERE state = 'active') AS active,
              (SELECT count(*) FROM dead_letters) AS dead_letters`,
    );
    return { pending: row?.pending ?? 0, active: row?.active ?? 0, deadLetters: row?.dead_letters ?? 0 };
  }

  async purge(request: PurgeRequest): Promise<{ messages: number; events: number; deadLetters: number }> {
    return this.transaction(async (tx) => {
      const deadLetters = await exec(tx, 'DELETE FROM dead_letters WHERE created_at < $1', [request.deadLettersBefore]);
      // A message's log goes with it: a pending, active or dead-lettered message keeps all its events.
      const purgeable = `SELECT seq FROM messages m WHERE m.finished_at IS NOT NULL AND m.finished_at < $1
         AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.message_seq = m.seq)`;
      const events = await exec(tx, `DELETE FROM events WHERE message_seq IN (${purgeable})`, [request.logsBefore]);
      const messages = await exec(tx, `DELETE FROM messages WHERE seq IN (${purgeable})`, [request.logsBefore]);
      await exec(tx, 'DELETE FROM dedup_keys WHERE expires_at < $1', [request.dedupBefore]);
      await workKeys.purgeWorkKeys(tx, request.dedupBefore);
      return { messages, events, deadLetters };
    });
  }

  async ping(): Promise<void> {
    await this.sql.unsafe('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.notifier.drain();
    await this.sql.end({ timeout: 5 });
  }
}
