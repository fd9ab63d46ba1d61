/**
 * Seed 000 end to end, with Courier in both of its roles:
 *
 *   publisher (@upstash/qstash Client) ──▶ Courier (the "QStash": stores, signs, retries)
 *        ──▶ Courier gateway (the "LB Worker": verifies, rewrites legacy paths, round robin)
 *        ──▶ drive-collector instance-1 / -2 / -3 (worker kit; they register with the gateway)
 *
 * Courier and the gateway each own a SQLite file (an embedded store belongs
 * to one process), so the instances register with the gateway, which is
 * where it looks them up, as in the seed.
 *
 * The five steps, and what each one observes:
 *   1. round robin   30 tasks spread over the three instances.
 *   2. one killed    instance-3 gets SIGKILL; 30 more tasks. The gateway's
 *                    forward to it fails (502), which ejects it; Courier
 *                    retries those deliveries and they land on the others.
 *   3. outage        the other two get SIGKILL too. Six tasks are published;
 *                    once every instance is ejected, a signed request straight
 *                    to the gateway gets 503 "No active instances available"
 *                    with a Retry-After, and Courier retries the six.
 *   4. recovery      the instances start again and the six are handled.
 *   5. legacy paths  tasks published to the long v0.15 paths were handled by
 *                    the short handlers.
 *   Then every instance gets SIGTERM: each drains and deregisters, and the
 *   gateway, with nothing registered, answers 503 with the seed's Retry-After 60.
 *
 * `runScenario` only observes; run.mjs narrates and the test asserts.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signDelivery } from '../../src/delivery/signing.js';
import { freePort, isRunning, spawnScript, stopChild, until, untilServing, type Child } from './processes.js';
import { createPublisher, type PublishedTask, type TaskKind } from './publisher.js';

export const INSTANCE_IDS = ['instance-1', 'instance-2', 'instance-3'] as const;
export const PHASES = ['round-robin', 'one-killed', 'outage'] as const;
export type Phase = (typeof PHASES)[number];

export interface HandledTask {
  instance: string;
  route: string;
  ref: string;
  /** The path the instance served. */
  path: string;
  /** The path the message was published to. */
  calledAs: string;
  messageId: string;
  /** Courier's retries before the attempt that succeeded. */
  retried: number;
}

export interface Observations {
  published: (PublishedTask & { phase: Phase })[];
  handled: HandledTask[];
  /** Which instance was killed in step 2. */
  killed: string;
  /** The gateway's answer to a signed request while every instance was down (killed, so ejected). */
  outage: ProbeAnswer;
  /** After every instance was stopped with SIGTERM: how many the gateway still lists, and its answer then. */
  afterShutdown: { registered: number; probe: ProbeAnswer };
}

export interface ProbeAnswer {
  status: number;
  retryAfter: string | null;
  body: unknown;
}

export interface ScenarioOptions {
  /** Narration, one line per event worth telling. */
  log?: (line: string) => void;
}

/**
 * Short settings so the demo runs in seconds; the seed's are 300 s / 900 s.
 * The instances are not declared stale during the run on purpose: a group
 * with no live instance at all answers Retry-After 60 (nothing predicts when
 * one will register), while ejected instances give a Retry-After of when
 * their ejection ends, which is what keeps step 3 short.
 */
const GATEWAY_TIMINGS = { COURIER_HEARTBEAT_INTERVAL: '1s', COURIER_INSTANCE_STALE_AFTER: '60s', COURIER_REGISTRY_REFRESH: '1s' };
/** One failed forward ejects an instance for 2 s, then 4 s (the cap). No panic mode: with every instance dead, sending to them anyway only turns the 503 into 502s. */
const GROUP_SETTINGS = {
  outlier: { consecutiveFailures: 1, baseEjectionSeconds: 2, maxEjectionSeconds: 4, maxEjectionPercent: 100 },
  panicThresholdPercent: 0,
};
/** Courier retries after 300 ms unless the gateway's Retry-After says otherwise; 10 retries outlast the outage. */
const RETRIES = 10;
const RETRY_DELAY_MS = '300';
const TASKS_PER_PHASE: Record<Phase, number> = { 'round-robin': 30, 'one-killed': 30, outage: 6 };
const KINDS: readonly TaskKind[] = ['download', 'upload', 'batch'];
const WAIT_MS = 20_000;

export async function runScenario(options: ScenarioOptions = {}): Promise<Observations> {
  const log = options.log ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'courier-seed-000-'));
  const token = `demo_${randomBytes(12).toString('hex')}`;
  const keys = { QSTASH_CURRENT_SIGNING_KEY: `sig_${randomBytes(16).toString('hex')}`, QSTASH_NEXT_SIGNING_KEY: `sig_${randomBytes(16).toString('hex')}` };
  const [courierPort, gatewayPort] = [await freePort(), await freePort()];
  const courierUrl = `http://127.0.0.1:${courierPort}`;
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;

  const children: Child[] = [];
  const instances = new Map<string, Child>();
  const handled: HandledTask[] = [];
  const published: Observations['published'] = [];
  const explain = () => describeState(published, handled, children);

  function startInstance(id: string): void {
    const child = spawnScript(
      id,
      'examples/seed-000/drive-collector.ts',
      [],
      { INSTANCE_ID: id, PORT: '0', LB_WEBHOOK_URL: gatewayUrl, QSTASH_TOKEN: token, ...keys },
      (record) => {
        if (record.event === 'handled') handled.push(record as unknown as HandledTask);
        else if (record.event === 'ready') log(`  ${id} listening at ${String(record.url)}`);
      },
    );
    children.push(child);
    instances.set(id, child);
  }

  async function activeInstances(): Promise<number> {
    const response = await fetch(`${gatewayUrl}/health`);
    return ((await response.json()) as { activeInstances: number }).activeInstances;
  }

  const publisher = createPublisher({ courierUrl, token, gatewayUrl, retries: RETRIES, retryDelay: RETRY_DELAY_MS });
  async function publishPhase(phase: Phase): Promise<string[]> {
    const count = TASKS_PER_PHASE[phase];
    const tasks = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        // Two of every ten tasks of each kind go to the kind's legacy long path.
        publisher.publish(KINDS[i % KINDS.length]!, `${phase}-${i}`, { legacyPath: Math.floor(i / KINDS.length) % 5 === 0 }),
      ),
    );
    published.push(...tasks.map((task) => ({ ...task, phase })));
    return tasks.map((task) => task.ref);
  }
  const untilHandled = (what: string, refs: string[]) =>
    until(what, () => refs.every((ref) => handled.some((task) => task.ref === ref)), WAIT_MS, explain);

  try {
    log(`Starting Courier (the "QStash") at ${courierUrl} and the gateway (the "LB Worker") at ${gatewayUrl}`);
    const courier = spawnScript('courier', 'src/main.ts', [], {
      PORT: String(courierPort),
      HOST: '127.0.0.1',
      COURIER_DATA_DIR: join(dir, 'courier'),
      QSTASH_TOKEN: token,
      COURIER_LOG_LEVEL: 'warn',
      ...keys,
    });
    const gateway = spawnScript('gateway', 'src/main.ts', ['gateway'], {
      PORT: String(gatewayPort),
      HOST: '127.0.0.1',
      COURIER_STORE: `sqlite:${join(dir, 'gateway.db')}`,
      COURIER_TOKEN: token,
      GATEWAY_PUBLIC_URL: gatewayUrl,
      COURIER_LOG_LEVEL: 'warn',
      ...GATEWAY_TIMINGS,
      ...keys,
    });
    children.push(courier, gateway);
    await Promise.all([untilServing(courier, `${courierUrl}/health/ready`), untilServing(gateway, `${gatewayUrl}/health`)]);

    const configured = await fetch(`${gatewayUrl}/v1/instance-groups/default`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(GROUP_SETTINGS),
    });
    if (!configured.ok) throw new Error(`configuring group "default" on the gateway: ${configured.status} ${await configured.text()}`);

    log('Starting three drive-collector instances; they register with the gateway (group "default")');
    for (const id of INSTANCE_IDS) startInstance(id);
    await until('three instances active at the gateway', async () => (await activeInstances()) === 3, WAIT_MS, explain);

    log('\n1. Round robin: publishing 30 tasks through Courier to the gateway');
    await untilHandled('the round-robin tasks', await publishPhase('round-robin'));
    log(`   handled: ${countLine(handled, 'round-robin-')}`);

    const killed = INSTANCE_IDS[2];
    log(`\n2. SIGKILL ${killed}, then 30 more tasks`);
    await stopChild(instances.get(killed)!, 'SIGKILL');
    await untilHandled('the tasks published after one instance was killed', await publishPhase('one-killed'));
    const retriedInTwo = handled.filter((task) => task.ref.startsWith('one-killed-') && task.retried > 0).length;
    log(`   handled: ${countLine(handled, 'one-killed-')}; ${retriedInTwo} of them on a retry by Courier after ${killed} failed`);

    log('\n3. SIGKILL the other instances; 6 tasks are published meanwhile');
    await Promise.all(INSTANCE_IDS.filter((id) => id !== killed).map((id) => stopChild(instances.get(id)!, 'SIGKILL')));
    const outageRefs = await publishPhase('outage');
    await until('every instance ejected by the gateway', async () => (await activeInstances()) === 0, WAIT_MS, explain);
    const outage = await signedProbe(gatewayUrl, keys.QSTASH_CURRENT_SIGNING_KEY);
    log(`   a signed request straight to the gateway: ${outage.status}, Retry-After: ${outage.retryAfter}, ${JSON.stringify(outage.body)}`);
    log(`   handled so far of the 6: ${handled.filter((task) => outageRefs.includes(task.ref)).length} (Courier keeps retrying)`);

    log('\n4. Recovery: starting the three instances again');
    for (const id of INSTANCE_IDS) startInstance(id);
    await untilHandled('the tasks published during the outage', outageRefs);
    const recovered = handled.filter((task) => outageRefs.includes(task.ref));
    log(`   handled: ${countLine(handled, 'outage-')}; Courier's retries before each got through: ${recovered.map((task) => task.retried).join(', ')}`);

    const legacy = handled.filter((task) => task.calledAs !== task.path);
    log(`\n5. Legacy paths: ${legacy.length} tasks published to long paths were handled by the short handlers`);
    for (const rewrite of new Set(legacy.map((task) => `${task.calledAs} → ${task.path}`))) log(`   ${rewrite}`);

    log('\nFinally, SIGTERM every instance: each deregisters from the gateway and finishes what is in flight');
    await Promise.all([...instances.values()].map((child) => stopChild(child)));
    const listed = await fetch(`${gatewayUrl}/v1/instances?group=default`, { headers: { authorization: `Bearer ${token}` } });
    const registered = ((await listed.json()) as unknown[]).length;
    const probe = await signedProbe(gatewayUrl, keys.QSTASH_CURRENT_SIGNING_KEY);
    log(`   instances the gateway lists: ${registered}; a signed request now: ${probe.status}, Retry-After: ${probe.retryAfter}`);
    log('   (nothing is registered, so nothing predicts a recovery: the seed\'s 60 s)');
    return { published, handled: [...handled], killed, outage, afterShutdown: { registered, probe } };
  } finally {
    await Promise.all(children.filter(isRunning).map((child) => stopChild(child)));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A delivery signed exactly as Courier (or QStash) signs one, sent by hand: what the gateway answers when nobody can take it. */
async function signedProbe(gatewayUrl: string, signingKey: string): Promise<ProbeAnswer> {
  const url = `${gatewayUrl}/api/tasks/system-events`;
  const body = JSON.stringify({ event: 'outage-probe', data: { key: 'value' } });
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'upstash-message-id': 'msg_outage_probe',
      'upstash-signature': signDelivery({ signingKey, url, body: new TextEncoder().encode(body), nowMs: Date.now() }),
    },
    body,
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: kept as text, which the caller reports.
  }
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: parsed };
}

/** "instance-1: 10, instance-2: 10, …" for the tasks whose ref starts with `prefix`. */
function countLine(handled: HandledTask[], prefix: string): string {
  const counts = new Map<string, number>(INSTANCE_IDS.map((id) => [id, 0]));
  for (const task of handled) if (task.ref.startsWith(prefix)) counts.set(task.instance, (counts.get(task.instance) ?? 0) + 1);
  return [...counts].map(([id, count]) => `${id}: ${count}`).join(', ');
}

function describeState(published: Observations['published'], handled: HandledTask[], children: Child[]): string {
  const missing = published.filter((task) => !handled.some((done) => done.ref === task.ref)).map((task) => task.ref);
  const tails = children.map((child) => `--- ${child.name} (${isRunning(child) ? 'running' : 'exited'}):\n${child.output().slice(-2000)}`);
  return [`not handled yet: ${missing.join(', ') || 'none'}`, ...tails].join('\n');
}
