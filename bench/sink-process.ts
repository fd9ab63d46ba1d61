/** Runner-side handle on the sink process (bench/sink.ts): start, reset, wait, report. */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { OutputTail, exited, spawnManaged, stopChild } from './processes.js';
import type { ResetRequest, SinkReadyLine, SinkReport, SinkStats } from './protocol.js';

const SINK_SCRIPT = fileURLToPath(new URL('./sink.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const START_TIMEOUT_MS = 15_000;

export interface WaitOptions {
  /** fail if no new unique message arrives for this long */
  stallTimeoutMs: number;
  /** fail if not complete after this long in total */
  totalTimeoutMs: number;
  /** extra detail for the error message (e.g. the Courier's recent output) */
  describeFailure?: () => string;
}

export class SinkProcess {
  private constructor(
    private readonly child: ChildProcess,
    private readonly output: OutputTail,
    readonly port: number,
  ) {}

  static async start(): Promise<SinkProcess> {
    const output = new OutputTail();
    const child = spawnManaged(process.execPath, ['--import', 'tsx', SINK_SCRIPT], {
      cwd: REPO_ROOT,
      env: { ...process.env, SINK_PORT: '0' },
      // stdin stays a pipe: the sink exits when it closes, i.e. when the runner dies.
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stderr!.on('data', (chunk: Buffer) => output.push(chunk));

    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sink did not start within ${START_TIMEOUT_MS} ms\n${output}`)), START_TIMEOUT_MS);
      const lines = createInterface({ input: child.stdout! });
      lines.once('line', (line) => {
        clearTimeout(timer);
        try {
          const ready = JSON.parse(line) as SinkReadyLine;
          if (ready.event !== 'listening') throw new Error('unexpected first line');
          resolve(ready.port);
        } catch {
          reject(new Error(`sink printed an unexpected first line: ${line}\n${output}`));
        }
      });
      void exited(child).then(() => {
        clearTimeout(timer);
        reject(new Error(`sink exited during startup (code ${child.exitCode})\n${output}`));
      });
    });
    return new SinkProcess(child, output, port);
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The URL deliveries should go to. */
  get deliveryUrl(): string {
    return `${this.origin}/sink`;
  }

  /** A delivery URL whose path ends in `/<run>/<index>`, for the sink's `path` key. */
  pathUrl(run: string, index: number): string {
    return `${this.origin}/sink/${run}/${index}`;
  }

  /** Starts a new measurement; answers the final stats of the one it replaces. */
  async reset(run: string, expected: number, options: Omit<ResetRequest, 'run' | 'expected'> = {}): Promise<SinkStats> {
    const body: ResetRequest = { run, expected, ...options };
    return JSON.parse(await this.control('POST', '/_control/reset', JSON.stringify(body))) as SinkStats;
  }

  /**
   * Long-polls until `expected` unique units arrived or the wall clock passes
   * `deadline` (Date.now() ms), whichever is first; never throws for lack of arrivals.
   */
  async waitUntil(expected: number, deadline: number): Promise<SinkStats> {
    for (;;) {
      const timeoutMs = Math.max(1, Math.min(1000, deadline - Date.now()));
      const stats = JSON.parse(await this.control('GET', `/_control/wait?target=${expected}&timeoutMs=${timeoutMs}`)) as SinkStats;
      if (stats.unique >= expected || Date.now() >= deadline) return stats;
    }
  }

  /** Long-polls until all expected messages arrived; throws on a stall or the total timeout. */
  async waitForAll(expected: number, options: WaitOptions): Promise<SinkStats> {
    const started = Date.now();
    let lastProgressAt = started;
    let lastUnique = -1;
    for (;;) {
      const stats = JSON.parse(await this.control('GET', `/_control/wait?target=${expected}&timeoutMs=1000`)) as SinkStats;
      if (stats.unique >= expected) return stats;
      const now = Date.now();
      if (stats.unique !== lastUnique) {
        lastUnique = stats.unique;
        lastProgressAt = now;
      }
      const stalled = now - lastProgressAt > options.stallTimeoutMs;
      const overdue = now - started > options.totalTimeoutMs;
      if (stalled || overdue) {
        const why = stalled
          ? `no new arrival for ${options.stallTimeoutMs / 1000} s`
          : `not complete after ${options.totalTimeoutMs / 1000} s`;
        const detail = options.describeFailure?.() ?? '';
        throw new Error(
          `${why}: ${stats.unique}/${expected} unique messages arrived ` +
            `(duplicates ${stats.duplicates}, stale ${stats.stale}, malformed ${stats.malformed})` +
            (detail ? `\n${detail}` : ''),
        );
      }
    }
  }

  async report(): Promise<SinkReport> {
    return JSON.parse(await this.control('GET', '/_control/report')) as SinkReport;
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
  }

  private async control(method: 'GET' | 'POST', path: string, body?: string): Promise<string> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      throw new Error(`sink process has exited (code ${this.child.exitCode})\n${this.output}`);
    }
    const res = await request(`${this.origin}${path}`, {
      method,
      body,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`sink ${method} ${path} answered ${res.statusCode}: ${text}`);
    return text;
  }
}
