import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { signDelivery } from '../delivery/signing.js';
import { memoryDedupe } from './dedupe.js';
import { createWorker, type Task, type Worker, type WorkerErrorContext, type WorkerOptions } from './worker.js';

const KEYS = { current: 'sig_worker_current_for_tests', next: 'sig_worker_next_for_tests' };
const PUBLIC_URL = 'https://worker.example.com';

interface Running {
  origin: string;
  close(): Promise<void>;
}

function listen(server: Server): Promise<Running> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        origin: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** What a framework with Web Requests does in front of `worker.fetch`, on a real socket. */
function serveFetch(handle: (request: Request) => Promise<Response>): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const headers = new Headers();
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method,
      headers,
      ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream<Uint8Array>, duplex: 'half' as const } : {}),
    });
    void handle(request).then(async (response) => {
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(Buffer.from(await response.arrayBuffer()));
    });
  });
}

const ADAPTERS: Record<string, (worker: Worker) => Promise<Running>> = {
  node: (worker) => listen(createServer(worker.node)),
  fetch: (worker) => listen(serveFetch(worker.fetch)),
};

interface DeliveryOptions {
  messageId?: string;
  retried?: number;
  contentType?: string;
  signingKey?: string;
  /** The URL the signature is made for; defaults to the public URL of the path. */
  signedUrl?: string;
  signature?: string | null;
}

function deliver(origin: string, path: string, body: string | Uint8Array, options: DeliveryOptions = {}): Promise<Response> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const signature =
    options.signature === undefined
      ? signDelivery({ signingKey: options.signingKey ?? KEYS.current, url: options.signedUrl ?? PUBLIC_URL + path, body: bytes, nowMs: Date.now() })
      : options.signature;
  const headers: Record<string, string> = {
    'content-type': options.contentType ?? 'application/json',
    'upstash-message-id': options.messageId ?? `msg_${randomUUID()}`,
    'upstash-retried': String(options.retried ?? 0),
  };
  if (signature !== null) headers['upstash-signature'] = signature;
  return fetch(origin + path, { method: 'POST', headers, body: bytes });
}

/** A handler that records its tasks and runs an optional script. */
function recorder(script: (task: Task, call: number) => Promise<unknown> = async () => undefined) {
  const tasks: Task[] = [];
  return {
    tasks,
    handler: (task: Task) => {
      tasks.push(task);
      return script(task, tasks.length);
    },
  };
}

async function errorBody(response: Response): Promise<Record<string, unknown>> {
  assert.equal(response.headers.get('content-type'), 'application/json');
  const body = (await response.json()) as Record<string, unknown>;
  assert.equal(typeof body.error, 'string');
  assert.equal(typeof body.message, 'string');
  assert.ok(!Number.isNaN(Date.parse(String(body.timestamp))), 'timestamp is ISO 8601');
  return body;
}

for (const [adapter, serve] of Object.entries(ADAPTERS)) {
  describe(`worker over a real node:http server (${adapter} adapter)`, () => {
    const running: Running[] = [];
    async function start(options: Partial<WorkerOptions> & Pick<WorkerOptions, 'routes'>): Promise<{ origin: string; worker: Worker }> {
      const worker = createWorker({ keys: KEYS, publicUrl: PUBLIC_URL, ...options });
      const server = await serve(worker);
      running.push(server);
      return { origin: server.origin, worker };
    }
    after(async () => {
      await Promise.all(running.map((server) => server.close()));
    });

    it('runs the route handler with the parsed body, raw bytes and delivery metadata, and answers 200 OK', async () => {
      const download = recorder();
      const { origin } = await start({ routes: { '/api/tasks/download': download.handler } });
      const wire = '{ "taskId": "task_123", "type": "download" }';
      const response = await deliver(origin, '/api/tasks/download', wire, { messageId: 'msg_abc123', retried: 2 });
      assert.equal(response.status, 200);
      assert.equal(await response.text(), 'OK');
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
      const [task] = download.tasks;
      assert.ok(task);
      assert.deepEqual(task.body, { taskId: 'task_123', type: 'download' });
      assert.equal(Buffer.from(task.rawBody).toString(), wire);
      assert.equal(task.messageId, 'msg_abc123');
      assert.equal(task.retried, 2);
      assert.equal(task.path, '/api/tasks/download');
      assert.equal(task.headers.get('upstash-message-id'), 'msg_abc123');
    });

    it('hands a non-JSON body over as bytes, and answers a returned value as JSON', async () => {
      const upload = recorder(async () => ({ stored: true }));
      const { origin } = await start({ routes: { '/api/tasks/upload': upload.handler } });
      const bytes = new Uint8Array([0, 1, 2, 250, 255]);
      const response = await deliver(origin, '/api/tasks/upload', bytes, { contentType: 'application/octet-stream' });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { stored: true });
      const body = upload.tasks[0]?.body;
      assert.ok(body instanceof Uint8Array);
      assert.deepEqual([...body], [0, 1, 2, 250, 255]);
    });

    it('answers 401 with the reason before any handler runs, and reports it', async () => {
      const download = recorder();
      const reported: WorkerErrorContext[] = [];
      const { origin } = await start({ routes: { '/api/tasks/download': download.handler }, onError: (_error, context) => reported.push(context) });
      const refusals = [
        { options: { signature: null }, reason: 'SIGNATURE_MISSING' },
        { options: { signingKey: 'sig_someone_else' }, reason: 'SIGNATURE_INVALID' },
        { options: { signedUrl: `${PUBLIC_URL}/api/tasks/upload` }, reason: 'URL_MISMATCH' },
      ];
      for (const { options, reason } of refusals) {
        const response = await deliver(origin, '/api/tasks/download', '{"taskId":"t"}', options);
        assert.equal(response.status, 401);
        const body = await errorBody(response);
        assert.equal(body.error, 'Signature verification failed');
        assert.equal(body.reason, reason);
      }
      assert.equal(download.tasks.length, 0);
      assert.deepEqual(
        reported.map((context) => context.phase),
        ['verify', 'verify', 'verify'],
      );
    });

    it('accepts the next key after a rotation', async () => {
      const download = recorder();
      const { origin } = await start({ routes: { '/api/tasks/download': download.handler } });
      const response = await deliver(origin, '/api/tasks/download', '{}', { signingKey: KEYS.next });
      assert.equal(response.status, 200);
      assert.equal(download.tasks.length, 1);
    });

    it('without publicUrl verifies against the URL the request arrived at', async () => {
      const download = recorder();
      const { origin } = await start({ publicUrl: undefined, routes: { '/api/tasks/download': download.handler } });
      const direct = await deliver(origin, '/api/tasks/download?x=1', '{}', { signedUrl: `${origin}/api/tasks/download?x=1` });
      assert.equal(direct.status, 200);
      const proxied = await deliver(origin, '/api/tasks/download?x=1', '{}', { signedUrl: `${PUBLIC_URL}/api/tasks/download?x=1` });
      assert.equal(proxied.status, 401);
      assert.match(String((await errorBody(proxied)).message), /publicUrl/);
      assert.equal(download.tasks.length, 1);
    });

    it('answers 404 JSON for an unknown path and 200 OK to GET /health', async () => {
      const { origin } = await start({ routes: { '/api/tasks/download': recorder().handler } });
      const missing = await deliver(origin, '/api/tasks/download-tasks', '{}');
      assert.equal(missing.status, 404);
      assert.match(String((await errorBody(missing)).message), /download-tasks/);
      const health = await fetch(`${origin}/health`);
      assert.equal(health.status, 200);
      assert.equal(await health.text(), 'OK');
    });

    it('answers 500 JSON when the handler throws, and reports the error', async () => {
      const reported: Array<{ error: unknown; context: WorkerErrorContext }> = [];
      const failing = recorder(async () => {
        throw new Error('disk full');
      });
      const { origin } = await start({
        routes: { '/api/tasks/batch': failing.handler },
        onError: (error, context) => reported.push({ error, context }),
      });
      const response = await deliver(origin, '/api/tasks/batch', '{"groupId":"g","taskIds":["a"]}', { messageId: 'msg_fail' });
      assert.equal(response.status, 500);
      const body = await errorBody(response);
      assert.equal(body.error, 'Internal Server Error');
      assert.equal(body.message, 'disk full');
      assert.equal(reported.length, 1);
      assert.deepEqual(reported[0]?.context, { phase: 'handler', path: '/api/tasks/batch', messageId: 'msg_fail' });
    });

    it('answers 413 to a body over the limit without running the handler, and 400 to a signed body that is not JSON', async () => {
      const download = recorder();
      const { origin } = await start({ routes: { '/api/tasks/download': download.handler }, maxBodyBytes: 16 });
      const large = await deliver(origin, '/api/tasks/download', JSON.stringify({ taskId: 'x'.repeat(64) }));
      assert.equal(large.status, 413);
      await errorBody(large);
      const broken = await deliver(origin, '/api/tasks/download', '{"taskId":');
      assert.equal(broken.status, 400);
      assert.equal(download.tasks.length, 0);
    });

    it('runs a message once when it is delivered twice, and again after a failure released it', async () => {
      let fail = true;
      const download = recorder(async () => {
        if (fail) throw new Error('transient');
      });
      const { origin } = await start({ routes: { '/api/tasks/download': download.handler }, dedupe: memoryDedupe() });
      assert.equal((await deliver(origin, '/api/tasks/download', '{}', { messageId: 'msg_1' })).status, 500);
      fail = false;
      assert.equal((await deliver(origin, '/api/tasks/download', '{}', { messageId: 'msg_1', retried: 1 })).status, 200);
      const duplicate = await deliver(origin, '/api/tasks/download', '{}', { messageId: 'msg_1', retried: 1 });
      assert.equal(duplicate.status, 200);
      assert.equal(await duplicate.text(), 'OK');
      assert.deepEqual(
        download.tasks.map((task) => task.retried),
        [0, 1],
        'the failed attempt and its retry ran; the duplicate did not',
      );
    });

    it('answers a duplicate that arrives while the first delivery is still running without running it', async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const download = recorder(() => gate);
      const { origin } = await start({ routes: { '/api/tasks/download': download.handler }, dedupe: memoryDedupe() });
      const first = deliver(origin, '/api/tasks/download', '{}', { messageId: 'msg_slow' });
      await until(() => download.tasks.length === 1);
      const second = await deliver(origin, '/api/tasks/download', '{}', { messageId: 'msg_slow' });
      assert.equal(second.status, 200);
      release();
      assert.equal((await first).status, 200);
      assert.equal(download.tasks.length, 1);
    });

    it('drains: new deliveries get 503 with Retry-After while running handlers finish', async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const download = recorder(() => gate);
      const { origin, worker } = await start({ routes: { '/api/tasks/download': download.handler } });
      const running = deliver(origin, '/api/tasks/download', '{}');
      await until(() => download.tasks.length === 1);
      let drained = false;
      const draining = worker.drain().then(() => {
        drained = true;
      });
      const refused = await deliver(origin, '/api/tasks/download', '{}');
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '5');
      await errorBody(refused);
      assert.equal((await fetch(`${origin}/health`)).status, 503, 'health checks see the drain');
      assert.equal(drained, false, 'a handler is still running');
      release();
      assert.equal((await running).status, 200);
      await draining;
      assert.equal(drained, true);
      assert.equal(download.tasks.length, 1);
      await worker.drain();
    });
  });
}

describe('worker body limits on a streamed body', () => {
  it('node adapter: answers 413 to a chunked body that grows past the limit', async () => {
    const tasks: Task[] = [];
    const worker = createWorker({ keys: KEYS, publicUrl: PUBLIC_URL, maxBodyBytes: 16, routes: { '/t': async (task) => void tasks.push(task) } });
    const server = await listen(createServer(worker.node));
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const url = new URL(`${server.origin}/t`);
        const req = httpRequest({ host: url.hostname, port: url.port, path: '/t', method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.write('x'.repeat(10));
        req.write('y'.repeat(10));
        req.end();
      });
      assert.equal(status, 413);
      assert.equal(tasks.length, 0);
    } finally {
      await server.close();
    }
  });

  it('fetch adapter: answers 413 to a stream without a length that grows past the limit', async () => {
    const worker = createWorker({ keys: KEYS, publicUrl: PUBLIC_URL, maxBodyBytes: 16, routes: { '/t': async () => undefined } });
    const chunks = [new Uint8Array(10), new Uint8Array(10)];
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const chunk = chunks.shift();
        if (chunk) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const response = await worker.fetch(new Request('http://127.0.0.1/t', { method: 'POST', body, duplex: 'half' }));
    assert.equal(response.status, 413);
  });
});

describe('node adapter with a malformed Host header', () => {
  it('answers 400 instead of crashing, and keeps serving', async () => {
    const worker = createWorker({ keys: KEYS, routes: {} });
    const server = await listen(createServer(worker.node));
    try {
      const { port } = new URL(server.origin);
      const statusLine = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => socket.write('GET /health HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n'));
        let received = '';
        socket.on('data', (data: Buffer) => (received += data.toString()));
        socket.on('close', () => resolve(received.split('\r\n')[0] ?? ''));
        socket.on('error', reject);
      });
      assert.equal(statusLine, 'HTTP/1.1 400 Bad Request');
      assert.equal((await fetch(`${server.origin}/health`)).status, 200);
    } finally {
      await server.close();
    }
  });
});

describe('worker drain with nothing running', () => {
  let worker: Worker;
  before(() => {
    worker = createWorker({ keys: KEYS, routes: {} });
  });
  it('resolves at once', async () => {
    await worker.drain();
    const response = await worker.fetch(new Request('http://127.0.0.1/health'));
    assert.equal(response.status, 503);
  });
});

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
