/**
 * Streams tied to messages, end to end: a real Courier, publishes through the
 * official SDK (and the raw API), and a real destination that is a worker
 * built with the kit (`courier/worker`) writing to its message's stream over
 * real sockets. Asserted: the status sequence of success, retry, DLQ and
 * cancel; the delivery's stream headers and the token's scope; the kit's
 * write/end/fail; and what a retried delivery does to a stream that already
 * has content (a deterministic writer resumes from history()).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createWorker, type Task, type TaskHandler, TaskStreamError } from '../../src/worker/index.js';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually, sleep } from '../helpers/destination.js';

interface ApiEvent {
  seq: number;
  type: string;
  data: unknown;
}

let counter = 0;
const streamId = (name: string) => `task_${Date.now()}_${name}_${++counter}`;

describe('streams tied to messages', () => {
  let courier: TestCourier;
  let server: Server;
  let origin: string;
  const handlers: Record<string, TaskHandler> = {};
  const seen: Task[] = [];
  /** The worker's route table is fixed when it is made: each path calls what its test set. */
  const PATHS = ['/ok', '/token', '/retry', '/dlq', '/dlq-closed', '/cancel', '/batch', '/enqueue', '/schedule'];

  before(async () => {
    courier = await startTestCourier();
    const { current, next } = courier.server.keys.signingKeys();
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const worker = createWorker({
      keys: { current, next },
      publicUrl: origin,
      courierUrl: courier.url,
      routes: Object.fromEntries(PATHS.map((path) => [path, (task: Task) => handlers[path]!(task)])),
    });
    server.on('request', worker.node);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await courier.stop();
  });

  /** A route on the worker; every task it runs is kept. */
  function route(path: string, handler: TaskHandler): string {
    assert.ok(PATHS.includes(path), `${path} is not in PATHS`);
    handlers[path] = async (task) => {
      seen.push(task);
      return handler(task);
    };
    return `${origin}${path}`;
  }

  async function eventsOf(id: string): Promise<ApiEvent[]> {
    const response = await courier.api(`/v1/streams/${id}/events?after=0&limit=1000`);
    assert.equal(response.status, 200);
    return ((await response.json()) as { events: ApiEvent[] }).events;
  }

  /** The stream's events once it is closed. */
  async function closed(id: string): Promise<{ state: string; messageId?: string; events: ApiEvent[] }> {
    const state = await eventually(
      async () => {
        const response = await courier.api(`/v1/streams/${id}`);
        if (response.status !== 200) return undefined;
        const body = (await response.json()) as { state: string; messageId?: string };
        return body.state === 'open' ? undefined : body;
      },
      15_000,
      `stream ${id} closed`,
    );
    return { ...state, events: await eventsOf(id) };
  }

  /** `status:queued`, `content:a`, … : one line per event. */
  const summary = (events: ApiEvent[]) =>
    events.map((event) => {
      if (event.type === 'status') return `status:${(event.data as { status: string }).status}`;
      return typeof event.data === 'string' ? `${event.type}:${event.data}` : event.type;
    });
  const statuses = (events: ApiEvent[]) => events.filter((event) => event.type === 'status').map((event) => event.data as Record<string, unknown>);

  it('success: queued → running → the worker’s events → delivered, and the stream ends', async () => {
    const id = streamId('ok');
    const url = route('/ok', async (task) => {
      await task.stream.write('content', 'Once upon');
      await task.stream.write('content', ' a time');
      await task.stream.end();
    });
    const { messageId } = await courier.client.publishJSON({ url, body: { prompt: 'story' }, headers: { 'Upstash-Courier-Stream': id } });
    const stream = await closed(id);
    assert.equal(stream.state, 'ended');
    assert.equal(stream.messageId, messageId);
    assert.deepEqual(summary(stream.events), ['status:queued', 'status:running', 'content:Once upon', 'content: a time', 'end:', 'status:delivered']);
    assert.deepEqual(statuses(stream.events)[1], { status: 'running', messageId, attempt: 1 });
    assert.deepEqual(statuses(stream.events)[2], { status: 'delivered', messageId, attempt: 1, responseStatus: 200 });
    assert.deepEqual(stream.events.map((event) => event.seq), [1, 2, 3, 4, 5, 6]);

    const task = seen.find((one) => one.messageId === messageId)!;
    assert.equal(task.headers.get('courier-stream-id'), id);
    assert.equal(task.headers.get('courier-stream-seq'), '2');
    assert.equal(task.stream.startSeq, 2);
    assert.ok(task.headers.get('courier-stream-token'));
  });

  it('a delivery’s token writes and reads its stream only, and expires with the attempt', async () => {
    const id = streamId('token');
    let token = '';
    const url = route('/token', async (task) => {
      token = task.headers.get('courier-stream-token') ?? '';
    });
    await courier.client.publishJSON({ url, body: {}, headers: { 'Upstash-Courier-Stream': id, 'Upstash-Timeout': '20s' } });
    await closed(id);
    const bearer = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const other = await fetch(`${courier.url}/v1/streams/${streamId('other')}/events`, { method: 'POST', headers: bearer, body: '{"type":"content","data":"x"}' });
    assert.ok(other.status === 401 || other.status === 403, `other stream answered ${other.status}`);
    const read = await fetch(`${courier.url}/v1/streams/${id}`, { headers: bearer });
    assert.equal(read.status, 200);
    // Not the API: the token opens nothing but its stream.
    assert.equal((await fetch(`${courier.url}/v2/dlq`, { headers: bearer })).status, 401);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number; sub: string };
    assert.equal(claims.sub, id);
    const expiresIn = claims.exp * 1000 - Date.now();
    assert.ok(expiresIn > 20_000 && expiresIn <= 80_000 + 1000, `expires in ${expiresIn} ms`);
  });

  it('retry: running, retrying, running (attempt 2), delivered; a deterministic writer resumes from history()', async () => {
    const id = streamId('retry');
    const chunks = ['alpha', 'beta', 'gamma'];
    const url = route('/retry', async (task) => {
      const already = (await task.stream.history()).filter((event) => event.type === 'content').length;
      for (const [index, chunk] of chunks.entries()) {
        if (index < already) continue;
        if (task.retried === 0 && index === 2) throw new Error('model timed out');
        await task.stream.write('content', chunk);
      }
      await task.stream.end();
    });
    const { messageId } = await courier.client.publishJSON({ url, body: {}, retries: 2, retryDelay: '100', headers: { 'Upstash-Courier-Stream': id } });
    const stream = await closed(id);
    assert.equal(stream.state, 'ended');
    assert.deepEqual(summary(stream.events), [
      'status:queued',
      'status:running',
      'content:alpha',
      'content:beta',
      'status:retrying',
      'status:running',
      'content:gamma',
      'end:',
      'status:delivered',
    ]);
    const [, , retrying, second, delivered] = statuses(stream.events);
    assert.equal(retrying!.attempt, 1);
    assert.equal(retrying!.responseStatus, 500);
    assert.equal(typeof retrying!.nextAttemptAt, 'number');
    assert.equal(second!.attempt, 2);
    assert.equal(delivered!.attempt, 2);
    const retried = seen.find((one) => one.messageId === messageId && one.retried === 1)!;
    assert.equal(retried.stream.startSeq, 6);
  });

  it('DLQ: the failed attempt’s output, then error and failed (with the DLQ id); the stream fails', async () => {
    const id = streamId('dlq');
    const url = route('/dlq', async (task) => {
      await task.stream.write('content', 'partial');
      throw new Error('cannot finish');
    });
    const { messageId } = await courier.client.publishJSON({ url, body: {}, retries: 0, headers: { 'Upstash-Courier-Stream': id } });
    const stream = await closed(id);
    assert.equal(stream.state, 'failed');
    assert.deepEqual(summary(stream.events), ['status:queued', 'status:running', 'content:partial', 'error', 'status:failed']);
    const failed = statuses(stream.events).at(-1)!;
    const dlq = (await (await courier.api(`/v2/dlq`)).json()) as { messages: { dlqId: string; messageId: string }[] };
    const entry = dlq.messages.find((message) => message.messageId === messageId)!;
    assert.equal(failed.dlqId, entry.dlqId);
    assert.deepEqual(stream.events.at(-2)!.data, { reason: 'failed', messageId, dlqId: entry.dlqId, responseStatus: 500, error: failed.error });
  });

  it('DLQ after the worker’s own fail(): no error from Courier, only the final status', async () => {
    const id = streamId('dlq-closed');
    const url = route('/dlq-closed', async (task) => {
      await task.stream.fail(new Error('quota exceeded'));
      throw new Error('quota exceeded');
    });
    await courier.client.publishJSON({ url, body: {}, retries: 0, headers: { 'Upstash-Courier-Stream': id } });
    const stream = await closed(id);
    assert.equal(stream.state, 'failed');
    assert.deepEqual(summary(stream.events), ['status:queued', 'status:running', 'error', 'status:failed']);
    assert.deepEqual(stream.events[2]!.data, { message: 'quota exceeded' });
  });

  it('cancel: queued, then canceled; the stream fails', async () => {
    const id = streamId('cancel');
    const url = route('/cancel', async () => undefined);
    const { messageId } = await courier.client.publishJSON({ url, body: {}, delay: 3600, headers: { 'Upstash-Courier-Stream': id } });
    await eventually(async () => ((await eventsOf(id).catch(() => [])).length === 1 ? true : undefined), 5_000, 'queued');
    assert.equal((await courier.api(`/v2/messages/${messageId}`, { method: 'DELETE' })).status, 200);
    const stream = await closed(id);
    assert.equal(stream.state, 'failed');
    assert.deepEqual(summary(stream.events), ['status:queued', 'status:canceled']);
    assert.deepEqual(statuses(stream.events)[1], { status: 'canceled', messageId });
  });

  it('a schedule’s run ties its message; a later run finds the stream closed and is not recorded (documented)', async () => {
    const id = streamId('schedule');
    let runs = 0;
    const url = route('/schedule', async (task) => {
      runs++;
      try {
        await task.stream.write('content', `run ${runs}`);
      } catch (error) {
        // A closed stream: no retry could write there, so the run itself goes on.
        if (!(error instanceof TaskStreamError && error.final)) throw error;
      }
    });
    const { scheduleId } = await courier.client.schedules.create({ destination: url, cron: '0 0 1 1 *', body: '{}', headers: { 'Upstash-Courier-Stream': id } });
    const trigger = () => courier.api(`/v2/schedules/${scheduleId}/trigger`, { method: 'POST' });
    assert.equal((await trigger()).status, 200);
    const first = await closed(id);
    assert.deepEqual(summary(first.events), ['status:queued', 'status:running', 'content:run 1', 'status:delivered']);
    const second = (await (await trigger()).json()) as { messages: { messageId: string }[] };
    const messageId = second.messages[0]!.messageId;
    await eventually(async () => ((await courier.api(`/v2/messages/${messageId}`)).status === 404 ? true : undefined), 10_000, 'the second run settled');
    assert.equal(runs, 2);
    // Its statuses (and its worker's write, answered 409) were refused: the first run's record stands.
    await sleep(100);
    assert.deepEqual(await eventsOf(id), first.events);
    await courier.client.schedules.delete(scheduleId);
  });

  it('a batch item and an enqueue tie their messages; a bad stream id is a 400 naming the header', async () => {
    const id = streamId('batch');
    const url = route('/batch', async (task) => task.stream.write('content', 'from the batch'));
    const batch = await courier.api('/v2/batch', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ destination: url, body: '{}', headers: { 'Upstash-Courier-Stream': id } }]),
    });
    assert.equal(batch.status, 200);
    assert.deepEqual(summary((await closed(id)).events), ['status:queued', 'status:running', 'content:from the batch', 'status:delivered']);

    const queued = streamId('enqueue');
    const enqueueUrl = route('/enqueue', async (task) => task.stream.write('content', 'from the queue'));
    const enqueue = await courier.api(`/v2/enqueue/stream-queue/${enqueueUrl}`, { method: 'POST', headers: { 'Upstash-Courier-Stream': queued }, body: '{}' });
    assert.equal(enqueue.status, 200);
    assert.deepEqual(summary((await closed(queued)).events), ['status:queued', 'status:running', 'content:from the queue', 'status:delivered']);

    const bad = await courier.api(`/v2/publish/${url}`, { method: 'POST', headers: { 'Upstash-Courier-Stream': 'not a stream id!' }, body: '{}' });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /Upstash-Courier-Stream/);
  });
});
