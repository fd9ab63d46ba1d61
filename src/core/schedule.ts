/** Schedules (spec §7): a cron that publishes a message on every tick. */
import type { PublishOptions } from './publish-options.js';

/** What each tick publishes: a publish request, frozen when the schedule was saved. */
export interface ScheduleTemplate {
  /** A URL, or a URL group's name (resolved at each tick). */
  destination: string;
  options: PublishOptions;
  body: Uint8Array;
  queueName?: string;
  callerIp: string;
}

export interface ScheduleDefinition {
  scheduleId: string;
  /** As given, trimmed; may start with `CRON_TZ=<zone> `. */
  cron: string;
  template: ScheduleTemplate;
}

export interface ScheduleRecord extends ScheduleDefinition {
  paused: boolean;
  createdAt: number;
  updatedAt: number;
  /** The tick the scheduler will fire next; absent while paused or when the cron has no future time. */
  nextAt?: number;
  lastAt?: number;
  /** The messages the last run published. */
  lastMessageIds: string[];
  /** Why the last tick published nothing (e.g. its URL group is gone). */
  lastError?: string;
}

/** One message a schedule published, with how it ended (a Courier extension for run history). */
export interface ScheduleRun {
  messageId: string;
  url: string;
  trigger: 'cron' | 'manual';
  state: 'IN_PROGRESS' | 'SUCCESS' | 'FAIL' | 'CANCELED';
  createdAt: number;
  finishedAt?: number;
  retried: number;
  /** From the last attempt, when there was one. */
  responseStatus?: number;
  durationMs?: number;
  error?: string;
}
