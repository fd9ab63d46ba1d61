import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { HeartbeatError, startHeartbeat } from './heartbeat.js';

interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
  at: number;
}

/** A stand-in for Courier's instance endpoints that records every request; `answer` scripts the replies. */
async function startRegistry(answer: (request: Recorded, index: number) => { status: number; body?: unknown } = () => ({ status: 200 })) {
  const requests: Recorded[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      const recorded = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: text ? (JSON.parse(text) as unknown) : undefined, at: Date.now() };
      requests.push(recorded);
      const reply = answer(recorded, requests.length - 1);
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function until(condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const INSTANCE = { id: 'instance-1', url: 'http://127.0.0.1:7860', hostname: 'node-1', region: 'us-east-1' };

describe('startHeartbeat', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it('beats at once with the instance record and the token, then at the interval Courier answers with', async () => {
    const registry = await startRegistry(() => ({ status: 200, body: { heartbeatIntervalSeconds: 0.05 } }));
    cleanups.push(registry.close);
    const heartbeat = startHeartbeat({
      courierUrl: `${registry.url}/`,
      group: 'drive-collector',
      token: 'courier-token',
      instance: { ...INSTANCE, weight: 3, capabilities: ['download'], maxInFlight: 8, startedAt: 1_704_700_000_000 },
    });
    cleanups.push(heartbeat.stop);
    await until(() => registry.requests.length >= 4);
    const [first, ...rest] = registry.requests;
    // The first beat is immediate: the interval before Courier's first answer is the seed's 300 s,
    // so four beats within `until`'s wait can only mean the first did not wait for it.
    assert.ok(first);
    assert.equal(first.method, 'POST');
    assert.equal(first.path, '/v1/instances/heartbeat');
    assert.equal(first.headers.authorization, 'Bearer courier-token');
    assert.equal(first.headers['content-type'], 'application/json');
    assert.deepEqual(first.body, {
      group: 'drive-collector',
      id: 'instance-1',
      url: 'http://127.0.0.1:7860',
      hostname: 'node-1',
      region: 'us-east-1',
      status: 'active',
      startedAt: 1_704_700_000_000,
      weight: 3,
      priority: 0,
      capabilities: ['download'],
      maxInFlight: 8,
    });
    for (const [i, beat] of rest.entries()) {
      const previous = registry.requests[i]!;
      assert.ok(beat.at - previous.at >= 40, `beats are spaced by the advised 50 ms (got ${beat.at - previous.at} ms)`);
    }
  });

  it('keeps an explicit interval over the advised one, and authenticates with a registration secret', async () => {
    const registry = await startRegistry(() => ({ status: 200, body: { heartbeatIntervalSeconds: 0.01 } }));
    cleanups.push(registry.close);
    const heartbeat = startHeartbeat({ courierUrl: registry.url, group: 'g', registrationSecret: 'group-secret', instance: INSTANCE, intervalMs: 60_000 });
    cleanups.push(heartbeat.stop);
    await until(() => registry.requests.length === 1);
    await sleep(150);
    assert.equal(registry.requests.length, 1, 'no second beat before the explicit interval');
    assert.equal(registry.requests[0]?.headers['courier-registration-secret'], 'group-secret');
    assert.equal(registry.requests[0]?.headers.authorization, undefined);
  });

  it('retries a failed beat with a growing delay, reports each failure, then returns to the interval', async () => {
    const registry = await startRegistry((_request, index) => (index < 3 ? { status: 503, body: { error: 'store down' } } : { status: 200 }));
    cleanups.push(registry.close);
    const errors: Error[] = [];
    const heartbeat = startHeartbeat({
      courierUrl: registry.url,
      group: 'g',
      token: 't',
      instance: INSTANCE,
      retryInitialMs: 20,
      onError: (error) => errors.push(error),
    });
    cleanups.push(heartbeat.stop);
    await until(() => registry.requests.length === 4);
    assert.equal(errors.length, 3);
    assert.ok(errors.every((error) => error instanceof HeartbeatError && error.status === 503));
    assert.match(errors[0]!.message, /store down/);
    const gaps = registry.requests.slice(1).map((request, i) => request.at - registry.requests[i]!.at);
    assert.ok(gaps[0]! >= 15 && gaps[1]! >= 35 && gaps[2]! >= 75, `delays double from 20 ms (got ${gaps.join(', ')})`);
    await sleep(150);
    assert.equal(registry.requests.length, 4, 'after a success, the next beat waits for the 300 s default interval');
  });

  it('on stop, sends a final draining beat, then deregisters, then beats no more', async () => {
    const registry = await startRegistry(() => ({ status: 200, body: { heartbeatIntervalSeconds: 0.02 } }));
    cleanups.push(registry.close);
    const heartbeat = startHeartbeat({ courierUrl: registry.url, group: 'drive collector', token: 't', instance: { ...INSTANCE, id: 'instance/1' } });
    await until(() => registry.requests.length >= 2);
    await Promise.all([heartbeat.stop(), heartbeat.stop()]);
    const [draining, deregistration] = registry.requests.slice(-2);
    assert.equal(draining?.method, 'POST');
    assert.equal((draining?.body as { status: string }).status, 'draining');
    assert.equal(deregistration?.method, 'DELETE');
    assert.equal(deregistration?.path, '/v1/instances/drive%20collector/instance%2F1');
    assert.equal(deregistration?.headers.authorization, 'Bearer t');
    const count = registry.requests.length;
    await sleep(100);
    assert.equal(registry.requests.length, count);
    assert.equal(registry.requests.filter((request) => request.method === 'DELETE').length, 1, 'stop twice deregisters once');
  });

  it('never throws when Courier cannot be reached: stop resolves and the failures are reported', async () => {
    const registry = await startRegistry();
    await registry.close();
    const errors: Error[] = [];
    const heartbeat = startHeartbeat({ courierUrl: registry.url, group: 'g', token: 't', instance: INSTANCE, retryInitialMs: 10, onError: (e) => errors.push(e) });
    await until(() => errors.length >= 2);
    const before = errors.length;
    await heartbeat.stop();
    // A retry already in flight when stop() was called may add one report of its own.
    assert.ok(errors.length >= before + 2);
    const [finalBeat, deregistration] = errors.slice(-2);
    assert.match(finalBeat!.message, /^POST \/v1\/instances\/heartbeat failed/);
    assert.match(deregistration!.message, /^DELETE \/v1\/instances\/g\/instance-1 failed/);
    assert.ok(errors.every((error) => error instanceof HeartbeatError));
  });
});
