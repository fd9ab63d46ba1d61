/**
 * The host over real HTTP: streaming replies, closing with a stream open, a
 * client that goes away, and what Node's parser would answer on its own (no
 * Host, an unknown Expect, CONNECT), which must be our JSON too.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino, type Logger } from 'pino';
import { errorCode, exchange, parseResponses } from '../../test/helpers/raw-http.js';
import { GATEWAY_ERRORS } from './error-reply.js';
import { createHost, type Host } from './host.js';
import type { Reply, RequestContext, Route } from './http.js';

const silent = pino({ level: 'silent' });

async function startHost(routes: Route[], logger: Logger = silent): Promise<{ host: Host; url: string; port: number }> {
  const host = createHost({ routes, token: 'secret', tokenName: 'TOKEN', logger, now: () => Date.now() });
  const port = await host.listen(0, '127.0.0.1');
  return { host, url: `http://127.0.0.1:${port}`, port };
}

/** A debug-level logger whose lines are kept, parsed, in `lines`. */
function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

const route = (path: string, handler: (ctx: RequestContext) => Promise<Reply>, methods: readonly string[] = ['GET']): Route => ({
  methods,
  pattern: new RegExp(`^${path}$`),
  auth: false,
  handler,
});

/** Resolves when the signal aborts. */
const aborted = (signal: AbortSignal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));

/** A gate the test opens to let a producer go on. */
function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe('host: streaming replies', () => {
  it('sends each chunk as it is produced, not the body at the end', async () => {
    const next = gate();
    const { host, url } = await startHost([
      route('/events', async () => ({
        status: 200,
        headers: { 'Content-Type': 'text/event-stream' },
        stream: (async function* () {
          yield 'data: one\n\n';
          await next.wait;
          yield 'data: two\n\n';
        })(),
      })),
    ]);
    try {
      const res = await fetch(`${url}/events`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/event-stream');
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      // The first chunk arrives while the producer is still waiting for the second.
      assert.equal(decoder.decode((await reader.read()).value), 'data: one\n\n');
      next.open();
      assert.equal(decoder.decode((await reader.read()).value), 'data: two\n\n');
      assert.equal((await reader.read()).done, true);
    } finally {
      await host.close();
    }
  });

  it('streams a Readable too', async () => {
    const { host, url } = await startHost([route('/file', async () => ({ status: 200, stream: Readable.from([Buffer.from('ab'), Buffer.from('cd')]) }))]);
    try {
      const res = await fetch(`${url}/file`);
      assert.equal(await res.text(), 'abcd');
    } finally {
      await host.close();
    }
  });

  it('close() with a stream open resolves promptly, ends the stream, and lets its producer clean up', async () => {
    let cleanedUp = false;
    let signalAborted = false;
    const { host, url } = await startHost([
      route('/events', async (ctx) => ({
        status: 200,
        stream: (async function* () {
          try {
            yield 'hello\n';
            await aborted(ctx.signal);
            signalAborted = true;
          } finally {
            cleanedUp = true;
          }
        })(),
      })),
    ]);
    const res = await fetch(`${url}/events`);
    const reader = res.body!.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value), 'hello\n');
    const closed = host.close();
    // The client sees the end of the body, not a hang.
    assert.equal((await reader.read()).done, true);
    await closed;
    await eventually(() => cleanedUp);
    assert.equal(signalAborted, true);
  });

  it('a client that disconnects aborts the signal and releases the stream', async () => {
    let cleanedUp = false;
    const started = gate();
    const signalSeen = gate();
    const { host, url } = await startHost([
      route('/events', async (ctx) => {
        void aborted(ctx.signal).then(() => signalSeen.open());
        return {
          status: 200,
          stream: (async function* () {
            try {
              yield 'hello\n';
              started.open();
              await aborted(ctx.signal);
            } finally {
              cleanedUp = true;
            }
          })(),
        };
      }),
    ]);
    try {
      const req = httpRequest(`${url}/events`);
      req.on('response', (res) => res.once('data', () => req.destroy()));
      req.on('error', () => {});
      req.end();
      await started.wait;
      await signalSeen.wait;
      await eventually(() => cleanedUp);
    } finally {
      await host.close();
    }
  });

  it('a whole reply in flight is finished by close(), not cut', async () => {
    const answer = gate();
    const arrived = gate();
    const { host, url } = await startHost([
      route('/slow', async () => {
        arrived.open();
        await answer.wait;
        return { status: 200, text: 'done' };
      }),
    ]);
    const pending = fetch(`${url}/slow`);
    await arrived.wait;
    const closed = host.close();
    answer.open();
    assert.equal(await (await pending).text(), 'done');
    await closed;
  });
});

describe('host: answers Node would give on its own are our JSON', () => {
  const hello = route('/hello', async () => ({ status: 200, text: 'hello' }));

  it('an HTTP/1.1 request without Host is 400 MALFORMED_REQUEST, and the connection closes', async () => {
    const { host, port } = await startHost([hello]);
    try {
      const [answer, ...more] = parseResponses(await exchange(port, 'GET /hello HTTP/1.1\r\n\r\n'));
      assert.equal(answer?.status, 400);
      assert.equal(errorCode(answer), 'MALFORMED_REQUEST');
      assert.match(JSON.parse(answer.body).error, /Host/);
      assert.deepEqual(more, []);
    } finally {
      await host.close();
    }
  });

  it('HTTP/1.0 needs no Host', async () => {
    const { host, port } = await startHost([hello]);
    try {
      const [answer] = parseResponses(await exchange(port, 'GET /hello HTTP/1.0\r\n\r\n'));
      assert.equal(answer?.status, 200);
      assert.equal(answer.body, 'hello');
    } finally {
      await host.close();
    }
  });

  it('an Expect other than 100-continue is 417 EXPECTATION_FAILED, and the connection closes', async () => {
    const { host, port } = await startHost([hello]);
    try {
      const [answer, ...more] = parseResponses(await exchange(port, 'GET /hello HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\n\r\n'));
      assert.equal(answer?.status, 417);
      assert.equal(errorCode(answer), 'EXPECTATION_FAILED');
      assert.deepEqual(more, []);
    } finally {
      await host.close();
    }
  });

  it('Expect: 100-continue still works', async () => {
    const echo = route('/echo', async (ctx) => ({ status: 200, text: (await ctx.body(1024)).toString() }), ['POST']);
    const { host, port } = await startHost([echo]);
    try {
      const raw = await exchange(port, 'POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi');
      const answers = parseResponses(raw);
      assert.deepEqual(
        answers.map((answer) => answer.status),
        [100, 200],
      );
      assert.equal(answers[1]?.body, 'hi');
    } finally {
      await host.close();
    }
  });

  it('CONNECT is 400 MALFORMED_REQUEST, and the connection closes', async () => {
    const { host, port } = await startHost([hello]);
    try {
      const [answer, ...more] = parseResponses(await exchange(port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'));
      assert.equal(answer?.status, 400);
      assert.equal(errorCode(answer), 'MALFORMED_REQUEST');
      assert.match(JSON.parse(answer.body).error, /CONNECT/);
      assert.deepEqual(more, []);
    } finally {
      await host.close();
    }
  });

  it('a complete request pipelined before garbage is answered first, then the 400', async () => {
    const answer = gate();
    const arrived = gate();
    const slow = route('/slow', async () => {
      arrived.open();
      await answer.wait;
      return { status: 200, json: { done: true } };
    });
    const { host, port } = await startHost([slow]);
    try {
      const raw = exchange(port, 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\nNOT A REQUEST\r\n\r\n');
      // The parser has refused the garbage by now: the reply to /slow is still to come.
      await arrived.wait;
      answer.open();
      const [first, second, ...more] = parseResponses(await raw);
      assert.equal(first?.status, 200);
      assert.deepEqual(JSON.parse(first.body), { done: true });
      assert.equal(second?.status, 400);
      assert.equal(errorCode(second), 'MALFORMED_REQUEST');
      assert.deepEqual(more, []);
    } finally {
      await host.close();
    }
  });
});

describe("host: the gateway's error shape", () => {
  it('the parser-level answers use it too', async () => {
    const host = createHost({ routes: [], token: undefined, tokenName: 'TOKEN', logger: silent, now: () => 0, errorShape: GATEWAY_ERRORS });
    const port = await host.listen(0, '127.0.0.1');
    try {
      for (const [request, status] of [
        ['GET / HTTP/1.1\r\n\r\n', 400],
        ['GET / HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\n\r\n', 417],
        ['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 400],
        ['NOT A REQUEST\r\n\r\n', 400],
      ] as const) {
        const [answer] = parseResponses(await exchange(port, request));
        assert.equal(answer?.status, status, request);
        assert.equal(answer.headers['content-type'], 'application/json');
        const body = JSON.parse(answer.body) as Record<string, unknown>;
        assert.equal(typeof body.error, 'string');
        assert.equal(typeof body.message, 'string');
        assert.equal(body.timestamp, new Date(0).toISOString());
        assert.equal(body.code, undefined);
      }
    } finally {
      await host.close();
    }
  });
});

describe('host: a client that aborts its request', () => {
  it('is logged at debug with the reason, not as an error', async () => {
    const { logger, lines } = capturingLogger();
    const reading = gate();
    const upload = route(
      '/upload',
      async (ctx) => {
        const body = ctx.body(1024);
        reading.open();
        return { status: 200, text: String((await body).byteLength) };
      },
      ['POST'],
    );
    const { host, port } = await startHost([upload], logger);
    try {
      const socket = connect(port, '127.0.0.1', () => socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf'));
      socket.on('error', () => undefined);
      await reading.wait;
      socket.destroy();
      await eventually(() => lines.some((line) => line.level === 20 && typeof line.reason === 'string'));
      const debug = lines.find((line) => line.level === 20 && typeof line.reason === 'string')!;
      assert.match(String(debug.reason), /aborted|closed/);
      assert.equal(debug.path, '/upload');
      assert.deepEqual(
        lines.filter((line) => Number(line.level) >= 50),
        [],
      );
    } finally {
      await host.close();
    }
  });
});

async function eventually(check: () => boolean): Promise<void> {
  for (let tries = 0; tries < 200; tries++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail('the condition did not hold within 2 s');
}
