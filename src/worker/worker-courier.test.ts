/**
 * The worker kit against real deliveries: a real Courier (SQLite), published
 * to with the official SDK, delivering to a worker on a real node:http server.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestCourier, type TestCourier } from '../../test/helpers/courier.js';
import { memoryDedupe } from './dedupe.js';
import { DeliveryVerificationError } from './verify.js';
import { createWorker, type Task, type WorkerOptions } from './worker.js';

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('worker kit receiving real Courier deliveries', () => {
  let courier: TestCourier;
  const servers: Server[] = [];

  before(async () => {
    courier = await startTestCourier();
  });
  after(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
    await courier.stop();
  });

  /** Serves a worker with this Courier's keys; its public URL is where it listens unless a test says otherwise. */
  async function serveWorker(options: Pick<WorkerOptions, 'routes'> & Partial<WorkerOptions>): Promise<string> {
    const server = createServer();
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { current, next } = courier.server.keys.signingKeys();
    const worker = createWorker({ keys: { current, next }, publicUrl: origin, ...options });
    server.on('request', worker.node);
    return origin;
  }

  it('verifies and runs a delivery published with the official SDK', async () => {
    const tasks: Task[] = [];
    const origin = await serveWorker({ routes: { '/api/tasks/download': async (task) => void tasks.push(task) } });
    const body = { taskId: 'task_123', type: 'download', _meta: { triggerSource: 'direct-qstash' } };
    const { messageId } = await courier.client.publishJSON({ url: `${origin}/api/tasks/download`, body });
    await until(() => tasks.length === 1);
    assert.deepEqual(tasks[0]?.body, body);
    assert.equal(tasks[0]?.messageId, messageId);
    assert.equal(tasks[0]?.retried, 0);
  });

  it('answers a failed handler 500 so Courier retries, and the released claim lets the retry run', async () => {
    const tasks: Task[] = [];
    const origin = await serveWorker({
      dedupe: memoryDedupe(),
      routes: {
        '/api/tasks/upload': async (task) => {
          tasks.push(task);
          if (task.retried === 0) throw new Error('upload target busy');
        },
      },
    });
    await courier.client.publishJSON({ url: `${origin}/api/tasks/upload`, body: { taskId: 'task_456' }, retries: 2, retryDelay: '50' });
    await until(() => tasks.length === 2);
    assert.deepEqual(
      tasks.map((task) => task.retried),
      [0, 1],
    );
    assert.equal(tasks[0]?.messageId, tasks[1]?.messageId);
  });

  it('refuses a delivery signed for another URL, as behind a misconfigured proxy', async () => {
    const refusals: unknown[] = [];
    const tasks: Task[] = [];
    const origin = await serveWorker({
      publicUrl: 'https://public.example.com',
      routes: { '/api/tasks/batch': async (task) => void tasks.push(task) },
      onError: (error) => refusals.push(error),
    });
    await courier.client.publishJSON({ url: `${origin}/api/tasks/batch`, body: { groupId: 'g', taskIds: ['a'] }, retries: 0 });
    await until(() => refusals.length === 1);
    const [refusal] = refusals;
    assert.ok(refusal instanceof DeliveryVerificationError);
    assert.equal(refusal.reason, 'URL_MISMATCH');
    assert.equal(tasks.length, 0);
  });
});
