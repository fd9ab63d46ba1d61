/**
 * `Upstash-Cron` (spec §7.1): five fields with one-minute resolution,
 * evaluated in UTC unless prefixed with `CRON_TZ=<IANA zone> `. Parsing and
 * next-time computation (time zones, DST) are croner's.
 */
import { Cron } from 'croner';
import { invalid } from '../core/errors.js';

export interface CronSchedule {
  /** Trimmed, prefix included: what the schedule object shows. */
  source: string;
  /** The first tick strictly after `after` (ms), or undefined if there is none. */
  nextAfter(after: number): number | undefined;
}

const FIELD = 'Upstash-Cron';
const TZ_PREFIX = /^CRON_TZ=(\S+)\s+(.*)$/s;

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function parseCron(raw: string): CronSchedule {
  const source = raw.trim();
  let pattern = source;
  let zone = 'UTC';
  const prefixed = TZ_PREFIX.exec(source);
  if (prefixed) {
    zone = prefixed[1]!;
    pattern = prefixed[2]!.trim();
    if (!isTimeZone(zone)) throw invalid(FIELD, `unknown time zone "${zone}" in CRON_TZ (use an IANA name like "Europe/Berlin")`);
  } else if (source.startsWith('CRON_TZ=')) {
    throw invalid(FIELD, 'CRON_TZ=<zone> must be followed by a space and five cron fields');
  }
  const fields = pattern.split(/\s+/).filter((field) => field !== '');
  if (fields.length !== 5) {
    throw invalid(FIELD, `must have 5 fields (minute hour day-of-month month day-of-week), got ${fields.length} in "${pattern}"`);
  }
  let cron: Cron;
  try {
    cron = new Cron(fields.join(' '), { timezone: zone, paused: true });
  } catch (error) {
    throw invalid(FIELD, `"${pattern}" is not a valid cron expression: ${error instanceof Error ? error.message : String(error)}`);
  }
  const nextAfter = (after: number): number | undefined => cron.nextRun(new Date(after))?.getTime();
  if (nextAfter(Date.now()) === undefined) throw invalid(FIELD, `"${pattern}" never fires`);
  return { source, nextAfter };
}
