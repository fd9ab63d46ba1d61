import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createEventBus, type CourierEvents, type EventName } from './events.js';

const delivered: CourierEvents['message.delivered'] = { messageId: 'msg_1', url: 'http://a.test/hook', retried: 0, status: 200, at: 1 };

describe('event bus', () => {
  it('delivers each payload, typed, to every listener of its name, in subscription order', () => {
    const bus = createEventBus();
    const seen: string[] = [];
    bus.on('message.delivered', (payload) => seen.push(`first ${payload.messageId} ${payload.status}`));
    bus.on('message.delivered', (payload) => seen.push(`second ${payload.url}`));
    bus.on('message.retried', () => seen.push('wrong name'));
    bus.emit('message.delivered', delivered);
    assert.deepEqual(seen, ['first msg_1 200', 'second http://a.test/hook']);
  });

  it('stops calling a listener once unsubscribed, and unsubscribing twice is harmless', () => {
    const bus = createEventBus();
    let calls = 0;
    const off = bus.on('message.delivered', () => calls++);
    bus.emit('message.delivered', delivered);
    off();
    off();
    bus.emit('message.delivered', delivered);
    assert.equal(calls, 1);
    assert.equal(bus.hasListeners('message.delivered'), false);
  });

  it('removes only the one subscription: the same function subscribed twice keeps the other', () => {
    const bus = createEventBus();
    let calls = 0;
    const listener = () => calls++;
    const off = bus.on('message.delivered', listener);
    bus.on('message.delivered', listener);
    off();
    bus.emit('message.delivered', delivered);
    assert.equal(calls, 1);
  });

  it('lets a listener unsubscribe while the event is being emitted without skipping the others', () => {
    const bus = createEventBus();
    const seen: string[] = [];
    const off = bus.on('message.delivered', () => {
      seen.push('a');
      off();
    });
    bus.on('message.delivered', () => seen.push('b'));
    bus.emit('message.delivered', delivered);
    bus.emit('message.delivered', delivered);
    assert.deepEqual(seen, ['a', 'b', 'b']);
  });

  it('isolates a throwing listener: the others run, the emitter sees nothing, the error is reported with its event', () => {
    const reported: [unknown, EventName][] = [];
    const bus = createEventBus({ onListenerError: (error, name) => reported.push([error, name]) });
    const seen: string[] = [];
    bus.on('message.delivered', () => {
      throw new Error('listener bug');
    });
    bus.on('message.delivered', (payload) => seen.push(payload.messageId));
    assert.doesNotThrow(() => bus.emit('message.delivered', delivered));
    assert.deepEqual(seen, ['msg_1']);
    assert.equal(reported.length, 1);
    assert.equal((reported[0]![0] as Error).message, 'listener bug');
    assert.equal(reported[0]![1], 'message.delivered');
  });

  it('reports an async listener that rejects instead of leaving an unhandled rejection', async () => {
    const reported: EventName[] = [];
    const bus = createEventBus({ onListenerError: (_error, name) => reported.push(name) });
    bus.on('schedule.fired', async () => {
      throw new Error('later');
    });
    bus.emit('schedule.fired', { scheduleId: 'scd_1', trigger: 'cron', messageIds: [], at: 1 });
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(reported, ['schedule.fired']);
  });

  it('calls nobody and builds nothing when an event has no listener', () => {
    const bus = createEventBus({ onListenerError: () => assert.fail('nothing should be reported') });
    assert.equal(bus.hasListeners('attempt.started'), false);
    let built = 0;
    const payload = () => {
      built++;
      return { messageId: 'msg_1', url: 'http://a.test/hook', retried: 0, at: 1 };
    };
    // The guard a hot path uses: without a listener the payload is never built.
    if (bus.hasListeners('attempt.started')) bus.emit('attempt.started', payload());
    assert.equal(built, 0);
    let calls = 0;
    bus.on('attempt.finished', () => calls++);
    bus.emit('attempt.started', payload());
    assert.equal(calls, 0, 'a listener of another event is not called');
    assert.equal(bus.hasListeners('attempt.finished'), true);
  });
});
