/**
 * `npm run bench`: how close Courier gets to the machine's own ceiling.
 *
 * In one run, side by side, on the same machine:
 *   (a) the ceiling: the runner posts each message straight to the sink;
 *   (b) single publishes through Courier (`POST /v2/publish/<sink>`);
 *   (c) batch publishes through Courier (`POST /v2/batch`, 100 per request);
 * each as delivered messages/s end to end and as a ratio to (a) at the same
 * concurrency C, then p50/p99 publish→arrival latency at a fixed, open-loop
 * offered load of 1,000 msgs/s. Then the feature scenarios (bench/features.ts):
 * queues with parallelism 1 and 32, fan-out to a 10-endpoint URL group, and
 * one minute tick of 10,000 schedules (which waits for a minute boundary).
 * Then the gateway scenarios (bench/gateway.ts): publishes to a group of 4
 * instances vs one URL, and the added latency of `courier gateway`.
 *
 * Three processes share the cores: this runner (load generator), the sink
 * (bench/sink.ts) and, for (b) and (c), a fresh Courier per measurement on a
 * fresh store: SQLite in its data dir, or a new PostgreSQL schema or Redis key
 * prefix (`--store`), with `--nodes 2` two Courier processes on one store and
 * the publishes spread over both. With PostgreSQL, the baseline scenarios
 * pgboss and pgboss-batch (bench/pgboss.ts) move the same messages with
 * pg-boss on the same server.
 *
 *   npm run bench -- --quick                      smoke test (N=2000, 1 run)
 *   npm run bench -- --n 20000 --runs 3 --concurrency 32,256
 *   npm run bench -- --scenarios a                the ceiling only (no Courier needed)
 *   npm run bench -- --scenarios queue-p1,queue-p32,fanout-10,schedules-10k
 *   npm run bench -- --quick --scenarios group-4,gateway-latency
 *   npm run bench -- --store postgres             adds the pg-boss baseline
 *   npm run bench -- --store redis --nodes 1,2 --scenarios a,b,c
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CourierCluster, courierEntry, courierEntryExists } from './courier-process.js';
import { FEATURE_CONCURRENCY, featureNotes, measureFeatureRun, measureSchedules, type FeatureConfig } from './features.js';
import { gatewayNotes, gatewayTables, measureGatewayRun, summarizeGateway, type GatewayBenchConfig } from './gateway.js';
import { BatchPublishTarget, CourierRouteTarget, DirectTarget, RoundRobinTarget, closedLoop, openLoop, type Target } from './load.js';
import { deliver, log, perSecond, type Describable } from './measure.js';
import { PGBOSS_DEFAULTS, PGBOSS_VERSION, PgBossBench, type PgBossSettings } from './pgboss.js';
import {
  FEATURE_SCENARIOS,
  GATEWAY_SCENARIOS,
  PGBOSS_COUNTERPART,
  featureTable,
  isPgBoss,
  machineInfo,
  markdownTable,
  pgBossTable,
  scenarioLabel,
  summarize,
  summarizeFeatures,
  summarizePgBoss,
  viaCourier,
  writeJson,
  type FeatureScenarioId,
  type GatewayScenarioId,
  type LatencySample,
  type Sample,
  type ScenarioId,
  type ThroughputSample,
} from './report.js';
import { SinkProcess } from './sink-process.js';
import { formatFixed, formatInteger, percentile } from './stats.js';
import { POSTGRES_URL, REDIS_URL, STORE_KINDS, type StoreKind } from './stores.js';

/** latest.json for the default (SQLite, one node); other configurations get their own file, so one run does not overwrite another's. */
function resultsPath(store: StoreKind, nodes: number[]): string {
  const suffix = store === 'sqlite' && nodes.length === 1 && nodes[0] === 1 ? '' : `-${store}${nodes.some((n) => n > 1) ? `-nodes${nodes.join('-')}` : ''}`;
  return fileURLToPath(new URL(`./results/latest${suffix}.json`, import.meta.url));
}

/** Messages per `/v2/batch` request in the throughput scenario (c). */
const BATCH_SIZE = 100;
/** Offered load for the latency measurements. */
const LATENCY_RATE = 1_000;
/** Latency scenario (c): batches of 10 every 10 ms, i.e. the same 1,000 msgs/s. */
const LATENCY_BATCH_SIZE = 10;
/**
 * Connection pool size for the latency measurements. At 1,000 msgs/s and
 * millisecond service times only a handful are ever busy; the cap matters
 * only if the server stalls, and then queued requests count as latency.
 */
const LATENCY_CONNECTIONS = 32;
/**
 * Untimed messages sent straight to the sink, per C, before the first measurement.
 * Without this the first run's ceiling came out 2–5× low on this machine (a
 * cold JIT in the runner and the sink), which flattered Courier's ratios.
 */
const PRIME_MESSAGES = 20_000;
const CORE_SCENARIOS = ['a', 'b', 'c', 'pgboss', 'pgboss-batch'] as const;

const USAGE = `Usage: npm run bench -- [options]

  --n <count>               messages per throughput measurement (default 20000)
  --runs <count>            repetitions; medians are reported (default 3)
  --concurrency <list>      comma-separated C values (default 32,256)
  --latency-seconds <s>     duration of each 1,000 msgs/s latency measurement (default 10)
  --warmup <count>          untimed messages sent before each measurement (default 2000)
  --store <kind>            sqlite (default), postgres or redis: the store every Courier runs on, a fresh
                            schema / key prefix per measurement (env BENCH_POSTGRES_URL, BENCH_REDIS_URL;
                            defaults postgres://postgres@127.0.0.1:5432/test, redis://127.0.0.1:6379)
  --nodes <list>            comma-separated Courier node counts for (b) and (c), e.g. 2 or 1,2 (default 1);
                            above 1 needs postgres or redis; publishes alternate between the nodes
  --scenarios <list>        any of a,b,c,pgboss,pgboss-batch,queue-p1,queue-p32,fanout-10,schedules-10k,
                            group-4,gateway-latency
                            (default: all; pgboss and pgboss-batch only by default with --store postgres;
                            "a" needs no Courier; schedules-10k waits for a minute boundary, up to ~2 min)
  --pgboss-workers <count>  pg-boss work loops in the worker process (default ${PGBOSS_DEFAULTS.workers})
  --pgboss-batch <count>    jobs each pg-boss work loop fetches at once (default ${PGBOSS_DEFAULTS.batchSize})
  --queue-p1-n <count>      messages for queue-p1, which delivers one at a time (default max(500, N/10))
  --schedules <count>       schedules created for schedules-10k (default 10000)
  --quick                   N=2000, 1 run, 2 s latency, 500 warm-up, 1000 schedules: a smoke test
  -h, --help                this text

Env: COURIER_BENCH_ENTRY runs another Courier entry point than src/main.ts
(relative to the repo root), e.g. a stand-in server while src/ is unfinished.
COURIER_BENCH_NODE_ARGS adds Node flags to each Courier process only, e.g.
"--cpu-prof --cpu-prof-dir=/tmp/prof" to profile Courier under load.
Results: a Markdown table on stdout, progress on stderr, JSON in bench/results/latest.json
(latest-<store>[-nodes<list>].json for another store or node count).
`;

interface Config {
  n: number;
  runs: number;
  concurrency: number[];
  latencySeconds: number;
  warmup: number;
  /** the core scenarios (a)–(c) and the pg-boss baselines */
  scenarios: ScenarioId[];
  store: StoreKind;
  /** Courier node counts (b) and (c) are measured with */
  nodes: number[];
  pgboss: PgBossSettings;
  features: FeatureConfig;
  gateway: GatewayBenchConfig;
}

function positiveInt(name: string, text: string | undefined, fallback: number, allowZero = false): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) throw new UsageError(`--${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got "${text}"`);
  return value;
}

class UsageError extends Error {}

function parseConfig(argv: string[]): Config | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      n: { type: 'string' },
      runs: { type: 'string' },
      concurrency: { type: 'string' },
      'latency-seconds': { type: 'string' },
      warmup: { type: 'string' },
      scenarios: { type: 'string' },
      store: { type: 'string' },
      nodes: { type: 'string' },
      'pgboss-workers': { type: 'string' },
      'pgboss-batch': { type: 'string' },
      'queue-p1-n': { type: 'string' },
      schedules: { type: 'string' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const quick = values.quick;
  // Explicit flags win over --quick, so `--quick --runs 3` does what it says.
  const concurrency = (values.concurrency ?? '32,256').split(',').map((c) => positiveInt('concurrency', c.trim(), 0));
  const storeText = values.store ?? 'sqlite';
  if (!(STORE_KINDS as readonly string[]).includes(storeText)) throw new UsageError(`--store takes ${STORE_KINDS.join(', ')}; got "${storeText}"`);
  const store = storeText as StoreKind;
  const nodes = [...new Set((values.nodes ?? '1').split(',').map((n) => positiveInt('nodes', n.trim(), 0)))].sort((x, y) => x - y);
  if (store === 'sqlite' && nodes.some((n) => n > 1)) throw new UsageError('--nodes above 1 needs a shared store: --store postgres or --store redis');
  const known: readonly string[] = [...CORE_SCENARIOS, ...FEATURE_SCENARIOS, ...GATEWAY_SCENARIOS];
  const byDefault = known.filter((s) => store === 'postgres' || !isPgBoss(s as ScenarioId));
  const scenarioList = (values.scenarios ?? byDefault.join(',')).split(',').map((s) => s.trim());
  for (const s of scenarioList) {
    if (!known.includes(s)) throw new UsageError(`--scenarios takes ${known.join(',')}; got "${s}"`);
  }
  // Always in a, b, c, pgboss order: each run's ceiling, and the Courier figure pg-boss is
  // compared with, must be measured before the ratios against them.
  const scenarios = CORE_SCENARIOS.filter((s) => scenarioList.includes(s));
  const n = positiveInt('n', values.n, quick ? 2_000 : 20_000);
  const warmup = positiveInt('warmup', values.warmup, quick ? 500 : 2_000, true);
  const latencySeconds = positiveInt('latency-seconds', values['latency-seconds'], quick ? 2 : 10);
  return {
    n,
    runs: positiveInt('runs', values.runs, quick ? 1 : 3),
    concurrency,
    latencySeconds,
    warmup,
    scenarios,
    store,
    nodes,
    pgboss: {
      ...PGBOSS_DEFAULTS,
      workers: positiveInt('pgboss-workers', values['pgboss-workers'], PGBOSS_DEFAULTS.workers),
      batchSize: positiveInt('pgboss-batch', values['pgboss-batch'], PGBOSS_DEFAULTS.batchSize),
    },
    features: {
      store,
      scenarios: FEATURE_SCENARIOS.filter((s): s is FeatureScenarioId => scenarioList.includes(s)),
      n,
      queueP1Messages: positiveInt('queue-p1-n', values['queue-p1-n'], Math.max(500, Math.floor(n / 10))),
      warmup,
      schedules: positiveInt('schedules', values.schedules, quick ? 1_000 : 10_000),
    },
    gateway: {
      store,
      scenarios: GATEWAY_SCENARIOS.filter((s): s is GatewayScenarioId => scenarioList.includes(s)),
      n,
      concurrency,
      warmup,
      latencyRate: LATENCY_RATE,
      latencySeconds,
      latencyConnections: LATENCY_CONNECTIONS,
    },
  };
}

interface Context {
  config: Config;
  sink: SinkProcess;
}

function makeTarget(scenario: ScenarioId, sink: SinkProcess, cluster: CourierCluster | undefined, connections: number, batchSize: number): Target {
  if (scenario === 'a') return new DirectTarget(sink.deliveryUrl, connections);
  if (cluster === undefined || !viaCourier(scenario)) throw new Error(`scenario ${scenario} has no Courier target`);
  const perNode = cluster.nodes.map((node) =>
    scenario === 'b'
      ? new CourierRouteTarget(node.origin, node.token, `/v2/publish/${sink.deliveryUrl}`, connections)
      : new BatchPublishTarget(node.origin, node.token, sink.deliveryUrl, connections, batchSize),
  );
  return perNode.length === 1 ? perNode[0]! : new RoundRobinTarget(perNode);
}

/** Requests in flight for C messages: C single messages, or about C messages' worth of batches but never zero. */
function requestsFor(scenario: ScenarioId, c: number): number {
  return scenario === 'c' || scenario === 'pgboss-batch' ? Math.max(1, Math.ceil(c / BATCH_SIZE)) : c;
}

/**
 * Warms the runner and the sink, which every scenario shares (a fresh Courier
 * is warmed per measurement instead). Once per C: priming only at the largest
 * C still left the first C=32 ceiling at about half its later value.
 */
async function primeRunnerAndSink(ctx: Context, concurrency: number[]): Promise<void> {
  for (const c of concurrency) {
    const target = new DirectTarget(ctx.sink.deliveryUrl, c);
    try {
      await deliver(ctx.sink, undefined, `prime-c${c}`, PRIME_MESSAGES, () => closedLoop(target, `prime-c${c}`, PRIME_MESSAGES, c));
    } finally {
      await target.close();
    }
  }
}

async function measureThroughput(ctx: Context, scenario: ScenarioId, c: number, run: number, nodes: number): Promise<ThroughputSample> {
  const requestConcurrency = requestsFor(scenario, c);
  if (isPgBoss(scenario)) {
    const bench = await PgBossBench.start(ctx.sink.deliveryUrl, ctx.config.pgboss, requestConcurrency);
    try {
      return await measureClosedLoop(ctx, scenario, c, run, 1, 'postgres', bench, bench.target(scenario === 'pgboss' ? 1 : BATCH_SIZE));
    } finally {
      await bench.stop();
    }
  }
  const cluster = scenario === 'a' ? undefined : await CourierCluster.start(ctx.config.store, nodes);
  try {
    const target = makeTarget(scenario, ctx.sink, cluster, requestConcurrency, BATCH_SIZE);
    return await measureClosedLoop(ctx, scenario, c, run, nodes, scenario === 'a' ? 'none' : ctx.config.store, cluster, target);
  } finally {
    await cluster?.stop();
  }
}

/** Warm-up, then N messages through `target` with C messages' worth of requests in flight; closes the target. */
async function measureClosedLoop(
  ctx: Context,
  scenario: ScenarioId,
  c: number,
  run: number,
  nodes: number,
  store: string,
  mover: Describable | undefined,
  target: Target,
): Promise<ThroughputSample> {
  const { n, warmup } = ctx.config;
  const requestConcurrency = requestsFor(scenario, c);
  try {
    const tag = `${scenario}-n${nodes}-c${c}-r${run}`;
    if (warmup > 0) {
      // Opens the connections and warms the JIT in all three processes; not timed.
      await deliver(ctx.sink, mover, `${tag}-warmup`, warmup, () => closedLoop(target, `${tag}-warmup`, warmup, requestConcurrency));
    }
    const { sent, stats } = await deliver(ctx.sink, mover, tag, n, () => closedLoop(target, tag, n, requestConcurrency));
    return {
      kind: 'throughput',
      scenario,
      run,
      nodes,
      store,
      concurrency: c,
      requestConcurrency,
      unitSize: target.unitSize,
      messages: n,
      deliveredPerSec: perSecond(n, sent.firstSendAt, stats.lastArrival),
      acceptedPerSec: perSecond(n, sent.firstSendAt, sent.lastAckAt),
      ratioToCeiling: undefined,
      duplicates: stats.duplicates,
      retried: stats.retried,
      stale: stats.stale,
    };
  } finally {
    await target.close();
  }
}

async function measureLatency(ctx: Context, scenario: ScenarioId, run: number, nodes: number): Promise<LatencySample> {
  const unitSize = scenario === 'c' ? LATENCY_BATCH_SIZE : 1;
  const messages = LATENCY_RATE * ctx.config.latencySeconds;
  const warmup = Math.ceil(ctx.config.warmup / unitSize) * unitSize;
  const courier = scenario === 'a' ? undefined : await CourierCluster.start(ctx.config.store, nodes);
  const target = makeTarget(scenario, ctx.sink, courier, LATENCY_CONNECTIONS, unitSize);
  try {
    const tag = `${scenario}-n${nodes}-lat-r${run}`;
    if (warmup > 0) {
      await deliver(ctx.sink, courier, `${tag}-warmup`, warmup, () => openLoop(target, `${tag}-warmup`, warmup, LATENCY_RATE));
    }
    const { sent, stats } = await deliver(ctx.sink, courier, tag, messages, () => openLoop(target, tag, messages, LATENCY_RATE));
    const report = await ctx.sink.report();
    return {
      kind: 'latency',
      scenario,
      run,
      nodes,
      store: scenario === 'a' ? 'none' : ctx.config.store,
      connections: LATENCY_CONNECTIONS,
      unitSize,
      messages,
      offeredPerSec: LATENCY_RATE,
      deliveredPerSec: perSecond(messages, sent.firstSendAt, stats.lastArrival),
      p50Ms: percentile(report.latenciesMs, 50),
      p99Ms: percentile(report.latenciesMs, 99),
      maxMs: percentile(report.latenciesMs, 100),
      maxSendLagMs: sent.maxLagMs,
      duplicates: stats.duplicates,
      retried: stats.retried,
      stale: stats.stale,
    };
  } finally {
    await target.close();
    await courier?.stop();
  }
}

function describeSample(sample: ThroughputSample | LatencySample): string {
  const label = scenarioLabel(sample.scenario, sample.store, sample.nodes);
  const extras = [
    sample.duplicates > 0 ? `${sample.duplicates} duplicates` : '',
    sample.retried > 0 ? `${sample.retried} retried` : '',
    sample.stale > 0 ? `${sample.stale} stale` : '',
  ].filter((e) => e !== '');
  const tail = extras.length > 0 ? `  [${extras.join(', ')}]` : '';
  if (sample.kind === 'throughput') {
    const ratio = sample.ratioToCeiling === undefined ? '' : `  ratio ${formatFixed(sample.ratioToCeiling, 3)}`;
    const versus = sample.courierOverPgBoss === undefined ? '' : `  Courier ÷ pg-boss ${formatFixed(sample.courierOverPgBoss, 2)}`;
    return (
      `run ${sample.run}  ${label}  C=${sample.concurrency}` +
      (sample.requestConcurrency !== sample.concurrency ? ` (${sample.requestConcurrency} req)` : '') +
      `: ${formatInteger(sample.deliveredPerSec)} msgs/s delivered, ${formatInteger(sample.acceptedPerSec)} accepted${ratio}${versus}${tail}`
    );
  }
  return (
    `run ${sample.run}  ${label} @ ${formatInteger(sample.offeredPerSec)} msgs/s: ` +
    `p50 ${formatFixed(sample.p50Ms, 2)} ms  p99 ${formatFixed(sample.p99Ms, 2)} ms  max ${formatFixed(sample.maxMs, 2)} ms` +
    `  (generator lag ≤ ${formatFixed(sample.maxSendLagMs, 1)} ms)${tail}`
  );
}

function notes(config: Config): string[] {
  const batchRequests = config.concurrency
    .map((c) => {
      const requests = Math.max(1, Math.ceil(c / BATCH_SIZE));
      return `C=${c} → ${requests} (${requests * BATCH_SIZE} msgs)`;
    })
    .join(', ');
  return [
    `- msgs/s = N ÷ (last arrival at the sink − first send), N = ${formatInteger(config.n)}, median of ${config.runs} run(s); ` +
      `duplicates are counted apart and never as throughput.`,
    `- ratio = delivered msgs/s ÷ the ceiling (a) at the same C in the same run, median over runs.`,
    `- (c) sends batches of ${BATCH_SIZE}; requests in flight = ceil(C / ${BATCH_SIZE}) (${batchRequests}), ` +
      `so never fewer messages in flight than C, as in (a) and (b), and never a batch less than full.`,
    `- Latency rows: open loop at ${formatInteger(LATENCY_RATE)} msgs/s for ${config.latencySeconds} s ` +
      `(${formatInteger(LATENCY_RATE * config.latencySeconds)} msgs), stamped with the scheduled send time so client-side ` +
      `queueing counts; pool of ${LATENCY_CONNECTIONS} connections; (c) sends ${LATENCY_BATCH_SIZE} messages every ` +
      `${(LATENCY_BATCH_SIZE / LATENCY_RATE) * 1000} ms; msgs/s there is the achieved delivery rate.`,
    `- Each measurement uses a fresh Courier with a fresh data dir and starts with ${formatInteger(config.warmup)} untimed ` +
      `warm-up messages; before all of them, ${formatInteger(PRIME_MESSAGES)} untimed messages per C go straight to the sink.`,
    ...storeNotes(config),
  ];
}

function storeNotes(config: Config): string[] {
  const lines: string[] = [];
  if (config.store === 'postgres') {
    lines.push(`- Store: PostgreSQL at ${redactUrl(POSTGRES_URL)}, a fresh schema per measurement (per cluster), dropped afterwards.`);
  } else if (config.store === 'redis') {
    lines.push(`- Store: Redis at ${redactUrl(REDIS_URL)}, a fresh key prefix per measurement (per cluster), its keys deleted afterwards.`);
  } else {
    lines.push('- Store: the embedded SQLite, in each Courier\'s fresh data dir.');
  }
  if (config.nodes.some((n) => n > 1)) {
    lines.push(
      `- "N nodes": N Courier processes on one store, sharing token and signing keys; the runner sends request k to node k mod N ` +
        `(C in flight in total); every delivery, by whichever node, is counted at the one sink. All processes share the same cores.`,
    );
  }
  const pgboss = config.scenarios.filter(isPgBoss);
  if (pgboss.length > 0) {
    const p = config.pgboss;
    lines.push(
      `- pg-boss ${PGBOSS_VERSION} on ${redactUrl(POSTGRES_URL)} (a fresh pg-boss schema per measurement): the runner calls ` +
        `${pgboss.includes('pgboss') ? '`boss.send()` per message (p)' : ''}${pgboss.length === 2 ? ' / ' : ''}` +
        `${pgboss.includes('pgboss-batch') ? `\`boss.insert()\` with ${BATCH_SIZE} jobs (q)` : ''} with the same requests in flight as ` +
        `${pgboss.map((s) => `(${PGBOSS_COUNTERPART[s]})`).join('/')}, over a pg pool of min(C, ${p.sendPoolMax}); a separate worker process ` +
        `runs ${p.workers} \`boss.work()\` loops, batchSize ${p.batchSize}, pollingIntervalSeconds ${p.pollingIntervalSeconds} (pg-boss's ` +
        `minimum), priority off, supervise/schedule off; a loop that found jobs fetches again at once (\`notifyWorker\`) instead of ` +
        `sleeping out the interval; its handler POSTs every job's payload to the sink with undici (pool of ${p.sinkConnections}) ` +
        `and completes the batch. Measured like (b)/(c): first send → last arrival at the sink. ` +
        `"Courier ÷ pg-boss" compares with Courier's counterpart at the same C in the same run${config.nodes[0]! > 1 ? ` (${config.nodes[0]} nodes)` : ''}.`,
    );
  }
  return lines;
}

function redactUrl(text: string): string {
  const url = new URL(text);
  if (url.password !== '') url.password = '***';
  return url.toString();
}

async function main(): Promise<void> {
  const config = parseConfig(process.argv.slice(2));
  if (config === undefined) {
    process.stdout.write(USAGE);
    return;
  }
  const features = config.features;
  const gateway = config.gateway;
  if ((config.scenarios.some(viaCourier) || features.scenarios.length > 0 || gateway.scenarios.length > 0) && !courierEntryExists()) {
    throw new Error(`${courierEntry()} does not exist, so Courier cannot be started; use --scenarios a to measure only the ceiling`);
  }
  const machine = machineInfo();
  const started = new Date();
  log(
    `Courier benchmark: ${machine.cores} cores (${machine.cpuModel}), Node ${machine.node}; ` +
      `N=${config.n}, runs=${config.runs}, C=${config.concurrency.join(',')}, store=${config.store}, nodes=${config.nodes.join(',')}, ` +
      `scenarios=${[...config.scenarios, ...features.scenarios, ...gateway.scenarios].join(',')}`,
  );
  if (features.scenarios.includes('schedules-10k')) {
    log('schedules-10k waits for a minute boundary (up to ~2 min); leave it out of --scenarios to skip it');
  }

  const sink = await SinkProcess.start();
  const ctx: Context = { config, sink };
  const samples: Sample[] = [];
  try {
    const feedsThroughput = features.scenarios.some((s) => s !== 'schedules-10k');
    const primeAt = new Set([
      ...(config.scenarios.length > 0 || gateway.scenarios.length > 0 ? config.concurrency : []),
      ...(feedsThroughput ? [FEATURE_CONCURRENCY] : []),
    ]);
    await primeRunnerAndSink(ctx, [...primeAt]);
    // Runs are the outer loop so slow drift (thermal, other load) spreads over every scenario alike.
    for (let run = 1; run <= config.runs; run++) {
      for (const c of config.concurrency) {
        let ceiling: number | undefined;
        for (const scenario of config.scenarios) {
          for (const nodes of viaCourier(scenario) ? config.nodes : [1]) {
            const sample = await measureThroughput(ctx, scenario, c, run, nodes);
            if (scenario === 'a') ceiling = sample.deliveredPerSec;
            sample.ratioToCeiling = ceiling === undefined ? undefined : sample.deliveredPerSec / ceiling;
            if (isPgBoss(scenario)) {
              const courier = throughputOf(samples, PGBOSS_COUNTERPART[scenario], c, run, config.nodes[0]!);
              if (courier !== undefined) {
                sample.courierPerSec = courier;
                sample.courierOverPgBoss = courier / sample.deliveredPerSec;
              }
            }
            samples.push(sample);
            log(describeSample(sample));
          }
        }
      }
      for (const scenario of config.scenarios.filter((s) => !isPgBoss(s))) {
        for (const nodes of viaCourier(scenario) ? config.nodes : [1]) {
          const sample = await measureLatency(ctx, scenario, run, nodes);
          samples.push(sample);
          log(describeSample(sample));
        }
      }
      const singlePublishC32 = throughputOf(samples, 'b', FEATURE_CONCURRENCY, run, config.nodes[0]!);
      samples.push(...(await measureFeatureRun(sink, features, run, singlePublishC32)));
      samples.push(...(await measureGatewayRun(sink, gateway, run)));
    }
    // Once, not per run: each measurement waits for a minute boundary.
    if (features.scenarios.includes('schedules-10k')) samples.push(await measureSchedules(sink, features, 1));
  } finally {
    await sink.stop();
  }

  const rows = summarize(samples, config.scenarios, config.concurrency, config.nodes, config.store);
  const pgBossRows = summarizePgBoss(samples, config.concurrency);
  const featureRows = summarizeFeatures(samples);
  const gatewayRows = summarizeGateway(samples, gateway);
  const machineLine =
    `Machine: ${machine.cores} cores (${machine.cpuModel}), ${machine.totalMemGiB} GiB RAM, ` +
    `Node ${machine.node}, ${machine.platform}`;
  const nodesTitle = config.nodes.length === 1 && config.nodes[0] === 1 ? '' : `, ${config.nodes.join(' and ')} node(s)`;
  const sections = [`## Courier benchmark — store: ${config.store}${nodesTitle} (${started.toISOString()})`, machineLine];
  if (rows.length > 0) sections.push(markdownTable(rows), notes(config).join('\n'));
  if (pgBossRows.length > 0) {
    sections.push(
      `### Courier vs pg-boss ${PGBOSS_VERSION} on the same PostgreSQL`,
      pgBossTable(pgBossRows, (scenario) => scenarioLabel(scenario, config.store, config.nodes[0]!)),
    );
  }
  if (featureRows.length > 0) sections.push('### Queues, fan-out, schedules', featureTable(featureRows), featureNotes(features, config.runs).join('\n'));
  if (gatewayRows.length > 0) sections.push('### Instance groups and the gateway', gatewayTables(gatewayRows), gatewayNotes(gateway, config.runs).join('\n'));
  process.stdout.write(`\n${sections.join('\n\n')}\n`);

  const resultsFile = resultsPath(config.store, config.nodes);
  writeJson(resultsFile, {
    generatedAt: started.toISOString(),
    durationSec: Math.round((Date.now() - started.getTime()) / 100) / 10,
    machine,
    config: {
      ...config,
      batchSize: BATCH_SIZE,
      latencyRate: LATENCY_RATE,
      latencyBatchSize: LATENCY_BATCH_SIZE,
      latencyConnections: LATENCY_CONNECTIONS,
    },
    pgbossVersion: config.scenarios.some(isPgBoss) ? PGBOSS_VERSION : undefined,
    rows: [...rows, ...pgBossRows, ...featureRows, ...gatewayRows],
    samples,
  });
  log(`\nwrote ${resultsFile}`);
}

function throughputOf(samples: Sample[], scenario: ScenarioId, c: number, run: number, nodes: number): number | undefined {
  return samples.find(
    (s): s is ThroughputSample => s.kind === 'throughput' && s.scenario === scenario && s.concurrency === c && s.run === run && s.nodes === nodes,
  )?.deliveredPerSec;
}

main().catch((error: unknown) => {
  if (error instanceof UsageError || (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
    process.stderr.write(`${error.message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`\nbenchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  // Exit now rather than wait for stray sockets and timers; the 'exit' handler
  // in processes.ts kills any child still running.
  process.exit(1);
});
