/** The host over real HTTP: streaming replies, closing with a stream open, and a client that goes away. */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { createHost, type Host } from './host.js';
import type { Reply, RequestContext, Route } from './http.js';

const logger = pino({ level: 'silent' });

async function startHost(routes: Route[]): Promise<{ host: Host; url: string }> {
  const host = createHost({ routes, token: 'secret', tokenName: 'TOKEN', logger, now: () => Date.now() });
  const port = await host.listen(0, '127.0.0.1');
  return { host, url: `http://127.0.0.1:${port}` };
}

const route = (path: string, handler: (ctx: RequestContext) => Promise<Reply>): Route => ({
  methods: ['GET'],
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

async function eventually(check: () => boolean): Promise<void> {
  for (let tries = 0; tries < 200; tries++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail('the condition did not hold within 2 s');
}
