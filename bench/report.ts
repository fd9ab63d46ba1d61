/** Turns raw measurements into the summary rows, the Markdown table and the JSON file. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, platform, arch, release, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { formatFixed, formatInteger, medianOf } from './stats.js';

export type ScenarioId = 'a' | 'b' | 'c';

export const SCENARIO_LABELS: Record<ScenarioId, string> = {
  a: '(a) direct → sink (ceiling)',
  b: '(b) single publish via Courier',
  c: '(c) batch publish via Courier',
};

interface SampleBase {
  scenario: ScenarioId;
  run: number;
  messages: number;
  /** messages per request */
  unitSize: number;
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

export type Sample = ThroughputSample | LatencySample;

export interface SummaryRow {
  scenario: ScenarioId;
  kind: 'throughput' | 'latency';
  label: string;
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
export function summarize(samples: Sample[], scenarios: ScenarioId[], concurrency: number[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const c of concurrency) {
    for (const scenario of scenarios) {
      const group = samples.filter(
        (s): s is ThroughputSample => s.kind === 'throughput' && s.scenario === scenario && s.concurrency === c,
      );
      if (group.length === 0) continue;
      const requestConcurrency = group[0]!.requestConcurrency;
      rows.push({
        scenario,
        kind: 'throughput',
        label: SCENARIO_LABELS[scenario] + (group[0]!.unitSize > 1 ? ` ×${group[0]!.unitSize}` : ''),
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
  for (const scenario of scenarios) {
    const group = samples.filter((s): s is LatencySample => s.kind === 'latency' && s.scenario === scenario);
    if (group.length === 0) continue;
    const first = group[0]!;
    rows.push({
      scenario,
      kind: 'latency',
      label: `${SCENARIO_LABELS[scenario].replace(' (ceiling)', '')}${first.unitSize > 1 ? ` ×${first.unitSize}` : ''} @ ${formatInteger(first.offeredPerSec)} msgs/s`,
      concurrency: first.connections,
      msgsPerSec: medianOf(group.map((s) => s.deliveredPerSec)),
      ratioToCeiling: undefined,
      p50Ms: medianOf(group.map((s) => s.p50Ms)),
      p99Ms: medianOf(group.map((s) => s.p99Ms)),
      runs: group.length,
    });
  }
  return rows;
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

export function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}
