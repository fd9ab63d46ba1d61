/**
 * The domain events (src/core/events.ts) on `server.events`, end to end:
 * publishes through the official SDK over real HTTP to a real local
 * destination, and the sequence of events each message goes through, in
 * order, with their payloads: delivered; retried then dead-lettered, then
 * replayed from the DLQ; canceled; and a schedule's cron tick and "run now".
 * Only order and content are asserted, never timing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CourierEvents, EventName } from '../../src/core/events.js';
import { SteppedClock } from '../helpers/clock.js';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually, startDestination, uniquePath, type Destination } from '../helpers/destination.js';

type Recorded = { [N in EventName]: { name: N; payload: CourierEvents[N] } }[EventName];

const NAMES: EventName[] = [
  'message.published',
  'attempt.started',
  'attempt.finished',
  'message.retried',
  'message.delivered',
  'message.dead-lettered',
  'message.canceled',
  'dead-letter.deleted',
  'dead-letter.replayed',
  'schedule.fired',
  'instance.health-changed',
];

/** Every event the server emits, in order. */
function record(courier: TestCourier): { events: Recorded[]; stop: () => void } {
  const events: Recorded[] = [];
  const offs = NAMES.map((name) => courier.server.events.on(name, (payload) => events.push({ name, payload } as Recorded)));
  return { events, stop: () => offs.forEach((off) => off()) };
}

const concerns = (event: Recorded, messageId: string): boolean =>
  ('messageId' in event.payload && event.payload.messageId === messageId) ||
  ('messageIds' in event.payload && event.payload.messageIds?.includes(messageId) === true);

describe('domain events on server.events', () => {
  let courier: TestCourier;
  let clock: SteppedClock;
  let destination: Destination;
  let recorder: ReturnType<typeof record>;
  /** Paths under /fail answer 500 to their first two arrivals, then 200. */
  const arrivalsPerPath = new Map<string, number>();

  before(async () => {
    clock = new SteppedClock();
    courier = await startTestCourier({}, { clock });
    destination = await startDestination((arrival) => {
      const seen = (arrivalsPerPath.get(arrival.path) ?? 0) + 1;
      arrivalsPerPath.set(arrival.path, seen);
      if (arrival.path.startsWith('/fail') && seen <= 2) return { status: 500, body: 'failing' };
      return { status: 200, body: 'ok' };
    });
    recorder = record(courier);
  });
  after(async () => {
    recorder.stop();
    await destination.close();
    await courier.stop();
  });

  /** The events of one message, in order, once the last one is `last`. */
  async function eventsOf(messageId: string, last: EventName, count = 1): Promise<Recorded[]> {
    return eventually(
      () => {
        const mine = recorder.events.filter((event) => concerns(event, messageId));
        return mine.filter((event) => event.name === last).length >= count ? mine : undefined;
      },
      10_000,
      `${last} for ${messageId}`,
    );
  }

  it('publishes, attempts and delivers a message', async () => {
    const url = destination.url(uniquePath('ok'));
    const { messageId } = await courier.client.publish({ url, body: 'hello' });
    const events = await eventsOf(messageId, 'message.delivered');
    assert.deepEqual(events.map((event) => event.name), ['message.published', 'attempt.started', 'attempt.finished', 'message.delivered']);
    const [published, started, finished, delivered] = events.map((event) => event.payload) as [
      CourierEvents['message.published'],
      CourierEvents['attempt.started'],
      CourierEvents['attempt.finished'],
      CourierEvents['message.delivered'],
    ];
    assert.equal(published.url, url);
    assert.equal(published.queueName, undefined);
    assert.deepEqual({ url: started.url, retried: started.retried }, { url, retried: 0 });
    assert.deepEqual(
      { url: finished.url, retried: finished.retried, status: finished.status, outcome: finished.outcome, error: finished.error },
      { url, retried: 0, status: 200, outcome: 'delivered', error: undefined },
    );
    assert.equal(typeof finished.durationMs, 'number');
    assert.deepEqual({ url: delivered.url, retried: delivered.retried, status: delivered.status }, { url, retried: 0, status: 200 });
  });

  it('retries a failing message, dead-letters it when retries run out, and replays it from the DLQ', async () => {
    const url = destination.url(uniquePath('fail'));
    const { messageId } = await courier.client.publish({ url, body: 'doomed', retries: 1, retryDelay: '0' });
    const events = await eventsOf(messageId, 'message.dead-lettered');
    assert.deepEqual(events.map((event) => event.name), [
      'message.published',
      'attempt.started',
      'attempt.finished',
      'message.retried',
      'attempt.started',
      'attempt.finished',
      'message.dead-lettered',
    ]);
    const payloads = events.map((event) => event.payload);
    const first = payloads[2] as CourierEvents['attempt.finished'];
    assert.deepEqual(
      { retried: first.retried, status: first.status, outcome: first.outcome, error: first.error },
      { retried: 0, status: 500, outcome: 'retry', error: '500 Internal Server Error' },
    );
    const retried = payloads[3] as CourierEvents['message.retried'];
    assert.equal(retried.nextDeliveryAt, first.nextDeliveryAt);
    assert.equal(typeof retried.nextDeliveryAt, 'number');
    assert.equal((payloads[4] as CourierEvents['attempt.started']).retried, 1);
    const last = payloads[5] as CourierEvents['attempt.finished'];
    assert.deepEqual({ retried: last.retried, outcome: last.outcome, nextDeliveryAt: last.nextDeliveryAt }, { retried: 1, outcome: 'deadLetter', nextDeliveryAt: undefined });
    const deadLettered = payloads[6] as CourierEvents['message.dead-lettered'];
    assert.deepEqual({ url: deadLettered.url, status: deadLettered.status, retried: deadLettered.retried }, { url, status: 500, retried: 1 });

    // The event's dlqId is the DLQ entry's; retrying it publishes a new message that is delivered.
    const entry = await courier.client.dlq.listMessages({ filter: { url } });
    assert.deepEqual(entry.messages.map((message) => message.dlqId), [deadLettered.dlqId]);
    const res = await courier.api(`/v2/dlq/retry/${deadLettered.dlqId}`, { method: 'POST' });
    assert.equal(res.status, 201, await res.clone().text());
    const { messageId: replayId } = (await res.json()) as { messageId: string };
    const replay = await eventsOf(replayId, 'message.delivered');
    assert.deepEqual(replay.map((event) => event.name), [
      'message.published',
      'dead-letter.replayed',
      'attempt.started',
      'attempt.finished',
      'message.delivered',
    ]);
    assert.equal((replay[0]!.payload as CourierEvents['message.published']).replayOf, deadLettered.dlqId);
    assert.deepEqual(replay[1]!.payload, { dlqId: deadLettered.dlqId, messageId: replayId, url, at: replay[1]!.payload.at });
  });

  it('announces a cancel of a pending message, and no attempt', async () => {
    const url = destination.url(uniquePath('canceled'));
    // A day out: the schedule test below steps the clock by up to a minute.
    const { messageId } = await courier.client.publish({ url, body: 'never', delay: 86_400 });
    await courier.client.messages.delete(messageId);
    const events = await eventsOf(messageId, 'message.canceled');
    assert.deepEqual(events.map((event) => event.name), ['message.published', 'message.canceled']);
    const canceled = events[1]!.payload as CourierEvents['message.canceled'];
    assert.deepEqual({ messageIds: canceled.messageIds, count: canceled.count, source: canceled.source }, { messageIds: [messageId], count: 1, source: 'cancel' });
  });

  it('fires a schedule on its cron tick and on "run now", before its messages are published and delivered', async () => {
    const url = destination.url(uniquePath('scheduled'));
    const { scheduleId } = await courier.client.schedules.create({ destination: url, cron: '* * * * *', body: 'tick' });
    try {
      const next = (await courier.client.schedules.get(scheduleId)).nextScheduleTime!;
      clock.set(next + 1);
      assert.equal(await courier.server.scheduler.runDue(), 1);
      const trigger = await courier.api(`/v2/schedules/${scheduleId}/trigger`, { method: 'POST' });
      assert.equal(trigger.status, 200, await trigger.clone().text());

      const fired = recorder.events.filter(
        (event): event is Extract<Recorded, { name: 'schedule.fired' }> => event.name === 'schedule.fired' && event.payload.scheduleId === scheduleId,
      );
      assert.deepEqual(fired.map((event) => [event.payload.trigger, event.payload.messageIds.length, event.payload.error]), [
        ['cron', 1, undefined],
        ['manual', 1, undefined],
      ]);
      for (const { payload } of fired) {
        const messageId = payload.messageIds[0]!;
        const events = await eventsOf(messageId, 'message.delivered');
        assert.deepEqual(events.map((event) => event.name), [
          'schedule.fired',
          'message.published',
          'attempt.started',
          'attempt.finished',
          'message.delivered',
        ]);
        const published = events[1]!.payload as CourierEvents['message.published'];
        assert.deepEqual({ scheduleId: published.scheduleId, url: published.url }, { scheduleId, url });
      }
    } finally {
      await courier.client.schedules.delete(scheduleId);
    }
  });
});
