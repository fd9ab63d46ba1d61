/**
 * What an attempt holds of a destination's response, end to end: only the
 * stored bytes (COURIER_MAX_RESPONSE_BYTES), within a budget shared by every
 * attempt in flight (COURIER_MAX_RESPONSE_BUFFER_BYTES); a body that goes on
 * past them is cut off, not read to the end; a body that trickles in still
 * ends at the attempt's timeout; and a timed-out attempt's socket is closed,
 * not left idle in the pool. Observed on the destination's side of real
 * sockets and through the DLQ and logs.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually, sleep } from '../helpers/destination.js';

const MAX_RESPONSE_BYTES = 1024;
/** Room for two full bodies: the budget test starts four at once. */
const RESPONSE_BUFFER_BYTES = 2 * MAX_RESPONSE_BYTES;

/** A destination scripted at the socket level, counting its connections as they open and close. */
interface RawDestination {
  url(path?: string): string;
  /** Connections accepted so far. */
  accepted: number;
  /** Connections open now. */
  open: number;
  /** Requests that have arrived, in order. */
  arrivals: number;
  close(): Promise<void>;
}

async function startRawDestination(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<RawDestination> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    destination.arrivals += 1;
    req.resume();
    req.on('end', () => handle(req, res));
  });
  const destination: RawDestination = {
    url: (path = '/hook') => `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    accepted: 0,
    open: 0,
    arrivals: 0,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('connection', (socket: Socket) => {
    destination.accepted += 1;
    destination.open += 1;
    sockets.add(socket);
    socket.on('close', () => {
      destination.open -= 1;
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return destination;
}

interface DeadLetterView {
  responseStatus?: number;
  responseBody?: string;
  error?: string;
}

interface LogView {
  state: string;
  error?: string;
}

describe('delivery responses: what an attempt reads and holds', () => {
  let courier: TestCourier;
  const destinations: RawDestination[] = [];

  async function destination(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<RawDestination> {
    const started = await startRawDestination(handle);
    destinations.push(started);
    return started;
  }

  async function deadLetterOf(messageId: string, timeoutMs = 15_000): Promise<DeadLetterView> {
    return eventually(
      async () => {
        const { messages } = await courier.client.dlq.listMessages({ filter: { messageId } });
        return messages[0];
      },
      timeoutMs,
      `a DLQ entry for ${messageId}`,
    );
  }

  async function logsOf(messageId: string): Promise<LogView[]> {
    const { logs } = await courier.client.logs({ messageIds: [messageId], count: 100 });
    return logs;
  }

  before(async () => {
    courier = await startTestCourier({
      COURIER_MAX_RESPONSE_BYTES: String(MAX_RESPONSE_BYTES),
      COURIER_MAX_RESPONSE_BUFFER_BYTES: String(RESPONSE_BUFFER_BYTES),
    });
  });
  after(async () => {
    await Promise.all(destinations.map((d) => d.close()));
    await courier.stop();
  });

  it('stores exactly COURIER_MAX_RESPONSE_BYTES of a 5 MB error body and cuts the connection instead of reading the rest', async () => {
    const total = 5 * 1024 * 1024;
    /**
     * How the destination saw its response end. The kernel's socket buffers on loopback can take all
     * 5 MB before Courier reads any, so 'finish' alone proves nothing: a connection Courier dropped with
     * the body unread is reset (the socket closes with an error), or closes before 'finish'. A body read
     * to the end leaves the connection open for keep-alive instead.
     */
    const sent: { finished: boolean; closedBeforeFinish: boolean; reset: boolean; closed: boolean }[] = [];
    const d = await destination((req, res) => {
      const outcome = { finished: false, closedBeforeFinish: false, reset: false, closed: false };
      sent.push(outcome);
      res.on('finish', () => (outcome.finished = true));
      res.on('close', () => (outcome.closedBeforeFinish = !outcome.finished));
      req.socket.on('close', (hadError) => {
        outcome.reset = hadError;
        outcome.closed = true;
      });
      res.writeHead(500, { 'content-type': 'text/plain', 'content-length': String(total) });
      res.end(Buffer.alloc(total, 'x'));
    });
    const { messageId } = await courier.client.publish({ url: d.url(), body: 'big', retries: 0 });
    const entry = await deadLetterOf(messageId);
    assert.equal(entry.responseStatus, 500);
    assert.equal(entry.responseBody?.length, MAX_RESPONSE_BYTES);
    assert.equal(entry.responseBody, 'x'.repeat(MAX_RESPONSE_BYTES));
    // Well within any keep-alive time: a connection whose body was drained would still be open.
    const [outcome] = await eventually(() => (sent[0]?.closed === true ? sent : undefined), 5_000, 'the destination to see its connection close');
    assert.equal(sent.length, 1);
    assert.ok(outcome!.closedBeforeFinish || outcome!.reset, `Courier cut the body off unread: ${JSON.stringify(outcome)}`);
  });

  it('ends an attempt whose body trickles in (one byte every 100 ms, forever) at its timeout', async () => {
    const d = await destination((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.flushHeaders();
      const trickle = setInterval(() => res.write('.'), 100);
      res.on('close', () => clearInterval(trickle));
    });
    const { messageId } = await courier.client.publish({ url: d.url(), body: 'slow', retries: 0, timeout: 1 });
    const entry = await deadLetterOf(messageId, 20_000);
    assert.match(String(entry.error), /timeout/i);
    const logs = await eventually(async () => {
      const found = await logsOf(messageId);
      return found.some((log) => log.state === 'FAILED') ? found : undefined;
    }, 10_000, 'FAILED in the logs');
    const errors = logs.filter((log) => log.state === 'ERROR');
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]?.error), /timeout/i);
    await eventually(() => (d.open === 0 ? true : undefined), 10_000, 'the trickling connection closed');
  });

  it('closes the socket of every attempt that timed out against a destination that never answers', async () => {
    const attempts = 5;
    const d = await destination(() => {
      // Never answers: the request stays open until Courier gives up.
    });
    const published = await Promise.all(
      Array.from({ length: attempts }, (_, i) => courier.client.publish({ url: d.url(`/never-${i}`), body: 'x', retries: 0, timeout: 1 })),
    );
    for (const { messageId } of published) assert.match(String((await deadLetterOf(messageId, 20_000)).error), /timeout/i);
    assert.equal(d.arrivals, attempts);
    // Well within undici's 30 s keep-alive, so a socket merely returned to the pool would still be open.
    await eventually(() => (d.open === 0 ? true : undefined), 5_000, `all ${d.accepted} sockets closed (${d.open} still open)`);
    assert.equal(d.accepted, attempts, 'no connection was opened beyond one per attempt');
  });

  it('keeps the response bytes held by concurrent attempts within COURIER_MAX_RESPONSE_BUFFER_BYTES, and small bodies whole', async () => {
    const concurrent = 4;
    const waiting: ServerResponse[] = [];
    const large = await destination((_req, res) => {
      // Each sends a full-size body at once but ends it (chunked: no length) only when all four are in flight,
      // so all four hold theirs together.
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.write(Buffer.alloc(MAX_RESPONSE_BYTES, 'y'));
      waiting.push(res);
    });
    const published = await Promise.all(
      Array.from({ length: concurrent }, (_, i) => courier.client.publish({ url: large.url(`/large-${i}`), body: 'x', retries: 0 })),
    );
    await eventually(() => (waiting.length === concurrent ? true : undefined), 10_000, `${concurrent} large responses in flight`);
    // Let the bodies reach Courier before the responses end (they are already written).
    await sleep(300);
    for (const res of waiting) res.end();
    const bodies = await Promise.all(published.map(async ({ messageId }) => (await deadLetterOf(messageId)).responseBody ?? ''));
    const kept = bodies.reduce((sum, body) => sum + body.length, 0);
    assert.ok(kept <= RESPONSE_BUFFER_BYTES, `the attempts kept ${kept} bytes together, beyond the ${RESPONSE_BUFFER_BYTES}-byte budget`);
    assert.ok(bodies.some((body) => body.length === MAX_RESPONSE_BYTES), 'the first attempts within the budget keep their whole body');
    for (const body of bodies) assert.equal(body, 'y'.repeat(body.length));

    // Once those attempts are done, their bytes are back in the budget.
    const small = await destination((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('small body, stored whole');
    });
    const { messageId: smallId } = await courier.client.publish({ url: small.url(), body: 'x', retries: 0 });
    assert.equal((await deadLetterOf(smallId)).responseBody, 'small body, stored whole');
    const { messageId: fullId } = await courier.client.publish({ url: large.url('/large-again'), body: 'x', retries: 0 });
    await eventually(() => (waiting.length === concurrent + 1 ? true : undefined), 10_000, 'the fifth large response');
    waiting.at(-1)?.end();
    assert.equal((await deadLetterOf(fullId)).responseBody?.length, MAX_RESPONSE_BYTES);
  });
});
