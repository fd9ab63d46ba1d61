/**
 * Seed 002 end to end: a "data sync" cron that calls a site's
 * `/api/cron/sync-sites` route every 15 minutes (UTC) with GET and a
 * forwarded `Authorization: Bearer <CRON_SECRET>` header, 3 retries 60 s
 * apart, a 300 s timeout, a "Run Now" button, and a run history showing each
 * run's status and duration plus the success rate.
 *
 * The steps below run in order and share one schedule, like a user following
 * the seed. An injected clock reaches each 15-minute tick and each 60-second
 * retry without waiting for them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Schedule } from '@upstash/qstash';
import { SteppedClock } from '../helpers/clock.js';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually, sleep, startDestination, waitForArrivals, type Arrival, type Destination, type Script } from '../helpers/destination.js';

interface RunStats {
  window: number;
  finished: number;
  succeeded: number;
  failed: number;
  successRate?: number;
  meanDuration?: number;
}

type CourierSchedule = Schedule & { timeout?: number; runStats?: RunStats };

interface ScheduleRun {
  messageId: string;
  url: string;
  trigger: 'cron' | 'manual';
  state: 'IN_PROGRESS' | 'SUCCESS' | 'FAIL' | 'CANCELED';
  createdAt: number;
  finishedAt?: number;
  retried: number;
  responseStatus?: number;
  duration?: number;
  error?: string;
}

interface LogEntry {
  time: number;
  state: string;
  nextDeliveryTime?: number;
}

const CRON_SECRET = 'seed-002-cron-secret';
const SYNC_PATH = '/api/cron/sync-sites';
const QUARTER_HOUR = 15 * 60_000;
const RETRY_DELAY_MS = 60_000;
/** How long the sync route takes to answer, so a run's duration has a known lower bound. */
const SYNC_MS = 120;
const QUIET_MS = 500;
/**
 * After the clock passes a retry's due time, the dispatcher's 2 s safety poll
 * picks it up (its own timer still counts real time); this leaves room for that.
 */
const RETRY_PICKUP_MS = 5_000;

describe('seed 002: a 15-minute sync cron with a Bearer token, retries, Run Now and run history', () => {
  let clock: SteppedClock;
  let courier: TestCourier;
  let site: Destination;
  let scheduleId = '';
  let failing = false;
  const runIds: string[] = [];

  // The seed's route: 401 without the right token (its "401 Unauthorized"
  // troubleshooting case), 500 while `failing`, else the seed's JSON answer.
  const syncRoute: Script = (arrival) => {
    if (arrival.headers.authorization !== `Bearer ${CRON_SECRET}`) return { status: 401, body: '{"error":"Unauthorized"}' };
    if (failing) return { status: 500, body: '{"success":false,"error":"database connection failed"}' };
    return {
      status: 200,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ success: true, message: 'Site data sync completed', result: { total: 5, success: 5, failed: 0 } }),
      delayMs: SYNC_MS,
    };
  };

  const get = async () => (await courier.client.schedules.get(scheduleId)) as CourierSchedule;

  async function runs(): Promise<ScheduleRun[]> {
    const res = await courier.api(`/v2/schedules/${scheduleId}/runs`);
    assert.equal(res.status, 200, await res.clone().text());
    return ((await res.json()) as { runs: ScheduleRun[] }).runs;
  }

  async function runUntil(messageId: string, state: ScheduleRun['state']): Promise<ScheduleRun> {
    return eventually(async () => (await runs()).find((r) => r.messageId === messageId && r.state === state), 10_000, `run ${messageId} ${state}`);
  }

  async function logsOf(messageId: string): Promise<LogEntry[]> {
    const { logs } = await courier.client.logs({ messageIds: [messageId], count: 1000 });
    return (logs as unknown as LogEntry[]).slice().reverse();
  }

  async function retriesLogged(messageId: string, count: number): Promise<LogEntry[]> {
    return eventually(async () => {
      const entries = await logsOf(messageId);
      return entries.filter((e) => e.state === 'RETRY').length >= count ? entries : undefined;
    }, 10_000, `${count} RETRY entries for ${messageId}`);
  }

  /** Moves the clock past the schedule's next tick and fires it. */
  async function nextTick(): Promise<number> {
    const next = (await get()).nextScheduleTime!;
    clock.set(next + 1);
    assert.equal(await courier.server.scheduler.runDue(), 1, 'one tick due');
    return next;
  }

  function assertSyncRequest(arrival: Arrival): void {
    assert.equal(arrival.method, 'GET');
    assert.equal(arrival.path, SYNC_PATH);
    assert.equal(arrival.headers.authorization, `Bearer ${CRON_SECRET}`, 'the forwarded Bearer token, not Courier’s own');
    assert.equal(arrival.body.length, 0, 'GET without a body');
    assert.equal(arrival.headers['upstash-schedule-id'], scheduleId);
  }

  async function runNow(): Promise<string> {
    const res = await courier.api(`/v2/schedules/${scheduleId}/trigger`, { method: 'POST' });
    assert.equal(res.status, 200, await res.clone().text());
    const { messages } = (await res.json()) as { messages: { messageId: string; url: string }[] };
    assert.equal(messages.length, 1);
    assert.equal(messages[0]!.url, site.url(SYNC_PATH));
    return messages[0]!.messageId;
  }

  before(async () => {
    clock = new SteppedClock();
    courier = await startTestCourier({}, { clock });
    site = await startDestination(syncRoute);
  });
  after(async () => {
    await site.close();
    await courier.stop();
  });

  it('creates the schedule as the seed configures it: */15 UTC, GET, Bearer header, 3 retries 60 s apart, 300 s timeout', async () => {
    ({ scheduleId } = await courier.client.schedules.create({
      destination: site.url(SYNC_PATH),
      cron: '*/15 * * * *',
      method: 'GET',
      headers: { Authorization: `Bearer ${CRON_SECRET}` },
      retries: 3,
      retryDelay: String(RETRY_DELAY_MS),
      timeout: 300,
    }));
    const s = await get();
    assert.equal(s.cron, '*/15 * * * *');
    assert.equal(s.destination, site.url(SYNC_PATH));
    assert.equal(s.method, 'GET');
    assert.equal(s.retries, 3);
    assert.equal(s.retryDelayExpression, '60000');
    assert.equal(s.timeout, 300);
    assert.equal(s.isPaused, false);
    const authorization = Object.entries(s.header ?? {}).find(([key]) => key.toLowerCase() === 'authorization')?.[1];
    assert.deepEqual(authorization, [`Bearer ${CRON_SECRET}`]);
    assert.equal(s.body, undefined);
    assert.equal(s.bodyBase64, undefined);
    const now = clock.now();
    assert.equal(s.nextScheduleTime! % QUARTER_HOUR, 0, 'ticks at :00, :15, :30, :45 UTC');
    assert.ok(s.nextScheduleTime! > now && s.nextScheduleTime! - now <= QUARTER_HOUR);
  });

  it('calls the route with GET and the Bearer token on the first tick', async () => {
    await nextTick();
    const [arrival] = await waitForArrivals(site, SYNC_PATH, 1);
    assertSyncRequest(arrival!);
    const messageId = String(arrival!.headers['upstash-message-id']);
    runIds.push(messageId);
    const run = await runUntil(messageId, 'SUCCESS');
    assert.equal(run.trigger, 'cron');
    assert.equal(run.responseStatus, 200);
  });

  it('retries a failed run 60 s later on the clock, and the retry succeeds', async () => {
    failing = true;
    await nextTick();
    const arrivals = await waitForArrivals(site, SYNC_PATH, 2);
    assertSyncRequest(arrivals[1]!);
    const messageId = String(arrivals[1]!.headers['upstash-message-id']);
    runIds.push(messageId);

    const entries = await retriesLogged(messageId, 1);
    const error = entries.find((e) => e.state === 'ERROR')!;
    const retry = entries.find((e) => e.state === 'RETRY')!;
    assert.ok(
      Math.abs(retry.nextDeliveryTime! - error.time - RETRY_DELAY_MS) < 1_000,
      `retry due ${retry.nextDeliveryTime! - error.time} ms after the failure, want 60000`,
    );
    assert.ok(retry.nextDeliveryTime! - clock.now() > RETRY_DELAY_MS - 5_000, 'not due until the clock moves');

    const waiting = (await runs()).find((r) => r.messageId === messageId)!;
    assert.equal(waiting.state, 'IN_PROGRESS', 'a run waiting for its retry is still in progress');
    assert.equal(waiting.responseStatus, 500, 'showing the failed attempt’s status');
    await sleep(QUIET_MS);
    assert.equal(site.arrivals.length, 2, 'no early retry');

    failing = false;
    clock.advance(RETRY_DELAY_MS);
    const [, , retried] = await waitForArrivals(site, SYNC_PATH, 3, RETRY_PICKUP_MS);
    assertSyncRequest(retried!);
    assert.equal(retried!.headers['upstash-message-id'], messageId);
    assert.equal(retried!.headers['upstash-retried'], '1');
    const run = await runUntil(messageId, 'SUCCESS');
    assert.equal(run.responseStatus, 200);
    assert.equal(run.retried, 1);
  });

  it('runs now on "Run Now", without moving the next 15-minute tick', async () => {
    const next = (await get()).nextScheduleTime;
    const messageId = await runNow();
    runIds.push(messageId);
    const arrivals = await waitForArrivals(site, SYNC_PATH, 4);
    assertSyncRequest(arrivals[3]!);
    assert.equal(arrivals[3]!.headers['upstash-message-id'], messageId);
    const run = await runUntil(messageId, 'SUCCESS');
    assert.equal(run.trigger, 'manual');
    assert.equal(run.responseStatus, 200);
    assert.equal((await get()).nextScheduleTime, next);
  });

  it('gives up after 3 retries 60 s apart and dead-letters the run with its schedule id', async () => {
    failing = true;
    const messageId = await runNow();
    runIds.push(messageId);
    await waitForArrivals(site, SYNC_PATH, 5);
    for (let retry = 1; retry <= 3; retry += 1) {
      await retriesLogged(messageId, retry);
      clock.advance(RETRY_DELAY_MS);
      const arrivals = await waitForArrivals(site, SYNC_PATH, 5 + retry, RETRY_PICKUP_MS);
      assert.equal(arrivals[4 + retry]!.headers['upstash-retried'], String(retry));
    }
    const run = await runUntil(messageId, 'FAIL');
    assert.equal(run.responseStatus, 500);
    assert.equal(run.retried, 3);
    await sleep(QUIET_MS);
    assert.equal(site.arrivals.length, 8, 'four attempts: the first and 3 retries');

    const entry = await eventually(async () => {
      const { messages } = await courier.client.dlq.listMessages({ filter: { messageId } });
      return messages[0];
    }, 10_000, `a DLQ entry for ${messageId}`);
    assert.equal(entry.scheduleId, scheduleId);
    assert.equal(entry.responseStatus, 500);
  });

  it('shows every run newest first with its status and duration, and a 3-in-4 success rate', async () => {
    const history = await runs();
    assert.deepEqual(
      history.map((r) => [r.messageId, r.trigger, r.state, r.responseStatus]),
      [
        [runIds[3], 'manual', 'FAIL', 500],
        [runIds[2], 'manual', 'SUCCESS', 200],
        [runIds[1], 'cron', 'SUCCESS', 200],
        [runIds[0], 'cron', 'SUCCESS', 200],
      ],
    );
    for (const run of history) {
      assert.equal(typeof run.duration, 'number', `run ${run.messageId} has a duration`);
      assert.ok(run.finishedAt! >= run.createdAt);
      if (run.state === 'SUCCESS') assert.ok(run.duration! >= SYNC_MS - 20, `the route took ${SYNC_MS} ms; duration ${run.duration} ms`);
    }
    const stats = (await get()).runStats!;
    assert.equal(stats.finished, 4);
    assert.equal(stats.succeeded, 3);
    assert.equal(stats.failed, 1);
    assert.equal(stats.successRate, 0.75);
    assert.equal(typeof stats.meanDuration, 'number');
  });
});
