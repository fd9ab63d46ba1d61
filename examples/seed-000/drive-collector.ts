/**
 * One drive-collector-js instance of seed 000, written with Courier's worker
 * kit instead of by hand: it serves the four task webhooks behind the gateway,
 * verifies each delivery, drops repeats by message id, registers and
 * heartbeats with the gateway, and drains on SIGTERM.
 *
 * Environment (the seed's names where it has one):
 *   INSTANCE_ID                   e.g. instance-1
 *   PORT                          where to listen; 0 picks a free port (default 0)
 *   LB_WEBHOOK_URL                the gateway: QStash/Courier call it, instances register with it
 *   QSTASH_TOKEN                  the credential the gateway accepts for registration
 *   QSTASH_CURRENT_SIGNING_KEY, QSTASH_NEXT_SIGNING_KEY
 *
 * Each handled task is one JSON line on stdout ({"event":"handled",…}): the
 * demo counts them. A real instance would call its TaskManager instead.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
// In an application this is `from 'courier/worker'`; the example imports the
// source so that it runs from a checkout without a build.
import { createWorker, memoryDedupe, startHeartbeat, type Task, type TaskHandler } from '../../src/worker/index.js';

function env(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
}

const instanceId = env('INSTANCE_ID');
const gatewayUrl = env('LB_WEBHOOK_URL');
const currentKey = env('QSTASH_CURRENT_SIGNING_KEY');

function emit(record: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ instance: instanceId, ...record })}\n`);
}

/** The seed's bodies are JSON objects; anything else is a publisher bug, answered 500 and retried until someone looks. */
function field<T>(task: Task, name: string, check: (value: unknown) => value is T): T {
  const value = (task.body as Record<string, unknown> | null)?.[name];
  if (!check(value)) throw new Error(`${task.path}: the body has no valid "${name}"`);
  return value;
}
const isString = (value: unknown): value is string => typeof value === 'string' && value !== '';
const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every(isString);
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

/** What the demo needs to know about a handled delivery, whatever the route. */
function handled(task: Task, route: string, ref: string): void {
  emit({
    event: 'handled',
    route,
    ref,
    path: task.path,
    // The path the message was published to; the gateway may have rewritten a legacy one.
    calledAs: (task.headers.get('x-forwarded-uri') ?? task.path).split('?')[0],
    messageId: task.messageId,
    retried: task.retried,
  });
}

const routes: Record<string, TaskHandler> = {
  // TaskManager.handleDownloadWebhook(taskId)
  '/api/tasks/download': async (task) => handled(task, 'download', field(task, 'taskId', isString)),
  // TaskManager.handleUploadWebhook(taskId)
  '/api/tasks/upload': async (task) => handled(task, 'upload', field(task, 'taskId', isString)),
  // TaskManager.handleMediaBatchWebhook(groupId, taskIds)
  '/api/tasks/batch': async (task) => {
    field(task, 'taskIds', isStringArray);
    handled(task, 'batch', field(task, 'groupId', isString));
  },
  // The seed only logs system events.
  '/api/tasks/system-events': async (task) => {
    field(task, 'data', isObject);
    handled(task, 'system-events', field(task, 'event', isString));
  },
};

const worker = createWorker({
  keys: { current: currentKey, next: process.env.QSTASH_NEXT_SIGNING_KEY ?? currentKey },
  // Deliveries are signed for the gateway's URL, which is what QStash/Courier called.
  publicUrl: gatewayUrl,
  behindGateway: true,
  routes,
  dedupe: memoryDedupe(),
  onError: (error, context) => emit({ event: 'error', ...context, message: error instanceof Error ? error.message : String(error) }),
});

const server = createServer(worker.node);
await new Promise<void>((resolve) => server.listen(Number(env('PORT', '0')), '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const heartbeat = startHeartbeat({
  courierUrl: gatewayUrl,
  token: env('QSTASH_TOKEN'),
  group: 'default',
  instance: { id: instanceId, url, hostname: hostname(), region: 'local' },
  // Short, so a gateway that restarted sees this instance again quickly.
  retryInitialMs: 200,
  onError: (error) => emit({ event: 'heartbeat-error', message: error.message }),
});
emit({ event: 'ready', url });

async function shutdown(): Promise<void> {
  await heartbeat.stop();
  await worker.drain();
  server.close();
  server.closeIdleConnections();
  emit({ event: 'stopped' });
}

process.once('SIGTERM', () => {
  shutdown().then(
    () => process.exit(0),
    (error: unknown) => {
      emit({ event: 'error', phase: 'shutdown', message: error instanceof Error ? error.message : String(error) });
      process.exit(1);
    },
  );
});
