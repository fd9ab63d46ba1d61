/**
 * The DLQ (spec §6): list, get, delete, and retry as a new message.
 * Events (core/events.ts): `dead-letter.deleted`, and per entry retried
 * `message.published` (with `replayOf`) then `dead-letter.replayed`.
 */
import type { PublishOptions } from '../core/publish-options.js';
import type { Clock } from '../core/clock.js';
import type { CourierEvents, EventSink } from '../core/events.js';
import { CourierError } from '../core/errors.js';
import { newMessageId } from '../core/ids.js';
import type { DeadLetter, MessageSpec } from '../core/message.js';
import type { DeadLetterSelection, EnqueueResult, HistoryStore, Page } from '../store/port.js';

/** Config a retry request may override (spec §6: "optional config headers override the originals"). */
export type RetryOverrides = Partial<Pick<PublishOptions, 'retries' | 'retryDelayExpression' | 'timeoutMs' | 'delayMs' | 'notBefore' | 'callback' | 'failureCallback'>>;

export class DeadLetterService {
  constructor(
    private readonly deps: { store: HistoryStore; clock: Clock; events: EventSink; notifyDue: (dueAt: number) => void },
  ) {}

  list(selection: DeadLetterSelection): Promise<Page<DeadLetter>> {
    return this.deps.store.listDeadLetters(selection);
  }

  async get(dlqId: string): Promise<DeadLetter> {
    const entry = await this.deps.store.getDeadLetter(dlqId);
    if (!entry) throw new CourierError('DLQ_ENTRY_NOT_FOUND', `DLQ entry ${dlqId} not found`);
    return entry;
  }

  async deleteOne(dlqId: string): Promise<void> {
    const { deleted } = await this.deleteMany({ dlqIds: [dlqId] });
    if (deleted === 0) throw new CourierError('DLQ_ENTRY_NOT_FOUND', `DLQ entry ${dlqId} not found`);
  }

  async deleteMany(selection: DeadLetterSelection): Promise<{ deleted: number; cursor?: string }> {
    const result = await this.deps.store.deleteDeadLetters(selection);
    if (result.deleted > 0) {
      const deleted: CourierEvents['dead-letter.deleted'] = { count: result.deleted, at: this.deps.clock.now() };
      if ('dlqIds' in selection) deleted.dlqIds = selection.dlqIds;
      this.deps.events.emit('dead-letter.deleted', deleted);
    }
    return result;
  }

  /**
   * Each selected entry becomes a new message (new id, same body, headers and
   * config unless overridden) and leaves the DLQ, atomically per entry. An
   * entry deleted or retried concurrently is skipped.
   */
  async retry(selection: DeadLetterSelection, overrides: RetryOverrides): Promise<{ results: EnqueueResult[]; cursor?: string }> {
    const page = await this.deps.store.listDeadLetters(selection);
    const now = this.deps.clock.now();
    const items = page.items.map((entry) => ({ dlqId: entry.dlqId, message: { spec: replayed(entry.spec, overrides, now) } }));
    const replays = await this.deps.store.replayDeadLetters(items, now);
    this.announceReplays(items, replays, now);
    const results = replays.filter((result): result is EnqueueResult => result !== undefined);
    if (items.length > 0) this.deps.notifyDue(Math.min(...items.map((item) => item.message.spec.notBefore)));
    return page.cursor === undefined ? { results } : { results, cursor: page.cursor };
  }

  private announceReplays(items: { dlqId: string; message: { spec: MessageSpec } }[], replays: (EnqueueResult | undefined)[], at: number): void {
    const { events } = this.deps;
    replays.forEach((result, index) => {
      const { dlqId, message } = items[index]!;
      if (!result) return;
      const { spec } = message;
      const published: CourierEvents['message.published'] = { messageId: result.messageId, url: spec.url, replayOf: dlqId, at };
      if (spec.queueName !== undefined) published.queueName = spec.queueName;
      if (spec.scheduleId !== undefined) published.scheduleId = spec.scheduleId;
      events.emit('message.published', published);
      events.emit('dead-letter.replayed', { dlqId, messageId: result.messageId, url: spec.url, at });
    });
  }

  async retryOne(dlqId: string, overrides: RetryOverrides): Promise<EnqueueResult> {
    const { results } = await this.retry({ dlqIds: [dlqId] }, overrides);
    const result = results[0];
    if (!result) throw new CourierError('DLQ_ENTRY_NOT_FOUND', `DLQ entry ${dlqId} not found`);
    return result;
  }
}

function replayed(original: MessageSpec, overrides: RetryOverrides, now: number): MessageSpec {
  const spec: MessageSpec = {
    ...original,
    messageId: newMessageId(),
    createdAt: now,
    notBefore: overrides.notBefore ?? now + (overrides.delayMs ?? 0),
  };
  if (overrides.retries !== undefined) spec.maxRetries = overrides.retries;
  if (overrides.retryDelayExpression !== undefined) spec.retryDelayExpression = overrides.retryDelayExpression;
  if (overrides.timeoutMs !== undefined) spec.timeoutMs = overrides.timeoutMs;
  if (overrides.callback) spec.callback = overrides.callback;
  if (overrides.failureCallback) spec.failureCallback = overrides.failureCallback;
  return spec;
}
