/**
 * The embedded SQLite store (better-sqlite3, WAL). Every port verb runs as one
 * SQLite transaction; better-sqlite3 is synchronous, so a transaction never
 * interleaves with another on this connection.
 *
 * Durability: WAL with synchronous=NORMAL survives a crash of the process
 * (kill -9) with every committed transaction; `synchronous: 'full'` also
 * survives power loss at the cost of an fsync per commit.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ClaimedMessage, MessageRecord, MessageSpec, NewMessage } from '../../core/message.js';
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
import type { DeadLetter, LogEvent } from '../../core/message.js';
import type { FlowControlChange, FlowControlState } from '../../core/flow-control.js';
import type { QueueRecord, QueueSettings } from '../../core/queue.js';
import type { ScheduleDefinition, ScheduleRecord, ScheduleRun } from '../../core/schedule.js';
import type { Endpoint, EndpointSelector, UrlGroup } from '../../core/url-group.js';
import type { InstanceGroupRecord, InstanceGroupSettings, InstanceHealth, InstanceRecord, InstanceRegistration } from '../../core/instance.js';
import { inList, messageFilterCondition, whereClause, type Condition } from './filters.js';
import { SqliteFlowControl, type Candidate } from './flow-control.js';
import { SqliteHistory } from './history.js';
import { SqliteInstances } from './instances.js';
import { migrate } from './migrations.js';
import { SqliteQueues } from './queues.js';
import { SqliteSchedules } from './schedules.js';
import { Sql } from './sql.js';
import { SqliteUrlGroups } from './url-groups.js';
import { SqliteWorkKeys } from './work-keys.js';
import { responseBodyColumn, responseDetail, specColumns, specFromRow } from '../rows.js';

export interface SqliteStoreOptions {
  /** A file path, or ':memory:'. */
  path: string;
  synchronous?: 'normal' | 'full';
}

interface MessageStateRow {
  seq: number;
  state: string;
  lease_id: string | null;
  cancel_requested: number;
}


export class SqliteStore implements Store {
  readonly capabilities: StoreCapabilities = { exclusive: true, pushNotify: false };
  private readonly db: Database.Database;
  private readonly sql: Sql;
  private readonly queues: SqliteQueues;
  private readonly flowControl: SqliteFlowControl;
  private readonly urlGroups: SqliteUrlGroups;
  private readonly schedules: SqliteSchedules;
  private readonly history: SqliteHistory;
  private readonly instances: SqliteInstances;
  private readonly workKeys: SqliteWorkKeys;

  constructor(options: SqliteStoreOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true, mode: 0o700 });
    this.db = new Database(options.path);
    // Exclusive locking: one Courier process owns the file, which is what
    // makes releasing every lease at open (below) safe.
    this.db.pragma('locking_mode = EXCLUSIVE');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('foreign_keys = OFF');
    migrate(this.db);
    this.sql = new Sql(this.db);
    this.queues = new SqliteQueues(this.sql);
    this.flowControl = new SqliteFlowControl(this.sql);
    this.urlGroups = new SqliteUrlGroups(this.sql);
    this.schedules = new SqliteSchedules(this.sql);
    this.history = new SqliteHistory(this.sql);
    this.instances = new SqliteInstances(this.sql);
    this.workKeys = new SqliteWorkKeys(this.sql);
    this.releaseLeasesOfDeadProcess(Date.now());
  }

  private stmt(sql: string): Database.Statement {
    return this.sql.stmt(sql);
  }

  /**
   * Whoever held leases before this open is gone (the file is exclusive), so
   * its in-flight messages are due again now rather than when the lease ends.
   * A cancel asked for during that attempt is honoured here.
   */
  private releaseLeasesOfDeadProcess(now: number): void {
    this.db.transaction(() => {
      const canceled = this.stmt(
        `UPDATE messages SET state = 'canceled', finished_at = ?, lease_id = NULL, lease_until = NULL
         WHERE state = 'active' AND cancel_requested = 1 RETURNING seq`,
      ).all(now) as { seq: number }[];
      for (const { seq } of canceled) this.appendEvent(seq, now, 'CANCELED');
      this.stmt(
        `UPDATE messages SET state = 'pending', lease_id = NULL, lease_until = NULL WHERE state = 'active'`,
      ).run();
    })();
  }

  private appendEvent(messageSeq: number, time: number, state: string, detail?: string, body?: Buffer | null): void {
    this.sql.appendEvent(messageSeq, time, state, detail, body);
  }

  async ensureCredentials(proposed: Credentials): Promise<Credentials> {
    this.stmt(
      `INSERT INTO credentials (id, token, current_signing_key, next_signing_key) VALUES (1, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
    ).run(proposed.token, proposed.currentSigningKey, proposed.nextSigningKey);
    const row = this.stmt('SELECT token, current_signing_key, next_signing_key FROM credentials WHERE id = 1').get() as {
      token: string;
      current_signing_key: string;
      next_signing_key: string;
    };
    return { token: row.token, currentSigningKey: row.current_signing_key, nextSigningKey: row.next_signing_key };
  }

  async rotateSigningKeys(freshNext: string): Promise<SigningKeys> {
    const row = this.stmt(
      `UPDATE credentials SET current_signing_key = next_signing_key, next_signing_key = ? WHERE id = 1
       RETURNING current_signing_key, next_signing_key`,
    ).get(freshNext) as { current_signing_key: string; next_signing_key: string } | undefined;
    if (!row) throw new Error('rotateSigningKeys: no credentials stored yet');
    return { current: row.current_signing_key, next: row.next_signing_key };
  }

  /**
   * Inserts one message (or finds its dedup holder): waiting in its queue,
   * pending, or active under the lease `offerLease` returns for its origin.
   * Runs inside a caller's transaction.
   */
  private insertMessage(
    message: NewMessage,
    at: number,
    offerLease?: (spec: MessageSpec, origin: string) => { id: string; until: number } | undefined,
  ): EnqueueResult {
    const { spec, dedup } = message;
    if (dedup) {
      const holder = this.stmt('SELECT message_id, expires_at FROM dedup_keys WHERE key = ?').get(dedup.key) as
        | { message_id: string; expires_at: number }
        | undefined;
      if (holder && holder.expires_at > at) return { messageId: holder.message_id, deduplicated: true };
      this.stmt(
        `INSERT INTO dedup_keys (key, message_id, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at`,
      ).run(dedup.key, spec.messageId, dedup.expiresAt);
    }
    const columns = specColumns(spec);
    if (spec.flowControl) this.flowControl.applyMessageConfig(spec.flowControl, at);
    const waits = spec.queueName !== undefined && message.queueSlot === undefined;
    if (waits) this.queues.ensure(spec.queueName!, at);
    const gated = waits || spec.flowControl !== undefined || message.queueSlot !== undefined;
    const lease = gated ? undefined : offerLease?.(spec, columns.origin);
    const { seq } = this.stmt(
      `INSERT INTO messages (id, state, lease_id, lease_until, due_at, created_at, origin, url, host, path, labels,
         caller_ip, topic_name, schedule_id, queue_name, flow_control_key, queue_slot, spec, body)
       VALUES (@id, @state, @lease_id, @lease_until, @due_at, @created_at, @origin, @url, @host, @path, @labels,
         @caller_ip, @topic_name, @schedule_id, @queue_name, @flow_control_key, @queue_slot, @spec, @body)
       RETURNING seq`,
    ).get({
      ...columns,
      state: lease ? 'active' : waits ? 'waiting' : 'pending',
      lease_id: lease?.id ?? null,
      lease_until: lease?.until ?? null,
      queue_slot: message.queueSlot ?? null,
    }) as { seq: number };
    this.appendEvent(seq, at, 'CREATED');
    if (!lease) return { messageId: spec.messageId, deduplicated: false };
    this.appendEvent(seq, at, 'ACTIVE');
    return { messageId: spec.messageId, deduplicated: false, leaseId: lease.id };
  }

  async enqueue(messages: NewMessage[], at: number, handoff?: Handoff): Promise<EnqueueResult[]> {
    if (!handoff || handoff.limit <= 0) {
      return this.db.transaction(() => messages.map((message) => this.insertMessage(message, at)))();
    }
    const lease = { id: randomUUID(), until: at + handoff.leaseMs };
    const excluded = new Set(handoff.excludeOrigins ?? []);
    let left = handoff.limit;
    // Offered only to messages actually stored (a deduplicated one never gets here), so `left` counts hand-offs.
    const offerLease = (spec: MessageSpec, origin: string) => {
      if (left === 0 || spec.notBefore > at || excluded.has(origin)) return undefined;
      left -= 1;
      return lease;
    };
    return this.db.transaction(() => messages.map((message) => this.insertMessage(message, at, offerLease)))();
  }

  async getMessage(messageId: string): Promise<MessageRecord | undefined> {
    const row = this.stmt(
      `SELECT state, retried, due_at, spec, body FROM messages WHERE id = ? AND state IN ('waiting', 'pending', 'active')`,
    ).get(messageId) as { state: 'waiting' | 'pending' | 'active'; retried: number; due_at: number; spec: string; body: Buffer } | undefined;
    if (!row) return undefined;
    const state = row.state === 'active' ? 'active' : 'pending';
    return { spec: specFromRow(row), state, retried: row.retried, dueAt: row.due_at };
  }

  async claimDue(request: ClaimRequest): Promise<ClaimedMessage[]> {
    const { now, limit, leaseMs } = request;
    const exclude = request.excludeOrigins ?? [];
    const leaseId = randomUUID();
    const until = now + leaseMs;
    const originCondition = exclude.length > 0 ? `AND origin NOT IN (${exclude.map(() => '?').join(', ')})` : '';
    return this.db.transaction(() => {
      this.queues.admit(now);
      // Oldest due first across all kinds, a stalled message (expired lease) due at its lease end;
      // otherwise a steady backlog of due pending work would starve it. Each kind uses its own index.
      const free = this.stmt(
        `SELECT seq, due_at AS at FROM messages WHERE state = 'pending' AND flow_control_key IS NULL AND due_at <= ?
         ${originCondition} ORDER BY due_at LIMIT ?`,
      ).all(now, ...exclude, limit) as Candidate[];
      const stalled = this.stmt(
        `SELECT seq, lease_until AS at, flow_control_key AS key FROM messages WHERE state = 'active' AND lease_until <= ? ${originCondition}
         ORDER BY lease_until LIMIT ?`,
      ).all(now, ...exclude, limit) as Candidate[];
      const keyed = this.flowControl.candidates(now, limit, originCondition, exclude);
      const chosen = [...free, ...stalled, ...keyed].sort((a, b) => a.at - b.at).slice(0, limit);
      const lease = this.stmt(
        `UPDATE messages SET state = 'active', lease_id = ?, lease_until = ? WHERE seq = ?
         RETURNING seq, id, retried, spec, body`,
      );
      const attemptsByKey = new Map<string, number>();
      const claimed = chosen.map(({ seq, key }) => {
        const row = lease.get(leaseId, until, seq) as { seq: number; retried: number; spec: string; body: Buffer };
        this.appendEvent(row.seq, now, 'ACTIVE');
        // A redelivery after an expired lease is an attempt too, and counts against its key's rate.
        if (key) attemptsByKey.set(key, (attemptsByKey.get(key) ?? 0) + 1);
        return { spec: specFromRow(row), retried: row.retried, leaseId };
      });
      for (const [key, attempts] of attemptsByKey) this.flowControl.countAttempts(key, attempts, now);
      return claimed;
    })();
  }

  async extendLeases(leases: Lease[], until: number): Promise<void> {
    const extend = this.stmt(
      `UPDATE messages SET lease_until = ? WHERE id = ? AND lease_id = ? AND state = 'active'`,
    );
    this.db.transaction(() => {
      for (const lease of leases) extend.run(until, lease.messageId, lease.leaseId);
    })();
  }

  async nextDueAt(now: number): Promise<number | undefined> {
    const row = this.stmt(
      `SELECT min(at) AS at FROM (
         SELECT min(due_at) AS at FROM messages WHERE state = 'pending' AND flow_control_key IS NULL AND due_at > ?
         UNION ALL SELECT min(lease_until) FROM messages WHERE state = 'active' AND lease_until > ?)`,
    ).get(now, now) as { at: number | null };
    const times = [row.at ?? undefined, this.queues.nextDueAt(now), this.flowControl.nextDueAt(now)].filter(
      (at): at is number => at !== undefined,
    );
    return times.length > 0 ? Math.min(...times) : undefined;
  }

  private settleOne(settlement: Settlement): SettleResult {
    const row = this.stmt('SELECT seq, state, lease_id, cancel_requested FROM messages WHERE id = ?').get(
      settlement.messageId,
    ) as MessageStateRow | undefined;
    if (!row || row.state !== 'active' || row.lease_id !== settlement.leaseId) return 'leaseLost';
    const { at, response } = settlement;
    const body = responseBodyColumn(response);
    let result: SettleResult = 'settled';
    switch (settlement.kind) {
      case 'ack':
        this.finish(row.seq, 'delivered', at);
        this.appendEvent(row.seq, at, 'DELIVERED', responseDetail(response), body);
        break;
      case 'retry':
        this.appendEvent(row.seq, at, 'ERROR', responseDetail(response), body);
        if (row.cancel_requested) {
          this.finish(row.seq, 'canceled', at);
          this.appendEvent(row.seq, at, 'CANCELED');
          result = 'canceled';
        } else {
          this.stmt(
            `UPDATE messages SET state = 'pending', due_at = ?, retried = retried + 1, lease_id = NULL, lease_until = NULL
             WHERE seq = ?`,
          ).run(settlement.nextAt, row.seq);
          this.appendEvent(row.seq, at, 'RETRY', JSON.stringify({ nextDeliveryTime: settlement.nextAt }));
        }
        break;
      case 'deadLetter':
        this.finish(row.seq, 'failed', at);
        this.appendEvent(row.seq, at, 'ERROR', responseDetail(response), body);
        this.appendEvent(row.seq, at, 'FAILED', responseDetail(undefined, { error: response.error ?? 'failed' }));
        this.stmt(
          `INSERT INTO dead_letters (dlq_id, message_seq, created_at, response_status, response, response_body)
           VALUES (?, ?, ?, ?, ?, ?)`,
        ).run(settlement.dlqId, row.seq, at, response.status ?? null, responseDetail(response), body);
        break;
    }
    for (const followUp of settlement.followUps) this.insertMessage(followUp, at);
    return result;
  }

  private finish(seq: number, state: 'delivered' | 'failed' | 'canceled', at: number): void {
    this.sql.finish(seq, state, at);
  }

  async settle(batch: Settlement[]): Promise<SettleResult[]> {
    return this.db.transaction(() => batch.map((settlement) => this.settleOne(settlement)))();
  }

  async cancel(selection: CancelSelection, at: number): Promise<number> {
    const condition: Condition = { sql: [`m.state IN ('waiting', 'pending', 'active')`, 'm.cancel_requested = 0'], params: [] };
    let limit = -1;
    if ('messageIds' in selection) {
      if (selection.messageIds.length === 0) return 0;
      inList('m.id', selection.messageIds, condition);
    } else {
      if ('filter' in selection) {
        const filter = messageFilterCondition(selection.filter, 'm.created_at');
        condition.sql.push(...filter.sql);
        condition.params.push(...filter.params);
      }
      limit = selection.limit ?? -1;
    }
    return this.db.transaction(() => {
      const rows = this.stmt(
        `SELECT m.seq, m.state FROM messages m ${whereClause(condition)} ORDER BY m.seq LIMIT ?`,
      ).all(...condition.params, limit) as { seq: number; state: string }[];
      for (const row of rows) {
        if (row.state !== 'active') {
          this.sql.cancelNow(row.seq, at);
        } else {
          this.appendEvent(row.seq, at, 'CANCEL_REQUESTED');
          this.stmt('UPDATE messages SET cancel_requested = 1 WHERE seq = ?').run(row.seq);
        }
      }
      return rows.length;
    })();
  }

  async listEvents(query: EventQuery): Promise<Page<LogEvent>> {
    return this.history.listEvents(query);
  }

  async listDeadLetters(selection: DeadLetterSelection): Promise<Page<DeadLetter>> {
    return this.history.listDeadLetters(selection);
  }

  async getDeadLetter(dlqId: string): Promise<DeadLetter | undefined> {
    return (await this.history.listDeadLetters({ dlqIds: [dlqId] })).items[0];
  }

  async deleteDeadLetters(selection: DeadLetterSelection): Promise<{ deleted: number; cursor?: string }> {
    return this.history.deleteDeadLetters(selection);
  }

  async replayDeadLetters(
    items: { dlqId: string; message: NewMessage }[],
    at: number,
  ): Promise<(EnqueueResult | undefined)[]> {
    const remove = this.stmt('DELETE FROM dead_letters WHERE dlq_id = ?');
    return this.db.transaction(() =>
      items.map(({ dlqId, message }) => (remove.run(dlqId).changes === 0 ? undefined : this.insertMessage(message, at))),
    )();
  }

  async upsertQueue(settings: QueueSettings, at: number): Promise<void> {
    this.queues.upsert(settings, at);
  }

  async getQueue(name: string): Promise<QueueRecord | undefined> {
    return this.queues.get(name);
  }

  async listQueues(): Promise<QueueRecord[]> {
    return this.queues.list();
  }

  async setQueuePaused(name: string, paused: boolean, at: number): Promise<boolean> {
    return this.queues.setPaused(name, paused, at);
  }

  async deleteQueue(name: string, at: number): Promise<boolean> {
    return this.sql.transaction(() => this.queues.delete(name, at));
  }

  async getFlowControl(key: string, now: number): Promise<FlowControlState | undefined> {
    return this.flowControl.get(key, now);
  }

  async listFlowControls(now: number): Promise<FlowControlState[]> {
    return this.flowControl.list(now);
  }

  async changeFlowControl(key: string, change: FlowControlChange, at: number): Promise<boolean> {
    return this.flowControl.change(key, change, at);
  }

  async addEndpoints(group: string, endpoints: Endpoint[], at: number): Promise<void> {
    this.urlGroups.add(group, endpoints, at);
  }

  async removeEndpoints(group: string, endpoints: EndpointSelector[], at: number): Promise<EndpointRemoval | undefined> {
    return this.urlGroups.remove(group, endpoints, at);
  }

  async getUrlGroup(name: string): Promise<UrlGroup | undefined> {
    return this.urlGroups.get(name);
  }

  async listUrlGroups(): Promise<UrlGroup[]> {
    return this.urlGroups.list();
  }

  async deleteUrlGroup(name: string): Promise<boolean> {
    return this.urlGroups.delete(name);
  }

  async saveSchedule(definition: ScheduleDefinition, nextAt: number | undefined, at: number): Promise<void> {
    this.schedules.save(definition, nextAt, at);
  }

  async getSchedule(scheduleId: string): Promise<ScheduleRecord | undefined> {
    return this.schedules.get(scheduleId);
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    return this.schedules.list();
  }

  async schedulesTargeting(group: string): Promise<string[]> {
    return this.schedules.targeting(group);
  }

  async deleteSchedule(scheduleId: string): Promise<boolean> {
    return this.schedules.delete(scheduleId);
  }

  async setSchedulePaused(scheduleId: string, paused: boolean, nextAt: number | undefined, at: number): Promise<boolean> {
    return this.schedules.setPaused(scheduleId, paused, nextAt, at);
  }

  async dueSchedules(now: number, limit: number): Promise<ScheduleRecord[]> {
    return this.schedules.due(now, limit);
  }

  async nextScheduleAt(): Promise<number | undefined> {
    return this.schedules.nextAt();
  }

  async fireSchedules(firings: ScheduleFiring[], at: number): Promise<(EnqueueResult[] | undefined)[]> {
    return this.sql.transaction(() =>
      firings.map((firing) => {
        const messageIds = firing.messages.map((message) => message.spec.messageId);
        if (!this.schedules.recordFiring(firing, messageIds, at)) return undefined;
        return firing.messages.map((message) => this.insertMessage(message, at));
      }),
    );
  }

  async listScheduleRuns(scheduleId: string, count: number): Promise<ScheduleRun[]> {
    return this.schedules.runs(scheduleId, count);
  }

  /** One process owns the file and wakes itself on its own writes: nothing to watch. */
  async watchWork(): Promise<() => Promise<void>> {
    return async () => undefined;
  }

  async heartbeatInstance(registration: InstanceRegistration, groupDefaults: InstanceGroupSettings, at: number): Promise<InstanceRecord> {
    return this.instances.heartbeat(registration, groupDefaults, at);
  }

  async deregisterInstance(group: string, id: string): Promise<boolean> {
    return this.instances.deregister(group, id);
  }

  async listInstances(group?: string): Promise<InstanceRecord[]> {
    return this.instances.list(group);
  }

  async setInstanceHealth(group: string, id: string, health: InstanceHealth): Promise<boolean> {
    return this.instances.setHealth(group, id, health);
  }

  async saveInstanceGroup(settings: InstanceGroupSettings, at: number): Promise<InstanceGroupRecord> {
    return this.instances.saveGroup(settings, at);
  }

  async getInstanceGroup(name: string): Promise<InstanceGroupRecord | undefined> {
    return this.instances.getGroup(name);
  }

  async listInstanceGroups(): Promise<InstanceGroupRecord[]> {
    return this.instances.listGroups();
  }

  async deleteInstanceGroup(name: string): Promise<boolean> {
    return this.instances.deleteGroup(name);
  }

  async claimWorkKey(scope: string, key: string, expiresAt: number, at: number): Promise<boolean> {
    return this.workKeys.claim(scope, key, expiresAt, at);
  }

  async releaseWorkKey(scope: string, key: string): Promise<boolean> {
    return this.workKeys.release(scope, key);
  }

  async stats(): Promise<StoreStats> {
    const count = (sql: string): number => (this.stmt(sql).pluck().get() as number) ?? 0;
    return {
      pending: count(`SELECT count(*) FROM messages WHERE state IN ('waiting', 'pending')`),
      active: count(`SELECT count(*) FROM messages WHERE state = 'active'`),
      deadLetters: count('SELECT count(*) FROM dead_letters'),
    };
  }

  async purge(request: PurgeRequest): Promise<{ messages: number; events: number; deadLetters: number }> {
    return this.db.transaction(() => {
      const deadLetters = this.stmt('DELETE FROM dead_letters WHERE created_at < ?').run(request.deadLettersBefore).changes;
      // A message's log goes with it: a pending, active or dead-lettered message keeps all its events.
      const purgeable = `SELECT seq FROM messages WHERE finished_at IS NOT NULL AND finished_at < ?
         AND seq NOT IN (SELECT message_seq FROM dead_letters)`;
      const events = this.stmt(`DELETE FROM events WHERE message_seq IN (${purgeable})`).run(request.logsBefore).changes;
      const messages = this.stmt(`DELETE FROM messages WHERE seq IN (${purgeable})`).run(request.logsBefore).changes;
      this.stmt('DELETE FROM dedup_keys WHERE expires_at < ?').run(request.dedupBefore);
      this.workKeys.purge(request.dedupBefore);
      return { messages, events, deadLetters };
    })();
  }

  async ping(): Promise<void> {
    this.stmt('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
