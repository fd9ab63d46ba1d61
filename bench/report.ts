/** Turns raw measurements into the summary rows, the Markdown table and the JSON file. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, platform, arch, release, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { formatFixed, formatInteger, medianOf } from './stats.js';

export type ScenarioId = 'a' | 'b' | 'c' | 'pgboss' | 'pgboss-batch';

export const SCENARIO_LABELS: Record<ScenarioId, string> = {
  a: '(a) direct → sink (ceiling)',
  b: '(b) single publish via Courier',
  c: '(c) batch publish via Courier',
  pgboss: '(p) pg-boss send → worker → sink',
  'pgboss-batch': '(q) pg-boss insert → worker → sink',
};

/** The Courier scenario a pg-boss scenario is compared with. */
export const PGBOSS_COUNTERPART = { pgboss: 'b', 'pgboss-batch': 'c' } as const satisfies Partial<Record<ScenarioId, ScenarioId>>;

export function isPgBoss(scenario: ScenarioId): scenario is 'pgboss' | 'pgboss-batch' {
  return scenario === 'pgboss' || scenario === 'pgboss-batch';
}

/** Whether the scenario goes through Courier (and so has a store and a node count). */
export function viaCourier(scenario: ScenarioId): boolean {
  return scenario === 'b' || scenario === 'c';
}

/** "(b) single publish via Courier — postgres, 2 nodes"; the store is named on every Courier row. */
export function scenarioLabel(scenario: ScenarioId, store: string, nodes: number): string {
  if (!viaCourier(scenario)) return SCENARIO_LABELS[scenario];
  return `${SCENARIO_LABELS[scenario]} — ${store}${nodes > 1 ? `, ${nodes} nodes` : ''}`;
}

interface SampleBase {
  scenario: ScenarioId;
  run: number;
  messages: number;
  /** messages per request */
  unitSize: number;
  /** Courier nodes sharing the store and the load (1 for the ceiling and pg-boss) */
  nodes: number;
  /** COURIER_STORE kind for Courier scenarios; "postgres" for pg-boss; "none" for the ceiling */
  store: string;
  /** messages ÷ (last arrival at the sink − first send), per second */
  deliveredPerSec: number;
  duplicates: number;
  retried: number;
  stale: number;
}

export interface ThroughputSample extends SampleBase {
  kind: 'throughput';
  /** C: the concurrency the scenario is measured at */
  concurrency: number;
  /** requests in flight (C for single messages, fewer for batches) */
  requestConcurrency: number;
  /** messages ÷ (last publish answered − first send): how fast Courier accepted them */
  acceptedPerSec: number;
  /** this run's delivered rate ÷ the ceiling's at the same C in the same run */
  ratioToCeiling: number | undefined;
  /** pg-boss only: the Courier counterpart ((b) or (c), fewest nodes) at the same C in the same run ÷ this */
  courierOverPgBoss?: number;
  /** pg-boss only: that Courier counterpart's delivered msgs/s */
  courierPerSec?: number;
}

export interface LatencySample extends SampleBase {
  kind: 'latency';
  connections: number;
  offeredPerSec: number;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  maxMs: number | undefined;
  /** how far the load generator fell behind its schedule */
  maxSendLagMs: number;
}

/** Scenarios beyond (a)–(c): queues, URL-group fan-out, schedules. */
export const FEATURE_SCENARIOS = ['queue-p1', 'queue-p32', 'fanout-10', 'schedules-10k'] as const;
export type FeatureScenarioId = (typeof FEATURE_SCENARIOS)[number];

/** The ceilings the feature scenarios are compared with, measured in the same run. */
export type CeilingId = 'ceiling-c32' | 'ceiling-c1';
export type DeliveryScenarioId = CeilingId | Exclude<FeatureScenarioId, 'schedules-10k'>;

export const FEATURE_LABELS: Record<DeliveryScenarioId | 'schedules-10k', string> = {
  'ceiling-c32': '(a) direct → sink, C=32 (ceiling)',
  'ceiling-c1': '(a) direct → sink, C=1 (serial ceiling)',
  'queue-p1': 'queue, parallelism 1 (enqueue)',
  'queue-p32': 'queue, parallelism 32 (enqueue)',
  'fanout-10': 'publish to a 10-endpoint URL group',
  'schedules-10k': 'schedules `* * * * *`, one tick',
};

/** Throughput of a feature scenario, or one of its ceilings, in deliveries at the sink per second. */
export interface DeliverySample {
  kind: 'delivery';
  scenario: DeliveryScenarioId;
  run: number;
  /** messages published (to the group, for fan-out) */
  messages: number;
  /** deliveries counted at the sink: messages × endpoints */
  deliveries: number;
  /** requests the runner keeps in flight */
  publishConcurrency: number;
  /** the queue's parallelism, for queue-* */
  parallelism?: number;
  /** group size, for fan-out */
  endpoints?: number;
  /** deliveries ÷ (last arrival − first send), per second */
  deliveredPerSec: number;
  /** messages ÷ (last publish answered − first send) */
  acceptedPerSec: number;
  /** ÷ ceiling-c32 of the same run */
  ratioToCeiling: number | undefined;
  /** queue-p1 only: ÷ ceiling-c1 (one request at a time straight to the sink) of the same run */
  ratioToSerialCeiling?: number;
  /** fanout-10 only: ÷ (b) single publish at C=32 of the same run, when (b) ran at C=32 */
  ratioToSinglePublish?: number;
  /** queue-p32 only: ÷ queue-p1 of the same run */
  ratioToP1?: number;
  /** fanout-10 only: deliveries that carried Upstash-Topic-Name */
  withTopicHeader?: number;
  /** queue-* only: the queue's `lag` once every delivery had arrived */
  lagAfter?: number;
  duplicates: number;
  retried: number;
  stale: number;
}

/** One cron tick of many schedules: when each delivery arrived relative to the tick's due time. */
export interface ScheduleSample {
  kind: 'schedule';
  scenario: 'schedules-10k';
  run: number;
  schedules: number;
  createConcurrency: number;
  /** schedules ÷ time to create them all */
  createdPerSec: number;
  /** the minute boundary measured (ISO) */
  tickAt: string;
  /** nextScheduleTime Courier reported for the first and the last schedule created (ms), vs tickAt */
  courierNextScheduleTime: { first: number | undefined; last: number | undefined };
  /** unique schedules delivered in [tick, tick + 60 s] */
  arrived: number;
  complete: boolean;
  /** deliveries before the tick (a previous tick, or a schedule firing on creation) */
  early: number;
  /** deliveries more than 60 s after the tick */
  late: number;
  duplicates: number;
  stale: number;
  retried: number;
  withScheduleIdHeader: number;
  distinctScheduleIds: number;
  /** latency = arrival − tick due time, ms */
  firstMs: number | undefined;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  maxMs: number | undefined;
  /** arrived ÷ (last arrival − tick), per second */
  deliveredPerSec: number | undefined;
  /** `GET /health` timed every 100 ms from 1 s before the tick until all arrived: a stalled event loop shows here */
  healthDuringTick: { probes: number; p50Ms: number | undefined; maxMs: number | undefined };
}

/** Instance groups and the stand-alone gateway (bench/gateway.ts). */
export const GATEWAY_SCENARIOS = ['group-4', 'gateway-latency'] as const;
export type GatewayScenarioId = (typeof GATEWAY_SCENARIOS)[number];

/** group-4 at one C: N publishes to an instance group vs the same N to one URL, each on a fresh Courier. */
export interface GroupSample {
  kind: 'group';
  scenario: 'group-4';
  run: number;
  store: string;
  /** requests the runner keeps in flight, as in (b) */
  concurrency: number;
  messages: number;
  instances: number;
  /** deliveries ÷ (last arrival − first send), per second, publishing to one sink URL */
  singleUrlPerSec: number;
  /** the same, publishing to `group:<name>/<path>`; the last arrival at any instance */
  groupPerSec: number;
  /** groupPerSec ÷ singleUrlPerSec */
  ratioToSingleUrl: number;
  /** unique deliveries each instance received, in registration order */
  perInstance: number[];
  /** min and max of perInstance ÷ messages; 1 ÷ instances each is an even spread */
  minShare: number;
  maxShare: number;
  /** repeat arrivals, on the same instance or another, over both measurements */
  duplicates: number;
  retried: number;
  stale: number;
}

/** One path of gateway-latency: open-loop signed requests, straight to the instance or through the gateway. */
export interface RoundTripFigures {
  /** scheduled send → response read by the runner, ms: what the caller (QStash) waits */
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  maxMs: number | undefined;
  /** scheduled send → arrival at the instance, ms */
  arrivalP50Ms: number | undefined;
  arrivalP99Ms: number | undefined;
  /** how far the load generator fell behind its schedule */
  maxSendLagMs: number;
  duplicates: number;
}

export interface GatewayLatencySample {
  kind: 'gateway-latency';
  scenario: 'gateway-latency';
  run: number;
  store: string;
  offeredPerSec: number;
  requests: number;
  connections: number;
  direct: RoundTripFigures;
  viaGateway: RoundTripFigures;
  /** viaGateway − direct, round trip */
  addedP50Ms: number | undefined;
  addedP99Ms: number | undefined;
}

/** A feature (or, with `GatewayScenarioId`, gateway) scenario that could not be measured; the others still are. */
export interface FailedSample<S extends string = DeliveryScenarioId | 'schedules-10k'> {
  kind: 'failed';
  scenario: S;
  run: number;
  error: string;
}

export type Sample =
  | ThroughputSample
  | LatencySample
  | DeliverySample
  | ScheduleSample
  | GroupSample
  | GatewayLatencySample
  | FailedSample
  | FailedSample<GatewayScenarioId>;

export interface SummaryRow {
  scenario: ScenarioId;
  kind: 'throughput' | 'latency';
  label: string;
  nodes: number;
  /** C for throughput rows, the connection-pool size for latency rows */
  concurrency: number;
  /** requests in flight, if it differs from C */
  requestConcurrency?: number;
  msgsPerSec: number | undefined;
  ratioToCeiling: number | undefined;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  runs: number;
}

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  totalMemGiB: number;
  node: string;
  platform: string;
}

export function machineInfo(): MachineInfo {
  return {
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    totalMemGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${platform()} ${release()} ${arch()}`,
  };
}

/** Medians across runs. Ratios are medians of per-run ratios, each against the same run's ceiling. */
export function summarize(samples: Sample[], scenarios: ScenarioId[], concurrency: number[], nodeCounts: number[], store: string): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const variants = (scenario: ScenarioId) => (viaCourier(scenario) ? nodeCounts : [1]);
  for (const c of concurrency) {
    for (const scenario of scenarios) {
      for (const nodes of variants(scenario)) {
        const group = samples.filter(
          (s): s is ThroughputSample => s.kind === 'throughput' && s.scenario === scenario && s.concurrency === c && s.nodes === nodes,
        );
        if (group.length === 0) continue;
        const requestConcurrency = group[0]!.requestConcurrency;
        rows.push({
          scenario,
          kind: 'throughput',
          label: scenarioLabel(scenario, store, nodes) + (group[0]!.unitSize > 1 ? ` ×${group[0]!.unitSize}` : ''),
          nodes,
          concurrency: c,
          ...(requestConcurrency !== c ? { requestConcurrency } : {}),
          msgsPerSec: medianOf(group.map((s) => s.deliveredPerSec)),
          ratioToCeiling: medianOf(group.map((s) => s.ratioToCeiling)),
          p50Ms: undefined,
          p99Ms: undefined,
          runs: group.length,
        });
      }
    }
  }
  for (const scenario of scenarios) {
    for (const nodes of variants(scenario)) {
      const group = samples.filter((s): s is LatencySample => s.kind === 'latency' && s.scenario === scenario && s.nodes === nodes);
      if (group.length === 0) continue;
      const first = group[0]!;
      rows.push({
        scenario,
        kind: 'latency',
        label: `${scenarioLabel(scenario, store, nodes).replace(' (ceiling)', '')}${first.unitSize > 1 ? ` ×${first.unitSize}` : ''} @ ${formatInteger(first.offeredPerSec)} msgs/s`,
        nodes,
        concurrency: first.connections,
        msgsPerSec: medianOf(group.map((s) => s.deliveredPerSec)),
        ratioToCeiling: undefined,
        p50Ms: medianOf(group.map((s) => s.p50Ms)),
        p99Ms: medianOf(group.map((s) => s.p99Ms)),
        runs: group.length,
      });
    }
  }
  return rows;
}

export interface PgBossRow {
  scenario: 'pgboss' | 'pgboss-batch';
  concurrency: number;
  pgBossPerSec: number | undefined;
  pgBossRatioToCeiling: number | undefined;
  courierScenario: ScenarioId;
  courierPerSec: number | undefined;
  /** median of per-run (Courier ÷ pg-boss) */
  courierOverPgBoss: number | undefined;
  runs: number;
}

/** pg-boss next to its Courier counterpart, per C; only where both ran. */
export function summarizePgBoss(samples: Sample[], concurrency: number[]): PgBossRow[] {
  const rows: PgBossRow[] = [];
  for (const c of concurrency) {
    for (const scenario of ['pgboss', 'pgboss-batch'] as const) {
      const group = samples.filter((s): s is ThroughputSample => s.kind === 'throughput' && s.scenario === scenario && s.concurrency === c);
      if (group.length === 0) continue;
      rows.push({
        scenario,
        concurrency: c,
        pgBossPerSec: medianOf(group.map((s) => s.deliveredPerSec)),
        pgBossRatioToCeiling: medianOf(group.map((s) => s.ratioToCeiling)),
        courierScenario: PGBOSS_COUNTERPART[scenario],
        courierPerSec: medianOf(group.map((s) => s.courierPerSec)),
        courierOverPgBoss: medianOf(group.map((s) => s.courierOverPgBoss)),
        runs: group.length,
      });
    }
  }
  return rows;
}

export function pgBossTable(rows: PgBossRow[], courierLabel: (scenario: ScenarioId) => string): string {
  const lines = [
    '| pg-boss scenario | C | pg-boss msgs/s | pg-boss ÷ ceiling | Courier counterpart | Courier msgs/s | Courier ÷ pg-boss |',
    '|---|---:|---:|---:|---|---:|---:|',
  ];
  for (const row of rows) {
    lines.push(
      `| ${SCENARIO_LABELS[row.scenario]} | ${row.concurrency} | ${formatInteger(row.pgBossPerSec)} | ${formatFixed(row.pgBossRatioToCeiling, 3)} | ` +
        `${courierLabel(row.courierScenario)} | ${formatInteger(row.courierPerSec)} | ${formatFixed(row.courierOverPgBoss, 2)} |`,
    );
  }
  return lines.join('\n');
}

export function markdownTable(rows: SummaryRow[]): string {
  const lines = [
    '| scenario | C | msgs/s (median) | ratio to ceiling | p50 ms | p99 ms |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const row of rows) {
    const c =
      row.kind === 'latency'
        ? `${row.concurrency} conns`
        : row.requestConcurrency !== undefined
          ? `${row.concurrency} (${row.requestConcurrency} req)`
          : String(row.concurrency);
    lines.push(
      `| ${row.label} | ${c} | ${formatInteger(row.msgsPerSec)} | ${formatFixed(row.ratioToCeiling, 3)} | ` +
        `${formatFixed(row.p50Ms, 2)} | ${formatFixed(row.p99Ms, 2)} |`,
    );
  }
  return lines.join('\n');
}

export interface FeatureRow {
  scenario: DeliveryScenarioId | 'schedules-10k';
  kind: 'delivery' | 'schedule';
  label: string;
  /** messages published per run (schedules created, for schedules-10k); undefined if every run failed */
  messages: number | undefined;
  /** deliveries per run */
  deliveries: number | undefined;
  /** deliveries/s, median over runs */
  deliveriesPerSec: number | undefined;
  ratioToCeiling: number | undefined;
  /** the scenario's second comparison, named, median over runs */
  comparison?: { name: string; value: number | undefined };
  /** schedules: arrived of expected (worst run), creation rate */
  arrived?: number;
  createdPerSec?: number;
  firstMs?: number | undefined;
  /** schedules: the longest GET /health answer during the tick */
  healthMaxMs?: number | undefined;
  p50Ms?: number | undefined;
  p99Ms?: number | undefined;
  maxMs?: number | undefined;
  runs: number;
  failedRuns: number;
}

export function summarizeFeatures(samples: Sample[]): FeatureRow[] {
  const rows: FeatureRow[] = [];
  const failures = (scenario: FeatureRow['scenario']) => samples.filter((s) => s.kind === 'failed' && s.scenario === scenario).length;
  const order: DeliveryScenarioId[] = ['ceiling-c32', 'ceiling-c1', 'queue-p1', 'queue-p32', 'fanout-10'];
  for (const scenario of order) {
    const group = samples.filter((s): s is DeliverySample => s.kind === 'delivery' && s.scenario === scenario);
    const failedRuns = failures(scenario);
    if (group.length === 0 && failedRuns === 0) continue;
    const first = group[0];
    const comparison =
      scenario === 'queue-p1'
        ? { name: '÷ C=1 ceiling', value: medianOf(group.map((s) => s.ratioToSerialCeiling)) }
        : scenario === 'queue-p32'
          ? { name: '÷ queue-p1', value: medianOf(group.map((s) => s.ratioToP1)) }
          : scenario === 'fanout-10'
            ? { name: '÷ (b) C=32', value: medianOf(group.map((s) => s.ratioToSinglePublish)) }
            : undefined;
    rows.push({
      scenario,
      kind: 'delivery',
      label: FEATURE_LABELS[scenario],
      messages: first?.messages,
      deliveries: first?.deliveries,
      deliveriesPerSec: medianOf(group.map((s) => s.deliveredPerSec)),
      ratioToCeiling: medianOf(group.map((s) => s.ratioToCeiling)),
      ...(comparison === undefined ? {} : { comparison }),
      runs: group.length,
      failedRuns,
    });
  }
  const schedules = samples.filter((s): s is ScheduleSample => s.kind === 'schedule');
  const failedSchedules = failures('schedules-10k');
  if (schedules.length > 0 || failedSchedules > 0) {
    rows.push({
      scenario: 'schedules-10k',
      kind: 'schedule',
      label: FEATURE_LABELS['schedules-10k'],
      messages: schedules[0]?.schedules,
      deliveries: schedules[0]?.schedules,
      deliveriesPerSec: medianOf(schedules.map((s) => s.deliveredPerSec)),
      ratioToCeiling: undefined,
      arrived: schedules.length === 0 ? undefined : Math.min(...schedules.map((s) => s.arrived)),
      createdPerSec: medianOf(schedules.map((s) => s.createdPerSec)),
      firstMs: medianOf(schedules.map((s) => s.firstMs)),
      healthMaxMs: medianOf(schedules.map((s) => s.healthDuringTick.maxMs)),
      p50Ms: medianOf(schedules.map((s) => s.p50Ms)),
      p99Ms: medianOf(schedules.map((s) => s.p99Ms)),
      maxMs: medianOf(schedules.map((s) => s.maxMs)),
      runs: schedules.length,
      failedRuns: failedSchedules,
    });
  }
  return rows;
}

export function featureTable(rows: FeatureRow[]): string {
  const lines = [
    '| scenario | N | deliveries/s (median) | ÷ ceiling C=32 | other | p50 ms | p99 ms | max ms |',
    '|---|---:|---:|---:|---|---:|---:|---:|',
  ];
  for (const row of rows) {
    const n =
      row.kind === 'schedule'
        ? `${formatInteger(row.messages)} schedules`
        : row.deliveries !== row.messages
          ? `${formatInteger(row.messages)} msgs → ${formatInteger(row.deliveries)}`
          : formatInteger(row.messages);
    const other: string[] = [];
    if (row.comparison !== undefined) other.push(`${row.comparison.name}: ${formatFixed(row.comparison.value, 3)}`);
    if (row.kind === 'schedule') {
      other.push(`arrived ${formatInteger(row.arrived)}/${formatInteger(row.messages)}`);
      other.push(`created at ${formatInteger(row.createdPerSec)}/s`);
      other.push(`first ${formatFixed(row.firstMs, 0)} ms`);
      other.push(`GET /health ≤ ${formatFixed(row.healthMaxMs, 0)} ms`);
    }
    if (row.failedRuns > 0) other.push(`**${row.failedRuns} run(s) failed**`);
    lines.push(
      `| ${row.label} | ${n} | ${formatInteger(row.deliveriesPerSec)} | ${formatFixed(row.ratioToCeiling, 3)} | ${other.join('; ')} | ` +
        `${formatFixed(row.p50Ms, 0)} | ${formatFixed(row.p99Ms, 0)} | ${formatFixed(row.maxMs, 0)} |`,
    );
  }
  return lines.join('\n');
}

export function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}
