/**
 * Instance groups: the gateway's destinations (seed 000). Worker instances
 * register and heartbeat into a named group; a message published to the
 * group is delivered to ONE live instance, chosen per attempt.
 *
 * These are the records the store keeps. What is live, ejected or in slow
 * start is decided by the gateway domain (src/gateway/) from these fields and
 * a clock, never by the store.
 */

/** How the gateway picks among the usable instances of a group's best tier. */
export const STRATEGIES = ['round-robin', 'weighted-round-robin', 'least-in-flight'] as const;
export type StrategyName = (typeof STRATEGIES)[number];

/** What an instance sends with each heartbeat (seed 000's record plus Courier's optional fields). */
export interface InstanceRegistration {
  group: string;
  id: string;
  /** Base URL; a delivery to `group:<name>/<path>` goes to `<url>/<path>`. */
  url: string;
  hostname?: string;
  region?: string;
  /** Seed 000 sends "active"; "draining" keeps the record but takes no new work. */
  status: 'active' | 'draining';
  startedAt: number;
  /** Relative share for weighted round robin and least in-flight; default 1. */
  weight: number;
  /** Tier: lower is preferred; the next tier is used only when every better tier is empty. Default 0. */
  priority: number;
  capabilities: string[];
  /** At most this many attempts in flight to the instance from one node; unset = no cap. */
  maxInFlight?: number;
}

/**
 * Health the gateway records about an instance. Written only on transitions
 * (an ejection, a re-admission, an active check flipping), never per attempt,
 * so it is shared across nodes and survives restarts without a store write on
 * the delivery path.
 */
export interface InstanceHealth {
  /** Ejected (passive outlier detection) until this time. */
  ejectedUntil?: number;
  /** Ejections so far; each one lasts base × count, capped. Decays back to 0 after a healthy spell. */
  ejections: number;
  /** When the instance last came back (re-admitted or first seen): slow start ramps its weight from here. */
  readmittedAt?: number;
  /** Active health checks' verdict; undefined while no check has decided. */
  checkedHealthy?: boolean;
}

export interface InstanceRecord extends InstanceRegistration {
  lastHeartbeat: number;
  registeredAt: number;
  health: InstanceHealth;
}

export interface OutlierSettings {
  /** Consecutive failed attempts that eject an instance; 0 disables. */
  consecutiveFailures: number;
  /** Failure share (0–100) over the last `windowSize` attempts that ejects; 0 disables. */
  failureRatePercent: number;
  /** Attempts an instance must have in the window before its failure rate counts. */
  minimumRequests: number;
  windowSize: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  /** Never more than this share (0–100) of a group ejected at once; at least one instance may always be ejected. */
  maxEjectionPercent: number;
}

export interface HealthCheckSettings {
  /** Path probed with GET on each instance's URL. */
  path: string;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive passes that mark an unhealthy instance healthy. */
  healthyThreshold: number;
  /** Consecutive failures that mark a healthy instance unhealthy. */
  unhealthyThreshold: number;
}

export interface InstanceGroupSettings {
  name: string;
  strategy: StrategyName;
  /** Prefer instances in the message's (or caller's) region when any is usable there. */
  regionAffinity: boolean;
  /** How often instances are told to heartbeat (seed: 300 s). */
  heartbeatIntervalMs: number;
  /** An instance whose last heartbeat is older than this is not live (seed: 900 s). */
  staleAfterMs: number;
  outlier: OutlierSettings;
  /** Re-admitted and new instances ramp from 10 % to full weight over this long; 0 disables. */
  slowStartMs: number;
  /** Unset: no active checks. */
  healthCheck?: HealthCheckSettings;
  /** When fewer than this share (0–100) of live instances are healthy, health is ignored and all live ones are used. */
  panicThresholdPercent: number;
  /**
   * SHA-256 (hex) of the group's registration secret, if it has one: an
   * instance may then heartbeat with the secret instead of the API token.
   * Only the hash is stored.
   */
  registrationSecretHash?: string;
}

export interface InstanceGroupRecord extends InstanceGroupSettings {
  createdAt: number;
  updatedAt: number;
}

/**
 * A change an operator asks of a group's settings: what is given replaces
 * what is there (outlier settings one by one), null removes an optional
 * setting, and the rest stays. The registration secret comes in clear and is
 * stored only as its hash.
 */
export interface InstanceGroupPatch {
  strategy?: StrategyName;
  regionAffinity?: boolean;
  heartbeatIntervalMs?: number;
  staleAfterMs?: number;
  slowStartMs?: number;
  panicThresholdPercent?: number;
  outlier?: Partial<OutlierSettings>;
  healthCheck?: HealthCheckSettings | null;
  registrationSecretHash?: string | null;
}

/** `current` with `patch` applied; a record's own times are not settings and are left out. */
export function applyGroupPatch(current: InstanceGroupSettings, patch: InstanceGroupPatch): InstanceGroupSettings {
  const { createdAt: _createdAt, updatedAt: _updatedAt, ...settings } = current as Partial<InstanceGroupRecord> & InstanceGroupSettings;
  const { outlier, healthCheck, registrationSecretHash, ...plain } = patch;
  const next: InstanceGroupSettings = { ...settings, ...definedOnly(plain), outlier: { ...settings.outlier, ...definedOnly(outlier ?? {}) } };
  if (healthCheck === null) delete next.healthCheck;
  else if (healthCheck !== undefined) next.healthCheck = healthCheck;
  if (registrationSecretHash === null) delete next.registrationSecretHash;
  else if (registrationSecretHash !== undefined) next.registrationSecretHash = registrationSecretHash;
  return next;
}

/** The fields that are set: a patch's undefined means "leave it", never "make it undefined". */
function definedOnly<T extends object>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as Partial<T>;
}

export const DEFAULT_OUTLIER: OutlierSettings = {
  consecutiveFailures: 5,
  failureRatePercent: 0,
  minimumRequests: 20,
  windowSize: 100,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 50,
};

/** The seed's heartbeat timing: every 300 s, stale after 900 s. */
const SEED_TIMING = { heartbeatIntervalMs: 300_000, staleAfterMs: 900_000 };

/** What a group starts with when its first instance registers; `timing` is the node's configured one (COURIER_HEARTBEAT_INTERVAL, …). */
export const defaultGroupSettings = (
  name: string,
  timing: Pick<InstanceGroupSettings, 'heartbeatIntervalMs' | 'staleAfterMs'> = SEED_TIMING,
): InstanceGroupSettings => ({
  name,
  strategy: 'round-robin',
  regionAffinity: true,
  heartbeatIntervalMs: timing.heartbeatIntervalMs,
  staleAfterMs: timing.staleAfterMs,
  outlier: { ...DEFAULT_OUTLIER },
  slowStartMs: 0,
  panicThresholdPercent: 50,
});

/** `group:<name>/<path>`: a URL-group name cannot contain ':' and a URL needs '://', so the form cannot clash with either. */
export const GROUP_DESTINATION_PREFIX = 'group:';

/** `group:workers/api/tasks?x=1` → { group: 'workers', path: '/api/tasks?x=1' }; undefined for anything else. */
export function parseGroupDestination(destination: string): { group: string; path: string } | undefined {
  if (!destination.startsWith(GROUP_DESTINATION_PREFIX)) return undefined;
  const rest = destination.slice(GROUP_DESTINATION_PREFIX.length);
  const slash = rest.search(/[/?]/);
  const group = slash === -1 ? rest : rest.slice(0, slash);
  const tail = slash === -1 ? '' : rest.slice(slash);
  return { group, path: tail.startsWith('/') ? tail : `/${tail}` };
}

/** The URL an attempt goes to: the instance's base URL joined with the message's path, one slash between. */
export function instanceTarget(instanceUrl: string, path: string): string {
  return instanceUrl.replace(/\/+$/, '') + path;
}
