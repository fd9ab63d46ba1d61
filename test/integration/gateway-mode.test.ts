/**
 * `courier gateway` end to end: real instance servers on 127.0.0.1, a real
 * SQLite store in a temp dir, the gateway started in-process from the same
 * environment variables an operator sets, and deliveries signed the way
 * hosted QStash signs them (sub = the gateway's public URL + path).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InstanceRegistration } from '../../src/core/instance.js';
import { signDelivery } from '../../src/delivery/signing.js';
import { loadGatewayConfig } from '../../src/gateway/gateway-config.js';
import { startGateway, type GatewayOverrides, type GatewayServer } from '../../src/gateway-server.js';
import { verifyDelivery } from '../../src/worker/verify.js';
import { SteppedClock } from '../helpers/clock.js';
import { startDestination, type Destination, type Script } from '../helpers/destination.js';

const CURRENT_KEY = 'sig_current_gateway_test_key';
const NEXT_KEY = 'sig_next_gateway_test_key';
const PUBLIC_URL = 'https://lb.example.com';
const TOKEN = 'gateway-test-token';

const gateways: GatewayServer[] = [];
const destinations: Destination[] = [];
const dataDirs: string[] = [];

after(async () => {
  await Promise.all(gateways.map((gateway) => gateway.close()));
  await Promise.all(destinations.map((destination) => destination.close()));
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

async function gatewayWith(env: Record<string, string> = {}, overrides: GatewayOverrides = {}): Promise<GatewayServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'courier-gateway-'));
  dataDirs.push(dataDir);
  const config = loadGatewayConfig({
    COURIER_STORE: `sqlite:${join(dataDir, 'courier.db')}`,
    PORT: '0',
    HOST: '127.0.0.1',
    COURIER_LOG_LEVEL: 'silent',
    COURIER_TOKEN: TOKEN,
    QSTASH_CURRENT_SIGNING_KEY: CURRENT_KEY,
    QSTASH_NEXT_SIGNING_KEY: NEXT_KEY,
    GATEWAY_PUBLIC_URL: PUBLIC_URL,
    ...env,
  });
  const gateway = await startGateway(config, overrides);
  gateways.push(gateway);
  return gateway;
}

async function instance(script: Script = () => ({ status: 200, headers: { 'content-type': 'text/plain' }, body: 'OK' })): Promise<Destination> {
  const destination = await startDestination(script);
  destinations.push(destination);
  return destination;
}

function registration(id: string, destination: Destination, group = 'default'): InstanceRegistration {
  return { group, id, url: destination.origin, status: 'active', startedAt: Date.now(), weight: 1, priority: 0, capabilities: [] };
}

interface Delivery {
  path: string;
  body?: string;
  headers?: Record<string, string>;
  /** Sign with this key (default the current one); null sends no signature. */
  key?: string | null;
  /** The URL the token is signed for; default the gateway's public URL + path. */
  signedFor?: string;
  signedAt?: number;
}

/** A POST as hosted QStash makes it: raw JSON body, Upstash-* headers, a token for the public URL. */
function deliver(gateway: GatewayServer, delivery: Delivery): Promise<Response> {
  const body = delivery.body ?? JSON.stringify({ taskId: 'task_123', type: 'download' });
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'Upstash-Message-Id': 'msg_abc123',
    'Upstash-Retried': '0',
    ...delivery.headers,
  };
  if (delivery.key !== null) {
    headers['Upstash-Signature'] = signDelivery({
      signingKey: delivery.key ?? CURRENT_KEY,
      url: delivery.signedFor ?? PUBLIC_URL + delivery.path,
      body: new TextEncoder().encode(body),
      nowMs: delivery.signedAt ?? Date.now(),
    });
  }
  return fetch(gateway.url + delivery.path, { method: 'POST', headers, body });
}

/** The seed's error body; `now` is the gateway's clock. */
async function errorBody(response: Response, now = Date.now()): Promise<Record<string, unknown>> {
  assert.equal(response.headers.get('content-type'), 'application/json');
  const body = (await response.json()) as Record<string, unknown>;
  assert.equal(typeof body.timestamp, 'string');
  assert.ok(Math.abs(Date.parse(body.timestamp as string) - now) < 5_000, 'timestamp is an ISO time of now');
  return body;
}

/** A raw request target sent exactly as written (fetch would resolve dot segments before sending). */
function rawPost(gateway: GatewayServer, target: string, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${gateway.url}${target}`, { method: 'POST', headers, path: target }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('gateway configuration', () => {
  it('requires a signing key unless the insecure switch (or the seed\'s alias for it) is on, and rejects a mistyped switch', () => {
    assert.throws(() => loadGatewayConfig({ COURIER_STORE: 'sqlite::memory:' }), /QSTASH_CURRENT_SIGNING_KEY is required/);
    assert.equal(loadGatewayConfig({ GATEWAY_INSECURE_SKIP_SIGNATURE: 'true' }).signature, undefined);
    assert.equal(loadGatewayConfig({ SKIP_SIGNATURE_VERIFY: 'true' }).signature, undefined);
    assert.throws(() => loadGatewayConfig({ GATEWAY_INSECURE_SKIP_SIGNATURE: 'yes' }), /GATEWAY_INSECURE_SKIP_SIGNATURE/);
  });

  it('defaults to the seed\'s values and parses the GATEWAY_* variables', () => {
    const defaults = loadGatewayConfig({ QSTASH_CURRENT_SIGNING_KEY: CURRENT_KEY });
    assert.deepEqual(defaults.signature, {
      keys: { current: CURRENT_KEY, next: CURRENT_KEY },
      expirationWindowSeconds: 900,
      clockToleranceSeconds: 300,
    });
    assert.equal(defaults.group, 'default');
    assert.equal(defaults.publicUrl, undefined);
    assert.deepEqual(defaults.routePrefixes, ['/api/tasks/']);
    assert.equal(defaults.pathAliases.get('/api/tasks/media-batch'), '/api/tasks/batch');
    assert.equal(defaults.forwardTimeoutMs, 30_000);
    assert.equal(defaults.maxBodyBytes, 10 * 1024 * 1024);
    assert.equal(defaults.store.kind, 'sqlite');

    const custom = loadGatewayConfig({
      QSTASH_CURRENT_SIGNING_KEY: CURRENT_KEY,
      SIGNATURE_EXPIRATION_WINDOW: '60',
      GATEWAY_CLOCK_TOLERANCE: '5',
      GATEWAY_GROUP: 'drive-collector',
      GATEWAY_PATH_ALIASES: '{"/jobs/old":"/jobs/new"}',
      GATEWAY_ROUTES: '/jobs/, /api/tasks/',
      GATEWAY_FORWARD_TIMEOUT: '2m',
    });
    assert.equal(custom.signature?.expirationWindowSeconds, 60);
    assert.equal(custom.signature?.clockToleranceSeconds, 5);
    assert.equal(custom.group, 'drive-collector');
    assert.deepEqual([...custom.pathAliases], [['/jobs/old', '/jobs/new']]);
    assert.deepEqual(custom.routePrefixes, ['/jobs/', '/api/tasks/']);
    assert.equal(custom.forwardTimeoutMs, 120_000);
    assert.throws(() => loadGatewayConfig({ QSTASH_CURRENT_SIGNING_KEY: CURRENT_KEY, GATEWAY_PATH_ALIASES: '{"old":"/new"}' }), /absolute paths/);
    assert.throws(() => loadGatewayConfig({ QSTASH_CURRENT_SIGNING_KEY: CURRENT_KEY, GATEWAY_PATH_ALIASES: '[1' }), /JSON object/);
  });
});

describe('gateway mode', () => {
  it('forwards a signed delivery with its signature, Upstash-* headers and body intact, plus X-Load-Balancer and X-Forwarded-*', async () => {
    const gateway = await gatewayWith();
    const target = await instance(() => ({ status: 200, headers: { 'content-type': 'text/plain', 'x-instance': 'a' }, body: 'OK' }));
    await gateway.registry.heartbeat(registration('instance-1', target));
    const body = '{"taskId":"task_123",  "type":"download"}';
    const path = '/api/tasks/download?attempt=1';

    const response = await deliver(gateway, { path, body, headers: { 'X-Forwarded-For': '1.2.3.4' } });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'OK');
    assert.equal(response.headers.get('x-instance'), 'a', 'the instance\'s headers are relayed');

    assert.equal(target.arrivals.length, 1);
    const [arrival] = target.arrivals;
    assert.equal(arrival!.method, 'POST');
    assert.equal(arrival!.path, path);
    assert.equal(arrival!.body.toString(), body, 'the body bytes are forwarded unchanged');
    const signature = arrival!.headers['upstash-signature'] as string;
    assert.ok(signature);
    assert.equal(arrival!.headers['upstash-message-id'], 'msg_abc123');
    assert.equal(arrival!.headers['upstash-retried'], '0');
    assert.equal(arrival!.headers['content-type'], 'application/json');
    assert.equal(arrival!.headers['x-load-balancer'], 'courier-gateway');
    assert.equal(arrival!.headers['x-forwarded-host'], `127.0.0.1:${gateway.port}`);
    assert.equal(arrival!.headers['x-forwarded-proto'], 'http');
    assert.equal(arrival!.headers['x-forwarded-for'], '1.2.3.4, 127.0.0.1');
    assert.equal(arrival!.headers['x-forwarded-uri'], path);
    assert.equal(arrival!.headers.host, new URL(target.origin).host, 'Host is the instance\'s, not the gateway\'s');
    // The instance can verify the forwarded delivery itself, against the gateway's public URL.
    const claims = await verifyDelivery({ signature, rawBody: arrival!.body, publicUrl: PUBLIC_URL, path, keys: { current: CURRENT_KEY } });
    assert.equal(claims.sub, PUBLIC_URL + path);
  });

  it('accepts a token signed with the next key (key rotation)', async () => {
    const gateway = await gatewayWith();
    const target = await instance();
    await gateway.registry.heartbeat(registration('instance-1', target));
    const response = await deliver(gateway, { path: '/api/tasks/upload', key: NEXT_KEY });
    assert.equal(response.status, 200);
    assert.equal(target.arrivals.length, 1);
  });

  it('answers 401 JSON for a bad, missing, re-targeted or body-mismatched signature, and never calls an instance', async () => {
    const gateway = await gatewayWith();
    const target = await instance();
    await gateway.registry.heartbeat(registration('instance-1', target));
    const path = '/api/tasks/download';

    const cases: { delivery: Delivery; code: string }[] = [
      { delivery: { path, key: 'not-the-signing-key' }, code: 'SIGNATURE_INVALID' },
      { delivery: { path, key: null }, code: 'SIGNATURE_MISSING' },
      { delivery: { path, signedFor: 'https://other-service.example.com/api/tasks/download' }, code: 'URL_MISMATCH' },
      { delivery: { path, signedFor: `${PUBLIC_URL}/api/tasks/upload` }, code: 'URL_MISMATCH' },
    ];
    for (const { delivery, code } of cases) {
      const response = await deliver(gateway, delivery);
      assert.equal(response.status, 401, code);
      const body = await errorBody(response);
      assert.equal(body.error, 'Signature verification failed');
      assert.equal(body.code, code);
      assert.equal(typeof body.message, 'string');
    }

    const signature = signDelivery({ signingKey: CURRENT_KEY, url: PUBLIC_URL + path, body: new TextEncoder().encode('{"taskId":"a"}'), nowMs: Date.now() });
    const tampered = await fetch(gateway.url + path, { method: 'POST', headers: { 'Upstash-Signature': signature }, body: '{"taskId":"b"}' });
    assert.equal(tampered.status, 401);
    assert.equal((await errorBody(tampered)).code, 'BODY_MISMATCH');

    assert.equal(target.arrivals.length, 0, 'no refused delivery reached the instance');
  });

  it('refuses a token issued longer ago than SIGNATURE_EXPIRATION_WINDOW even before its exp', async () => {
    const gateway = await gatewayWith({ SIGNATURE_EXPIRATION_WINDOW: '60' });
    const target = await instance();
    await gateway.registry.heartbeat(registration('instance-1', target));

    // Two minutes old: exp (iat + 300 s) has not passed, but the 60 s window has.
    const stale = await deliver(gateway, { path: '/api/tasks/download', signedAt: Date.now() - 120_000 });
    assert.equal(stale.status, 401);
    const body = await errorBody(stale);
    assert.equal(body.code, 'SIGNATURE_EXPIRED');
    assert.match(body.message as string, /SIGNATURE_EXPIRATION_WINDOW/);
    assert.equal(target.arrivals.length, 0);

    const fresh = await deliver(gateway, { path: '/api/tasks/download', signedAt: Date.now() - 10_000 });
    assert.equal(fresh.status, 200);
    assert.equal(target.arrivals.length, 1);
  });

  it('forwards unsigned deliveries when the insecure switch is on', async () => {
    const gateway = await gatewayWith({ QSTASH_CURRENT_SIGNING_KEY: '', GATEWAY_INSECURE_SKIP_SIGNATURE: 'true' });
    const target = await instance();
    await gateway.registry.heartbeat(registration('instance-1', target));
    const response = await deliver(gateway, { path: '/api/tasks/download', key: null });
    assert.equal(response.status, 200);
    assert.equal(target.arrivals.length, 1);
    assert.equal(target.arrivals[0]!.headers['upstash-signature'], undefined);
  });

  it('routes the seed\'s legacy paths to the short ones, keeping the query', async () => {
    const gateway = await gatewayWith();
    const target = await instance();
    await gateway.registry.heartbeat(registration('instance-1', target));
    const routed: [string, string][] = [
      ['/api/tasks/download-tasks', '/api/tasks/download'],
      ['/api/tasks/upload-tasks?x=1&y=%20', '/api/tasks/upload?x=1&y=%20'],
      ['/api/tasks/media-batch', '/api/tasks/batch'],
      ['/api/tasks/media-batch/7', '/api/tasks/batch/7'],
      ['/api/tasks/system-events', '/api/tasks/system-events'],
    ];
    for (const [sent] of routed) assert.equal((await deliver(gateway, { path: sent })).status, 200, sent);
    assert.deepEqual(
      target.arrivals.map((arrival) => arrival.path),
      routed.map(([, forwarded]) => forwarded),
    );
    // The token was signed for the legacy path; the instance learns it from X-Forwarded-Uri.
    assert.deepEqual(
      target.arrivals.map((arrival) => arrival.headers['x-forwarded-uri']),
      routed.map(([sent]) => sent),
    );
    const legacy = target.arrivals[0]!;
    await verifyDelivery({
      signature: legacy.headers['upstash-signature'] as string,
      rawBody: legacy.body,
      publicUrl: PUBLIC_URL,
      path: legacy.headers['x-forwarded-uri'] as string,
      keys: { current: CURRENT_KEY },
    });
  });

  it('answers 404 JSON for a path outside GATEWAY_ROUTES, dot segments included, without calling an instance', async () => {
    const gateway = await gatewayWith();
    const target = await instance();
    await gateway.registry.heartbeat(registration('instance-1', target));

    const response = await deliver(gateway, { path: '/admin/reset' });
    assert.equal(response.status, 404);
    assert.equal((await errorBody(response)).error, 'Not Found');

    const escape = '/api/tasks/../../admin/reset';
    const body = '{}';
    const signature = signDelivery({ signingKey: CURRENT_KEY, url: PUBLIC_URL + escape, body: new TextEncoder().encode(body), nowMs: Date.now() });
    assert.equal(await rawPost(gateway, escape, { 'Upstash-Signature': signature }, body), 404);
    assert.equal(target.arrivals.length, 0);
  });

  it('spreads deliveries round robin across three registered instances', async () => {
    const gateway = await gatewayWith();
    const instances = [await instance(), await instance(), await instance()];
    for (const [index, destination] of instances.entries()) await gateway.registry.heartbeat(registration(`instance-${index + 1}`, destination));

    for (let i = 0; i < 30; i++) assert.equal((await deliver(gateway, { path: '/api/tasks/download' })).status, 200);
    assert.deepEqual(
      instances.map((destination) => destination.arrivals.length),
      [10, 10, 10],
    );
  });

  it('answers 503 with Retry-After and the message id when no instance is live', async () => {
    const clock = new SteppedClock();
    const gateway = await gatewayWith({}, { clock });
    const target = await instance();

    const none = await deliver(gateway, { path: '/api/tasks/download', signedAt: clock.now() });
    assert.equal(none.status, 503);
    assert.equal(none.headers.get('retry-after'), '60');
    const body = await errorBody(none, clock.now());
    assert.equal(body.error, 'No active instances available');
    assert.equal(body.qstashMsgId, 'msg_abc123');

    await gateway.registry.heartbeat(registration('instance-1', target));
    assert.equal((await deliver(gateway, { path: '/api/tasks/download', signedAt: clock.now() })).status, 200);

    // Past the seed's 900 s staleness without a heartbeat, the instance is no longer live.
    clock.advance(901_000);
    const stale = await deliver(gateway, { path: '/api/tasks/download', signedAt: clock.now() });
    assert.equal(stale.status, 503);
    assert.equal(stale.headers.get('retry-after'), '60');
    assert.equal((await errorBody(stale, clock.now())).qstashMsgId, 'msg_abc123');
    assert.equal(target.arrivals.length, 1);
  });

  it('answers 502 when the chosen instance refuses connections, then ejects it and moves its traffic to the others', async () => {
    const gateway = await gatewayWith();
    const instances = [await instance(), await instance(), await instance()];
    for (const [index, destination] of instances.entries()) await gateway.registry.heartbeat(registration(`instance-${index + 1}`, destination));
    // Registered through the gateway's own group endpoint: eject after one failure.
    const tuned = await fetch(`${gateway.url}/v1/instance-groups/default`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ outlier: { consecutiveFailures: 1 } }),
    });
    assert.equal(tuned.status, 200);
    const [down, ...up] = instances;
    await down!.close();

    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await deliver(gateway, { path: '/api/tasks/download' });
      statuses.push(response.status);
      if (response.status === 502) {
        const body = await errorBody(response);
        assert.equal(body.error, 'Bad Gateway');
        assert.equal(body.qstashMsgId, 'msg_abc123');
      } else await response.arrayBuffer();
    }
    assert.deepEqual(statuses.filter((status) => status === 502).length, 1, `one delivery hit the dead instance: ${statuses.join(',')}`);

    const before = up.map((destination) => destination.arrivals.length);
    for (let i = 0; i < 10; i++) assert.equal((await deliver(gateway, { path: '/api/tasks/download' })).status, 200);
    assert.deepEqual(
      up.map((destination, index) => destination.arrivals.length - before[index]!),
      [5, 5],
      'the two survivors share the traffic evenly',
    );
  });

  it('answers 502 when the instance does not answer within GATEWAY_FORWARD_TIMEOUT', async () => {
    const gateway = await gatewayWith({ GATEWAY_FORWARD_TIMEOUT: '0.2' });
    const hanging = await instance(() => ({ hang: true }));
    await gateway.registry.heartbeat(registration('instance-1', hanging));
    // The instance never answers, so a 502 at all is the forward timeout firing.
    const response = await deliver(gateway, { path: '/api/tasks/download' });
    assert.equal(response.status, 502);
    assert.equal((await errorBody(response)).error, 'Bad Gateway');
  });

  it('relays the instance\'s own failure status so QStash retries it', async () => {
    const gateway = await gatewayWith();
    const failing = await instance(() => ({ status: 500, headers: { 'content-type': 'application/json' }, body: '{"error":"boom"}' }));
    await gateway.registry.heartbeat(registration('instance-1', failing));
    const response = await deliver(gateway, { path: '/api/tasks/download' });
    assert.equal(response.status, 500);
    assert.equal(await response.text(), '{"error":"boom"}');
  });

  it('answers 413 JSON for a body over the limit, before verifying anything', async () => {
    const gateway = await gatewayWith({ COURIER_MAX_BODY_BYTES: '1024' });
    const target = await instance();
    await gateway.registry.heartbeat(registration('instance-1', target));
    const response = await deliver(gateway, { path: '/api/tasks/download', body: JSON.stringify({ data: 'x'.repeat(2048) }) });
    assert.equal(response.status, 413);
    assert.equal((await errorBody(response)).error, 'Payload Too Large');
    assert.equal(target.arrivals.length, 0);
  });

  it('serves the seed\'s /health JSON, counting instances registered through its heartbeat endpoint', async () => {
    const startedAt = Math.floor(Date.now() / 1000);
    const gateway = await gatewayWith();
    const target = await instance();

    const readHealth = async () => {
      const response = await fetch(`${gateway.url}/health`);
      assert.equal(response.status, 200);
      return (await response.json()) as Record<string, unknown>;
    };
    const beforeRead = Date.now();
    const empty = await readHealth();
    const afterRead = Date.now();
    assert.deepEqual(Object.keys(empty).sort(), ['activeInstances', 'provider', 'status', 'timestamp', 'uptime']);
    assert.equal(empty.status, 'ok');
    assert.equal(empty.activeInstances, 0);
    assert.equal(empty.provider, 'sqlite');
    // ISO timestamps carry milliseconds: between the two readings of the clock around the request.
    const timestamp = Date.parse(empty.timestamp as string);
    assert.ok(timestamp >= beforeRead && timestamp <= afterRead, `timestamp ${empty.timestamp} is now`);
    // The seed's `uptime` is the start time in Unix seconds.
    assert.ok(Number.isInteger(empty.uptime) && (empty.uptime as number) >= startedAt && (empty.uptime as number) <= Date.now() / 1000);

    const heartbeat = (authorization?: string) =>
      fetch(`${gateway.url}/v1/instances/heartbeat`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...(authorization ? { Authorization: authorization } : {}) },
        body: JSON.stringify({ group: 'default', id: 'instance-1', url: target.origin, hostname: 'node-1', region: 'us-east-1', status: 'active' }),
      });
    assert.equal((await heartbeat()).status, 401);
    const registered = await heartbeat(`Bearer ${TOKEN}`);
    assert.equal(registered.status, 200);
    await registered.arrayBuffer();
    assert.equal((await readHealth()).activeInstances, 1);
    assert.equal((await deliver(gateway, { path: '/api/tasks/download' })).status, 200);

    const head = await fetch(`${gateway.url}/health`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), 'application/json');
    assert.equal(await head.text(), '');

    const removed = await fetch(`${gateway.url}/v1/instances/default/instance-1`, { method: 'DELETE', headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(removed.status, 200);
    assert.equal((await readHealth()).activeInstances, 0);
  });
});
