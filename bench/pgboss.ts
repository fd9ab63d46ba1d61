/**
 * The pg-boss baseline: the same messages moved by pg-boss on the same
 * PostgreSQL, measured the same way as Courier's (b) and (c), i.e. from the
 * first send to the last arrival at the sink.
 *
 *   publish   the runner (this process) calls `boss.send()` once per message
 *             (scenario pgboss) or `boss.insert()` with 100 jobs (pgboss-batch),
 *             with C calls in flight, as it keeps C publishes in flight to Courier;
 *   deliver   a pg-boss worker in its own process (bench/pgboss-worker.ts), as
 *             Courier is one, POSTs each job's payload to the sink with undici.
 *
 * Each measurement gets a fresh pg-boss schema, dropped afterwards.
 */
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import PgBoss from 'pg-boss';
import type { Target } from './load.js';
import type { Describable } from './measure.js';
import { OutputTail, exited, spawnManaged, stopChild } from './processes.js';
import { encodeMessage } from './protocol.js';
import { POSTGRES_URL, dropPostgresSchema, freshName } from './stores.js';

const WORKER_SCRIPT = fileURLToPath(new URL('./pgboss-worker.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const START_TIMEOUT_MS = 30_000;
export const PGBOSS_QUEUE = 'bench';
export const PGBOSS_VERSION = (createRequire(import.meta.url)('pg-boss/package.json') as { version: string }).version;

/**
 * How the pg-boss side is tuned, chosen to make it as fast as it goes here:
 *  - pollingIntervalSeconds 0.5, pg-boss's minimum, for the idle poll;
 *  - a worker that found jobs fetches again at once: its handler calls
 *    `boss.notifyWorker(id)` (public API), which skips the loop's sleep. Without
 *    that, pg-boss 10 sleeps out the rest of the 0.5 s after every batch, full
 *    or not, capping a worker at batchSize per 0.5 s;
 *  - `workers` concurrent `boss.work()` loops (pg-boss 10's replacement for
 *    teamSize), each fetching up to `batchSize` jobs, posting them all at once;
 *  - `priority: false`: the fetch skips the ORDER BY priority;
 *  - no maintenance or cron supervision in either process (supervise/schedule off).
 */
export interface PgBossSettings {
  workers: number;
  batchSize: number;
  pollingIntervalSeconds: number;
  /** undici connections from the worker to the sink: Courier's default per-origin cap */
  sinkConnections: number;
  /** the runner's pg pool for send/insert: min(C, this) */
  sendPoolMax: number;
}

export const PGBOSS_DEFAULTS: PgBossSettings = {
  workers: 4,
  batchSize: 100,
  pollingIntervalSeconds: 0.5,
  sinkConnections: 256,
  sendPoolMax: 64,
};

export interface PgBossReadyLine {
  event: 'ready';
}

/** What the runner hands the worker process, as JSON in PGBOSS_BENCH. */
export interface PgBossWorkerConfig {
  connectionString: string;
  schema: string;
  queue: string;
  sinkUrl: string;
  workers: number;
  batchSize: number;
  pollingIntervalSeconds: number;
  sinkConnections: number;
}

export interface JobData {
  /** the message body, posted to the sink byte for byte */
  b: string;
}

function bossOptions(schema: string, max: number): PgBoss.ConstructorOptions {
  return { connectionString: POSTGRES_URL, schema, max, supervise: false, schedule: false, application_name: 'courier-bench-pgboss' };
}

/** `boss.send` per message, or `boss.insert` per unit of `unitSize` jobs. */
class PgBossTarget implements Target {
  constructor(
    private readonly boss: PgBoss,
    readonly unitSize: number,
  ) {}

  async send(run: string, first: number, count: number, sentAt: number): Promise<void> {
    if (this.unitSize === 1) {
      const data: JobData = { b: encodeMessage(run, first, sentAt) };
      const id = await this.boss.send(PGBOSS_QUEUE, data);
      if (id === null) throw new Error(`pg-boss did not accept message ${first}`);
      return;
    }
    const jobs: PgBoss.JobInsert<JobData>[] = [];
    for (let seq = first; seq < first + count; seq++) jobs.push({ name: PGBOSS_QUEUE, data: { b: encodeMessage(run, seq, sentAt) } });
    await this.boss.insert(jobs);
  }

  async close(): Promise<void> {}
}

export class PgBossBench implements Describable {
  private readonly errors: string[] = [];

  private constructor(
    private readonly boss: PgBoss,
    readonly schema: string,
    private readonly settings: PgBossSettings,
    private child: ChildProcess | undefined,
    private readonly output: OutputTail,
  ) {}

  /** A fresh schema with one queue, the runner's sending side, and a worker process delivering to `sinkUrl`. */
  static async start(sinkUrl: string, settings: PgBossSettings, concurrency: number): Promise<PgBossBench> {
    const schema = freshName('pgboss_bench_');
    const boss = new PgBoss(bossOptions(schema, Math.max(2, Math.min(concurrency, settings.sendPoolMax))));
    const bench = new PgBossBench(boss, schema, settings, undefined, new OutputTail());
    boss.on('error', (error) => bench.recordError(error));
    try {
      // The runner migrates before the worker starts, so the two never race to create the schema.
      await boss.start();
      await boss.createQueue(PGBOSS_QUEUE);
      await bench.startWorker(sinkUrl);
    } catch (error) {
      await bench.stop();
      throw error;
    }
    return bench;
  }

  target(unitSize: number): Target {
    return new PgBossTarget(this.boss, unitSize);
  }

  describe(): string {
    const status = this.child === undefined ? 'not started' : this.child.exitCode === null && this.child.signalCode === null ? 'running' : `exited (code ${this.child.exitCode}, signal ${this.child.signalCode})`;
    const errors = this.errors.length === 0 ? '' : `\nsender errors:\n${this.errors.join('\n')}`;
    const tail = this.output.toString();
    return `pg-boss worker (schema ${this.schema}) is ${status}; its last output:\n${tail === '' ? '(none)' : tail}${errors}`;
  }

  async stop(): Promise<void> {
    if (this.child !== undefined) await stopChild(this.child);
    await this.boss.stop({ graceful: false, wait: true }).catch((error: unknown) => this.recordError(error));
    await dropPostgresSchema(this.schema);
  }

  private recordError(error: unknown): void {
    if (this.errors.length < 20) this.errors.push(error instanceof Error ? error.message : String(error));
  }

  private async startWorker(sinkUrl: string): Promise<void> {
    const config: PgBossWorkerConfig = {
      connectionString: POSTGRES_URL,
      schema: this.schema,
      queue: PGBOSS_QUEUE,
      sinkUrl,
      workers: this.settings.workers,
      batchSize: this.settings.batchSize,
      pollingIntervalSeconds: this.settings.pollingIntervalSeconds,
      sinkConnections: this.settings.sinkConnections,
    };
    const child = spawnManaged(process.execPath, ['--import', 'tsx', WORKER_SCRIPT], {
      cwd: REPO_ROOT,
      env: { ...process.env, PGBOSS_BENCH: JSON.stringify(config) },
      // stdin stays a pipe: the worker exits when it closes, i.e. when the runner dies.
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stderr!.on('data', (chunk: Buffer) => this.output.push(chunk));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`pg-boss worker not ready within ${START_TIMEOUT_MS} ms\n${this.describe()}`)), START_TIMEOUT_MS);
      const lines = createInterface({ input: child.stdout! });
      lines.once('line', (line) => {
        clearTimeout(timer);
        let ready: PgBossReadyLine | undefined;
        try {
          ready = JSON.parse(line) as PgBossReadyLine;
        } catch {
          ready = undefined;
        }
        if (ready?.event === 'ready') resolve();
        else reject(new Error(`pg-boss worker printed an unexpected first line: ${line}\n${this.describe()}`));
      });
      void exited(child).then(() => {
        clearTimeout(timer);
        reject(new Error(`pg-boss worker exited during startup\n${this.describe()}`));
      });
    });
  }
}
