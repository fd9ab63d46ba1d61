/**
 * The Redis store (ioredis). Every port verb that changes state is one Lua script (scripts/, one file per
 * transition with a contract header): Redis runs a script atomically and alone, so several Courier nodes
 * sharing one Redis never lease a message twice, overfill a queue or a flow-control key, or fire a
 * schedule tick twice. Reads that need no atomicity (logs, DLQ pages, settings) are pipelined.
 *
 * Key layout: everything lives under `<prefix>:`; `<prefix>:layout` holds its version (LAYOUT_VERSION), and
 * a store refuses to open a newer layout it does not know. See scripts/lib.lua for the keys.
 *
 * Durability: Redis keeps what a script wrote only as well as it persists — run it with
 * `appendonly yes` and `appendfsync always` (every write survives a crash) or `everysec` (up to ~1 s lost).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { ClaimedMessage, DeadLetter, LogEvent, MessageRecord, NewMessage } from '../../core/message.js';
import { urlParts } from '../../core/message.js';
import type { FlowControlChange, FlowControlState } from '../../core/flow-control.js';
import type { QueueRecord, QueueSettings } from '../../core/queue.js';
import type { ScheduleDefinition, ScheduleRecord, ScheduleRun } from '../../core/schedule.js';
import type { Endpoint, EndpointSelector, UrlGroup } from '../../core/url-group.js';
import type { InstanceGroupRecord, InstanceGroupSettings, InstanceHealth, InstanceRecord, InstanceRegistration } from '../../core/instance.js';
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
import { responseDetail, specFrom } from '../rows.js';
import { messageArgs, responseBody, type Arg } from './codec.js';
import { matchesMessage } from './filters.js';
import { RedisHistory } from './history.js';
import { Scripts } from './scripts.js';
import { RedisTopology } from './topology.js';

export const LAYOUT_VERSION = 1;
const CANCEL_SCAN_PAGE = 500;
/** Per purge script run: keeps each run short, since Redis serves nothing else meanwhile. */
const PURGE_BATCH = 1_000;
/** Ids per cancel script run, for the same reason. */
const CANCEL_BATCH = 1_000;

export interface RedisStoreOptions {
  url: string;
  /** Every key starts with `<prefix>:`; several Courier deployments may share one Redis with distinct prefixes. */
  prefix?: string;
}

/** Turns flat script answers of [messageId, deduplicated, leaseId] triples into results. */
function enqueueResults(flat: string[], from = 0, count = flat.length / 3): EnqueueResult[] {
  const results: EnqueueResult[] = [];
  for (let n = 0; n < count; n++) {
    const [messageId, deduplicated, leaseId] = flat.slice(from + n * 3, from + n * 3 + 3) as [string, string, string];
    const result: EnqueueResult = { messageId, deduplicated: deduplicated === '1' };
    if (leaseId) result.leaseId = leaseId;
    results.push(result);
  }
  return results;
}

export class RedisStore implements Store {
  readonly capabilities: StoreCapabilities = { exclusive: false, pushNotify: true };
  private readonly history: RedisHistory;
  private readonly topology: RedisTopology;
  private readonly scripts: Scripts;
  private readonly watchers = new Set<Redis>();

  private constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.scripts = new Scripts(redis, prefix);
    this.history = new RedisHistory(redis, this.key);
    this.topology = new RedisTopology(redis, this.scripts, this.key);
  }

  static async open(options: RedisStoreOptions): Promise<RedisStore> {
    const prefix = options.prefix ?? 'courier';
    const redis = new Redis(options.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 3,
      // A script sent before a disconnect may have run: re-sending it blindly could apply a transition twice,
      // so the caller gets the error and retries the verb (enqueue is idempotent per message id).
      autoResendUnfulfilledCommands: false,
    });
    try {
      await redis.connect();
      const store = new RedisStore(redis, prefix);
      await store.checkLayout();
      await store.scripts.load();
      return store;
    } catch (error) {
      redis.disconnect();
      throw error;
    }
  }

  private readonly key = (...parts: string[]): string => [this.prefix, ...parts].join(':');

  private async checkLayout(): Promise<void> {
    await this.redis.set(this.key('layout'), String(LAYOUT_VERSION), 'NX');
    const found = await this.redis.get(this.key('layout'));
    if (Number(found) !== LAYOUT_VERSION) {
      throw new Error(
        `Redis store: key layout version ${found} under prefix "${this.prefix}" is not ${LAYOUT_VERSION}; ` +
          'this Courier is too old for it (or the prefix holds something else)',
      );
    }
  }

  async ensureCredentials(proposed: Credentials): Promise<Credentials> {
    const results = await this.redis
      .multi()
      .set(this.key('cred'), JSON.stringify(proposed), 'NX')
      .get(this.key('cred'))
      .exec();
    const stored = JSON.parse(results![1]![1] as string) as Credentials;
    return { token: stored.token, currentSigningKey: stored.currentSigningKey, nextSigningKey: stored.nextSigningKey };
  }

  async rotateSigningKeys(freshNext: string): Promise<SigningKeys> {
    const pair = (await this.scripts.run('rotate-keys', [freshNext])) as string[];
    if (pair.length < 2) throw new Error('rotateSigningKeys: no credentials stored yet');
    return { current: pair[0]!, next: pair[1]! };
  }

  async enqueue(messages: NewMessage[], at: number, handoff?: Handoff): Promise<EnqueueResult[]> {
    if (messages.length === 0) return [];
    const limit = handoff && handoff.limit > 0 ? handoff.limit : 0;
    const excluded = new Set(handoff?.excludeOrigins ?? []);
    const leaseId = limit > 0 ? randomUUID() : '';
    const leaseUntil = String(at + (handoff?.leaseMs ?? 0));
    const args: Arg[] = [String(at), String(limit), leaseId, leaseUntil, String(messages.length)];
    for (const message of messages) {
      const eligible = limit > 0 && message.spec.notBefore <= at && !excluded.has(urlParts(message.spec.url).origin);
      args.push(...messageArgs(message, eligible));
    }
    return enqueueResults((await this.scripts.run('enqueue', args)) as string[]);
  }

  async getMessage(messageId: string): Promise<MessageRecord | undefined> {
    const [state, retried, due, spec, body] = await this.redis.hmgetBuffer(
      this.key('m', messageId), 'state', 'retried', 'due', 'spec', 'body',
    );
    const live = state?.toString();
    if (live !== 'waiting' && live !== 'pending' && live !== 'active') return undefined;
    return {
      spec: specFrom(spec!, body),
      state: live === 'active' ? 'active' : 'pending',
      retried: Number(retried!.toString()),
      dueAt: Number(due!.toString()),
    };
  }

  async claimDue(request: ClaimRequest): Promise<ClaimedMessage[]> {
    const leaseId = randomUUID();
    const exclude = request.excludeOrigins ?? [];
    const flat = (await this.scripts.runBuffer('claim-due', [
      String(request.now), String(request.limit), leaseId, String(request.now + request.leaseMs),
      String(exclude.length), ...exclude,
    ])) as Buffer[];
    const claimed: ClaimedMessage[] = [];
    for (let i = 0; i < flat.length; i += 3) {
      claimed.push({ spec: specFrom(flat[i]!, flat[i + 1]!), retried: Number(flat[i + 2]!.toString()), leaseId });
    }
    return claimed;
  }

  async extendLeases(leases: Lease[], until: number): Promise<void> {
    if (leases.length === 0) return;
    const pairs = leases.flatMap((lease) => [lease.messageId, lease.leaseId]);
    await this.scripts.run('extend-leases', [String(until), ...pairs]);
  }

  async nextDueAt(now: number): Promise<number | undefined> {
    const at = (await this.scripts.run('next-due', [String(now)])) as string;
    return at === '' ? undefined : Number(at);
  }

  async settle(batch: Settlement[]): Promise<SettleResult[]> {
    if (batch.length === 0) return [];
    const args: Arg[] = [String(batch.length)];
    for (const settlement of batch) {
      const { response } = settlement;
      args.push(
        settlement.messageId,
        settlement.leaseId,
        settlement.kind,
        String(settlement.at),
        settlement.kind === 'retry' ? String(settlement.nextAt) : '',
        responseDetail(response),
        responseBody(response),
        settlement.kind === 'deadLetter' ? settlement.dlqId : '',
        response.status === undefined ? '' : String(response.status),
        settlement.kind === 'deadLetter' ? responseDetail(undefined, { error: response.error ?? 'failed' }) : '',
        String(settlement.followUps.length),
      );
      for (const followUp of settlement.followUps) args.push(...messageArgs(followUp));
    }
    return (await this.scripts.run('settle', args)) as SettleResult[];
  }

  async cancel(selection: CancelSelection, at: number): Promise<number> {
    const chosen = 'messageIds' in selection ? selection.messageIds : await this.cancelCandidates(selection);
    let affected = 0;
    for (let start = 0; start < chosen.length; start += CANCEL_BATCH) {
      const ids = chosen.slice(start, start + CANCEL_BATCH);
      affected += (await this.scripts.run('cancel', [String(at), ...ids])) as number;
    }
    return affected;
  }

  /**
   * Unfinished messages matching a bulk cancel, in acceptance order. The script re-checks each, so one
   * that finished meanwhile is skipped rather than canceled.
   */
  private async cancelCandidates(selection: Exclude<CancelSelection, { messageIds: string[] }>): Promise<string[]> {
    const filter = 'filter' in selection ? selection.filter : undefined;
    const limit = selection.limit ?? Infinity;
    const chosen: string[] = [];
    let lower = '-inf';
    while (chosen.length < limit) {
      const live = this.key('live');
      const page = await this.redis.zrangebyscore(live, lower, '+inf', 'WITHSCORES', 'LIMIT', 0, CANCEL_SCAN_PAGE);
      if (page.length === 0) break;
      const ids = page.filter((_, index) => index % 2 === 0);
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hmget(this.key('m', id), 'cr', 'created', 'spec');
      const rows = ((await pipeline.exec()) ?? []).map(([, row]) => row as (string | null)[]);
      ids.forEach((id, index) => {
        const [cr, created, spec] = rows[index]!;
        if (chosen.length >= limit || cr !== '0' || !spec) return;
        if (filter && !matchesMessage(specFrom(spec, null), filter, Number(created))) return;
        chosen.push(id);
      });
      lower = `(${page.at(-1)}`;
      if (ids.length < CANCEL_SCAN_PAGE) break;
    }
    return chosen;
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
    const { rows, more } = await this.history.selectDeadLetters(selection);
    const dlqIds = rows.map((row) => row.entry.dlqId);
    const deleted = dlqIds.length === 0 ? 0 : ((await this.scripts.run('delete-dead-letters', dlqIds)) as number);
    return more && rows.length > 0 ? { deleted, cursor: String(rows.at(-1)!.seq) } : { deleted };
  }

  async replayDeadLetters(
    items: { dlqId: string; message: NewMessage }[],
    at: number,
  ): Promise<(EnqueueResult | undefined)[]> {
    if (items.length === 0) return [];
    const args: Arg[] = [String(at), String(items.length)];
    for (const { dlqId, message } of items) args.push(dlqId, ...messageArgs(message));
    const flat = (await this.scripts.run('replay-dead-letters', args)) as string[];
    return items.map((_, n) => (flat[n * 3] === '' ? undefined : enqueueResults(flat, n * 3, 1)[0]));
  }

  upsertQueue(settings: QueueSettings, at: number): Promise<void> {
    return this.topology.upsertQueue(settings, at);
  }

  async getQueue(name: string): Promise<QueueRecord | undefined> {
    return (await this.topology.queues([name]))[0];
  }

  listQueues(): Promise<QueueRecord[]> {
    return this.topology.listQueues();
  }

  setQueuePaused(name: string, paused: boolean, at: number): Promise<boolean> {
    return this.topology.setQueuePaused(name, paused, at);
  }

  deleteQueue(name: string, at: number): Promise<boolean> {
    return this.topology.deleteQueue(name, at);
  }

  async getFlowControl(key: string, now: number): Promise<FlowControlState | undefined> {
    return (await this.topology.flowControls([key], now))[0];
  }

  listFlowControls(now: number): Promise<FlowControlState[]> {
    return this.topology.listFlowControls(now);
  }

  changeFlowControl(key: string, change: FlowControlChange, at: number): Promise<boolean> {
    return this.topology.changeFlowControl(key, change, at);
  }

  addEndpoints(group: string, endpoints: Endpoint[], at: number): Promise<void> {
    return this.topology.addEndpoints(group, endpoints, at);
  }

  removeEndpoints(group: string, endpoints: EndpointSelector[], at: number): Promise<EndpointRemoval | undefined> {
    return this.topology.removeEndpoints(group, endpoints, at);
  }

  async getUrlGroup(name: string): Promise<UrlGroup | undefined> {
    return (await this.topology.urlGroups([name]))[0];
  }

  listUrlGroups(): Promise<UrlGroup[]> {
    return this.topology.listUrlGroups();
  }

  deleteUrlGroup(name: string): Promise<boolean> {
    return this.topology.deleteUrlGroup(name);
  }

  saveSchedule(definition: ScheduleDefinition, nextAt: number | undefined, at: number): Promise<void> {
    return this.topology.saveSchedule(definition, nextAt, at);
  }

  async getSchedule(scheduleId: string): Promise<ScheduleRecord | undefined> {
    return (await this.topology.schedules([scheduleId]))[0];
  }

  listSchedules(): Promise<ScheduleRecord[]> {
    return this.topology.listSchedules();
  }

  schedulesTargeting(group: string): Promise<string[]> {
    return this.topology.schedulesTargeting(group);
  }

  deleteSchedule(scheduleId: string): Promise<boolean> {
    return this.topology.deleteSchedule(scheduleId);
  }

  setSchedulePaused(scheduleId: string, paused: boolean, nextAt: number | undefined, at: number): Promise<boolean> {
    return this.topology.setSchedulePaused(scheduleId, paused, nextAt, at);
  }

  dueSchedules(now: number, limit: number): Promise<ScheduleRecord[]> {
    return this.topology.dueSchedules(now, limit);
  }

  nextScheduleAt(): Promise<number | undefined> {
    return this.topology.nextScheduleAt();
  }

  async fireSchedules(firings: ScheduleFiring[], at: number): Promise<(EnqueueResult[] | undefined)[]> {
    if (firings.length === 0) return [];
    const args: Arg[] = [String(at), String(firings.length)];
    for (const firing of firings) {
      args.push(
        firing.scheduleId,
        firing.expectedNextAt === undefined ? '' : String(firing.expectedNextAt),
        firing.nextAt === undefined ? '' : String(firing.nextAt),
        firing.error ?? '',
        JSON.stringify(firing.messages.map((message) => message.spec.messageId)),
        String(firing.messages.length),
      );
      for (const message of firing.messages) args.push(...messageArgs(message));
    }
    const flat = (await this.scripts.run('fire-schedules', args)) as string[];
    let i = 0;
    return firings.map(() => {
      const count = Number(flat[i++]);
      if (count < 0) return undefined;
      const results = enqueueResults(flat, i, count);
      i += count * 3;
      return results;
    });
  }

  listScheduleRuns(scheduleId: string, count: number): Promise<ScheduleRun[]> {
    return this.topology.listScheduleRuns(scheduleId, count);
  }

  /** A dedicated subscriber connection (a subscribed connection can run nothing else) on `<prefix>:work`. */
  async watchWork(onWork: (dueAt: number) => void): Promise<() => Promise<void>> {
    const subscriber = this.redis.duplicate();
    this.watchers.add(subscriber);
    subscriber.on('message', (_channel: string, message: string) => onWork(Number(message)));
    await subscriber.subscribe(this.key('work'));
    return async () => {
      if (!this.watchers.delete(subscriber)) return;
      await subscriber.quit().catch(() => subscriber.disconnect());
    };
  }

  heartbeatInstance(registration: InstanceRegistration, groupDefaults: InstanceGroupSettings, at: number): Promise<InstanceRecord> {
    return this.topology.heartbeatInstance(registration, groupDefaults, at);
  }

  deregisterInstance(group: string, id: string): Promise<boolean> {
    return this.topology.deregisterInstance(group, id);
  }

  listInstances(group?: string): Promise<InstanceRecord[]> {
    return this.topology.listInstances(group);
  }

  setInstanceHealth(group: string, id: string, health: InstanceHealth): Promise<boolean> {
    return this.topology.setInstanceHealth(group, id, health);
  }

  saveInstanceGroup(settings: InstanceGroupSettings, at: number): Promise<InstanceGroupRecord> {
    return this.topology.saveInstanceGroup(settings, at);
  }

  async getInstanceGroup(name: string): Promise<InstanceGroupRecord | undefined> {
    return (await this.topology.instanceGroups([name]))[0];
  }

  listInstanceGroups(): Promise<InstanceGroupRecord[]> {
    return this.topology.listInstanceGroups();
  }

  deleteInstanceGroup(name: string): Promise<boolean> {
    return this.topology.deleteInstanceGroup(name);
  }

  claimWorkKey(scope: string, key: string, expiresAt: number, at: number): Promise<boolean> {
    return this.topology.claimWorkKey(scope, key, expiresAt, at);
  }

  releaseWorkKey(scope: string, key: string): Promise<boolean> {
    return this.topology.releaseWorkKey(scope, key);
  }

  async stats(): Promise<StoreStats> {
    const results = await this.redis
      .pipeline()
      .hmget(this.key('stats'), 'pending', 'active')
      .zcard(this.key('dlq'))
      .exec();
    const [pending, active] = results![0]![1] as (string | null)[];
    return { pending: Number(pending ?? 0), active: Number(active ?? 0), deadLetters: results![1]![1] as number };
  }

  async purge(request: PurgeRequest): Promise<{ messages: number; events: number; deadLetters: number }> {
    const total = { messages: 0, events: 0, deadLetters: 0 };
    const args = [String(request.logsBefore), String(request.deadLettersBefore), String(request.dedupBefore)];
    for (;;) {
      const answer = await this.scripts.run('purge', [...args, String(PURGE_BATCH)]);
      const [messages, events, deadLetters, more] = answer as [number, number, number, string];
      total.messages += messages;
      total.events += events;
      total.deadLetters += deadLetters;
      if (more !== '1') return total;
    }
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    for (const subscriber of this.watchers) subscriber.disconnect();
    this.watchers.clear();
    if (this.redis.status !== 'end') await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
