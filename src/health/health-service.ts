/**
 * What the health probes answer, cheaply and in bounded time whatever the
 * store holds.
 *
 * - `ready()`: one ping of the store, nothing counted.
 * - `report()`: version, uptime, in-flight attempts (live figures) and the
 *   store's backlog from a snapshot. The snapshot is refreshed at most once
 *   per REFRESH_MS, in the background: a request reads the last one and, if
 *   it is stale, starts one refresh that later requests share. Only the very
 *   first report waits for a snapshot. So however many clients poll, the
 *   store sees at most one `stats()` a second from this node, and no request
 *   waits on a count; the figures lag the store by at most REFRESH_MS plus
 *   the count's own duration (`backlogAsOf` says when they were taken).
 *
 * HAZARD: a snapshot bounds how often the store counts, not how long one
 * count takes. On an in-process store (SQLite) a count runs on the event loop,
 * so `stats()` there must stay O(1) (the SQLite adapter keeps counts up to
 * date in a table its triggers maintain), or every refresh delays publishes.
 */
import type { MaintenanceStore, StoreStats } from '../store/port.js';

/** Dashboards poll every second or so; fresher figures would only cost the store more counts. */
export const REFRESH_MS = 1000;

export interface HealthReport {
  status: 'ok' | 'degraded';
  version: string;
  uptimeSeconds: number;
  store: { kind: string; reachable: boolean; error?: string };
  /** As of the last snapshot. Absent while the store cannot be counted. */
  backlog?: StoreStats;
  /** When the backlog figures were taken (ISO 8601). */
  backlogAsOf?: string;
  inFlight: number;
}

interface Snapshot {
  /** Monotonic milliseconds (`now()`), for the refresh throttle. */
  takenAt: number;
  /** Wall-clock time, for `asOf`. */
  wallTime: number;
  result: { ok: true; stats: StoreStats } | { ok: false; error: string };
}

export interface HealthServiceOptions {
  store: Pick<MaintenanceStore, 'stats' | 'ping'>;
  storeKind: string;
  version: string;
  inFlight: () => number;
  /**
   * Monotonic milliseconds for the throttle. Not the injected domain clock:
   * a test that freezes or steps that clock must not freeze the figures.
   */
  now?: () => number;
  wallClock?: () => number;
  refreshMs?: number;
}

export class HealthService {
  private readonly startedAt: number;
  private snapshot: Snapshot | undefined;
  private refreshing: Promise<Snapshot> | undefined;
  private readonly now: () => number;
  private readonly wallClock: () => number;
  private readonly refreshMs: number;

  constructor(private readonly options: HealthServiceOptions) {
    this.now = options.now ?? (() => performance.now());
    this.wallClock = options.wallClock ?? (() => Date.now());
    this.refreshMs = options.refreshMs ?? REFRESH_MS;
    this.startedAt = this.wallClock();
  }

  async ready(): Promise<boolean> {
    try {
      await this.options.store.ping();
      return true;
    } catch {
      return false;
    }
  }

  async report(): Promise<HealthReport> {
    const snapshot = this.snapshot ?? (await this.refresh());
    if (this.now() - snapshot.takenAt >= this.refreshMs) void this.refresh();
    const report: HealthReport = {
      status: 'ok',
      version: this.options.version,
      uptimeSeconds: Math.round((this.wallClock() - this.startedAt) / 1000),
      store: { kind: this.options.storeKind, reachable: true },
      inFlight: this.options.inFlight(),
    };
    if (snapshot.result.ok) {
      report.backlog = snapshot.result.stats;
      report.backlogAsOf = new Date(snapshot.wallTime).toISOString();
    } else {
      report.status = 'degraded';
      report.store = { ...report.store, reachable: false, error: snapshot.result.error };
    }
    return report;
  }

  /** Waits for a count in flight, so the store can close after it. */
  async close(): Promise<void> {
    await this.refreshing;
  }

  /** One count at a time; it never rejects (a failure is a snapshot too). */
  private refresh(): Promise<Snapshot> {
    this.refreshing ??= (async () => {
      const takenAt = this.now();
      const wallTime = this.wallClock();
      let result: Snapshot['result'];
      try {
        result = { ok: true, stats: await this.options.store.stats() };
      } catch (error) {
        result = { ok: false, error: error instanceof Error ? error.message : String(error) };
      }
      this.snapshot = { takenAt, wallTime, result };
      this.refreshing = undefined;
      return this.snapshot;
    })();
    return this.refreshing;
  }
}
