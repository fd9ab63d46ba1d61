/**
 * Several Courier nodes on one shared store (issue 4). Three `src/main.ts`
 * processes on three ports share one PostgreSQL schema or one Redis key
 * prefix, one token, and the signing keys that the first node generated and
 * stored. The cases check that:
 * - queue order and parallelism hold across nodes;
 * - flow-control limits hold across nodes;
 * - each schedule tick fires exactly once;
 * - instance groups (issue 5) work across nodes: an instance registered, an
 *   ejection decided or a deregistration made through one node reaches the
 *   others through the store (each re-reads the registry every
 *   COURIER_REGISTRY_REFRESH, 200 ms here), and round robin stays fair when
 *   every node balances on its own;
 * - after a node is SIGKILLed mid-run and never restarted, nothing
 *   acknowledged is lost: its leases (COURIER_LEASE=3s here) run out, and the
 *   surviving nodes deliver what it held.
 *
 * The same cases run once per shared store, each on a fresh schema or key
 * prefix. Both stores run at the same time, so the file waits for one real
 * minute boundary, not two. A store that is not reachable skips with one
 * line, but never in CI.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { Client, Receiver } from '@upstash/qstash';
import { Agent, request } from 'undici';
import { eventually, holding, ok, sleep, startDestination, type Arrival, type Concurrency, type Destination, type Script } from '../helpers/destination.js';
import { freePort, killChildren, spawnServingCourier, stopMain, type ServingCourier } from '../helpers/processes.js';
import { freshStore, POSTGRES_URL, REDIS_URL, unavailable, type FreshStore } from '../helpers/services.js';

const TOKEN = 'multi-node-token-0123456789';
/** Short, so a killed node's leases run out within seconds rather than the default minute. */
const LEASE = '3s';
const NODE_NAMES = ['A', 'B', 'C'] as const;
const MINUTE = 60_000;

/** The kill case: how many messages are published, and how. */
const TOTAL = 5000;
const BLOCK = 50;
const PUBLISH_CONCURRENCY = 16;
/** The victim is killed when this many deliveries have arrived, so work is in flight at the kill. */
const KILL_AFTER_ARRIVALS = 1500;
/** How long the survivors get to deliver every acknowledged message once publishing and the kill are over. */
const DELIVERY_DEADLINE_MS = 60_000;

const SCHEDULES = 20;
/** How long after the tick the count is taken: enough time for a second node to fire the same tick by mistake. */
const AFTER_TICK_MS = 8_000;

/** How long to keep watching for a late extra arrival once the expected ones are in. */
const QUIET_MS = 500;

/**
 * How often each node re-reads the instance registry from the store. Five
 * times the default, so that what one node writes reaches the others well
 * within the instance-group cases' waits.
 */
const REGISTRY_REFRESH = '0.2s';
/** The instance-group cases give every node this long to see a change made through another. */
const LEARN_TIMEOUT_MS = 5_000;
const TASK_PATH = '/api/tasks/download';

interface SharedStore {
  kind: 'postgres' | 'redis';
  service: 'PostgreSQL' | 'Redis';
  url: string;
}

const SHARED_STORES: SharedStore[] = [
  { kind: 'postgres', service: 'PostgreSQL', url: POSTGRES_URL },
  { kind: 'redis', service: 'Redis', url: REDIS_URL },
];

// Decided before the suites are declared: a suite cannot skip itself from a hook.
const skipReasons = new Map<SharedStore['kind'], string | undefined>();
for (const store of SHARED_STORES) skipReasons.set(store.kind, await unavailable(store.service, store.url));

after(killChildren);

// ---------------------------------------------------------------------------
// Nodes.

interface CourierNode {
  name: (typeof NODE_NAMES)[number];
  courier: ServingCourier;
  /** The official SDK, pointed at this node. */
  client: Client;
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** SIGKILL; resolves with the time the signal was sent, once the process is gone. */
async function kill9(node: CourierNode): Promise<number> {
  const at = Date.now();
  node.courier.child.kill('SIGKILL');
  await node.courier.exited;
  assert.equal(node.courier.child.signalCode, 'SIGKILL');
  return at;
}

function isRunning(node: CourierNode): boolean {
  return node.courier.child.exitCode === null && node.courier.child.signalCode === null;
}

async function api(node: CourierNode, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${node.courier.url}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } });
}

// ---------------------------------------------------------------------------
// Instance groups, through a chosen node.

/** What GET /v1/instances shows of one instance, as far as these cases read it (gateway/instance-service.ts). */
interface InstanceView {
  id: string;
  state: 'healthy' | 'ejected' | 'unhealthy' | 'draining' | 'stale';
  health: { ejections: number; ejectedUntil?: number };
}

const messageIdOf = (arrival: Arrival) => String(arrival.headers['upstash-message-id']);

async function registerThrough(node: CourierNode, group: string, id: string, instance: Destination): Promise<void> {
  const res = await api(node, '/v1/instances/heartbeat', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ group, id, url: instance.origin, hostname: `${id}.local`, status: 'active' }),
  });
  assert.equal(res.status, 200, `heartbeat of ${id} through node ${node.name}: ${await res.text()}`);
}

/** The group's instances as `node` sees them now; undefined while it does not know the group. */
async function instancesSeenBy(node: CourierNode, group: string): Promise<InstanceView[] | undefined> {
  const res = await api(node, `/v1/instances?group=${group}`);
  if (res.status === 404) {
    await res.arrayBuffer();
    return undefined;
  }
  assert.equal(res.status, 200, `GET /v1/instances?group=${group} on node ${node.name}`);
  return (await res.json()) as InstanceView[];
}

const statesOf = (views: readonly InstanceView[]) => Object.fromEntries(views.map((view) => [view.id, view.state]));

/** Waits until every one of `nodes` sees the group's instances in exactly `states`; resolves with how long that took. */
async function untilSeenBy(nodes: readonly CourierNode[], group: string, states: Record<string, InstanceView['state']>): Promise<number> {
  const started = Date.now();
  await eventually(
    async () => {
      const views = await Promise.all(nodes.map((node) => instancesSeenBy(node, group)));
      return views.every((view) => view !== undefined && isDeepStrictEqual(statesOf(view), states)) ? true : undefined;
    },
    LEARN_TIMEOUT_MS,
    `nodes ${nodes.map((node) => node.name).join(', ')} to see group ${group} as ${JSON.stringify(states)}`,
  );
  return Date.now() - started;
}

async function publishThrough(node: CourierNode, group: string, body: unknown, options: { retries?: number; retryDelay?: string } = {}): Promise<string> {
  const { messageId } = await node.client.publishJSON({ url: `group:${group}${TASK_PATH}`, body, ...options });
  return messageId;
}

/** `count` messages to the group in one batch through `node`. */
async function publishBatchThrough(node: CourierNode, group: string, count: number): Promise<string[]> {
  const batch = Array.from({ length: count }, (_, n) => ({ url: `group:${group}${TASK_PATH}`, body: { node: node.name, n } }));
  const results = (await node.client.batchJSON(batch)) as unknown as { messageId: string }[];
  return results.map((result) => result.messageId);
}

/** Waits until each of `ids` has arrived at one of `instances`, then watches a little longer, so that an extra arrival shows up too. */
async function settledAtGroup(instances: readonly Destination[], ids: readonly string[], timeoutMs = 15_000): Promise<Arrival[]> {
  const arrivals = () => instances.flatMap((instance) => instance.arrivals);
  await eventually(
    () => {
      const seen = new Set(arrivals().map(messageIdOf));
      return ids.every((id) => seen.has(id)) ? true : undefined;
    },
    timeoutMs,
    `${ids.length} messages at the group's instances`,
  );
  await sleep(QUIET_MS);
  return arrivals();
}

/** Whether `node` logged that it ejected instance `id` of `group` itself (balancer.ts logs each ejection it decides at warn level). */
function ejectedOnItsOwn(node: CourierNode, group: string, id: string): boolean {
  return node.courier
    .output()
    .split('\n')
    .some((line) => line.includes('"msg":"instance ejected after failed attempts"') && line.includes(`"group":"${group}"`) && line.includes(`"instance":"${id}"`));
}

// ---------------------------------------------------------------------------
// Destinations.

const bodyOf = (arrival: Arrival) => arrival.body.toString('utf8');

/** Waits until `count` arrivals are in, then watches a little longer, so that an extra arrival shows up too. */
async function settledArrivals(destination: Destination, count: number, timeoutMs: number): Promise<Arrival[]> {
  await destination.waitFor(count, timeoutMs);
  await sleep(QUIET_MS);
  return destination.arrivals;
}

// ---------------------------------------------------------------------------
// Publishing for the kill case: blocks of 50 numbered messages, every third
// block as 50 single publishes and the others as one batch. The tasks go to
// the nodes in turn. After the kill, the tasks for the victim fail to connect.
// They were never acknowledged, so nobody expects them.

type Task = { kind: 'single'; seq: number } | { kind: 'batch'; seqs: number[] };

function publishPlan(): Task[] {
  const tasks: Task[] = [];
  for (let block = 0; block < TOTAL / BLOCK; block++) {
    const seqs = Array.from({ length: BLOCK }, (_, i) => block * BLOCK + i);
    if (block % 3 === 0) tasks.push(...seqs.map((seq) => ({ kind: 'single' as const, seq })));
    else tasks.push({ kind: 'batch', seqs });
  }
  return tasks;
}

interface PublishOutcome {
  /** seq → the node that acknowledged it. */
  ackedBy: Map<number, CourierNode['name']>;
  /** Requests that got no HTTP answer: those to the victim once it was gone. */
  connectionErrors: number;
  /** HTTP answers other than 2xx: there should be none. */
  badStatuses: string[];
}

async function publishRoundRobin(nodes: CourierNode[], destinationUrl: string): Promise<PublishOutcome> {
  const outcome: PublishOutcome = { ackedBy: new Map(), connectionErrors: 0, badStatuses: [] };
  const agent = new Agent({ connections: PUBLISH_CONCURRENCY });
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  const tasks = publishPlan();
  let next = 0;

  async function send(task: Task, node: CourierNode): Promise<void> {
    const seqs = task.kind === 'single' ? [task.seq] : task.seqs;
    const body =
      task.kind === 'single'
        ? JSON.stringify({ seq: task.seq })
        : JSON.stringify(task.seqs.map((seq) => ({ destination: destinationUrl, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ seq }) })));
    const path = task.kind === 'single' ? `/v2/publish/${destinationUrl}` : '/v2/batch';
    const res = await request(`${node.courier.url}${path}`, { method: 'POST', headers, body, dispatcher: agent });
    const text = await res.body.text();
    if (res.statusCode >= 200 && res.statusCode < 300) for (const seq of seqs) outcome.ackedBy.set(seq, node.name);
    else outcome.badStatuses.push(`node ${node.name}: ${res.statusCode} ${text.slice(0, 200)}`);
  }

  async function worker(): Promise<void> {
    while (next < tasks.length) {
      const index = next++;
      try {
        await send(tasks[index]!, nodes[index % nodes.length]!);
      } catch {
        outcome.connectionErrors += 1;
      }
    }
  }

  await Promise.all(Array.from({ length: PUBLISH_CONCURRENCY }, worker));
  await agent.destroy();
  return outcome;
}

interface Recorded {
  seq: number;
  messageId: string;
  at: number;
  arrival: Arrival;
}

function recorded(destination: Destination): Recorded[] {
  return destination.arrivals.map((arrival) => ({
    seq: (JSON.parse(bodyOf(arrival)) as { seq: number }).seq,
    messageId: String(arrival.headers['upstash-message-id']),
    at: arrival.at,
    arrival,
  }));
}

// ---------------------------------------------------------------------------
// One suite per shared store, the same cases.

function multiNodeSuite(store: SharedStore): void {
  describe(`three nodes on one ${store.service} store`, { concurrency: 1, skip: skipReasons.get(store.kind) }, () => {
    let shared: FreshStore | undefined;
    const nodes: CourierNode[] = [];
    const dataDirs: string[] = [];
    const destinations: Destination[] = [];
    /** Created in `before`, so the wait for the minute boundary overlaps the cases that come before the schedule case. */
    let schedules: { ids: string[]; tick: number; destination: Destination } | undefined;

    async function destination(script: Script): Promise<Destination> {
      const started = await startDestination(script);
      destinations.push(started);
      return started;
    }

    async function startNode(name: CourierNode['name'], port: number, location: string): Promise<CourierNode> {
      const dataDir = mkdtempSync(join(tmpdir(), `courier-node-${name}-`));
      dataDirs.push(dataDir);
      const courier = await spawnServingCourier(dataDir, port, TOKEN, {
        COURIER_STORE: location,
        COURIER_LEASE: LEASE,
        COURIER_REGISTRY_REFRESH: REGISTRY_REFRESH,
      });
      const node: CourierNode = { name, courier, client: new Client({ baseUrl: courier.url, token: TOKEN, retry: false }) };
      nodes.push(node);
      return node;
    }

    /** Runs a case; when it fails, adds each node's output tail, which usually names the cause. */
    const withNodeOutput =
      (body: (t: TestContext) => Promise<void>) =>
      async (t: TestContext): Promise<void> => {
        try {
          await body(t);
        } catch (error) {
          for (const node of nodes) t.diagnostic(`node ${node.name} (${isRunning(node) ? 'running' : 'gone'}) output tail:\n${node.courier.output().slice(-4000)}`);
          throw error;
        }
      };

    before(
      async () => {
        shared = await freshStore(store.kind);
        const location = shared.location!;
        const ports = await distinctFreePorts(NODE_NAMES.length);
        // A starts alone: it applies the schema and generates and stores the signing keys that B and C then read.
        await startNode('A', ports[0]!, location);
        await Promise.all([startNode('B', ports[1]!, location), startNode('C', ports[2]!, location)]);
        nodes.sort((x, y) => x.name.localeCompare(y.name));

        // Creating the schedules straddling a minute boundary would give them different first ticks.
        const intoMinute = Date.now() % MINUTE;
        if (intoMinute > MINUTE - 10_000) await sleep(MINUTE - intoMinute + 200);
        const scheduleDestination = await destination(() => ({ status: 200, body: 'ok' }));
        const ids: string[] = [];
        for (let i = 0; i < SCHEDULES; i++) {
          const { scheduleId } = await nodes[0]!.client.schedules.create({
            destination: scheduleDestination.url(`/tick-${i}`),
            cron: '* * * * *',
            body: `schedule ${i}`,
          });
          ids.push(scheduleId);
        }
        // Their common first tick is read from the store, not assumed from how long creating them took.
        const firstTicks = new Set(
          await Promise.all(ids.map(async (id) => (await nodes[0]!.client.schedules.get(id)).nextScheduleTime)),
        );
        assert.equal(firstTicks.size, 1, `the schedules' first ticks: ${[...firstTicks].join(', ')}`);
        const [firstTick] = [...firstTicks];
        assert.ok(firstTick !== undefined && firstTick % MINUTE === 0);
        schedules = { ids, tick: firstTick, destination: scheduleDestination };
      },
      { timeout: 90_000 },
    );

    after(async () => {
      await Promise.all(nodes.map((node) => stopMain(node.courier)));
      await Promise.all(destinations.map((d) => d.close()));
      await shared?.drop();
      for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
    });

    it('serves the same signing keys from every node: the ones the first node generated', withNodeOutput(async () => {
      const keys = await Promise.all(
        nodes.map(async (node) => {
          const res = await api(node, '/v2/keys');
          assert.equal(res.status, 200, `GET /v2/keys on node ${node.name}`);
          return (await res.json()) as { current: string; next: string };
        }),
      );
      assert.ok(keys[0]!.current && keys[0]!.next, 'node A has both keys');
      assert.notEqual(keys[0]!.current, keys[0]!.next);
      assert.deepEqual(keys[1], keys[0], 'node B signs with node A’s keys');
      assert.deepEqual(keys[2], keys[0], 'node C signs with node A’s keys');
      // A prints the keys it generated; B and C found them in the store and generated none.
      assert.ok(nodes[0]!.courier.output().includes(`QSTASH_CURRENT_SIGNING_KEY=${keys[0]!.current}`), 'node A generated them');
      for (const node of nodes.slice(1)) assert.ok(!node.courier.output().includes('generated credentials'), `node ${node.name} generated none`);
    }));

    it(
      'keeps a parallelism-1 queue in strict FIFO order, one message at a time, when it is fed through all three nodes',
      { timeout: 90_000 },
      withNodeOutput(async (t) => {
        const counter: Concurrency = { current: 0, max: 0 };
        const d = await destination(holding(counter, 5));
        const queueName = 'fifo-across-nodes';
        await nodes[0]!.client.queue({ queueName }).upsert({ parallelism: 1 });
        const started = Date.now();
        // Each enqueue is acknowledged before the next one is sent, which fixes the order the queue must keep.
        for (let i = 0; i < 100; i++) {
          await nodes[i % nodes.length]!.client.queue({ queueName }).enqueue({ url: d.url('/fifo'), body: String(i) });
        }
        const arrivals = await settledArrivals(d, 100, 60_000);
        t.diagnostic(`100 messages enqueued and delivered in ${Date.now() - started - QUIET_MS} ms`);
        assert.deepEqual(
          arrivals.map(bodyOf),
          Array.from({ length: 100 }, (_, i) => String(i)),
          'arrivals in enqueue order, each once',
        );
        assert.equal(counter.max, 1, `never two in flight at once, saw ${counter.max}`);
      }),
    );

    it(
      'never has more than 3 messages of a parallelism-3 queue in flight across the nodes',
      { timeout: 90_000 },
      withNodeOutput(async () => {
        const counter: Concurrency = { current: 0, max: 0 };
        const d = await destination(holding(counter, 50));
        const queueName = 'parallel-across-nodes';
        await nodes[0]!.client.queue({ queueName }).upsert({ parallelism: 3 });
        await Promise.all(
          Array.from({ length: 60 }, (_, i) =>
            nodes[i % nodes.length]!.client.queue({ queueName }).enqueue({ url: d.url('/parallel'), body: String(i) }),
          ),
        );
        const arrivals = await settledArrivals(d, 60, 60_000);
        assert.equal(new Set(arrivals.map(bodyOf)).size, 60, 'every message arrived');
        assert.equal(arrivals.length, 60, 'each once');
        assert.ok(counter.max <= 3, `at most 3 in flight across the nodes, saw ${counter.max}`);
        assert.ok(counter.max >= 2, `the queue does run messages side by side, saw ${counter.max}`);
      }),
    );

    it(
      'never has more than a flow-control key’s parallelism in flight when its messages come through all three nodes',
      { timeout: 90_000 },
      withNodeOutput(async () => {
        const counter: Concurrency = { current: 0, max: 0 };
        const d = await destination(holding(counter, 50));
        const key = 'tenant:7@across-nodes';
        await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            nodes[i % nodes.length]!.client.publish({ url: d.url(`/flow-${i % 4}`), body: String(i), flowControl: { key, parallelism: 2 } }),
          ),
        );
        const arrivals = await settledArrivals(d, 40, 60_000);
        assert.equal(new Set(arrivals.map(bodyOf)).size, 40, 'every message arrived');
        assert.equal(arrivals.length, 40, 'each once');
        assert.ok(counter.max <= 2, `at most 2 in flight across the nodes, saw ${counter.max}`);
        assert.ok(counter.max >= 2, `the key does run 2 side by side, saw ${counter.max}`);
      }),
    );

    // The instance-group cases come before the schedule case: they run inside its wait for the minute boundary.
    it(
      'delivers to an instance registered through node A the messages published through nodes B and C, once they have read it from the store',
      { timeout: 30_000 },
      withNodeOutput(async (t) => {
        const group = 'registered-through-a';
        const instance = await destination(ok);
        // A node accepts a publish only to a group it knows, so B refusing this one first shows that B learns the group
        // from the store. Sent raw: the SDK would also print the 404 to the console.
        const early = await api(nodes[1]!, `/v2/publish/group:${group}${TASK_PATH}`, { method: 'POST', body: '{}' });
        assert.equal(early.status, 404, 'node B knows no such group yet');
        assert.ok(((await early.json()) as { error: string }).error.includes(group), 'the 404 names the group');

        await registerThrough(nodes[0]!, group, 'only', instance);
        const learnedMs = await untilSeenBy(nodes.slice(1), group, { only: 'healthy' });
        t.diagnostic(`nodes B and C listed the instance ${learnedMs} ms after node A registered it`);

        const ids: string[] = [];
        for (const node of nodes.slice(1)) for (let n = 0; n < 5; n++) ids.push(await publishThrough(node, group, { node: node.name, n }));
        const arrivals = await settledAtGroup([instance], ids);
        assert.deepEqual(arrivals.map(messageIdOf).sort(), ids.slice().sort(), 'each message published through B and C arrived, once');
        for (const arrival of arrivals) {
          assert.equal(arrival.path, TASK_PATH);
          assert.equal(arrival.headers['courier-instance-id'], 'only');
        }
      }),
    );

    it(
      'spreads 300 round-robin messages published through all three nodes over 3 instances, 100 ± 2 each, each delivered once',
      { timeout: 60_000 },
      withNodeOutput(async (t) => {
        const group = 'round-robin-across-nodes';
        const perNode = 100;
        const instances = await Promise.all(nodes.map(() => destination(ok)));
        const ids = instances.map((_, i) => `instance-${i}`);
        await Promise.all(instances.map((instance, i) => registerThrough(nodes[i]!, group, ids[i]!, instance)));
        // A node that has not seen all three yet would balance over a smaller set.
        await untilSeenBy(nodes, group, Object.fromEntries(ids.map((id) => [id, 'healthy'])));

        const published = (await Promise.all(nodes.map((node) => publishBatchThrough(node, group, perNode)))).flat();
        assert.equal(new Set(published).size, nodes.length * perNode);
        const arrivals = await settledAtGroup(instances, published, 30_000);
        assert.deepEqual(arrivals.map(messageIdOf).sort(), published.slice().sort(), 'every message delivered exactly once');
        for (const [i, instance] of instances.entries()) {
          for (const arrival of instance.arrivals) assert.equal(arrival.headers['courier-instance-id'], ids[i]);
        }

        // Each node keeps its own round-robin counter (strategies.ts), so each node's deliveries split
        // over the three exactly: n of them give each instance ⌊n/3⌋ or ⌈n/3⌉, at most ⅔ off n/3.
        // Summed over three nodes, whichever node delivered what, an instance is at most 2 off a third
        // of the total (reached when every node's extra message goes to the same instance, as its random
        // starting offset allows). The bound is tight, so one node skewing its own split would break it.
        const fairShare = published.length / instances.length;
        const shares = instances.map((instance) => instance.arrivals.length);
        t.diagnostic(`shares: ${shares.join(' / ')} of ${published.length}`);
        for (const [i, share] of shares.entries()) {
          assert.ok(Math.abs(share - fairShare) <= 2, `${ids[i]} got ${share}, not within ${fairShare} ± 2 (shares ${shares.join(' / ')})`);
        }
      }),
    );

    it(
      'honours on every node an ejection that one node decided, and sends the ejected instance nothing from any node',
      { timeout: 60_000 },
      withNodeOutput(async (t) => {
        const group = 'ejection-across-nodes';
        const baseEjectionSeconds = 5;
        const saved = await api(nodes[2]!, `/v1/instance-groups/${group}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ outlier: { consecutiveFailures: 2, baseEjectionSeconds } }),
        });
        assert.equal(saved.status, 200, `PUT the group through node C: ${await saved.text()}`);
        const flaky = await destination(() => ({ status: 500, body: 'broken' }));
        const steady = await Promise.all([destination(ok), destination(ok)]);
        await registerThrough(nodes[0]!, group, 'flaky', flaky);
        await registerThrough(nodes[1]!, group, 'steady-1', steady[0]);
        await registerThrough(nodes[2]!, group, 'steady-2', steady[1]);
        await untilSeenBy(nodes, group, { flaky: 'healthy', 'steady-1': 'healthy', 'steady-2': 'healthy' });
        // Every node must also hold the outlier settings: one that still had the defaults would wait for 5 failures.
        await eventually(
          async () => {
            const views = await Promise.all(nodes.map((node) => api(node, `/v1/instance-groups/${group}`)));
            const outliers = await Promise.all(views.map(async (res) => ((await res.json()) as { outlier?: { consecutiveFailures: number } }).outlier));
            return outliers.every((outlier) => outlier?.consecutiveFailures === 2) ? true : undefined;
          },
          LEARN_TIMEOUT_MS,
          'every node to hold the outlier settings',
        );

        // One message at a time, through the nodes in turn, until a node ejects flaky: few failures
        // are in flight when that happens, so the other nodes are left to learn it from the store.
        const deciders = () => nodes.filter((node) => ejectedOnItsOwn(node, group, 'flaky'));
        const beforeEjection: string[] = [];
        for (let n = 0; deciders().length === 0; n++) {
          assert.ok(n < 30, `no node ejected flaky after ${n} messages (${flaky.arrivals.length} failed attempts)`);
          beforeEjection.push(await publishThrough(nodes[n % nodes.length]!, group, { n }, { retries: 3, retryDelay: '100' }));
          const last = beforeEjection.at(-1);
          await eventually(
            () => (deciders().length > 0 || steady.some((instance) => instance.arrivals.some((arrival) => messageIdOf(arrival) === last)) ? true : undefined),
            10_000,
            `message ${n} at a steady instance, or an ejection`,
          );
        }
        t.diagnostic(`node(s) ${deciders().map((node) => node.name).join(', ')} ejected flaky after ${flaky.arrivals.length} failed attempts in all`);
        const learnedMs = await untilSeenBy(nodes, group, { flaky: 'ejected', 'steady-1': 'healthy', 'steady-2': 'healthy' });
        // Counted once every node reports it: a retry that failed on another node before it had heard could still have made it decide too.
        const learners = nodes.filter((node) => !deciders().includes(node));
        t.diagnostic(`every node reported it ejected within ${learnedMs} ms; node(s) ${learners.map((node) => node.name).join(', ')} learned it from the store`);
        assert.ok(learners.length > 0, 'at least one node reports an ejection it did not decide itself');
        const seen = (await instancesSeenBy(learners[0]!, group))!.find((view) => view.id === 'flaky')!;
        const ejectedUntil = seen.health.ejectedUntil;
        assert.ok(ejectedUntil !== undefined && ejectedUntil > Date.now(), 'the ejection has an end in the future');
        assert.equal(seen.health.ejections, 1);

        const during = (await Promise.all(nodes.map((node) => publishBatchThrough(node, group, 4)))).flat();
        const arrivalsDuring = (await settledAtGroup(steady, [...beforeEjection, ...during])).filter((arrival) => during.includes(messageIdOf(arrival)));
        assert.ok(Math.max(...arrivalsDuring.map((arrival) => arrival.at)) < ejectedUntil, 'those deliveries happened while flaky was ejected');
        const atFlaky = new Set(flaky.arrivals.map(messageIdOf));
        assert.deepEqual(during.filter((id) => atFlaky.has(id)), [], 'no message published during the ejection reached flaky, through any node');
        assert.deepEqual(arrivalsDuring.map(messageIdOf).sort(), during.slice().sort(), 'the steady instances took each once');
      }),
    );

    it(
      'stops deliveries from every node to an instance deregistered through one node',
      { timeout: 30_000 },
      withNodeOutput(async (t) => {
        const group = 'deregistered-across-nodes';
        const leaving = await destination(ok);
        const staying = await destination(ok);
        await registerThrough(nodes[1]!, group, 'leaving', leaving);
        await registerThrough(nodes[1]!, group, 'staying', staying);
        await untilSeenBy(nodes, group, { leaving: 'healthy', staying: 'healthy' });
        const whileRegistered = (await Promise.all(nodes.map((node) => publishBatchThrough(node, group, 4)))).flat();
        await settledAtGroup([leaving, staying], whileRegistered);
        assert.ok(leaving.arrivals.length > 0, 'while registered it takes a share');

        const removed = await api(nodes[2]!, `/v1/instances/${group}/leaving`, { method: 'DELETE' });
        assert.equal(removed.status, 200, `DELETE through node C: ${await removed.text()}`);
        const learnedMs = await untilSeenBy(nodes, group, { staying: 'healthy' });
        t.diagnostic(`every node dropped it within ${learnedMs} ms of node C deregistering it`);

        const leavingBefore = leaving.arrivals.length;
        const afterwards = (await Promise.all(nodes.map((node) => publishBatchThrough(node, group, 4)))).flat();
        await settledAtGroup([staying], afterwards);
        assert.equal(leaving.arrivals.length, leavingBefore, 'nothing more reached the deregistered instance');
        const atStaying = staying.arrivals.map(messageIdOf).filter((id) => afterwards.includes(id));
        assert.deepEqual(atStaying.sort(), afterwards.slice().sort(), 'the instance that stayed took each message once');
      }),
    );

    it(
      `fires each tick of ${SCHEDULES} "* * * * *" schedules exactly once across three nodes (slow: waits for a real minute boundary)`,
      { timeout: 120_000 },
      withNodeOutput(async (t) => {
        const { ids, tick, destination: d } = schedules!;
        // The count is taken well after the tick and well before the next one.
        await eventually(
          () => {
            const seen = new Set(d.arrivals.map((a) => a.headers['upstash-schedule-id']));
            return ids.every((id) => seen.has(id)) ? true : undefined;
          },
          Math.max(0, tick + 30_000 - Date.now()),
          `a delivery for each of the ${SCHEDULES} schedules`,
        );
        await sleep(Math.max(2_000, tick + AFTER_TICK_MS - Date.now()));
        // The next tick's arrivals are left out by their arrival time, not by asserting when we counted.
        const arrivals = d.arrivals.filter((a) => a.at < tick + MINUTE);
        t.diagnostic(`counted ${Date.now() - tick} ms after the tick; last arrival ${Math.max(...arrivals.map((a) => a.at)) - tick} ms after it`);

        const messagesBySchedule = new Map<string, Set<string>>();
        for (const arrival of arrivals) {
          const scheduleId = String(arrival.headers['upstash-schedule-id']);
          assert.ok(ids.includes(scheduleId), `an arrival for an unknown schedule ${scheduleId}`);
          assert.ok(arrival.at >= tick, `schedule ${scheduleId} fired ${tick - arrival.at} ms before its tick`);
          const messages = messagesBySchedule.get(scheduleId) ?? new Set<string>();
          messages.add(String(arrival.headers['upstash-message-id']));
          messagesBySchedule.set(scheduleId, messages);
        }
        const fired = ids.map((id) => messagesBySchedule.get(id)?.size ?? 0);
        assert.deepEqual(fired, ids.map(() => 1), 'one message per schedule for this tick (more means several nodes fired it)');
        assert.equal(arrivals.length, SCHEDULES, 'and each delivered once');

        // The store's own record agrees: one cron run per schedule, whichever node is asked.
        const runs = await Promise.all(
          ids.map(async (id, i) => {
            const res = await api(nodes[i % nodes.length]!, `/v2/schedules/${id}/runs`);
            assert.equal(res.status, 200);
            return ((await res.json()) as { runs: { trigger: string }[] }).runs;
          }),
        );
        assert.deepEqual(
          runs.map((list) => list.filter((run) => run.trigger === 'cron').length),
          ids.map(() => 1),
          'one cron run recorded per schedule',
        );
        await Promise.all(ids.map((id) => nodes[2]!.client.schedules.delete(id)));
      }),
    );

    // Last: it leaves two nodes.
    it(
      `delivers every acknowledged message of ${TOTAL} published through three nodes when one is SIGKILLed mid-run and not restarted`,
      { timeout: 180_000 },
      withNodeOutput(async (t) => {
        const victim = nodes[Math.floor(Math.random() * nodes.length)]!;
        let killing: Promise<number> | undefined;
        const seen = new Set<number>();
        const d = await destination((arrival, index) => {
          seen.add((JSON.parse(bodyOf(arrival)) as { seq: number }).seq);
          if (index + 1 === KILL_AFTER_ARRIVALS) killing = kill9(victim);
          return { status: 200, body: 'ok', delayMs: Math.floor(Math.random() * 11) };
        });
        const destinationUrl = d.url('/load');
        const started = Date.now();
        const outcome = await publishRoundRobin(nodes, destinationUrl);
        const publishedAfterMs = Date.now() - started;
        // Publishing may finish before the kill's arrival count; the kill then comes during delivery alone.
        await d.waitFor(KILL_AFTER_ARRIVALS, DELIVERY_DEADLINE_MS);
        const killedAt = await killing!;
        assert.deepEqual(outcome.badStatuses, []);

        const acked = [...outcome.ackedBy.keys()];
        const ackedByVictim = acked.filter((seq) => outcome.ackedBy.get(seq) === victim.name);
        const arrivedBeforeKill = new Set(recorded(d).filter((r) => r.at <= killedAt).map((r) => r.seq));
        const leftBehind = ackedByVictim.filter((seq) => !arrivedBeforeKill.has(seq));

        t.diagnostic(
          `node ${victim.name} killed at arrival ${KILL_AFTER_ARRIVALS}, ${killedAt - started} ms after publishing began ` +
            `(publishing took ${publishedAfterMs} ms; ${outcome.connectionErrors} publish requests failed to connect)`,
        );
        await eventually(
          () => (acked.every((seq) => seen.has(seq)) ? true : undefined),
          DELIVERY_DEADLINE_MS,
          'every acknowledged message to arrive',
        ).catch((error: unknown) => {
          const missingBy = new Map<string, number>();
          for (const seq of acked) if (!seen.has(seq)) missingBy.set(outcome.ackedBy.get(seq)!, (missingBy.get(outcome.ackedBy.get(seq)!) ?? 0) + 1);
          const detail = [...missingBy].map(([name, count]) => `${count} acknowledged by node ${name}`).join(', ');
          throw new Error(`${String(error)}: missing ${detail} (node ${victim.name} was killed)`);
        });
        const allArrivedAfterKillMs = Date.now() - killedAt;
        // The store as a whole drains: nothing stays leased to the dead node, not even work it stored but never acknowledged.
        const survivor = nodes.find((node) => node !== victim)!;
        await eventually(async () => {
          const report = (await (await fetch(`${survivor.courier.url}/health/detailed`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { backlog?: { pending: number; active: number } };
          return report.backlog && report.backlog.pending === 0 && report.backlog.active === 0 ? true : undefined;
        }, 30_000, `the store's backlog (seen by node ${survivor.name}) to drain`);

        const arrivals = recorded(d);
        const bySeq = new Map<number, Recorded[]>();
        for (const r of arrivals) {
          assert.ok(Number.isInteger(r.seq) && r.seq >= 0 && r.seq < TOTAL, `unexpected body seq ${r.seq}`);
          assert.match(r.messageId, /^msg_/);
          bySeq.set(r.seq, [...(bySeq.get(r.seq) ?? []), r]);
        }
        const missing = acked.filter((seq) => !bySeq.has(seq));
        assert.deepEqual(missing, [], `${missing.length} acknowledged messages never arrived`);
        const messageIds = new Set<string>();
        let duplicates = 0;
        let duplicatesBeforeKill = 0;
        const duplicatesByAcker = new Map<string, number>();
        for (const [seq, list] of bySeq) {
          const first = list[0]!;
          for (const again of list.slice(1)) {
            assert.equal(again.messageId, first.messageId, `seq ${seq} arrived again under another message id`);
            duplicates += 1;
            if (again.at <= killedAt) duplicatesBeforeKill += 1;
            const by = outcome.ackedBy.get(seq);
            const whose = by === undefined ? 'unacknowledged' : by === victim.name ? `acknowledged by node ${by}` : 'acknowledged by a survivor';
            duplicatesByAcker.set(whose, (duplicatesByAcker.get(whose) ?? 0) + 1);
          }
          assert.ok(!messageIds.has(first.messageId), `message id ${first.messageId} carried two different seqs`);
          messageIds.add(first.messageId);
        }
        // What the victim held at the kill: its acknowledged messages that had not arrived yet, and those
        // that had arrived but came again because it died before recording the answer.
        const redeliveredAfterKill = ackedByVictim.filter((seq) => (bySeq.get(seq) ?? []).length > 1 && bySeq.get(seq)!.at(-1)!.at > killedAt);
        const recoveredAt = Math.max(...leftBehind.concat(redeliveredAfterKill).map((seq) => bySeq.get(seq)!.at(-1)!.at));

        // Every node signs with the shared keys, so every delivery verifies, whichever node made it.
        const keys = (await (await api(survivor, '/v2/keys')).json()) as { current: string; next: string };
        const receiver = new Receiver({ currentSigningKey: keys.current, nextSigningKey: keys.next });
        for (const r of arrivals) {
          const signature = String(r.arrival.headers['upstash-signature']);
          const verified = await receiver.verify({ signature, body: bodyOf(r.arrival), url: destinationUrl }).catch((error: unknown) => {
            throw new Error(`the signature of ${r.messageId} (seq ${r.seq}) does not verify: ${String(error)}`);
          });
          assert.equal(verified, true);
        }

        t.diagnostic(
          `acknowledged ${acked.length} (${ackedByVictim.length} by node ${victim.name}); at the kill node ${victim.name} had ` +
            `${leftBehind.length} of its acknowledged messages undelivered and ${redeliveredAfterKill.length} came again later; ` +
            `the survivors delivered them by +${Number.isFinite(recoveredAt) ? recoveredAt - killedAt : 'n/a'} ms; ` +
            `all acknowledged arrived by +${allArrivedAfterKillMs} ms`,
        );
        t.diagnostic(
          `${arrivals.length} arrivals of ${bySeq.size} distinct messages: ${duplicates} repeated deliveries, ${duplicatesBeforeKill} of them before the kill` +
            (duplicates > 0 ? ` (${[...duplicatesByAcker].map(([whose, count]) => `${count} of messages ${whose}`).join(', ')})` : ''),
        );
        assert.ok(ackedByVictim.length > 0, `node ${victim.name} acknowledged some messages before it died`);
        assert.ok(leftBehind.length + redeliveredAfterKill.length > 0, `node ${victim.name} still held work at the kill, so the survivors had to take it over`);
      }),
    );
  });
}

describe('multi-node: three Courier nodes on one shared store', { concurrency: SHARED_STORES.length }, () => {
  for (const store of SHARED_STORES) multiNodeSuite(store);
});
