/**
 * Instance groups end to end (issue 5, items 1–3): real instance servers
 * register and heartbeat through the HTTP API, and messages published to
 * `group:<name>/<path>` with the official SDK reach one instance chosen by the
 * group's strategy and health.
 *
 * Routing hints (`Courier-Capability`) go through a raw publish: the SDK
 * prefixes every custom header with `Upstash-Forward-`, which turns a hint
 * into a header for the destination.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { QstashError, type Client } from '@upstash/qstash';
import { SteppedClock } from '../helpers/clock.js';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually, ok, sleep, startDestination, type Arrival, type Destination, type Script } from '../helpers/destination.js';

type LogEntry = Awaited<ReturnType<Client['logs']>>['logs'][number] & {
  responseStatus?: number;
  responseBody?: string;
  nextDeliveryTime?: number;
};

/** What GET /v1/instances shows of one instance (gateway/instance-service.ts). */
interface InstanceView {
  group: string;
  id: string;
  url: string;
  status: string;
  weight: number;
  priority: number;
  capabilities: string[];
  lastHeartbeat: number;
  state: 'healthy' | 'ejected' | 'unhealthy' | 'draining' | 'stale';
  health: { ejections: number; ejectedUntil?: number };
}

interface Published {
  messageId: string;
  url: string;
}

let groupCounter = 0;
const groupName = (label: string) => `${label}-${++groupCounter}`;

const TASK_PATH = '/api/tasks/download';
const NO_RETRY_AFTER_SECONDS = 60;

const messageIdOf = (arrival: Arrival) => String(arrival.headers['upstash-message-id']);
const idsOf = (arrivals: readonly Arrival[]) => arrivals.map(messageIdOf);

/** Shared by both Couriers of this file: registration, listing and publishing through the real API. */
function apiOf(courier: () => TestCourier) {
  async function heartbeat(body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
    return courier().api('/v1/instances/heartbeat', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  }

  async function register(group: string, id: string, instance: Destination, extra: Record<string, unknown> = {}): Promise<void> {
    const response = await heartbeat({ group, id, url: instance.origin, hostname: `${id}.local`, region: 'eu', status: 'active', ...extra });
    assert.equal(response.status, 200, `heartbeat of ${id}: ${await response.clone().text()}`);
  }

  async function deregister(group: string, id: string): Promise<Response> {
    return courier().api(`/v1/instances/${group}/${id}`, { method: 'DELETE' });
  }

  async function instancesOf(group?: string): Promise<InstanceView[]> {
    const response = await courier().api(group === undefined ? '/v1/instances' : `/v1/instances?group=${group}`);
    assert.equal(response.status, 200);
    return (await response.json()) as InstanceView[];
  }

  async function saveGroup(name: string, settings: Record<string, unknown>): Promise<Record<string, unknown>> {
    const response = await courier().api(`/v1/instance-groups/${name}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(settings),
    });
    assert.equal(response.status, 200, `PUT group ${name}: ${await response.clone().text()}`);
    return (await response.json()) as Record<string, unknown>;
  }

  /** `count` JSON messages to the group, published with the SDK's batchJSON 100 at a time. */
  async function publishMany(group: string, count: number, options: { retries?: number; retryDelay?: string } = {}): Promise<string[]> {
    const ids: string[] = [];
    for (let start = 0; start < count; start += 100) {
      const chunk = Array.from({ length: Math.min(100, count - start) }, (_, offset) => ({
        url: `group:${group}${TASK_PATH}`,
        body: { n: start + offset },
        ...options,
      }));
      const results = (await courier().client.batchJSON(chunk)) as unknown as Published[];
      ids.push(...results.map((result) => result.messageId));
    }
    return ids;
  }

  /** A raw publish carrying routing hints, which the SDK cannot send (see the file header). */
  async function publishRaw(group: string, headers: Record<string, string>): Promise<string> {
    const response = await courier().api(`/v2/publish/group:${group}${TASK_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: '{"task":"download"}',
    });
    assert.equal(response.status, 200, await response.clone().text());
    return ((await response.json()) as Published).messageId;
  }

  async function logsOf(messageId: string): Promise<LogEntry[]> {
    return (await courier().client.logs({ messageIds: [messageId] })).logs;
  }

  async function waitForState(messageId: string, state: string, timeoutMs = 10_000): Promise<LogEntry[]> {
    return eventually(
      async () => {
        const logs = await logsOf(messageId);
        return logs.some((entry) => entry.state === state) ? logs : undefined;
      },
      timeoutMs,
      `${state} for ${messageId}`,
    );
  }

  return { heartbeat, register, deregister, instancesOf, saveGroup, publishMany, publishRaw, logsOf, waitForState };
}

/** Waits until the instances together have received `count` requests, then gives stragglers a moment to show up. */
async function waitForTotal(instances: readonly Destination[], count: number, timeoutMs = 20_000): Promise<void> {
  const total = () => instances.reduce((sum, instance) => sum + instance.arrivals.length, 0);
  await eventually(() => (total() >= count ? true : undefined), timeoutMs, `${count} deliveries across the group`);
  await sleep(200);
  assert.equal(total(), count, 'no delivery beyond the messages published');
}

/** Asserts that the 503 "no instance" failure was logged for the message, and returns its ERROR entry. */
function assertNoInstanceError(logs: readonly LogEntry[], reasonPart: string): LogEntry {
  const error = logs.find((entry) => entry.state === 'ERROR');
  assert.ok(error, `an ERROR entry among ${logs.map((entry) => entry.state).join(', ')}`);
  assert.equal(error.responseStatus, 503);
  assert.ok(String(error.error).includes(reasonPart), `error "${String(error.error)}" names the reason (${reasonPart})`);
  const body = JSON.parse(Buffer.from(error.responseBody ?? '', 'base64').toString('utf8')) as { error: string; reason: string };
  assert.equal(body.error, 'No active instances available');
  assert.ok(body.reason.includes(reasonPart));
  return error;
}

describe('instance groups (issue 5)', () => {
  let courier: TestCourier;
  const servers: Destination[] = [];
  const api = apiOf(() => courier);

  async function instance(script: Script = ok): Promise<Destination> {
    const started = await startDestination(script);
    servers.push(started);
    return started;
  }

  before(async () => {
    courier = await startTestCourier();
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.close()));
    await courier.stop();
  });

  describe('registration', () => {
    it('answers a heartbeat with the record and the seed intervals, and lists the instance as healthy', async () => {
      const a = await instance();
      const group = groupName('reg');
      const startedAt = Date.now() - 5_000;
      const beforeBeat = Date.now();
      const response = await api.heartbeat({
        group,
        id: 'node-a',
        url: a.origin,
        hostname: 'node-a.local',
        region: 'eu',
        status: 'active',
        startedAt,
      });
      const afterBeat = Date.now();
      assert.equal(response.status, 200);
      const body = (await response.json()) as { instance: InstanceView & Record<string, unknown>; heartbeatIntervalSeconds: number; staleAfterSeconds: number };
      assert.equal(body.heartbeatIntervalSeconds, 300);
      assert.equal(body.staleAfterSeconds, 900);
      const { instance: record } = body;
      assert.equal(record.group, group);
      assert.equal(record.id, 'node-a');
      assert.equal(record.url, a.origin);
      assert.equal(record.hostname, 'node-a.local');
      assert.equal(record.region, 'eu');
      assert.equal(record.status, 'active');
      assert.equal(record.startedAt, startedAt);
      assert.equal(record.weight, 1, 'default weight');
      assert.equal(record.priority, 0, 'default priority');
      assert.deepEqual(record.capabilities, []);
      // Courier runs on the system clock here, so the beat's stamp lies between our readings around it.
      assert.ok(record.lastHeartbeat >= beforeBeat && record.lastHeartbeat <= afterBeat, 'lastHeartbeat is epoch ms, the time of the beat');

      const listed = await api.instancesOf(group);
      assert.deepEqual(listed.map((view) => [view.id, view.state, view.url]), [['node-a', 'healthy', a.origin]]);
      assert.ok((await api.instancesOf()).some((view) => view.group === group && view.id === 'node-a'), 'listed without a group filter too');
    });

    it('accepts a heartbeat with the group registration secret instead of the token, refuses a wrong one, and never shows the hash', async () => {
      const a = await instance();
      const group = groupName('secret');
      const secret = 'registration-secret-0123456789';
      const hash = createHash('sha256').update(secret).digest('hex');
      const saved = await api.saveGroup(group, { registrationSecret: secret });
      assert.equal(saved.hasRegistrationSecret, true);

      const withoutToken = (headers: Record<string, string>) =>
        fetch(`${courier.url}/v1/instances/heartbeat`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ group, id: 'by-secret', url: a.origin, status: 'active' }),
        });
      const wrong = await withoutToken({ 'Courier-Registration-Secret': 'not-the-secret-0123456789' });
      assert.equal(wrong.status, 401);
      assert.equal(typeof ((await wrong.json()) as { error: unknown }).error, 'string');
      assert.equal((await withoutToken({})).status, 401, 'neither token nor secret');
      assert.deepEqual(await api.instancesOf(group), [], 'a refused heartbeat registers nothing');

      const accepted = await withoutToken({ 'Courier-Registration-Secret': secret });
      assert.equal(accepted.status, 200);
      assert.deepEqual((await api.instancesOf(group)).map((view) => view.id), ['by-secret']);

      for (const path of [`/v1/instance-groups/${group}`, '/v1/instance-groups']) {
        const text = await (await courier.api(path)).text();
        assert.ok(text.includes(group), `${path} shows the group`);
        assert.ok(!text.includes(hash) && !text.includes(secret), `${path} never shows the secret or its hash`);
        assert.ok(!text.includes('registrationSecretHash'));
      }
    });

    it('rejects bad heartbeats with 400 naming the field, and registers nothing', async () => {
      const a = await instance();
      const group = groupName('bad-input');
      await api.register(group, 'good', a);
      const cases: { body: Record<string, unknown>; field: string }[] = [
        { body: { group, id: 'no-url', status: 'active' }, field: 'url' },
        { body: { group, id: 'ftp', url: 'ftp://127.0.0.1/files', status: 'active' }, field: 'url' },
        { body: { group: 'bad!group', id: 'bad-group', url: a.origin }, field: 'group' },
        { body: { group, id: 'negative', url: a.origin, weight: -1 }, field: 'weight' },
        { body: { group, id: 'unknown-field', url: a.origin, colour: 'blue' }, field: 'colour' },
      ];
      for (const { body, field } of cases) {
        const response = await api.heartbeat(body);
        assert.equal(response.status, 400, `${JSON.stringify(body)} is refused`);
        const { error } = (await response.json()) as { error: string };
        assert.ok(error.includes(field), `error "${error}" names ${field}`);
      }
      const ids = (await api.instancesOf()).map((view) => view.id);
      for (const { body } of cases) assert.ok(!ids.includes(String(body.id)), `${String(body.id)} was not registered`);
      assert.deepEqual((await api.instancesOf(group)).map((view) => view.id), ['good']);
    });

    it('deregisters an instance, and answers 404 the second time', async () => {
      const a = await instance();
      const group = groupName('dereg');
      await api.register(group, 'leaving', a);
      await api.register(group, 'staying', a);
      assert.equal((await api.deregister(group, 'leaving')).status, 200);
      assert.deepEqual((await api.instancesOf(group)).map((view) => view.id), ['staying']);
      const again = await api.deregister(group, 'leaving');
      assert.equal(again.status, 404);
      assert.ok(((await again.json()) as { error: string }).error.includes('leaving'));
    });
  });

  describe('delivery', () => {
    it('delivers a group publish to exactly one instance at its URL + path, signed for that URL', async () => {
      const group = groupName('deliver');
      const nodes = await Promise.all([instance(), instance(), instance()]);
      for (const [index, node] of nodes.entries()) await api.register(group, `node-${index}`, node);
      const body = { task: 'download', file: 'ünïcode.bin', size: 42 };

      const published = (await courier.client.publishJSON({ url: `group:${group}${TASK_PATH}?x=1`, body })) as unknown as Published;
      assert.match(published.messageId, /^msg_/);
      await waitForTotal(nodes, 1);

      const receiver = nodes.findIndex((node) => node.arrivals.length === 1);
      const arrival = nodes[receiver]!.arrivals[0]!;
      assert.equal(arrival.path, `${TASK_PATH}?x=1`);
      assert.equal(arrival.body.toString('utf8'), JSON.stringify(body));
      assert.equal(arrival.headers['content-type'], 'application/json');
      assert.equal(arrival.headers['courier-instance-id'], `node-${receiver}`);
      assert.equal(messageIdOf(arrival), published.messageId);
      const verify = (url: string) =>
        courier.receiver().verify({ signature: String(arrival.headers['upstash-signature']), body: arrival.body.toString('utf8'), url });
      assert.equal(await verify(`${nodes[receiver]!.origin}${TASK_PATH}?x=1`), true);
      const other = nodes[(receiver + 1) % nodes.length]!;
      await assert.rejects(verify(`${other.origin}${TASK_PATH}?x=1`), 'the signature names this instance, not another');
    });

    it('answers 404 naming the group when publishing to an unknown one', async () => {
      const missing = groupName('missing');
      await assert.rejects(courier.client.publishJSON({ url: `group:${missing}${TASK_PATH}`, body: {} }), (error: unknown) => {
        assert.ok(error instanceof QstashError);
        assert.equal(error.status, 404);
        assert.ok(error.message.includes(missing), `"${error.message}" names ${missing}`);
        return true;
      });
    });
  });

  describe('strategies', () => {
    it('round robin spreads 300 messages over 3 instances exactly evenly', async () => {
      const group = groupName('rr');
      const nodes = await Promise.all([instance(), instance(), instance()]);
      for (const [index, node] of nodes.entries()) await api.register(group, `rr-${index}`, node);
      const ids = await api.publishMany(group, 300);
      await waitForTotal(nodes, 300);
      assert.deepEqual(nodes.map((node) => node.arrivals.length), [100, 100, 100]);
      const delivered = nodes.flatMap((node) => idsOf(node.arrivals));
      assert.deepEqual(new Set(delivered), new Set(ids), 'every message delivered once');
    });

    it('weighted round robin 3:1 holds within 5 % over 4,000 deliveries', async () => {
      const group = groupName('wrr');
      await api.saveGroup(group, { strategy: 'weighted-round-robin' });
      const heavy = await instance();
      const light = await instance();
      await api.register(group, 'heavy', heavy, { weight: 3 });
      await api.register(group, 'light', light, { weight: 1 });
      assert.deepEqual((await api.instancesOf(group)).map((view) => [view.id, view.weight]), [['heavy', 3], ['light', 1]]);

      await api.publishMany(group, 4_000);
      await waitForTotal([heavy, light], 4_000, 30_000);
      const share = heavy.arrivals.length / 4_000;
      assert.ok(Math.abs(share - 0.75) <= 0.75 * 0.05, `heavy got ${heavy.arrivals.length} of 4000 (${(share * 100).toFixed(1)} %)`);
    });

    it('sends a message asking for a capability only to instances declaring it, and fails it with 503 when none does', async () => {
      const group = groupName('capability');
      const gpu = await instance();
      const cpu = await instance();
      await api.register(group, 'gpu-node', gpu, { capabilities: ['gpu', 'ssd'] });
      await api.register(group, 'cpu-node', cpu);

      for (let i = 0; i < 4; i++) await api.publishRaw(group, { 'Courier-Capability': 'gpu' });
      await waitForTotal([gpu, cpu], 4);
      assert.equal(gpu.arrivals.length, 4, 'every gpu message went to the gpu instance');

      const messageId = await api.publishRaw(group, { 'Courier-Capability': 'tpu', 'Upstash-Retries': '0' });
      const logs = await api.waitForState(messageId, 'FAILED');
      assertNoInstanceError(logs, 'capability "tpu"');
      assert.equal(gpu.arrivals.length + cpu.arrivals.length, 4, 'nothing was sent for the tpu message');
    });

    it('sends everything to priority 0 while it is live, and fails over to priority 1 when it leaves', async () => {
      const group = groupName('tiers');
      const primary = await instance();
      const backup = await instance();
      await api.register(group, 'primary', primary, { priority: 0 });
      await api.register(group, 'backup', backup, { priority: 1 });

      await api.publishMany(group, 6);
      await waitForTotal([primary, backup], 6);
      assert.equal(primary.arrivals.length, 6);

      assert.equal((await api.deregister(group, 'primary')).status, 200);
      await api.publishMany(group, 6);
      await waitForTotal([primary, backup], 12);
      assert.equal(backup.arrivals.length, 6, 'the next tier takes over once the first is empty');
      assert.equal(primary.arrivals.length, 6);
    });

    it('gives a draining instance no new deliveries', async () => {
      const group = groupName('draining');
      const draining = await instance();
      const active = await instance();
      await api.register(group, 'draining', draining);
      await api.register(group, 'active', active);
      await api.register(group, 'draining', draining, { status: 'draining' });
      const states = Object.fromEntries((await api.instancesOf(group)).map((view) => [view.id, view.state]));
      assert.deepEqual(states, { active: 'healthy', draining: 'draining' });

      await api.publishMany(group, 6);
      await waitForTotal([draining, active], 6);
      assert.equal(active.arrivals.length, 6);
      assert.equal(draining.arrivals.length, 0);
    });
  });

  describe('health', () => {
    it('retries a failed attempt on another instance: every message ends up delivered by the healthy one', async () => {
      const group = groupName('retry');
      const failing = await instance(() => ({ status: 500, body: 'broken' }));
      const healthy = await instance();
      await api.register(group, 'failing', failing);
      await api.register(group, 'healthy', healthy);

      // Round robin alone does not steer a retry away from the instance it just failed on; the default
      // outlier detection (5 consecutive failures) ejects the failing one before any message spends all 4 attempts there.
      const ids = await api.publishMany(group, 8, { retries: 3, retryDelay: '100' });
      await eventually(() => (healthy.arrivals.length >= ids.length ? true : undefined), 10_000, 'every message at the healthy instance');
      await sleep(200);
      assert.ok(failing.arrivals.length > 0, 'round robin sent first attempts to the failing instance too');
      assert.deepEqual(idsOf(healthy.arrivals).sort(), ids.slice().sort(), 'each message delivered once by the healthy instance');
      for (const arrival of healthy.arrivals) assert.equal(arrival.headers['courier-instance-id'], 'healthy');
      for (const id of new Set(idsOf(failing.arrivals))) assert.ok(ids.includes(id));

      for (const id of ids) assert.ok((await api.waitForState(id, 'DELIVERED')).every((entry) => entry.state !== 'FAILED'));
      const { messages } = await courier.client.dlq.listMessages();
      assert.ok(!messages.some((message) => ids.includes(message.messageId)), 'nothing dead-lettered');
    });

    it('ejects an instance after consecutive failures, sends it nothing while ejected, and re-admits it afterwards', async () => {
      const group = groupName('eject');
      // Two seconds leaves room to publish and deliver during the ejection on a slow store, and is still a short wait.
      await api.saveGroup(group, { outlier: { consecutiveFailures: 2, baseEjectionSeconds: 2 } });
      const flaky = await instance(() => ({ status: 500 }));
      const steady = await instance();
      await api.register(group, 'flaky', flaky);
      await api.register(group, 'steady', steady);

      const first = await api.publishMany(group, 4, { retries: 3, retryDelay: '100' });
      const ejected = await eventually(
        async () => (await api.instancesOf(group)).find((view) => view.id === 'flaky' && view.state === 'ejected'),
        10_000,
        'flaky reported ejected',
      );
      const ejectedUntil = ejected.health.ejectedUntil;
      assert.ok(ejectedUntil !== undefined && ejectedUntil > Date.now(), 'the ejection has an end in the future');
      assert.equal(ejected.health.ejections, 1);
      await eventually(() => (steady.arrivals.length >= first.length ? true : undefined), 10_000, 'the first messages at steady');
      // Two failures eject it; an attempt already on its way when the second failed may add one more.
      const failures = flaky.arrivals.length;
      assert.ok(failures >= 2 && failures <= 3, `flaky failed ${failures} attempts before its ejection`);

      const during = await api.publishMany(group, 6);
      await eventually(() => (steady.arrivals.length >= first.length + during.length ? true : undefined), 5_000, 'messages during the ejection');
      const lastDuring = Math.max(...steady.arrivals.map((arrival) => arrival.at));
      assert.ok(lastDuring < ejectedUntil, 'those deliveries happened while it was ejected');
      assert.equal(flaky.arrivals.length, failures, 'an ejected instance receives nothing');

      flaky.script = ok;
      await sleep(Math.max(0, ejectedUntil - Date.now() + 50));
      const afterwards = await api.publishMany(group, 6);
      await waitForTotal([flaky, steady], failures + first.length + during.length + afterwards.length);
      assert.equal(flaky.arrivals.length - failures, 3, 're-admitted, it takes its round-robin share again');
      const view = (await api.instancesOf(group)).find((candidate) => candidate.id === 'flaky');
      assert.equal(view?.state, 'healthy');
    });
  });
});

/**
 * With no live instance the attempt fails with the seed's Retry-After of 60 s,
 * which the retry policy honours; a clock the test can step stands in for
 * that minute.
 */
describe('instance groups without a live instance', () => {
  let courier: TestCourier;
  let clock: SteppedClock;
  const servers: Destination[] = [];
  const api = apiOf(() => courier);

  async function instance(): Promise<Destination> {
    const started = await startDestination(ok);
    servers.push(started);
    return started;
  }

  before(async () => {
    clock = new SteppedClock();
    courier = await startTestCourier({}, { clock });
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.close()));
    await courier.stop();
  });

  /** Publishes, checks the attempt failed unsent with 503 and a retry a minute out, then lets `revive` bring an instance back. */
  async function failsThenDelivers(group: string, unreachable: Destination, revive: () => Promise<Destination>): Promise<void> {
    const { messageId } = await courier.client.publishJSON({ url: `group:${group}${TASK_PATH}`, body: { n: 1 }, retries: 2 });
    const logs = await api.waitForState(messageId, 'RETRY');
    const error = assertNoInstanceError(logs, 'no live instance');
    const retry = logs.find((entry) => entry.state === 'RETRY')!;
    assert.ok(
      (retry.nextDeliveryTime ?? 0) - error.time >= (NO_RETRY_AFTER_SECONDS - 1) * 1000,
      'the retry waits for the Retry-After of the 503',
    );
    assert.equal(unreachable.arrivals.length, 0, 'nothing was sent');

    // Past the Retry-After first, then the instance comes back: live from then on, not aged by the step.
    clock.advance((NO_RETRY_AFTER_SECONDS + 1) * 1000);
    const receiver = await revive();
    const [arrival] = await receiver.waitFor(1, 10_000);
    assert.equal(messageIdOf(arrival!), messageId);
    assert.equal(arrival!.path, TASK_PATH);
    const final = await api.waitForState(messageId, 'DELIVERED');
    assert.ok(!final.some((entry) => entry.state === 'FAILED'));
  }

  it('fails attempts while the only instance has deregistered, and delivers once one registers', async () => {
    const group = groupName('empty');
    const gone = await instance();
    await api.register(group, 'gone', gone);
    assert.equal((await api.deregister(group, 'gone')).status, 200);
    await failsThenDelivers(group, gone, async () => {
      const fresh = await instance();
      await api.register(group, 'fresh', fresh);
      return fresh;
    });
  });

  it('fails attempts while the only instance is stale, and delivers once it heartbeats again', async () => {
    const group = groupName('stale');
    await api.saveGroup(group, { staleAfterSeconds: 30 });
    const sleepy = await instance();
    await api.register(group, 'sleepy', sleepy);
    clock.advance(31_000);
    assert.deepEqual((await api.instancesOf(group)).map((view) => view.state), ['stale']);
    await failsThenDelivers(group, sleepy, async () => {
      await api.register(group, 'sleepy', sleepy);
      return sleepy;
    });
  });
});
