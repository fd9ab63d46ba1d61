/**
 * Feature scenarios: what queues, URL-group fan-out and schedules cost next
 * to plain delivery, on the same machine and in the same run.
 *
 *   queue-p1, queue-p32  N messages through `POST /v2/enqueue/<queue>/<sink>` into
 *                        a queue upserted with parallelism 1 or 32; deliveries/s
 *                        at the sink from the first enqueue to the last arrival.
 *   fanout-10            N/10 publishes to a URL group of 10 sink paths; every
 *                        endpoint's delivery counts.
 *   schedules-10k        10,000 `* * * * *` schedules; for the first minute
 *                        boundary after they all exist, each delivery's arrival
 *                        − that boundary (the tick's due time).
 *
 * Throughput is compared with the runner posting straight to the sink at
 * C=32 (and, for queue-p1, at C=1: one message at a time is what parallelism
 * 1 allows), both measured in the same run just before. Each scenario gets a
 * fresh Courier; one that fails is recorded as such and the others still run.
 */
import { Pool, request } from 'undici';
import { CourierProcess } from './courier-process.js';
import { CourierRouteTarget, DirectTarget, closedLoop, type Target } from './load.js';
import { deliver, log, perSecond, type DeliverOptions } from './measure.js';
import { encodeMessage, preciseNow } from './protocol.js';
import { sleep } from './processes.js';
import {
  FEATURE_LABELS,
  type CeilingId,
  type DeliverySample,
  type FailedSample,
  type FeatureScenarioId,
  type Sample,
  type ScheduleSample,
} from './report.js';
import type { SinkProcess } from './sink-process.js';
import type { StoreKind } from './stores.js';
import { formatFixed, formatInteger, percentile } from './stats.js';

/** Requests the runner keeps in flight in every feature scenario, and the C of the main ceiling. */
export const FEATURE_CONCURRENCY = 32;
/** Concurrent `POST /v2/schedules/…` while creating the schedules. */
export const SCHEDULE_CREATE_CONCURRENCY = 32;
export const FANOUT_ENDPOINTS = 10;
const WARMUP_QUEUE = 'bench-warmup';
const GROUP = 'bench-fanout';
const CRON = '* * * * *';
/** A tick's deliveries must all arrive within this long after its due time; later ones belong to the next tick. */
const TICK_WINDOW_MS = 60_000;
/**
 * Minimum gap between the last schedule created and the tick measured, so the
 * sink is pointed at the tick before it fires. A closer boundary is skipped.
 */
const TICK_LEAD_MS = 1_000;
/** With parallelism 1, each message waits for the one before: allow 50 ms each (a floor of 20/s) before failing. */
const SERIAL_MS_PER_DELIVERY = 50;
const PROBE_EVERY_MS = 100;
/**
 * Ceilings run at tens of thousands of msgs/s: a --quick N would time them
 * over a few milliseconds, short enough for one GC pause to halve them.
 */
const CEILING_MIN_MESSAGES = { 'ceiling-c32': 10_000, 'ceiling-c1': 2_000 } as const;

export interface FeatureConfig {
  /** the store every feature scenario's Courier runs on (a single node) */
  store: StoreKind;
  scenarios: FeatureScenarioId[];
  /** messages per throughput measurement: ceiling C=32, queue-p32, fan-out deliveries */
  n: number;
  /** messages for queue-p1 and its C=1 ceiling */
  queueP1Messages: number;
  warmup: number;
  schedules: number;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function failed(scenario: FailedSample['scenario'], run: number, error: unknown): FailedSample {
  const text = errorText(error);
  log(`run ${run}  ${FEATURE_LABELS[scenario]}: FAILED: ${text}`);
  return { kind: 'failed', scenario, run, error: text.slice(0, 4_000) };
}

async function closing<T>(target: Target, use: (target: Target) => Promise<T>): Promise<T> {
  try {
    return await use(target);
  } finally {
    await target.close();
  }
}

/** Warms a freshly started Courier's enqueue or publish path (not timed). */
async function warmUp(
  sink: SinkProcess,
  courier: CourierProcess,
  tag: string,
  target: Target,
  messages: number,
  deliveries: number,
  options?: DeliverOptions,
): Promise<void> {
  if (messages === 0) return;
  await deliver(sink, courier, `${tag}-warmup`, deliveries, () => closedLoop(target, `${tag}-warmup`, messages, FEATURE_CONCURRENCY), options);
}

async function measureCeiling(sink: SinkProcess, id: CeilingId, concurrency: number, n: number, warmup: number, run: number): Promise<DeliverySample> {
  const messages = Math.max(n, CEILING_MIN_MESSAGES[id]);
  return closing(new DirectTarget(sink.deliveryUrl, concurrency), async (target) => {
    const tag = `${id}-r${run}`;
    if (warmup > 0) await deliver(sink, undefined, `${tag}-warmup`, warmup, () => closedLoop(target, `${tag}-warmup`, warmup, concurrency));
    const { sent, stats } = await deliver(sink, undefined, tag, messages, () => closedLoop(target, tag, messages, concurrency));
    return {
      kind: 'delivery',
      scenario: id,
      run,
      messages,
      deliveries: messages,
      publishConcurrency: concurrency,
      deliveredPerSec: perSecond(messages, sent.firstSendAt, stats.lastArrival),
      acceptedPerSec: perSecond(messages, sent.firstSendAt, sent.lastAckAt),
      ratioToCeiling: undefined,
      duplicates: stats.duplicates,
      retried: stats.retried,
      stale: stats.stale,
    };
  });
}

async function upsertQueue(courier: CourierProcess, queueName: string, parallelism: number): Promise<void> {
  await courier.api('POST', '/v2/queues', { body: JSON.stringify({ queueName, parallelism, paused: false }) });
}

/**
 * The queue's `lag` once the sink has every delivery. Courier settles a
 * message just after its delivery is answered, so give it a moment; a lag
 * that stays above 0 is worth reporting.
 */
async function settledLag(courier: CourierProcess, queueName: string): Promise<number | undefined> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    const queue = JSON.parse(await courier.api('GET', `/v2/queues/${queueName}`)) as { lag?: unknown };
    const lag = typeof queue.lag === 'number' ? queue.lag : undefined;
    if (lag === 0 || lag === undefined || Date.now() > deadline) return lag;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function measureQueue(sink: SinkProcess, config: FeatureConfig, run: number, parallelism: 1 | 32): Promise<DeliverySample> {
  const scenario = parallelism === 1 ? 'queue-p1' : 'queue-p32';
  const messages = parallelism === 1 ? config.queueP1Messages : config.n;
  const courier = await CourierProcess.start(config.store);
  try {
    const tag = `${scenario}-r${run}`;
    const queueName = `bench-p${parallelism}`;
    // The warm-up goes through its own queue so it cannot delay the measured one.
    await upsertQueue(courier, WARMUP_QUEUE, FEATURE_CONCURRENCY);
    await upsertQueue(courier, queueName, parallelism);
    const enqueue = (queue: string) => new CourierRouteTarget(courier.origin, courier.token, `/v2/enqueue/${queue}/${sink.deliveryUrl}`, FEATURE_CONCURRENCY);
    await closing(enqueue(WARMUP_QUEUE), (target) => warmUp(sink, courier, tag, target, config.warmup, config.warmup));
    return await closing(enqueue(queueName), async (target) => {
      const { sent, stats } = await deliver(sink, courier, tag, messages, () => closedLoop(target, tag, messages, FEATURE_CONCURRENCY), {
        msPerDelivery: parallelism === 1 ? SERIAL_MS_PER_DELIVERY : undefined,
      });
      const lagAfter = await settledLag(courier, queueName);
      return {
        kind: 'delivery',
        scenario,
        run,
        messages,
        deliveries: messages,
        publishConcurrency: FEATURE_CONCURRENCY,
        parallelism,
        deliveredPerSec: perSecond(messages, sent.firstSendAt, stats.lastArrival),
        acceptedPerSec: perSecond(messages, sent.firstSendAt, sent.lastAckAt),
        ratioToCeiling: undefined,
        ...(lagAfter === undefined ? {} : { lagAfter }),
        duplicates: stats.duplicates,
        retried: stats.retried,
        stale: stats.stale,
      };
    });
  } finally {
    await courier.stop();
  }
}

async function measureFanout(sink: SinkProcess, config: FeatureConfig, run: number): Promise<DeliverySample> {
  const messages = Math.ceil(config.n / FANOUT_ENDPOINTS);
  const deliveries = messages * FANOUT_ENDPOINTS;
  const courier = await CourierProcess.start(config.store);
  try {
    const tag = `fanout-r${run}`;
    // Distinct paths `/sink/f/<k>`: the sink counts a message once per endpoint index k.
    const endpoints = Array.from({ length: FANOUT_ENDPOINTS }, (_, k) => ({ url: `${sink.origin}/sink/f/${k}` }));
    await courier.api('POST', `/v2/topics/${GROUP}/endpoints`, { body: JSON.stringify({ endpoints }) });
    const sinkKey = { key: 'seq-path', paths: FANOUT_ENDPOINTS, countHeader: 'upstash-topic-name' } as const;
    return await closing(
      new CourierRouteTarget(courier.origin, courier.token, `/v2/publish/${GROUP}`, FEATURE_CONCURRENCY, FANOUT_ENDPOINTS),
      async (target) => {
        const warmupMessages = Math.ceil(config.warmup / FANOUT_ENDPOINTS);
        await warmUp(sink, courier, tag, target, warmupMessages, warmupMessages * FANOUT_ENDPOINTS, { sinkKey });
        const { sent, stats } = await deliver(sink, courier, tag, deliveries, () => closedLoop(target, tag, messages, FEATURE_CONCURRENCY), {
          sinkKey,
        });
        return {
          kind: 'delivery',
          scenario: 'fanout-10',
          run,
          messages,
          deliveries,
          publishConcurrency: FEATURE_CONCURRENCY,
          endpoints: FANOUT_ENDPOINTS,
          deliveredPerSec: perSecond(deliveries, sent.firstSendAt, stats.lastArrival),
          acceptedPerSec: perSecond(messages, sent.firstSendAt, sent.lastAckAt),
          ratioToCeiling: undefined,
          withTopicHeader: stats.withHeader,
          duplicates: stats.duplicates,
          retried: stats.retried,
          stale: stats.stale,
        };
      },
    );
  } finally {
    await courier.stop();
  }
}

/**
 * The ceilings, queue-p1, queue-p32 and fanout-10, as selected, for one run.
 * `singlePublishC32` is scenario (b)'s delivered msgs/s at C=32 in this run, when measured.
 */
export async function measureFeatureRun(sink: SinkProcess, config: FeatureConfig, run: number, singlePublishC32: number | undefined): Promise<Sample[]> {
  const selected = (id: FeatureScenarioId) => config.scenarios.includes(id);
  const samples: Sample[] = [];
  const record = (sample: DeliverySample | FailedSample) => {
    samples.push(sample);
    if (sample.kind !== 'failed') log(describeFeatureSample(sample));
  };
  if (!(selected('queue-p1') || selected('queue-p32') || selected('fanout-10'))) return samples;

  let ceiling: number | undefined;
  try {
    const sample = await measureCeiling(sink, 'ceiling-c32', FEATURE_CONCURRENCY, config.n, config.warmup, run);
    ceiling = sample.deliveredPerSec;
    sample.ratioToCeiling = 1;
    record(sample);
  } catch (error) {
    record(failed('ceiling-c32', run, error));
  }
  const toCeiling = (perSec: number) => (ceiling === undefined ? undefined : perSec / ceiling);

  let p1: number | undefined;
  if (selected('queue-p1')) {
    let serialCeiling: number | undefined;
    try {
      const sample = await measureCeiling(sink, 'ceiling-c1', 1, config.queueP1Messages, Math.min(config.warmup, config.queueP1Messages), run);
      serialCeiling = sample.deliveredPerSec;
      sample.ratioToCeiling = toCeiling(sample.deliveredPerSec);
      record(sample);
    } catch (error) {
      record(failed('ceiling-c1', run, error));
    }
    try {
      const sample = await measureQueue(sink, config, run, 1);
      p1 = sample.deliveredPerSec;
      sample.ratioToCeiling = toCeiling(sample.deliveredPerSec);
      if (serialCeiling !== undefined) sample.ratioToSerialCeiling = sample.deliveredPerSec / serialCeiling;
      record(sample);
    } catch (error) {
      record(failed('queue-p1', run, error));
    }
  }
  if (selected('queue-p32')) {
    try {
      const sample = await measureQueue(sink, config, run, 32);
      sample.ratioToCeiling = toCeiling(sample.deliveredPerSec);
      if (p1 !== undefined) sample.ratioToP1 = sample.deliveredPerSec / p1;
      record(sample);
    } catch (error) {
      record(failed('queue-p32', run, error));
    }
  }
  if (selected('fanout-10')) {
    try {
      const sample = await measureFanout(sink, config, run);
      sample.ratioToCeiling = toCeiling(sample.deliveredPerSec);
      if (singlePublishC32 !== undefined) sample.ratioToSinglePublish = sample.deliveredPerSec / singlePublishC32;
      record(sample);
    } catch (error) {
      record(failed('fanout-10', run, error));
    }
  }
  return samples;
}

interface Created {
  firstId: string;
  lastId: string;
  startedAt: number;
  finishedAt: number;
}

/** Creates `count` schedules to `/sink/<tag>/<i>`, `SCHEDULE_CREATE_CONCURRENCY` requests at a time. */
async function createSchedules(sink: SinkProcess, courier: CourierProcess, tag: string, count: number): Promise<Created> {
  const pool = new Pool(courier.origin, { connections: SCHEDULE_CREATE_CONCURRENCY, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const headers = { authorization: `Bearer ${courier.token}`, 'content-type': 'application/json', 'upstash-cron': CRON };
  let next = 0;
  let stop = false;
  let firstId = '';
  let lastId = '';
  const worker = async (): Promise<void> => {
    try {
      while (!stop && next < count) {
        const index = next++;
        const path = `/v2/schedules/${sink.pathUrl(tag, index)}`;
        const res = await pool.request({ method: 'POST', path, headers, body: encodeMessage(tag, index, 0) });
        const text = await res.body.text();
        if (res.statusCode !== 200) throw new Error(`POST ${path} answered ${res.statusCode}: ${text.slice(0, 300)}`);
        const { scheduleId } = JSON.parse(text) as { scheduleId?: unknown };
        if (typeof scheduleId !== 'string') throw new Error(`POST ${path}: no scheduleId in ${text.slice(0, 300)}`);
        if (index === 0) firstId = scheduleId;
        lastId = scheduleId;
      }
    } catch (error) {
      stop = true;
      throw error;
    }
  };
  const startedAt = Date.now();
  try {
    await Promise.all(Array.from({ length: SCHEDULE_CREATE_CONCURRENCY }, worker));
  } finally {
    await pool.close();
  }
  return { firstId, lastId, startedAt, finishedAt: Date.now() };
}

/**
 * Times `GET /health` every PROBE_EVERY_MS from `from` until stopped: the
 * longest answer shows whether firing the tick stalls Courier's event loop
 * (and with it the whole API).
 */
class HealthProbe {
  private readonly timesMs: number[] = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(origin: string, from: number) {
    this.done = this.loop(origin, from);
  }

  private async loop(origin: string, from: number): Promise<void> {
    await sleep(Math.max(0, from - Date.now()));
    while (!this.stopped) {
      const started = preciseNow();
      try {
        const res = await request(`${origin}/health`, { headersTimeout: 60_000, bodyTimeout: 60_000 });
        await res.body.text();
        this.timesMs.push(preciseNow() - started);
      } catch {
        // A refused probe is not a latency; the scenario's own checks report a dead Courier.
      }
      await sleep(PROBE_EVERY_MS);
    }
  }

  async stop(): Promise<{ probes: number; p50Ms: number | undefined; maxMs: number | undefined }> {
    this.stopped = true;
    await this.done;
    return { probes: this.timesMs.length, p50Ms: percentile(this.timesMs, 50), maxMs: percentile(this.timesMs, 100) };
  }
}

async function nextScheduleTime(courier: CourierProcess, scheduleId: string): Promise<number | undefined> {
  const schedule = JSON.parse(await courier.api('GET', `/v2/schedules/${scheduleId}`)) as { nextScheduleTime?: unknown };
  return typeof schedule.nextScheduleTime === 'number' ? schedule.nextScheduleTime : undefined;
}

/**
 * schedules-10k: create the schedules, then measure the first minute
 * boundary at least TICK_LEAD_MS after the last was created. Waits up to two
 * minutes; nothing is deleted afterwards, the Courier and its data dir go.
 */
export async function measureSchedules(sink: SinkProcess, config: FeatureConfig, run: number): Promise<Sample> {
  const count = config.schedules;
  const tag = `sched-r${run}`;
  try {
    const courier = await CourierProcess.start(config.store);
    try {
      // Until the tick is known, every arrival counts as early: a schedule must not fire on creation.
      await sink.reset(tag, count, { key: 'path', window: { from: Number.MAX_SAFE_INTEGER, to: Number.MAX_SAFE_INTEGER } });
      log(`run ${run}  ${FEATURE_LABELS['schedules-10k']}: creating ${formatInteger(count)} schedules (${SCHEDULE_CREATE_CONCURRENCY} in flight)…`);
      const created = await createSchedules(sink, courier, tag, count);
      const createdPerSec = count / Math.max(0.001, (created.finishedAt - created.startedAt) / 1000);
      const tickAt = Math.ceil((created.finishedAt + TICK_LEAD_MS) / 60_000) * 60_000;
      const window = { from: tickAt, to: tickAt + TICK_WINDOW_MS };
      const beforeTick = await sink.reset(tag, count, { key: 'path', window, countHeader: 'upstash-schedule-id' });
      const courierNext = {
        first: await nextScheduleTime(courier, created.firstId),
        last: await nextScheduleTime(courier, created.lastId),
      };
      log(
        `run ${run}  created at ${formatInteger(createdPerSec)}/s; waiting ${formatFixed((tickAt - Date.now()) / 1000, 1)} s for the minute ` +
          `boundary ${new Date(tickAt).toISOString()}, then up to ${TICK_WINDOW_MS / 1000} s for the deliveries (skip with --scenarios)`,
      );
      const probe = new HealthProbe(courier.origin, tickAt - 1_000);
      const stats = await sink.waitUntil(count, window.to + 1_000);
      const health = await probe.stop();
      const report = await sink.report();
      const latencies = report.latenciesMs;
      const sample: ScheduleSample = {
        kind: 'schedule',
        scenario: 'schedules-10k',
        run,
        schedules: count,
        createConcurrency: SCHEDULE_CREATE_CONCURRENCY,
        createdPerSec,
        tickAt: new Date(tickAt).toISOString(),
        courierNextScheduleTime: courierNext,
        arrived: stats.unique,
        complete: stats.unique === count,
        early: beforeTick.early + stats.early,
        late: stats.late,
        duplicates: stats.duplicates,
        stale: stats.stale,
        retried: stats.retried,
        withScheduleIdHeader: stats.withHeader,
        distinctScheduleIds: stats.distinctHeaderValues,
        firstMs: percentile(latencies, 0),
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        maxMs: percentile(latencies, 100),
        healthDuringTick: health,
        deliveredPerSec: stats.lastArrival === null || stats.lastArrival <= tickAt ? undefined : stats.unique / ((stats.lastArrival - tickAt) / 1000),
      };
      log(describeFeatureSample(sample));
      if (!sample.complete) log(`run ${run}  schedules: only ${sample.arrived}/${count} arrived for the tick\n${courier.describe()}`);
      return sample;
    } finally {
      await courier.stop();
    }
  } catch (error) {
    return failed('schedules-10k', run, error);
  }
}

export function describeFeatureSample(sample: DeliverySample | ScheduleSample): string {
  const extras = [
    sample.duplicates > 0 ? `${sample.duplicates} duplicates` : '',
    sample.retried > 0 ? `${sample.retried} retried` : '',
    sample.stale > 0 ? `${sample.stale} stale` : '',
  ];
  if (sample.kind === 'schedule') {
    extras.push(sample.early > 0 ? `${sample.early} early` : '', sample.late > 0 ? `${sample.late} late` : '');
    const next = sample.courierNextScheduleTime;
    const tick = Date.parse(sample.tickAt);
    const nextNote = next.first === tick && next.last === tick ? '' : `; Courier's nextScheduleTime: first ${next.first}, last ${next.last}, tick ${tick}`;
    return (
      `run ${sample.run}  ${FEATURE_LABELS[sample.scenario]} @ ${sample.tickAt}: ${formatInteger(sample.arrived)}/${formatInteger(sample.schedules)} arrived, ` +
      `arrival − due: first ${formatFixed(sample.firstMs, 0)} ms, p50 ${formatFixed(sample.p50Ms, 0)} ms, p99 ${formatFixed(sample.p99Ms, 0)} ms, ` +
      `max ${formatFixed(sample.maxMs, 0)} ms; GET /health during the tick: p50 ${formatFixed(sample.healthDuringTick.p50Ms, 1)} ms, ` +
      `max ${formatFixed(sample.healthDuringTick.maxMs, 0)} ms; ${sample.withScheduleIdHeader} with Upstash-Schedule-Id (${sample.distinctScheduleIds} distinct)` +
      nextNote +
      tail(extras)
    );
  }
  if (sample.lagAfter !== undefined && sample.lagAfter !== 0) extras.push(`queue lag still ${sample.lagAfter} after the last arrival`);
  if (sample.withTopicHeader !== undefined && sample.withTopicHeader !== sample.deliveries) {
    extras.push(`${sample.deliveries - sample.withTopicHeader} without Upstash-Topic-Name`);
  }
  const ratios = [
    sample.ratioToCeiling === undefined ? '' : `÷ ceiling C=32 ${formatFixed(sample.ratioToCeiling, 3)}`,
    sample.ratioToSerialCeiling === undefined ? '' : `÷ C=1 ceiling ${formatFixed(sample.ratioToSerialCeiling, 3)}`,
    sample.ratioToP1 === undefined ? '' : `÷ queue-p1 ${formatFixed(sample.ratioToP1, 1)}`,
    sample.ratioToSinglePublish === undefined ? '' : `÷ (b) C=32 ${formatFixed(sample.ratioToSinglePublish, 3)}`,
  ].filter((r) => r !== '');
  const n = sample.deliveries === sample.messages ? formatInteger(sample.messages) : `${formatInteger(sample.messages)} msgs → ${formatInteger(sample.deliveries)} deliveries`;
  return (
    `run ${sample.run}  ${FEATURE_LABELS[sample.scenario]}: ${n}, ${formatInteger(sample.deliveredPerSec)} deliveries/s ` +
    `(accepted ${formatInteger(sample.acceptedPerSec)} msgs/s)  ${ratios.join(', ')}${tail(extras)}`
  );
}

function tail(extras: string[]): string {
  const present = extras.filter((e) => e !== '');
  return present.length > 0 ? `  [${present.join(', ')}]` : '';
}

export function featureNotes(config: FeatureConfig, runs: number): string[] {
  const selected = (id: FeatureScenarioId) => config.scenarios.includes(id);
  const notes: string[] = [];
  if (selected('queue-p1') || selected('queue-p32') || selected('fanout-10')) {
    notes.push(
      `- Feature scenarios: the runner keeps ${FEATURE_CONCURRENCY} requests in flight; deliveries/s = deliveries at the sink ÷ ` +
        `(last arrival − first send), median of ${runs} run(s); "÷ ceiling C=32" is against the runner posting straight to the ` +
        `sink at C=${FEATURE_CONCURRENCY} just before, in the same run (N=${formatInteger(Math.max(config.n, CEILING_MIN_MESSAGES['ceiling-c32']))}).`,
    );
  }
  if (selected('queue-p1') || selected('queue-p32')) {
    notes.push(
      `- queue-p1: N=${formatInteger(config.queueP1Messages)} (one delivery at a time: a round trip plus Courier's settle per ` +
        `message); "÷ C=1 ceiling" is against the runner posting straight to the sink one request at a time ` +
        `(N=${formatInteger(Math.max(config.queueP1Messages, CEILING_MIN_MESSAGES['ceiling-c1']))}). ` +
        `queue-p32: N=${formatInteger(config.n)}. Warm-up goes through a separate queue with parallelism ${FEATURE_CONCURRENCY}.`,
    );
  }
  if (selected('fanout-10')) {
    const messages = Math.ceil(config.n / FANOUT_ENDPOINTS);
    notes.push(
      `- fanout-10: ${formatInteger(messages)} publishes to a group of ${FANOUT_ENDPOINTS} sink paths = ` +
        `${formatInteger(messages * FANOUT_ENDPOINTS)} deliveries; "÷ (b) C=32" is against single publish at C=32 in the same ` +
        `run (only when (b) ran at C=32).`,
    );
  }
  if (selected('schedules-10k')) {
    notes.push(
      `- schedules-10k: ${formatInteger(config.schedules)} schedules \`${CRON}\` to distinct sink paths, created ` +
        `${SCHEDULE_CREATE_CONCURRENCY} at a time, measured once (not per run). It waits for the first minute boundary at least ` +
        `${TICK_LEAD_MS / 1000} s after the last was created (up to ~61 s), then up to ${TICK_WINDOW_MS / 1000} s for the ` +
        `deliveries; latency = arrival (sink wall clock) − the boundary; deliveries/s = arrived ÷ (last arrival − boundary). ` +
        `Arrivals before the boundary count as early. All ${formatInteger(config.schedules)} must arrive. "GET /health ≤" is ` +
        `the longest answer to a probe sent every ${PROBE_EVERY_MS} ms from 1 s before the boundary: how long the API stalls.`,
    );
  }
  return notes;
}
