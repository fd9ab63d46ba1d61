/**
 * `task.stream` against a scripted stand-in for Courier's stream endpoint on
 * a real socket (the end-to-end run against a real Courier is
 * test/integration/streams-messages.test.ts): batching, writer seqs from
 * `Courier-Stream-Seq`, resend after a lost answer, end/fail, history, and
 * the worker answering only once its writes are stored.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { signDelivery } from '../delivery/signing.js';
import { createTaskStream, TaskStreamError } from './task-stream.js';
import { createWorker } from './worker.js';

interface Stored {
  seq: number;
  type: string;
  data: unknown;
}

/** One stream's log with the store's writer-seq rules, and every request as it came. */
class FakeCourier {
  events: Stored[] = [];
  requests: { method: string; url: string; auth: string | undefined; body: unknown }[] = [];
  closed = false;
  /** Drop the connection of the next N POSTs after storing them (an answer lost on the way back). */
  dropAnswers = 0;
  /** Answer the next N POSTs with this status, storing nothing. */
  failWith: { status: number; count: number } | undefined;
  delayMs = 0;

  constructor(initial = 0) {
    for (let seq = 1; seq <= initial; seq++) this.events.push({ seq, type: 'status', data: { status: 'earlier', seq } });
  }

  get lastSeq(): number {
    return this.events.at(-1)?.seq ?? 0;
  }

  async handle(request: IncomingMessage, body: string, reply: (status: number, body: unknown) => void, drop: () => void): Promise<void> {
    const parsed: unknown = body === '' ? undefined : JSON.parse(body);
    this.requests.push({ method: request.method ?? '', url: request.url ?? '', auth: request.headers.authorization, body: parsed });
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (request.method === 'GET') {
      const url = new URL(request.url ?? '/', 'http://x');
      const afterSeq = Number(url.searchParams.get('after'));
      const limit = Number(url.searchParams.get('limit'));
      reply(200, { events: this.events.filter((event) => event.seq > afterSeq).slice(0, limit) });
      return;
    }
    if (this.failWith && this.failWith.count > 0) {
      this.failWith.count--;
      reply(this.failWith.status, { error: 'scripted failure' });
      return;
    }
    const batch = (Array.isArray(parsed) ? parsed : [parsed]) as { type: string; data: unknown; seq?: number }[];
    const fresh = batch.filter((event) => event.seq === undefined || event.seq > this.lastSeq);
    if (this.closed && fresh.length > 0) {
      reply(409, { error: 'the stream is closed', code: 'STREAM_CLOSED' });
      return;
    }
    for (const event of fresh) {
      if (event.seq !== undefined && event.seq !== this.lastSeq + 1) {
        reply(409, { error: `expected seq ${this.lastSeq + 1}`, code: 'STREAM_SEQ_GAP' });
        return;
      }
      this.events.push({ seq: this.lastSeq + 1, type: event.type, data: event.data });
      if (event.type === 'end' || event.type === 'error') this.closed = true;
    }
    if (this.dropAnswers > 0) {
      this.dropAnswers--;
      drop();
      return;
    }
    reply(200, { seq: this.lastSeq, state: this.closed ? 'ended' : 'open' });
  }
}

const KEYS = { current: 'sig_stream_current_for_tests', next: 'sig_stream_next_for_tests' };

describe('task.stream', () => {
  let server: Server;
  let origin: string;
  let courier: FakeCourier;

  before(async () => {
    server = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8');
      request.on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        void courier.handle(
          request,
          body,
          (status, payload) => {
            response.writeHead(status, { 'content-type': 'application/json' });
            response.end(JSON.stringify(payload));
          },
          () => response.socket?.destroy(),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(() => {
    courier = new FakeCourier(2);
  });

  const tied = (seq = '2'): Headers =>
    new Headers({ 'courier-stream-id': 'task_1', 'courier-stream-token': 'tok', ...(seq === '' ? {} : { 'courier-stream-seq': seq }) });
  const posts = () => courier.requests.filter((request) => request.method === 'POST').map((request) => request.body as { type: string; data: unknown; seq?: number }[]);

  it('sends the writes of one tick as one batch, numbered from Courier-Stream-Seq, with the token', async () => {
    const stream = createTaskStream({ courierUrl: `${origin}/`, headers: tied(), fetch });
    assert.equal(stream.id, 'task_1');
    assert.equal(stream.startSeq, 2);
    const writes = Array.from({ length: 50 }, (_, i) => stream.write('content', `chunk ${i}`));
    await Promise.all(writes);
    assert.equal(posts().length, 1);
    assert.deepEqual(posts()[0]!.map((event) => event.seq), Array.from({ length: 50 }, (_, i) => i + 3));
    assert.equal(courier.requests[0]!.url, '/v1/streams/task_1/events');
    assert.equal(courier.requests[0]!.auth, 'Bearer tok');
    assert.equal(stream.lastSeq, 52);
  });

  it('batches writes that come while a request is on the wire', async () => {
    courier.delayMs = 60;
    const stream = createTaskStream({ courierUrl: origin, headers: tied(), fetch });
    const first = stream.write('content', 'a');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const rest = ['b', 'c', 'd'].map((data) => stream.write('content', data));
    await Promise.all([first, ...rest]);
    await stream.flush();
    assert.deepEqual(posts().map((batch) => batch.map((event) => event.data)), [['a'], ['b', 'c', 'd']]);
    assert.deepEqual(courier.events.slice(2).map((event) => [event.seq, event.data]), [[3, 'a'], [4, 'b'], [5, 'c'], [6, 'd']]);
  });

  it('resends a batch whose answer was lost, and the writer seqs keep it from being stored twice', async () => {
    courier.dropAnswers = 1;
    const stream = createTaskStream({ courierUrl: origin, headers: tied(), fetch });
    await Promise.all([stream.write('content', 'x'), stream.write('content', 'y')]);
    assert.equal(posts().length, 2);
    assert.deepEqual(posts()[0], posts()[1]);
    assert.deepEqual(courier.events.slice(2).map((event) => event.data), ['x', 'y']);
  });

  it('numbers from the first answer when the delivery had no Courier-Stream-Seq', async () => {
    const stream = createTaskStream({ courierUrl: origin, headers: tied(''), fetch });
    await stream.write('content', 'first');
    await stream.write('content', 'second');
    assert.equal(posts()[0]![0]!.seq, undefined);
    assert.equal(posts()[1]![0]!.seq, 4);
  });

  it('end and fail write the closing events; later writes are refused here', async () => {
    const ended = createTaskStream({ courierUrl: origin, headers: tied(), fetch });
    await ended.write('content', 'done soon');
    await ended.end({ tokens: 3 });
    await assert.rejects(ended.write('content', 'late'), TaskStreamError);
    assert.deepEqual(courier.events.slice(2).map((event) => [event.type, event.data]), [['content', 'done soon'], ['end', { tokens: 3 }]]);

    courier = new FakeCourier(2);
    const failed = createTaskStream({ courierUrl: origin, headers: tied(), fetch });
    await failed.fail(new Error('model overloaded'));
    assert.deepEqual(courier.events.at(-1), { seq: 3, type: 'error', data: { message: 'model overloaded' } });
  });

  it('a write to a closed stream rejects with closed set; the failure is sticky for flush', async () => {
    courier.closed = true;
    const stream = createTaskStream({ courierUrl: origin, headers: tied(), fetch });
    const write = stream.write('content', 'x');
    await assert.rejects(write, (error: unknown) => error instanceof TaskStreamError && error.closed && error.status === 409);
    await assert.rejects(stream.flush(), TaskStreamError);
  });

  it('history() answers the events up to startSeq', async () => {
    courier.events.push({ seq: 3, type: 'content', data: 'after the start' });
    const stream = createTaskStream({ courierUrl: origin, headers: tied(), fetch });
    const history = await stream.history();
    assert.deepEqual(history.map((event) => event.seq), [1, 2]);
  });

  it('a delivery tied to no stream has no id, and its writes reject', async () => {
    const stream = createTaskStream({ courierUrl: origin, headers: new Headers(), fetch });
    assert.equal(stream.id, undefined);
    await assert.rejects(stream.write('content', 'x'), /not tied to a stream/);
    await stream.flush();
  });

  describe('inside a worker', () => {
    function deliver(headers: Headers, path = '/task'): Promise<Response> {
      const body = Buffer.from('{}');
      headers.set('content-type', 'application/json');
      headers.set('upstash-message-id', `msg_${Math.random()}`);
      headers.set('upstash-signature', signDelivery({ signingKey: KEYS.current, url: `https://worker.example.com${path}`, body, nowMs: Date.now() }));
      const worker = createWorker({
        keys: KEYS,
        publicUrl: 'https://worker.example.com',
        courierUrl: origin,
        routes: {
          [path]: async (task) => {
            // Not awaited: the worker still stores them before it answers.
            void task.stream.write('content', 'one');
            void task.stream.write('content', 'two');
          },
        },
      });
      return worker.fetch(new Request(`https://worker.example.com${path}`, { method: 'POST', headers, body }));
    }

    it('answers only once the handler’s writes are stored', async () => {
      const response = await deliver(tied());
      assert.equal(response.status, 200);
      assert.deepEqual(courier.events.slice(2).map((event) => event.data), ['one', 'two']);
    });

    it('answers 500 (so Courier retries) when the writes keep failing, but not when the stream is closed', async () => {
      courier.failWith = { status: 503, count: 10 };
      assert.equal((await deliver(tied())).status, 500);
      courier = new FakeCourier(2);
      courier.closed = true;
      assert.equal((await deliver(tied())).status, 200);
    });
  });
});
