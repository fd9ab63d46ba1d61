/**
 * Schedules end to end (spec §7 plus Courier's trigger-now and run history),
 * through the official SDK against real local destinations. Ticks are
 * reached by stepping an injected clock and asking the scheduler to fire
 * what is due, so no test waits for a real minute, except the one marked
 * real-time test, which runs beside the others.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { QstashError, type CreateScheduleRequest, type Schedule } from '@upstash/qstash';
import { SteppedClock } from '../helpers/clock.js';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import {
  arrivalsAt,
  eventually,
  ok,
  sleep,
  startDestination,
  uniquePath,
  waitForArrivals,
  type Destination,
  type Script,
} from '../helpers/destination.js';

/** Courier's extension on the schedule object. */
interface RunStats {
  window: number;
  finished: number;
  succeeded: number;
  failed: number;
  successRate?: number;
  meanDuration?: number;
}

type CourierSchedule = Schedule & { timeout?: number; runStats?: RunStats; error?: string };

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

const MINUTE = 60_000;
const QUARTER_HOUR = 15 * MINUTE;
/** Long enough that a tick that should not fire, or a second delivery, would have shown up. */
const QUIET_MS = 500;

const withStatus = (status: number) => (error: unknown) => {
  assert.ok(error instanceof QstashError, `expected a QstashError, got ${String(error)}`);
  assert.equal(error.status, status);
  return true;
};

/** Header maps may be keyed in any case; look one up the way HTTP does. */
const headerValue = (headers: Record<string, string[]> | undefined, name: string) =>
  Object.entries(headers ?? {}).find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];

/** The wall-clock hour of `at` in `timeZone`, 0-23. */
const hourIn = (at: number, timeZone: string) =>
  Number(new Intl.DateTimeFormat('en-US', { timeZone, hour: 'numeric', hourCycle: 'h23' }).format(at));

describe('schedules', { concurrency: true }, () => {
  describe('with a stepped clock', { concurrency: false }, () => {
    let courier: TestCourier;
    let clock: SteppedClock;
    let d: Destination;
    const destinations: Destination[] = [];

    async function destination(script: Script = ok): Promise<Destination> {
      const started = await startDestination(script);
      destinations.push(started);
      return started;
    }

    const create = (request: CreateScheduleRequest) => courier.client.schedules.create(request);
    const get = async (id: string) => (await courier.client.schedules.get(id)) as CourierSchedule;

    async function runsOf(id: string, query = ''): Promise<ScheduleRun[]> {
      const res = await courier.api(`/v2/schedules/${id}/runs${query}`);
      assert.equal(res.status, 200, await res.clone().text());
      return ((await res.json()) as { runs: ScheduleRun[] }).runs;
    }

    async function trigger(id: string): Promise<{ scheduleId: string; messages: { messageId: string; url: string }[] }> {
      const res = await courier.api(`/v2/schedules/${id}/trigger`, { method: 'POST' });
      assert.equal(res.status, 200, await res.clone().text());
      return (await res.json()) as { scheduleId: string; messages: { messageId: string; url: string }[] };
    }

    /** Moves the clock to `at` and fires what is due; resolves with how many ticks fired. */
    async function fireAt(at: number): Promise<number> {
      if (at > clock.now()) clock.set(at);
      return courier.server.scheduler.runDue();
    }

    async function fireNextTick(id: string): Promise<number> {
      const next = (await get(id)).nextScheduleTime;
      assert.equal(typeof next, 'number', `schedule ${id} has a next tick`);
      assert.equal(await fireAt(next! + 1), 1, 'one tick due');
      return next!;
    }

    async function stateOf(id: string, messageId: string, want: string): Promise<CourierSchedule> {
      return eventually(async () => {
        const s = await get(id);
        return s.lastScheduleStates?.[messageId] === want ? s : undefined;
      }, 10_000, `${want} for ${messageId} in schedule ${id}`);
    }

    async function postSchedule(destinationUrl: string, headers: Record<string, string>) {
      const res = await courier.api(`/v2/schedules/${destinationUrl}`, { method: 'POST', headers, body: '' });
      return { status: res.status, body: (await res.json()) as { error?: string; scheduleId?: string } };
    }

    before(async () => {
      clock = new SteppedClock();
      courier = await startTestCourier({}, { clock });
      d = await destination();
    });
    afterEach(async () => {
      // A schedule left behind would fire when a later test moves the clock.
      for (const s of await courier.client.schedules.list()) await courier.client.schedules.delete(s.scheduleId);
    });
    after(async () => {
      await Promise.all(destinations.map((x) => x.close()));
      await courier.stop();
    });

    it('stores a schedule as created: trimmed cron, method, retries, forwarded headers, body, delay and timeout in seconds', async () => {
      const url = d.url(uniquePath('created'));
      const { scheduleId } = await create({
        destination: url,
        cron: '*/10 * * * * ',
        method: 'PUT',
        retries: 2,
        retryDelay: '1000 * retried',
        headers: { 'Content-Type': 'text/plain', 'X-Custom': 'v1' },
        body: 'hello',
        delay: 30,
        timeout: 20,
      });
      assert.match(scheduleId, /^scd_/);

      const s = await get(scheduleId);
      const now = clock.now();
      assert.equal(s.scheduleId, scheduleId);
      assert.equal(s.cron, '*/10 * * * *');
      assert.equal(s.destination, url);
      assert.equal(s.method, 'PUT');
      assert.equal(s.isPaused, false);
      assert.equal(s.retries, 2);
      assert.equal(s.retryDelayExpression, '1000 * retried');
      assert.deepEqual(headerValue(s.header, 'X-Custom'), ['v1']);
      assert.deepEqual(headerValue(s.header, 'Content-Type'), ['text/plain']);
      assert.equal(s.body, 'hello');
      assert.equal(s.delay, 30);
      assert.equal(s.timeout, 20);
      assert.equal(typeof s.createdAt, 'number');
      assert.ok(Math.abs(s.createdAt - now) < MINUTE, 'createdAt is in ms');
      assert.ok(s.nextScheduleTime! > now, 'the next tick is in the future');
      assert.ok(s.nextScheduleTime! - now <= 10 * MINUTE);
      assert.equal(s.nextScheduleTime! % (10 * MINUTE), 0, 'ticks fall on whole tens of minutes (UTC)');
      assert.equal(s.lastScheduleTime, undefined, 'never fired');
      assert.equal(s.runStats?.finished, 0);
      assert.equal(s.runStats?.successRate, undefined, 'no success rate before a run has finished');
      assert.equal(s.runStats?.meanDuration, undefined);

      const listed = await courier.client.schedules.list();
      assert.deepEqual(
        listed.map((x) => [x.scheduleId, x.cron]),
        [[scheduleId, '*/10 * * * *']],
      );
    });

    it('replaces a schedule entirely when created again with its id, keeping createdAt and the paused state', async () => {
      const id = 'nightly_sync.v2-1';
      await create({
        destination: d.url('/upsert-1'),
        cron: '0 3 * * *',
        scheduleId: id,
        body: 'first',
        retries: 4,
        headers: { 'X-Old': 'yes' },
      });
      const first = await get(id);
      assert.equal(first.body, 'first');
      await courier.client.schedules.pause({ schedule: id });
      await sleep(10);

      const again = await create({ destination: d.url('/upsert-2'), cron: '30 4 * * *', scheduleId: id, retries: 1 });
      assert.equal(again.scheduleId, id);
      const second = await get(id);
      assert.equal(second.cron, '30 4 * * *');
      assert.equal(second.destination, d.url('/upsert-2'));
      assert.equal(second.retries, 1);
      assert.equal(second.body, undefined, 'a body not re-sent is dropped');
      assert.equal(second.bodyBase64, undefined);
      assert.equal(headerValue(second.header, 'X-Old'), undefined, 'headers not re-sent are dropped');
      assert.equal(second.createdAt, first.createdAt);
      assert.equal(second.isPaused, true);
      assert.equal((await courier.client.schedules.list()).length, 1, 'replaced, not duplicated');
    });

    it('evaluates a CRON_TZ= cron in that zone and a plain cron in UTC', async () => {
      const url = d.url(uniquePath('tz'));
      const zoned = await create({ destination: url, cron: 'CRON_TZ=America/New_York 0 4 * * *' });
      const plain = await create({ destination: url, cron: '0 4 * * *' });
      const z = await get(zoned.scheduleId);
      const p = await get(plain.scheduleId);
      assert.equal(z.cron, 'CRON_TZ=America/New_York 0 4 * * *');
      const zonedNext = new Date(z.nextScheduleTime!);
      assert.ok([8, 9].includes(zonedNext.getUTCHours()), `04:00 in New York is 08:00 or 09:00 UTC, got ${zonedNext.toISOString()}`);
      assert.equal(zonedNext.getUTCMinutes(), 0);
      assert.equal(hourIn(zonedNext.getTime(), 'America/New_York'), 4);
      assert.ok(zonedNext.getTime() - clock.now() <= 25 * 60 * MINUTE);
      const plainNext = new Date(p.nextScheduleTime!);
      assert.equal(plainNext.getUTCHours(), 4);
      assert.equal(plainNext.getUTCMinutes(), 0);
    });

    it('rejects an invalid cron with 400 naming Upstash-Cron, and creates nothing', async () => {
      const url = d.url(uniquePath('bad-cron'));
      for (const cron of ['61 * * * *', '* * * *', '* * * * * *', 'CRON_TZ=Mars/Base * * * * *', 'every minute']) {
        const { status, body } = await postSchedule(url, { 'Upstash-Cron': cron });
        assert.equal(status, 400, `${cron}: status`);
        assert.match(body.error ?? '', /Upstash-Cron/i, `${cron}: the error names the header`);
      }
      const missing = await postSchedule(url, {});
      assert.equal(missing.status, 400, 'no cron at all');
      assert.match(missing.body.error ?? '', /Upstash-Cron/i);
      await assert.rejects(create({ destination: url, cron: '* * * *' }), withStatus(400));
      assert.deepEqual(await courier.client.schedules.list(), []);
    });

    it('rejects a schedule id outside [A-Za-z0-9._-]{1,128} with 400', async () => {
      const url = d.url(uniquePath('bad-id'));
      for (const id of ['has space', 'a/b', 'semi;colon', 'x'.repeat(129)]) {
        const { status, body } = await postSchedule(url, { 'Upstash-Cron': '* * * * *', 'Upstash-Schedule-Id': id });
        assert.equal(status, 400, `${JSON.stringify(id)}: status`);
        assert.match(body.error ?? '', /schedule.?id/i, `${JSON.stringify(id)}: the error names the schedule id`);
      }
      const longest = await postSchedule(url, { 'Upstash-Cron': '* * * * *', 'Upstash-Schedule-Id': 'x'.repeat(128) });
      assert.equal(longest.status, 200, '128 characters is allowed');
      assert.equal(longest.body.scheduleId, 'x'.repeat(128));
      assert.equal((await courier.client.schedules.list()).length, 1);
    });

    it('rejects Upstash-Not-Before and deduplication headers on a schedule with 400', async () => {
      const url = d.url(uniquePath('not-before'));
      const cases: [Record<string, string>, RegExp][] = [
        [{ 'Upstash-Not-Before': String(Math.floor(clock.now() / 1000) + 3600) }, /not-before/i],
        [{ 'Upstash-Deduplication-Id': 'dedup-1' }, /dedup/i],
        [{ 'Upstash-Content-Based-Deduplication': 'true' }, /dedup/i],
      ];
      for (const [headers, names] of cases) {
        const { status, body } = await postSchedule(url, { 'Upstash-Cron': '* * * * *', ...headers });
        assert.equal(status, 400, `${Object.keys(headers)[0]}: status`);
        assert.match(body.error ?? '', names);
      }
      assert.deepEqual(await courier.client.schedules.list(), []);
    });

    it('deletes a schedule: get answers 404 and the list no longer has it', async () => {
      const { scheduleId } = await create({ destination: d.url(uniquePath('deleted')), cron: '0 * * * *' });
      await courier.client.schedules.delete(scheduleId);
      await assert.rejects(courier.client.schedules.get(scheduleId), withStatus(404));
      assert.deepEqual(await courier.client.schedules.list(), []);
      await assert.rejects(courier.client.schedules.get('scd_never_existed'), withStatus(404));
    });

    it('pauses and resumes by PATCH (the SDK) and by POST, idempotently', async () => {
      const { scheduleId } = await create({ destination: d.url(uniquePath('pause')), cron: '0 * * * *' });
      await courier.client.schedules.pause({ schedule: scheduleId });
      await courier.client.schedules.pause({ schedule: scheduleId });
      let s = await get(scheduleId);
      assert.equal(s.isPaused, true);
      assert.equal(s.nextScheduleTime, undefined, 'a paused schedule has no next tick');
      await courier.client.schedules.resume({ schedule: scheduleId });
      s = await get(scheduleId);
      assert.equal(s.isPaused, false);
      assert.ok(s.nextScheduleTime! > clock.now());

      for (const action of ['pause', 'pause', 'resume', 'resume']) {
        const res = await courier.api(`/v2/schedules/${scheduleId}/${action}`, { method: 'POST' });
        assert.equal(res.status, 200, `POST ${action}: ${await res.text()}`);
        assert.equal((await get(scheduleId)).isPaused, action === 'pause');
      }
    });

    it('does not fire a paused schedule when its tick passes', async () => {
      const path = uniquePath('paused');
      const { scheduleId } = await create({ destination: d.url(path), cron: '*/15 * * * *' });
      const next = (await get(scheduleId)).nextScheduleTime!;
      await courier.client.schedules.pause({ schedule: scheduleId });
      assert.equal(await fireAt(next + 1), 0);
      await sleep(QUIET_MS);
      assert.equal(arrivalsAt(d, path).length, 0);
      assert.deepEqual(await runsOf(scheduleId), []);
      await courier.client.schedules.resume({ schedule: scheduleId });
      assert.ok((await get(scheduleId)).nextScheduleTime! > clock.now(), 'resuming schedules the next tick from now');
    });

    it('fires a due tick once, delivering with Upstash-Schedule-Id, and tracks IN_PROGRESS then SUCCESS', async () => {
      const path = uniquePath('tick');
      const held = await destination(() => ({ status: 200, body: 'done', delayMs: 400 }));
      const { scheduleId } = await create({ destination: held.url(path), cron: '*/15 * * * *', body: 'tick body' });
      const tickAt = (await get(scheduleId)).nextScheduleTime!;
      assert.equal(tickAt % QUARTER_HOUR, 0);

      assert.equal(await fireAt(tickAt + 1), 1);
      const [arrival] = await waitForArrivals(held, path, 1);
      assert.equal(arrival!.headers['upstash-schedule-id'], scheduleId);
      assert.equal(arrival!.method, 'POST', 'POST unless a method is given');
      assert.equal(arrival!.body.toString(), 'tick body');
      const messageId = String(arrival!.headers['upstash-message-id']);

      // The destination holds its answer 400 ms: the run is still in progress.
      const during = await get(scheduleId);
      assert.deepEqual(during.lastScheduleStates, { [messageId]: 'IN_PROGRESS' });
      assert.ok(during.lastScheduleTime! >= tickAt && during.lastScheduleTime! <= clock.now(), 'lastScheduleTime is this tick');
      assert.equal(during.nextScheduleTime, tickAt + QUARTER_HOUR);

      assert.equal(await courier.server.scheduler.runDue(), 0, 'nothing more is due until the clock moves');
      await stateOf(scheduleId, messageId, 'SUCCESS');
      await sleep(QUIET_MS);
      assert.equal(arrivalsAt(held, path).length, 1, 'the tick fired exactly once');
      const runs = await runsOf(scheduleId);
      assert.deepEqual(
        runs.map((r) => [r.messageId, r.trigger, r.state]),
        [[messageId, 'cron', 'SUCCESS']],
      );
    });

    it('fires once, not once per missed tick, when the clock jumps two hours past the next tick', async () => {
      const path = uniquePath('missed');
      const { scheduleId } = await create({ destination: d.url(path), cron: '*/15 * * * *' });
      const next = (await get(scheduleId)).nextScheduleTime!;
      assert.equal(await fireAt(next + 2 * 60 * MINUTE + 1), 1, 'nine tick times passed; one tick fires');
      await waitForArrivals(d, path, 1);
      assert.equal(await courier.server.scheduler.runDue(), 0);
      await sleep(QUIET_MS);
      assert.equal(arrivalsAt(d, path).length, 1, 'no burst for the ticks it missed');
      assert.equal((await runsOf(scheduleId)).length, 1);
      const s = await get(scheduleId);
      const now = clock.now();
      assert.ok(s.nextScheduleTime! > now, 'the next tick is after the new now');
      assert.ok(s.nextScheduleTime! - now <= QUARTER_HOUR);
      assert.equal(s.nextScheduleTime! % QUARTER_HOUR, 0);
    });

    it('records a run whose retries are exhausted as FAIL, with a DLQ entry naming the schedule', async () => {
      const path = uniquePath('failing');
      const failing = await destination(() => ({ status: 500, body: 'broken' }));
      const { scheduleId } = await create({ destination: failing.url(path), cron: '0 * * * *', retries: 1, retryDelay: '100' });
      await fireNextTick(scheduleId);
      const arrivals = await waitForArrivals(failing, path, 2);
      assert.deepEqual(
        arrivals.map((a) => a.headers['upstash-retried']),
        ['0', '1'],
      );
      const messageId = String(arrivals[0]!.headers['upstash-message-id']);
      const s = await stateOf(scheduleId, messageId, 'FAIL');
      assert.equal(s.runStats?.failed, 1);
      assert.equal(s.runStats?.successRate, 0);

      const entry = await eventually(async () => {
        const { messages } = await courier.client.dlq.listMessages({ filter: { messageId } });
        return messages[0];
      }, 10_000, `a DLQ entry for ${messageId}`);
      assert.equal(entry.scheduleId, scheduleId);
      assert.equal(entry.responseStatus, 500);
    });

    it('publishes each tick into the schedule’s queue, which holds it while paused', async () => {
      const path = uniquePath('queued');
      const queue = courier.client.queue({ queueName: 'scheduled-queue' });
      await queue.upsert({ parallelism: 1 });
      await queue.pause();
      const { scheduleId } = await create({ destination: d.url(path), cron: '0 * * * *', queueName: 'scheduled-queue' });
      assert.equal((await get(scheduleId)).queueName, 'scheduled-queue');

      await fireNextTick(scheduleId);
      await eventually(async () => ((await queue.get()).lag === 1 ? true : undefined), 5_000, 'the tick in the queue');
      await sleep(QUIET_MS);
      assert.equal(arrivalsAt(d, path).length, 0, 'the paused queue holds the tick’s message');
      await queue.resume();
      const [arrival] = await waitForArrivals(d, path, 1);
      assert.equal(arrival!.headers['upstash-schedule-id'], scheduleId);
    });

    it('applies the schedule’s flow control to each tick', async () => {
      const path = uniquePath('flow');
      const key = 'scheduled-flow';
      const { scheduleId } = await create({
        destination: d.url(path),
        cron: '0 * * * *',
        flowControl: { key, parallelism: 1, rate: 2, period: '30s' },
      });
      const s = await get(scheduleId);
      assert.equal(s.flowControlKey, key);
      assert.equal(s.parallelism, 1);
      assert.equal(s.rate, 2);
      assert.equal(s.period, 30);

      await fireNextTick(scheduleId);
      await waitForArrivals(d, path, 1);
      const state = await courier.client.flowControl.get(key);
      assert.equal(state.parallelismMax, 1);
      assert.equal(state.rateMax, 2);
      assert.equal(state.ratePeriod, 30);

      await courier.client.flowControl.pause(key);
      await fireNextTick(scheduleId);
      await eventually(async () => ((await courier.client.flowControl.get(key)).waitListSize === 1 ? true : undefined), 5_000, 'the tick waiting on its key');
      await sleep(QUIET_MS);
      assert.equal(arrivalsAt(d, path).length, 1, 'the paused key holds the second tick');
      await courier.client.flowControl.resume(key);
      await waitForArrivals(d, path, 2);
    });

    it('fans a tick out to every endpoint of a URL group, and the group cannot be deleted while scheduled', async () => {
      const group = 'scheduled-group';
      const p1 = uniquePath('group-a');
      const p2 = uniquePath('group-b');
      await courier.client.urlGroups.addEndpoints({ name: group, endpoints: [{ url: d.url(p1) }, { name: 'second', url: d.url(p2) }] });
      const { scheduleId } = await create({ destination: group, cron: '0 * * * *', body: 'to all' });
      await fireNextTick(scheduleId);
      const [a] = await waitForArrivals(d, p1, 1);
      const [b] = await waitForArrivals(d, p2, 1);
      for (const arrival of [a!, b!]) {
        assert.equal(arrival.headers['upstash-schedule-id'], scheduleId);
        assert.equal(arrival.headers['upstash-topic-name'], group);
        assert.equal(arrival.body.toString(), 'to all');
      }
      assert.notEqual(a!.headers['upstash-message-id'], b!.headers['upstash-message-id']);
      await sleep(QUIET_MS);
      assert.equal(arrivalsAt(d, p1).length + arrivalsAt(d, p2).length, 2, 'one delivery per endpoint');
      const s = await get(scheduleId);
      assert.equal(Object.keys(s.lastScheduleStates ?? {}).length, 2);

      await assert.rejects(courier.client.urlGroups.delete(group), withStatus(409));
      await courier.client.schedules.delete(scheduleId);
      await courier.client.urlGroups.delete(group);
    });

    it('runs a schedule now on trigger, also while paused, without moving its next tick', async () => {
      const path = uniquePath('trigger');
      const url = d.url(path);
      const { scheduleId } = await create({ destination: url, cron: '0 0 1 1 *', body: 'now' });
      const next = (await get(scheduleId)).nextScheduleTime;

      const first = await trigger(scheduleId);
      assert.equal(first.scheduleId, scheduleId);
      assert.equal(first.messages.length, 1);
      assert.equal(first.messages[0]!.url, url);
      const [arrival] = await waitForArrivals(d, path, 1);
      assert.equal(arrival!.headers['upstash-message-id'], first.messages[0]!.messageId);
      assert.equal(arrival!.headers['upstash-schedule-id'], scheduleId);
      assert.equal((await get(scheduleId)).nextScheduleTime, next, 'the cron’s next tick is unchanged');

      await courier.client.schedules.pause({ schedule: scheduleId });
      const second = await trigger(scheduleId);
      await waitForArrivals(d, path, 2);
      assert.equal(arrivalsAt(d, path)[1]!.headers['upstash-message-id'], second.messages[0]!.messageId);
      assert.equal((await get(scheduleId)).isPaused, true, 'triggering does not resume');

      const runs = await runsOf(scheduleId);
      assert.deepEqual(
        runs.map((r) => [r.messageId, r.trigger]),
        [
          [second.messages[0]!.messageId, 'manual'],
          [first.messages[0]!.messageId, 'manual'],
        ],
      );
      const unknown = await courier.api('/v2/schedules/scd_unknown/trigger', { method: 'POST' });
      assert.equal(unknown.status, 404);
    });

    it('lists runs newest first with trigger, state, status and duration, and summarises them in runStats', async () => {
      const path = uniquePath('runs');
      const target = await destination((_, index) =>
        index === 0 ? { status: 200, body: 'fine', delayMs: 120 } : { status: 500, body: 'broken' },
      );
      const { scheduleId } = await create({ destination: target.url(path), cron: '0 * * * *', retries: 0 });
      assert.deepEqual(await runsOf(scheduleId), []);

      await fireNextTick(scheduleId);
      const [cronArrival] = await waitForArrivals(target, path, 1);
      const cronId = String(cronArrival!.headers['upstash-message-id']);
      await stateOf(scheduleId, cronId, 'SUCCESS');
      const manual = await trigger(scheduleId);
      const manualId = manual.messages[0]!.messageId;

      const runs = await eventually(async () => {
        const current = await runsOf(scheduleId);
        return current.length === 2 && current.every((r) => r.finishedAt !== undefined) ? current : undefined;
      }, 5_000, 'both runs finished');
      assert.equal(runs.length, 2);
      const [failed, succeeded] = runs as [ScheduleRun, ScheduleRun];
      assert.equal(failed.messageId, manualId);
      assert.equal(failed.trigger, 'manual');
      assert.equal(failed.state, 'FAIL');
      assert.equal(failed.responseStatus, 500);
      assert.equal(typeof failed.duration, 'number');
      assert.equal(failed.retried, 0);
      assert.equal(succeeded.messageId, cronId);
      assert.equal(succeeded.trigger, 'cron');
      assert.equal(succeeded.state, 'SUCCESS');
      assert.equal(succeeded.responseStatus, 200);
      assert.ok(succeeded.duration! >= 100, `the destination held the reply 120 ms; duration ${succeeded.duration} ms`);
      for (const run of runs) {
        assert.equal(run.url, target.url(path));
        assert.equal(typeof run.createdAt, 'number');
        assert.ok(run.finishedAt! >= run.createdAt);
      }
      assert.ok(failed.createdAt >= succeeded.createdAt, 'newest first');

      const newest = await runsOf(scheduleId, '?count=1');
      assert.deepEqual(newest.map((r) => r.messageId), [manualId]);

      const stats = (await get(scheduleId)).runStats;
      assert.equal(stats?.finished, 2);
      assert.equal(stats?.succeeded, 1);
      assert.equal(stats?.failed, 1);
      assert.equal(stats?.successRate, 0.5);
      assert.equal(typeof stats?.meanDuration, 'number');
      assert.equal(typeof stats?.window, 'number');

      const unknown = await courier.api('/v2/schedules/scd_unknown/runs');
      assert.equal(unknown.status, 404);
    });
  });

  // The one slow test: it waits for a real minute boundary (up to ~70 s). Its
  // own Courier on the system clock lets it run beside the stepped-clock tests.
  describe('on the real clock (slow: up to ~70 s)', () => {
    let courier: TestCourier;
    let d: Destination;

    before(async () => {
      courier = await startTestCourier();
      d = await startDestination();
    });
    after(async () => {
      await d.close();
      await courier.stop();
    });

    it('fires a * * * * * schedule at the next real minute', async () => {
      const path = uniquePath('every-minute');
      const { scheduleId } = await courier.client.schedules.create({ destination: d.url(path), cron: '* * * * *', body: 'minute' });
      const next = (await courier.client.schedules.get(scheduleId)).nextScheduleTime!;
      assert.equal(next % MINUTE, 0);
      assert.ok(next - Date.now() <= MINUTE);

      const [arrival] = await waitForArrivals(d, path, 1, 70_000);
      assert.ok(arrival!.at >= next, 'not before the tick');
      assert.equal(arrival!.headers['upstash-schedule-id'], scheduleId);
      assert.equal(arrival!.body.toString(), 'minute');
      const s = await courier.client.schedules.get(scheduleId);
      assert.ok(s.lastScheduleTime! >= next);
      assert.ok(s.nextScheduleTime! >= next + MINUTE);
      await courier.client.schedules.delete(scheduleId);
    });
  });
});
