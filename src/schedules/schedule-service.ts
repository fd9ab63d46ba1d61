/**
 * Schedules (spec §7) and Courier's run history and trigger-now. A schedule
 * only ever enqueues: each run is an ordinary message (or one per URL-group
 * endpoint) that delivery then handles like any other.
 * Events (core/events.ts): `schedule.fired` for each run stored (a cron
 * tick or "run now"), before its messages' `message.published`.
 */
import type { Clock } from '../core/clock.js';
import type { CourierEvents, EventSink } from '../core/events.js';
import { CourierError } from '../core/errors.js';
import { newScheduleId } from '../core/ids.js';
import type { NewMessage } from '../core/message.js';
import type { ScheduleRecord, ScheduleRun, ScheduleTemplate } from '../core/schedule.js';
import type { MessageService, Published, PublishRequest } from '../messages/message-service.js';
import type { EnqueueResult, ScheduleFiring, ScheduleStore, UrlGroupStore } from '../store/port.js';
import { parseCron } from './cron.js';

/** Run statistics look at this many of the latest runs. */
export const RUN_STATS_WINDOW = 20;

export interface RunStats {
  window: number;
  finished: number;
  succeeded: number;
  failed: number;
  /** Absent until a run has finished. */
  successRate?: number;
  meanDurationMs?: number;
}

export interface ScheduleView {
  schedule: ScheduleRecord;
  /** The state of each message of the last run. */
  lastStates: Record<string, ScheduleRun['state']>;
  runStats: RunStats;
}

export interface SaveScheduleRequest {
  scheduleId?: string;
  cron: string;
  template: ScheduleTemplate;
}

export class ScheduleService {
  constructor(
    private readonly deps: {
      store: ScheduleStore & Pick<UrlGroupStore, 'getUrlGroup'>;
      clock: Clock;
      events: EventSink;
      messages: MessageService;
      /** Tells the scheduler that the earliest tick may have changed. */
      wakeScheduler: () => void;
    },
  ) {}

  async save(request: SaveScheduleRequest): Promise<string> {
    const cron = parseCron(request.cron);
    const { destination } = request.template;
    if (!isUrl(destination) && !(await this.deps.store.getUrlGroup(destination))) {
      throw new CourierError('URL_GROUP_NOT_FOUND', `destination: URL group "${destination}" not found`, 'destination');
    }
    const scheduleId = request.scheduleId ?? newScheduleId();
    const now = this.deps.clock.now();
    await this.deps.store.saveSchedule({ scheduleId, cron: cron.source, template: request.template }, cron.nextAfter(now), now);
    this.deps.wakeScheduler();
    return scheduleId;
  }

  async get(scheduleId: string): Promise<ScheduleView> {
    return this.view(await this.record(scheduleId));
  }

  async list(): Promise<ScheduleView[]> {
    const schedules = await this.deps.store.listSchedules();
    return Promise.all(schedules.map((schedule) => this.view(schedule)));
  }

  async delete(scheduleId: string): Promise<void> {
    if (!(await this.deps.store.deleteSchedule(scheduleId))) throw notFound(scheduleId);
  }

  /** Idempotent. Resuming picks the next tick from now: ticks missed while paused are not fired. */
  async setPaused(scheduleId: string, paused: boolean): Promise<void> {
    const schedule = await this.record(scheduleId);
    if (schedule.paused === paused) return;
    const now = this.deps.clock.now();
    const nextAt = paused ? undefined : parseCron(schedule.cron).nextAfter(now);
    if (!(await this.deps.store.setSchedulePaused(scheduleId, paused, nextAt, now))) throw notFound(scheduleId);
    if (!paused) this.deps.wakeScheduler();
  }

  /**
   * Fires due ticks in one store round trip; a tick another node (or a pause
   * or save) got to first is skipped. The next tick is counted from now, so
   * ticks missed while the server was down are not replayed: the schedule
   * fires once and moves on. Returns how many fired.
   */
  async fireTicks(due: ScheduleRecord[]): Promise<number> {
    const now = this.deps.clock.now();
    const firings = await Promise.all(
      due.map(async (schedule) => {
        const { firing } = await this.prepareRun(schedule, now, 'cron');
        firing.expectedNextAt = schedule.nextAt!;
        const nextAt = nextTickAfter(schedule.cron, now);
        if (typeof nextAt === 'number') firing.nextAt = nextAt;
        // A cron that no longer parses (say, its time zone left the tz database) stops, saying why, instead of blocking the others.
        else if (nextAt !== undefined) firing.error = nextAt.message;
        return firing;
      }),
    );
    const results = await this.fire(firings, now, 'cron');
    return results.filter((result) => result !== undefined).length;
  }

  /** "Run now": publishes the schedule's message at once; the cron's next tick is unchanged. Works while paused. */
  async trigger(scheduleId: string): Promise<Published[]> {
    const schedule = await this.record(scheduleId);
    const now = this.deps.clock.now();
    const { firing, error } = await this.prepareRun(schedule, now, 'manual');
    if (error) throw error;
    const [results] = await this.fire([firing], now, 'manual');
    if (!results) throw notFound(scheduleId);
    return results.map((result, index) => ({
      messageId: result.messageId,
      url: firing.messages[index]!.spec.url,
      deduplicated: result.deduplicated,
    }));
  }

  async runs(scheduleId: string, count: number): Promise<ScheduleRun[]> {
    await this.record(scheduleId);
    return this.deps.store.listScheduleRuns(scheduleId, count);
  }

  private async record(scheduleId: string): Promise<ScheduleRecord> {
    const schedule = await this.deps.store.getSchedule(scheduleId);
    if (!schedule) throw notFound(scheduleId);
    return schedule;
  }

  /** Stores the firings, then hands what they enqueued to delivery at once. */
  private async fire(firings: ScheduleFiring[], now: number, trigger: 'cron' | 'manual'): Promise<(EnqueueResult[] | undefined)[]> {
    const results = await this.deps.store.fireSchedules(firings, now);
    const messages: NewMessage[] = [];
    const stored: EnqueueResult[] = [];
    const { events } = this.deps;
    results.forEach((result, index) => {
      // Skipped: another node (or a pause or save) got to this tick first.
      if (!result) return;
      const firing = firings[index]!;
      messages.push(...firing.messages);
      stored.push(...result);
      const fired: CourierEvents['schedule.fired'] = {
        scheduleId: firing.scheduleId,
        trigger,
        messageIds: result.map((enqueued) => enqueued.messageId),
        at: now,
      };
      if (firing.error !== undefined) fired.error = firing.error;
      events.emit('schedule.fired', fired);
    });
    this.deps.messages.deliverStored(messages, stored);
    return results;
  }

  /** A run whose messages cannot be made (its URL group is gone) is recorded as the schedule's error. */
  private async prepareRun(
    schedule: ScheduleRecord,
    now: number,
    trigger: 'cron' | 'manual',
  ): Promise<{ firing: ScheduleFiring; error?: CourierError }> {
    const { template } = schedule;
    const request: PublishRequest = {
      destination: isUrl(template.destination) ? { url: template.destination } : { group: template.destination },
      options: template.options,
      body: template.body,
      callerIp: template.callerIp,
    };
    if (template.queueName !== undefined) request.queueName = template.queueName;
    try {
      const messages: NewMessage[] = await this.deps.messages.messagesFor(request, now, { scheduleId: schedule.scheduleId, trigger });
      return { firing: { scheduleId: schedule.scheduleId, messages } };
    } catch (error) {
      if (!(error instanceof CourierError)) throw error;
      return { firing: { scheduleId: schedule.scheduleId, messages: [], error: error.message }, error };
    }
  }

  private async view(schedule: ScheduleRecord): Promise<ScheduleView> {
    const runs = await this.deps.store.listScheduleRuns(schedule.scheduleId, RUN_STATS_WINDOW);
    const lastStates: Record<string, ScheduleRun['state']> = {};
    const last = new Set(schedule.lastMessageIds);
    for (const run of runs) if (last.has(run.messageId)) lastStates[run.messageId] = run.state;
    return { schedule, lastStates, runStats: runStats(runs) };
  }
}

function runStats(runs: ScheduleRun[]): RunStats {
  const finished = runs.filter((run) => run.state !== 'IN_PROGRESS');
  const succeeded = finished.filter((run) => run.state === 'SUCCESS').length;
  const stats: RunStats = { window: RUN_STATS_WINDOW, finished: finished.length, succeeded, failed: finished.length - succeeded };
  if (finished.length > 0) stats.successRate = succeeded / finished.length;
  const timed = finished.filter((run) => run.durationMs !== undefined);
  if (timed.length > 0) stats.meanDurationMs = Math.round(timed.reduce((sum, run) => sum + run.durationMs!, 0) / timed.length);
  return stats;
}

function nextTickAfter(cron: string, now: number): number | CourierError | undefined {
  try {
    return parseCron(cron).nextAfter(now);
  } catch (error) {
    if (error instanceof CourierError) return error;
    throw error;
  }
}

const isUrl = (destination: string): boolean => /^https?:\/\//i.test(destination);

const notFound = (scheduleId: string) => new CourierError('SCHEDULE_NOT_FOUND', `schedule "${scheduleId}" not found`);
