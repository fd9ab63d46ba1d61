/**
 * Instance groups and the stand-alone gateway (issue 5's benchmark), on the
 * same machine and in the same run as everything else:
 *
 *   group-4          N single publishes (the load generator and C of (b)) to
 *                    `group:<name>/sink` with 4 instances registered, each a
 *                    sink process of its own (a sink listens on one port, and
 *                    instances must be distinct origins), vs the same N
 *                    publishes to one sink URL; each on a fresh Courier and
 *                    store. Deliveries/s of both, the ratio group ÷ single
 *                    URL, and each instance's share of the deliveries.
 *   gateway-latency  `courier gateway` (its own process, on a fresh store) with
 *                    the sink registered as its one instance. Requests signed
 *                    as hosted QStash signs them (sub = the gateway's public
 *                    URL + path, which the gateway is told, so the whole
 *                    verification runs), open loop at the latency rows' rate
 *                    and at a light one, first straight to the instance, then
 *                    through the gateway: round-trip p50/p99 of each, and the
 *                    difference.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, request } from 'undici';
import { signDelivery } from '../src/delivery/signing.js';
import { CourierProcess, courierEnv, healthyOrStopped, newIdentity, spawnCourier, waitForHealth, type Identity } from './courier-process.js';
import { CourierRouteTarget, DirectTarget, closedLoop, openLoop, type SendTimes, type Target } from './load.js';
import { STALL_TIMEOUT_MS, deliver, log, perSecond, type Describable } from './measure.js';
import { freePort, registerTempDir, removeTempDir, stopChild, type OutputTail } from './processes.js';
import { encodeMessage, preciseNow, type SinkStats } from './protocol.js';
import type { FailedSample, GatewayLatencySample, GatewayScenarioId, GroupSample, RoundTripFigures, Sample } from './report.js';
import { SinkProcess } from './sink-process.js';
import { formatFixed, formatInteger, medianOf, percentile } from './stats.js';
import { createFreshStore, type FreshStore, type StoreKind } from './stores.js';

export const GROUP_INSTANCES = 4;
const GROUP = 'bench-group';
/** A path under the gateway's default route prefix (/api/tasks/), as in seed 000. */
const TASK_PATH = '/api/tasks/download';
/**
 * Untimed messages straight to each extra instance sink before group-4: the
 * run's own sink is primed by run.ts, and a cold instance would make the group
 * look slower than it is.
 */
const INSTANCE_PRIME_MESSAGES = 5_000;
/** How long each sink is long-polled per round while waiting on all of them. */
const POLL_MS = 200;
/**
 * gateway-latency's second, light rate. On a 2-core machine shared by the
 * runner, the instance and the gateway, a fresh gateway forwarded 800–1,200
 * requests/s in a closed loop, so at the latency rows' rate its p99 is mostly
 * queueing; at this rate the difference is the cost of one forward.
 */
const LIGHT_RATE = 100;
/**
 * Untimed requests down each path first, whatever --warmup says: a fresh
 * gateway runs cold (its first 2,000 sequential forwards went at half the
 * speed of the next 2,000), and after --quick's 500 its p50 at 1,000 req/s
 * came out at 135 ms, against about 2 ms after 2,000.
 */
const GATEWAY_MIN_WARMUP = 2_000;

export interface GatewayBenchConfig {
  store: StoreKind;
  scenarios: GatewayScenarioId[];
  /** publishes per group-4 measurement */
  n: number;
  /** group-4 runs at each C of (b) */
  concurrency: number[];
  warmup: number;
  /** gateway-latency: the latency rows' offered load, duration and connection pool */
  latencyRate: number;
  latencySeconds: number;
  latencyConnections: number;
}

export const GATEWAY_LABELS: Record<GatewayScenarioId, string> = {
  'group-4': `publish to an instance group of ${GROUP_INSTANCES}`,
  'gateway-latency': '`courier gateway` → instance, signed',
};

function failed(scenario: GatewayScenarioId, run: number, error: unknown): FailedSample<GatewayScenarioId> {
  const text = error instanceof Error ? error.message : String(error);
  log(`run ${run}  ${GATEWAY_LABELS[scenario]}: FAILED: ${text}`);
  return { kind: 'failed', scenario, run, error: text.slice(0, 4_000) };
}

async function closing<T extends Target, R>(target: T, use: (target: T) => Promise<R>): Promise<R> {
  try {
    return await use(target);
  } finally {
    await target.close();
  }
}

/**
 * Sends, then waits until the instances together have `expected` unique
 * deliveries. Each sink only knows its own arrivals, so a message delivered to
 * two instances (a retry after an attempt that did arrive) counts twice toward
 * the total; it is reported as a duplicate, and shows as `retried` as well.
 */
async function deliverToInstances(
  sinks: SinkProcess[],
  courier: Describable,
  runId: string,
  expected: number,
  send: () => Promise<SendTimes>,
): Promise<{ sent: SendTimes; stats: SinkStats[] }> {
  await Promise.all(sinks.map((sink) => sink.reset(runId, expected)));
  let sent: SendTimes;
  try {
    sent = await send();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${runId}: sending failed: ${message}\n${courier.describe()}`, { cause: error });
  }
  const started = Date.now();
  const totalTimeoutMs = 60_000 + expected * 10;
  let lastProgressAt = started;
  let lastUnique = -1;
  for (;;) {
    const stats = await Promise.all(sinks.map((sink) => sink.waitUntil(expected, Date.now() + POLL_MS)));
    const unique = stats.reduce((sum, s) => sum + s.unique, 0);
    if (unique >= expected) return { sent, stats };
    const now = Date.now();
    if (unique !== lastUnique) {
      lastUnique = unique;
      lastProgressAt = now;
    }
    if (now - lastProgressAt > STALL_TIMEOUT_MS || now - started > totalTimeoutMs) {
      throw new Error(
        `${runId}: ${unique}/${expected} unique deliveries over ${sinks.length} instances (${stats.map((s) => s.unique).join(' / ')}) ` +
          `after ${Math.round((now - started) / 1000)} s\n${courier.describe()}`,
      );
    }
  }
}

/** Publishes to one URL and to the group, at one C, each on a fresh Courier. */
async function measureGroup(sinks: SinkProcess[], config: GatewayBenchConfig, c: number, run: number): Promise<GroupSample> {
  const { n, warmup } = config;
  const single = sinks[0]!;
  const tag = `group-c${c}-r${run}`;

  const singleCourier = await CourierProcess.start(config.store);
  let singleUrl: { perSec: number; stats: SinkStats };
  try {
    singleUrl = await closing(new CourierRouteTarget(singleCourier.origin, singleCourier.token, `/v2/publish/${single.deliveryUrl}`, c), async (target) => {
      if (warmup > 0) await deliver(single, singleCourier, `${tag}-single-warmup`, warmup, () => closedLoop(target, `${tag}-single-warmup`, warmup, c));
      const { sent, stats } = await deliver(single, singleCourier, `${tag}-single`, n, () => closedLoop(target, `${tag}-single`, n, c));
      return { perSec: perSecond(n, sent.firstSendAt, stats.lastArrival), stats };
    });
  } finally {
    await singleCourier.stop();
  }

  const courier = await CourierProcess.start(config.store);
  try {
    for (const [k, sink] of sinks.entries()) {
      await courier.api('POST', '/v1/instances/heartbeat', { body: JSON.stringify({ group: GROUP, id: `sink-${k}`, url: sink.origin }) });
    }
    const path = `/v2/publish/group:${GROUP}${new URL(single.deliveryUrl).pathname}`;
    return await closing(new CourierRouteTarget(courier.origin, courier.token, path, c), async (target) => {
      if (warmup > 0) await deliverToInstances(sinks, courier, `${tag}-warmup`, warmup, () => closedLoop(target, `${tag}-warmup`, warmup, c));
      const { sent, stats } = await deliverToInstances(sinks, courier, tag, n, () => closedLoop(target, tag, n, c));
      const lastArrival = Math.max(...stats.map((s) => s.lastArrival ?? -Infinity));
      const perInstance = stats.map((s) => s.unique);
      const groupPerSec = perSecond(n, sent.firstSendAt, Number.isFinite(lastArrival) ? lastArrival : null);
      const sum = (pick: (s: SinkStats) => number) => stats.reduce((total, s) => total + pick(s), 0);
      return {
        kind: 'group',
        scenario: 'group-4',
        run,
        store: config.store,
        concurrency: c,
        messages: n,
        instances: sinks.length,
        singleUrlPerSec: singleUrl.perSec,
        groupPerSec,
        ratioToSingleUrl: groupPerSec / singleUrl.perSec,
        perInstance,
        minShare: Math.min(...perInstance) / n,
        maxShare: Math.max(...perInstance) / n,
        duplicates: singleUrl.stats.duplicates + sum((s) => s.duplicates) + (sum((s) => s.unique) - n),
        retried: singleUrl.stats.retried + sum((s) => s.retried),
        stale: singleUrl.stats.stale + sum((s) => s.stale),
      };
    });
  } finally {
    await courier.stop();
  }
}

/** `courier gateway` as its own process, on a fresh store, deliveries going to the instances of GROUP. */
class GatewayProcess implements Describable {
  private constructor(
    private readonly child: ChildProcess,
    private readonly output: OutputTail,
    private readonly dataDir: string,
    private readonly store: FreshStore,
    readonly port: number,
    readonly identity: Identity,
  ) {}

  static async start(kind: StoreKind): Promise<GatewayProcess> {
    const store = await createFreshStore(kind);
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'courier-bench-gateway-'));
    registerTempDir(dataDir);
    const identity = newIdentity();
    // Inherited switches must not change what is measured (above all, turn verification off).
    const env = courierEnv(port, dataDir, identity, store, (name) => name.startsWith('GATEWAY_') || name === 'SKIP_SIGNATURE_VERIFY' || name === 'COURIER_TOKEN');
    Object.assign(env, { GATEWAY_GROUP: GROUP, GATEWAY_PUBLIC_URL: `http://127.0.0.1:${port}` });
    const { child, output } = spawnCourier(['gateway'], env);
    return healthyOrStopped(new GatewayProcess(child, output, dataDir, store, port, identity));
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async registerInstance(id: string, url: string): Promise<void> {
    const res = await request(`${this.origin}/v1/instances/heartbeat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.identity.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ group: GROUP, id, url }),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`gateway heartbeat answered ${res.statusCode}: ${text.slice(0, 300)}\n${this.describe()}`);
  }

  describe(): string {
    const running = this.child.exitCode === null && this.child.signalCode === null;
    const tail = this.output.toString();
    return `gateway on port ${this.port} is ${running ? 'running' : `exited (code ${this.child.exitCode})`}; its last output:\n${tail === '' ? '(none)' : tail}`;
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
    removeTempDir(this.dataDir);
    await this.store.drop();
  }

  /** The gateway's /health is the seed's JSON, not Courier's `OK`. */
  waitUntilHealthy(): Promise<void> {
    return waitForHealth({ name: 'gateway', child: this.child, origin: this.origin, describe: () => this.describe() }, (status, text) => {
      if (status !== 200) return false;
      try {
        return (JSON.parse(text) as { status?: unknown }).status === 'ok';
      } catch {
        return false;
      }
    });
  }
}

/**
 * A delivery as hosted QStash makes it: raw JSON body, Upstash-Message-Id, and
 * an Upstash-Signature for `signedFor` made per request (the body carries its
 * send time). The same request goes straight to the instance or through the
 * gateway; only the origin differs. Keeps each request's round trip.
 */
class SignedDeliveryTarget implements Target {
  readonly unitSize = 1;
  private readonly pool: Pool;
  private roundTripsMs: number[] = [];

  constructor(
    origin: string,
    private readonly signedFor: string,
    private readonly signingKey: string,
    connections: number,
  ) {
    this.pool = new Pool(origin, { connections, keepAliveTimeout: 30_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
  }

  async send(run: string, first: number, _count: number, sentAt: number): Promise<void> {
    const body = encodeMessage(run, first, sentAt);
    const signature = signDelivery({ signingKey: this.signingKey, url: this.signedFor, body: Buffer.from(body), nowMs: Date.now() });
    const res = await this.pool.request({
      method: 'POST',
      path: TASK_PATH,
      headers: { 'content-type': 'application/json', 'upstash-signature': signature, 'upstash-message-id': `msg_${run}_${first}` },
      body,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`POST ${TASK_PATH} answered ${res.statusCode}: ${text.slice(0, 300)}`);
    this.roundTripsMs.push(preciseNow() - sentAt);
  }

  /** The round trips since the last call, in completion order. */
  takeRoundTrips(): number[] {
    const taken = this.roundTripsMs;
    this.roundTripsMs = [];
    return taken;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

async function measureRoundTrips(sink: SinkProcess, gateway: GatewayProcess, target: SignedDeliveryTarget, tag: string, rate: number, seconds: number): Promise<RoundTripFigures> {
  const requests = rate * seconds;
  target.takeRoundTrips();
  const { sent, stats } = await deliver(sink, gateway, tag, requests, () => openLoop(target, tag, requests, rate));
  const roundTrips = target.takeRoundTrips();
  const arrivals = (await sink.report()).latenciesMs;
  return {
    p50Ms: percentile(roundTrips, 50),
    p99Ms: percentile(roundTrips, 99),
    maxMs: percentile(roundTrips, 100),
    arrivalP50Ms: percentile(arrivals, 50),
    arrivalP99Ms: percentile(arrivals, 99),
    maxSendLagMs: sent.maxLagMs,
    duplicates: stats.duplicates,
  };
}

/** One gateway, its two paths warmed once, then each rate: straight to the instance, then through the gateway. */
async function measureGatewayLatency(sink: SinkProcess, config: GatewayBenchConfig, run: number): Promise<GatewayLatencySample[]> {
  const gateway = await GatewayProcess.start(config.store);
  const signedFor = `${gateway.origin}${TASK_PATH}`;
  const target = (origin: string) => new SignedDeliveryTarget(origin, signedFor, gateway.identity.currentSigningKey, config.latencyConnections);
  const direct = target(sink.origin);
  const viaGateway = target(gateway.origin);
  try {
    await gateway.registerInstance('sink', sink.origin);
    const tag = `gateway-lat-r${run}`;
    const warmup = Math.max(config.warmup, GATEWAY_MIN_WARMUP);
    for (const [path, t] of [['direct', direct], ['gateway', viaGateway]] as const) {
      await deliver(sink, gateway, `${tag}-${path}-warmup`, warmup, () => openLoop(t, `${tag}-${path}-warmup`, warmup, config.latencyRate));
    }
    const samples: GatewayLatencySample[] = [];
    for (const rate of [config.latencyRate, LIGHT_RATE]) {
      const straight = await measureRoundTrips(sink, gateway, direct, `${tag}-${rate}-direct`, rate, config.latencySeconds);
      const forwarded = await measureRoundTrips(sink, gateway, viaGateway, `${tag}-${rate}-gateway`, rate, config.latencySeconds);
      const minus = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : a - b);
      samples.push({
        kind: 'gateway-latency',
        scenario: 'gateway-latency',
        run,
        store: config.store,
        offeredPerSec: rate,
        requests: rate * config.latencySeconds,
        connections: config.latencyConnections,
        direct: straight,
        viaGateway: forwarded,
        addedP50Ms: minus(forwarded.p50Ms, straight.p50Ms),
        addedP99Ms: minus(forwarded.p99Ms, straight.p99Ms),
      });
    }
    return samples;
  } finally {
    await Promise.all([direct.close(), viaGateway.close()]);
    await gateway.stop();
  }
}

async function primeSink(sink: SinkProcess, concurrency: number): Promise<void> {
  await closing(new DirectTarget(sink.deliveryUrl, concurrency), (target) =>
    deliver(sink, undefined, 'prime-instance', INSTANCE_PRIME_MESSAGES, () => closedLoop(target, 'prime-instance', INSTANCE_PRIME_MESSAGES, concurrency)),
  );
}

function describeGatewaySample(sample: GroupSample | GatewayLatencySample): string {
  const label = `${GATEWAY_LABELS[sample.scenario]} — ${sample.store}`;
  if (sample.kind === 'group') {
    const extras = [sample.duplicates > 0 ? `${sample.duplicates} duplicates` : '', sample.retried > 0 ? `${sample.retried} retried` : ''].filter((e) => e !== '');
    return (
      `run ${sample.run}  ${label}  C=${sample.concurrency}: ${formatInteger(sample.groupPerSec)} deliveries/s vs ` +
      `${formatInteger(sample.singleUrlPerSec)} to one URL, ratio ${formatFixed(sample.ratioToSingleUrl, 3)}; ` +
      `per instance ${sample.perInstance.join(' / ')}${extras.length > 0 ? `  [${extras.join(', ')}]` : ''}`
    );
  }
  const figures = (f: RoundTripFigures) => `p50 ${formatFixed(f.p50Ms, 2)} ms  p99 ${formatFixed(f.p99Ms, 2)} ms`;
  return (
    `run ${sample.run}  ${label} @ ${formatInteger(sample.offeredPerSec)} req/s: direct ${figures(sample.direct)}; ` +
    `via gateway ${figures(sample.viaGateway)}; added p50 ${formatFixed(sample.addedP50Ms, 2)} ms  p99 ${formatFixed(sample.addedP99Ms, 2)} ms`
  );
}

/** group-4 at every C, then gateway-latency, as selected, for one run. `sink` is the run's primed sink. */
export async function measureGatewayRun(sink: SinkProcess, config: GatewayBenchConfig, run: number): Promise<Sample[]> {
  const samples: Sample[] = [];
  const record = (sample: GroupSample | GatewayLatencySample | FailedSample<GatewayScenarioId>) => {
    samples.push(sample);
    if (sample.kind !== 'failed') log(describeGatewaySample(sample));
  };
  if (config.scenarios.includes('group-4')) {
    const extra: SinkProcess[] = [];
    try {
      for (let k = 1; k < GROUP_INSTANCES; k++) {
        const instance = await SinkProcess.start();
        extra.push(instance);
        await primeSink(instance, Math.max(...config.concurrency));
      }
      for (const c of config.concurrency) {
        try {
          record(await measureGroup([sink, ...extra], config, c, run));
        } catch (error) {
          record(failed('group-4', run, error));
        }
      }
    } catch (error) {
      record(failed('group-4', run, error));
    } finally {
      await Promise.all(extra.map((instance) => instance.stop()));
    }
  }
  if (config.scenarios.includes('gateway-latency')) {
    try {
      for (const sample of await measureGatewayLatency(sink, config, run)) record(sample);
    } catch (error) {
      record(failed('gateway-latency', run, error));
    }
  }
  return samples;
}

export interface GroupRow {
  scenario: 'group-4';
  label: string;
  concurrency: number;
  messages: number | undefined;
  singleUrlPerSec: number | undefined;
  groupPerSec: number | undefined;
  /** median of per-run ratios */
  ratioToSingleUrl: number | undefined;
  /** worst over runs */
  minShare: number | undefined;
  maxShare: number | undefined;
  runs: number;
  failedRuns: number;
}

export interface GatewayLatencyRow {
  scenario: 'gateway-latency';
  label: string;
  offeredPerSec: number;
  directP50Ms: number | undefined;
  directP99Ms: number | undefined;
  gatewayP50Ms: number | undefined;
  gatewayP99Ms: number | undefined;
  /** medians of per-run differences */
  addedP50Ms: number | undefined;
  addedP99Ms: number | undefined;
  runs: number;
  failedRuns: number;
}

export type GatewayRow = GroupRow | GatewayLatencyRow;

/** Medians across runs; a failed run is counted against every C or rate of its scenario, since it may have failed before any. */
export function summarizeGateway(samples: Sample[], config: GatewayBenchConfig): GatewayRow[] {
  const rows: GatewayRow[] = [];
  const failures = (scenario: GatewayScenarioId) => samples.filter((s) => s.kind === 'failed' && s.scenario === scenario).length;
  if (config.scenarios.includes('group-4')) {
    for (const c of config.concurrency) {
      const group = samples.filter((s): s is GroupSample => s.kind === 'group' && s.concurrency === c);
      rows.push({
        scenario: 'group-4',
        label: `${GATEWAY_LABELS['group-4']} — ${config.store}`,
        concurrency: c,
        messages: group[0]?.messages,
        singleUrlPerSec: medianOf(group.map((s) => s.singleUrlPerSec)),
        groupPerSec: medianOf(group.map((s) => s.groupPerSec)),
        ratioToSingleUrl: medianOf(group.map((s) => s.ratioToSingleUrl)),
        minShare: group.length === 0 ? undefined : Math.min(...group.map((s) => s.minShare)),
        maxShare: group.length === 0 ? undefined : Math.max(...group.map((s) => s.maxShare)),
        runs: group.length,
        failedRuns: failures('group-4'),
      });
    }
  }
  if (config.scenarios.includes('gateway-latency')) {
    const latency = samples.filter((s): s is GatewayLatencySample => s.kind === 'gateway-latency');
    const rates = [...new Set([config.latencyRate, LIGHT_RATE])];
    for (const rate of rates) {
      const group = latency.filter((s) => s.offeredPerSec === rate);
      rows.push({
        scenario: 'gateway-latency',
        label: `${GATEWAY_LABELS['gateway-latency']} — ${config.store}`,
        offeredPerSec: rate,
        directP50Ms: medianOf(group.map((s) => s.direct.p50Ms)),
        directP99Ms: medianOf(group.map((s) => s.direct.p99Ms)),
        gatewayP50Ms: medianOf(group.map((s) => s.viaGateway.p50Ms)),
        gatewayP99Ms: medianOf(group.map((s) => s.viaGateway.p99Ms)),
        addedP50Ms: medianOf(group.map((s) => s.addedP50Ms)),
        addedP99Ms: medianOf(group.map((s) => s.addedP99Ms)),
        runs: group.length,
        failedRuns: failures('gateway-latency'),
      });
    }
  }
  return rows;
}

export function gatewayTables(rows: GatewayRow[]): string {
  const failedNote = (row: GatewayRow) => (row.failedRuns > 0 ? ` **${row.failedRuns} run(s) failed**` : '');
  const sections: string[] = [];
  const groups = rows.filter((row): row is GroupRow => row.scenario === 'group-4');
  if (groups.length > 0) {
    const lines = [
      '| scenario | C | N | one URL deliveries/s | group deliveries/s | group ÷ one URL | instance share min / max |',
      '|---|---:|---:|---:|---:|---:|---|',
    ];
    for (const row of groups) {
      lines.push(
        `| ${row.label}${failedNote(row)} | ${row.concurrency} | ${formatInteger(row.messages)} | ${formatInteger(row.singleUrlPerSec)} | ` +
          `${formatInteger(row.groupPerSec)} | ${formatFixed(row.ratioToSingleUrl, 3)} | ${formatFixed(row.minShare, 3)} / ${formatFixed(row.maxShare, 3)} |`,
      );
    }
    sections.push(lines.join('\n'));
  }
  const latency = rows.filter((row): row is GatewayLatencyRow => row.scenario === 'gateway-latency');
  if (latency.length > 0) {
    const lines = [
      '| scenario | req/s | direct p50 ms | direct p99 ms | via gateway p50 ms | via gateway p99 ms | added p50 ms | added p99 ms |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    ];
    for (const row of latency) {
      lines.push(
        `| ${row.label}${failedNote(row)} | ${formatInteger(row.offeredPerSec)} | ${formatFixed(row.directP50Ms, 2)} | ${formatFixed(row.directP99Ms, 2)} | ` +
          `${formatFixed(row.gatewayP50Ms, 2)} | ${formatFixed(row.gatewayP99Ms, 2)} | ${formatFixed(row.addedP50Ms, 2)} | ${formatFixed(row.addedP99Ms, 2)} |`,
      );
    }
    sections.push(lines.join('\n'));
  }
  return sections.join('\n\n');
}

export function gatewayNotes(config: GatewayBenchConfig, runs: number): string[] {
  const lines: string[] = [];
  if (config.scenarios.includes('group-4')) {
    lines.push(
      `- group-4: N = ${formatInteger(config.n)} single publishes at each C (as (b)), ${formatInteger(config.warmup)} untimed first, to ` +
        `\`group:${GROUP}/sink\` with ${GROUP_INSTANCES} instances registered by heartbeat (round robin, the default), each a sink ` +
        `process on its own port; "one URL" publishes the same N to the first of them. Each on a fresh Courier and store. ` +
        `deliveries/s = N ÷ (last arrival at any instance − first send); the ratio is per run, median of ${runs}; ` +
        `instance share = an instance's deliveries ÷ N, the lowest and highest over runs (${formatFixed(1 / GROUP_INSTANCES, 3)} each is even).`,
    );
  }
  if (config.scenarios.includes('gateway-latency')) {
    lines.push(
      `- gateway-latency: \`courier gateway\` on a fresh store with the sink as its one instance. Open loop for ${config.latencySeconds} s ` +
        `at ${formatInteger(config.latencyRate)} req/s (the latency rows' rate) and at ${LIGHT_RATE} req/s (below the gateway's ceiling on a ` +
        `small machine, so the difference is one forward's cost rather than queueing), pool of ${config.latencyConnections} connections, ` +
        `straight to the instance, then through the gateway, after ${formatInteger(Math.max(config.warmup, GATEWAY_MIN_WARMUP))} untimed ` +
        `requests down each path. Every request carries an Upstash-Signature made per request with the gateway's current signing key for ` +
        `sub = the gateway's public URL + path, which the gateway verifies (GATEWAY_PUBLIC_URL set, so sub is compared too). ` +
        `Latency = scheduled send → response read by the runner (what QStash waits), so client-side queueing counts; ` +
        `"added" = via gateway − direct, per run, median of ${runs}. The one-way times to the instance are in the JSON.`,
    );
  }
  return lines;
}
