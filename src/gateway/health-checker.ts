/**
 * Active health checks for one group, with HAProxy's rise/fall semantics:
 * every `intervalMs`, `GET <instance url><path>` on each live instance; a 2xx
 * within `timeoutMs` is a pass, anything else (other status, timeout,
 * refused connection) a failure. `healthyThreshold` consecutive passes make
 * an instance healthy (HAProxy's `rise`), `unhealthyThreshold` consecutive
 * failures make it unhealthy (`fall`); a streak of the other kind resets the
 * count, so one flaky answer never flips a verdict.
 *
 * Verdicts: an instance starts with the verdict stored in its record
 * (`health.checkedHealthy`), so a restart does not forget that an instance
 * was down; a new instance's is undefined, which the gateway treats as usable
 * (health.ts), and its first verdict comes only after a full threshold.
 * `onTransition` is called only when the verdict changes (undefined → a
 * verdict included); the caller persists it. If `onTransition` fails, the
 * verdict is not taken, so the next round, still past the threshold, tries
 * again.
 *
 * Rounds: the probes of one round run concurrently; the next round starts
 * `intervalMs` after the previous one started, or as soon as it ends if it
 * took longer: rounds never overlap, so a hanging instance cannot pile up
 * probes. `stop()` aborts the probes in flight and waits for the round.
 *
 * Counters live in this process. With several Courier nodes each node checks
 * on its own and the verdicts meet in the store; they agree because they
 * probe the same endpoint.
 */
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { systemClock, type Clock } from '../core/clock.js';
import type { HealthCheckSettings, InstanceRecord } from '../core/instance.js';

/**
 * Schedules the next round; returns a function that cancels it. The default is
 * `setTimeout`; a test passes its own to fire rounds by hand and read the
 * delays asked for, instead of measuring wall-clock gaps.
 */
export type ScheduleRound = (run: () => void, delayMs: number) => () => void;

const scheduleWithTimer: ScheduleRound = (run, delayMs) => {
  const timer = setTimeout(run, delayMs);
  return () => clearTimeout(timer);
};

export interface ActiveHealthCheckerOptions {
  settings: HealthCheckSettings;
  /** The group's live instances, read at the start of every round. */
  instances: () => readonly InstanceRecord[];
  /**
   * The verdict changed; persist it. A rejection leaves the verdict untaken, and the next round calls again.
   * `detail` says what the last probe saw (`HTTP 503`, `no answer within 2000 ms`).
   */
  onTransition: (instanceId: string, healthy: boolean, detail: string) => void | Promise<void>;
  /** Transitions are logged at info, failures to persist them and to read the instances at warn. */
  logger?: Pick<Logger, 'info' | 'warn'>;
  /** Measures how long a round took, to start the next one `intervalMs` after this one started. */
  clock?: Clock;
  /** Default: `setTimeout`. Probe timeouts always use real timers: they bound real sockets. */
  scheduleRound?: ScheduleRound;
}

interface CheckState {
  passes: number;
  failures: number;
  verdict: boolean | undefined;
}

interface ProbeResult {
  passed: boolean;
  /** What the probe saw, for the log line of a transition. */
  detail: string;
}

export class ActiveHealthChecker {
  private readonly states = new Map<string, CheckState>();
  private running = false;
  private cancelNextRound: (() => void) | undefined;
  private round: Promise<void> | undefined;
  private stopping = new AbortController();
  /** Our own connection pool, so stop() closes every socket the checks opened. */
  private agent: Agent | undefined;

  constructor(private readonly options: ActiveHealthCheckerOptions) {}

  /** Runs the first round at once, then one every `intervalMs`. Starting twice is a no-op. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopping = new AbortController();
    this.agent = new Agent();
    this.scheduleRound(0);
  }

  /** Stops the rounds, aborts probes in flight, and resolves once no request or timer is left. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.cancelNextRound?.();
    this.cancelNextRound = undefined;
    this.stopping.abort();
    await this.round;
    await this.agent?.destroy();
    this.agent = undefined;
  }

  private scheduleRound(delayMs: number): void {
    const schedule = this.options.scheduleRound ?? scheduleWithTimer;
    this.cancelNextRound = schedule(() => {
      this.cancelNextRound = undefined;
      this.round = this.runRound();
    }, delayMs);
  }

  private async runRound(): Promise<void> {
    const clock = this.options.clock ?? systemClock;
    const started = clock.now();
    try {
      const instances = this.options.instances();
      const present = new Set(instances.map((instance) => instance.id));
      for (const id of this.states.keys()) if (!present.has(id)) this.states.delete(id);
      const results = await Promise.all(instances.map((instance) => this.probe(instance)));
      for (const [index, instance] of instances.entries()) {
        const result = results[index];
        // A stop during the round aborted the probes: their failures say nothing about the instances.
        if (!this.running || !result) return;
        await this.judge(instance, result);
      }
    } catch (error) {
      this.options.logger?.warn({ err: error }, 'health check round failed; trying again next interval');
    } finally {
      if (this.running) this.scheduleRound(Math.max(0, this.options.settings.intervalMs - (clock.now() - started)));
    }
  }

  private async probe(instance: InstanceRecord): Promise<ProbeResult> {
    const { path, timeoutMs } = this.options.settings;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    const onStop = () => deadline.abort();
    this.stopping.signal.addEventListener('abort', onStop, { once: true });
    try {
      const response = await request(probeUrl(instance.url, path), {
        method: 'GET',
        dispatcher: this.agent,
        signal: deadline.signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      // Read the body to the end so the connection goes back to the pool.
      await response.body.dump();
      const passed = response.statusCode >= 200 && response.statusCode < 300;
      return { passed, detail: `HTTP ${response.statusCode}` };
    } catch (error) {
      // A failed probe is an answer, not an error: it counts towards the fall threshold.
      if (deadline.signal.aborted) return { passed: false, detail: `no answer within ${timeoutMs} ms` };
      return { passed: false, detail: error instanceof Error ? error.message : String(error) };
    } finally {
      clearTimeout(timer);
      this.stopping.signal.removeEventListener('abort', onStop);
    }
  }

  private async judge(instance: InstanceRecord, result: ProbeResult): Promise<void> {
    const { healthyThreshold, unhealthyThreshold } = this.options.settings;
    let state = this.states.get(instance.id);
    if (!state) {
      state = { passes: 0, failures: 0, verdict: instance.health.checkedHealthy };
      this.states.set(instance.id, state);
    }
    if (result.passed) {
      state.passes += 1;
      state.failures = 0;
      if (state.verdict !== true && state.passes >= Math.max(1, healthyThreshold)) await this.transition(instance, state, true, result);
    } else {
      state.failures += 1;
      state.passes = 0;
      if (state.verdict !== false && state.failures >= Math.max(1, unhealthyThreshold)) await this.transition(instance, state, false, result);
    }
  }

  private async transition(instance: InstanceRecord, state: CheckState, healthy: boolean, result: ProbeResult): Promise<void> {
    const context = { group: instance.group, instance: instance.id, url: instance.url, healthy, last: result.detail };
    try {
      await this.options.onTransition(instance.id, healthy, result.detail);
      state.verdict = healthy;
      this.options.logger?.info(context, healthy ? 'instance passed its health checks' : 'instance failed its health checks');
    } catch (error) {
      this.options.logger?.warn({ ...context, err: error }, 'could not record a health check verdict; trying again next round');
    }
  }
}

/** `<url><path>` with exactly one slash between them: a base URL may end in '/', and its own path is kept. */
export function probeUrl(url: string, path: string): string {
  return `${url.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}
