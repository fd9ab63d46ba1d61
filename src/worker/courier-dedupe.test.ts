/**
 * courierDedupe against a real Courier (real HTTP, the store chosen by
 * COURIER_TEST_STORE), and a worker using it on real deliveries published
 * with the official SDK.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SteppedClock } from '../../test/helpers/clock.js';
import { startTestCourier, type TestCourier } from '../../test/helpers/courier.js';
import { courierDedupe, CourierDedupeError } from './courier-dedupe.js';
import { createWorker, type Task, type Worker } from './worker.js';

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A URL where nothing listens: a port that was just free. */
async function unreachableUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

describe('courierDedupe against a real Courier', () => {
  const clock = new SteppedClock();
  let courier: TestCourier;
  const servers: Server[] = [];

  before(async () => {
    courier = await startTestCourier({}, { clock });
  });
  after(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
    await courier.stop();
  });

  const dedupeFor = (group: string, ttlMs?: number) =>
    courierDedupe({ courierUrl: courier.url, group, token: courier.token, ...(ttlMs === undefined ? {} : { ttlMs }) });

  it('holds an id for one instance of the group until it is released; other groups are separate', async () => {
    const instanceA = dedupeFor('workers');
    const instanceB = dedupeFor('workers');
    assert.equal(await instanceA.claim('msg_1'), true);
    assert.equal(await instanceB.claim('msg_1'), false, 'another instance of the group');
    assert.equal(await instanceA.claim('msg_1'), false, 'the same instance again');
    assert.equal(await dedupeFor('others').claim('msg_1'), true, 'another group');
    await instanceA.release('msg_1');
    assert.equal(await instanceB.claim('msg_1'), true, 'released: the retry may run');
    // Ids travel in the path: one that needs encoding is still one key.
    assert.equal(await instanceA.claim('id/with spaces?&#'), true);
    assert.equal(await instanceB.claim('id/with spaces?&#'), false);
  });

  it('releasing an id that holds no claim is not an error (Courier answers 404)', async () => {
    const response = await courier.api('/v1/work-keys/workers/never-claimed', { method: 'DELETE' });
    assert.equal(response.status, 404);
    await dedupeFor('workers').release('never-claimed');
  });

  it('forgets a claim once its TTL has passed', async () => {
    const dedupe = dedupeFor('workers', 60_000);
    assert.equal(await dedupe.claim('msg_ttl'), true);
    clock.advance(59_000);
    assert.equal(await dedupe.claim('msg_ttl'), false);
    clock.advance(1_000);
    assert.equal(await dedupe.claim('msg_ttl'), true);
  });

  it('authenticates with the group’s registration secret; a wrong secret or none is refused with 401', async () => {
    const saved = await courier.api('/v1/instance-groups/secured', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ registrationSecret: 'correct-horse-battery' }),
    });
    assert.equal(saved.status, 200);
    const withSecret = courierDedupe({ courierUrl: courier.url, group: 'secured', registrationSecret: 'correct-horse-battery' });
    assert.equal(await withSecret.claim('msg_s'), true);
    await withSecret.release('msg_s');
    const refused = (error: unknown) => error instanceof CourierDedupeError && error.status === 401;
    const wrong = courierDedupe({ courierUrl: courier.url, group: 'secured', registrationSecret: 'wrong-horse-battery!' });
    await assert.rejects(wrong.claim('msg_s'), refused);
    // The secret opens its own group only.
    const elsewhere = courierDedupe({ courierUrl: courier.url, group: 'workers', registrationSecret: 'correct-horse-battery' });
    await assert.rejects(elsewhere.claim('msg_s'), refused);
  });

  it('the API refuses a TTL outside 1 s to 7 days, a bad scope, a control character in a key, and no credentials', async () => {
    const claim = (path: string, body: unknown, init: RequestInit = {}) =>
      courier.api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...init });
    assert.equal((await claim('/v1/work-keys/workers/k/claim', { ttlSeconds: 0.5 })).status, 400);
    assert.equal((await claim('/v1/work-keys/workers/k/claim', { ttlSeconds: 7 * 24 * 3600 + 1 })).status, 400);
    assert.equal((await claim('/v1/work-keys/workers/k/claim', {})).status, 400);
    assert.equal((await claim('/v1/work-keys/bad%20scope/k/claim', { ttlSeconds: 60 })).status, 400);
    assert.equal((await claim('/v1/work-keys/workers/a%0Ab/claim', { ttlSeconds: 60 })).status, 400);
    const anonymous = await fetch(`${courier.url}/v1/work-keys/workers/k/claim`, { method: 'POST', body: '{"ttlSeconds":60}' });
    assert.equal(anonymous.status, 401);
    const accepted = await claim('/v1/work-keys/workers/k/claim', { ttlSeconds: 7 * 24 * 3600 });
    assert.deepEqual(await accepted.json(), { claimed: true });
  });

  it('refuses a TTL outside 1 s to 7 days before making any request', () => {
    assert.throws(() => dedupeFor('workers', 999), RangeError);
    assert.throws(() => dedupeFor('workers', 7 * 24 * 60 * 60 * 1000 + 1), RangeError);
  });

  describe('in a worker', () => {
    /** A worker whose public URL is `publicUrl` (where Courier delivers), served on a real node:http server when asked. */
    function workerAt(publicUrl: string, dedupe: ReturnType<typeof courierDedupe>, tasks: Task[], errors: unknown[] = []): Worker {
      return createWorker({
        keys: courier.server.keys.signingKeys(),
        publicUrl,
        dedupe,
        routes: { '/api/tasks/download': async (task) => void tasks.push(task) },
        onError: (error) => errors.push(error),
      });
    }

    async function listen(): Promise<{ server: Server; origin: string }> {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    }

    /** The delivery `task` came in, sent again as its redelivery would arrive (same signature, body and id). */
    function redelivery(origin: string, task: Task): Request {
      const headers = new Headers();
      for (const [name, value] of task.headers) if (name.startsWith('upstash-') || name === 'content-type') headers.set(name, value);
      return new Request(`${origin}${task.path}`, { method: 'POST', headers, body: task.rawBody });
    }

    it('runs a message once across the group’s instances, and answers 500 when Courier cannot be asked', async () => {
      const { server, origin } = await listen();
      const ranOnA: Task[] = [];
      server.on('request', workerAt(origin, dedupeFor('download-workers'), ranOnA).node);
      const { messageId } = await courier.client.publishJSON({ url: `${origin}/api/tasks/download`, body: { taskId: 't1' } });
      await until(() => ranOnA.length === 1);
      const delivered = ranOnA[0]!;
      assert.equal(delivered.messageId, messageId);

      // Instance B of the same group gets the same delivery again (as after a timeout): answered, not run.
      const ranOnB: Task[] = [];
      const instanceB = workerAt(origin, dedupeFor('download-workers'), ranOnB);
      const again = await instanceB.fetch(redelivery(origin, delivered));
      assert.equal(again.status, 200);
      assert.equal(ranOnB.length, 0);

      // An instance whose dedupe cannot reach Courier neither runs the handler nor answers 200.
      const ranOnC: Task[] = [];
      const errorsOnC: unknown[] = [];
      const offline = courierDedupe({ courierUrl: await unreachableUrl(), group: 'download-workers', token: courier.token });
      const instanceC = workerAt(origin, offline, ranOnC, errorsOnC);
      const failed = await instanceC.fetch(redelivery(origin, delivered));
      assert.equal(failed.status, 500);
      assert.equal(ranOnC.length, 0);
      assert.ok(errorsOnC.some((error) => error instanceof CourierDedupeError && error.status === undefined));
    });
  });
});
