/**
 * The gateway's configuration: Courier's own settings (store, port, registry,
 * signing keys, token) as the main server reads them, plus the GATEWAY_*
 * variables and the seed's SIGNATURE_EXPIRATION_WINDOW / SKIP_SIGNATURE_VERIFY.
 */
import { z } from 'zod';
import { duration, loadConfig, type StoreLocation } from '../core/config.js';
import type { SigningKeys } from '../worker/verify.js';
import { createPathAliases, DEFAULT_ROUTE_PREFIXES, SEED_PATH_ALIASES, type PathAliases } from './paths.js';

export interface SignatureSettings {
  keys: SigningKeys;
  /** A token whose `iat` is older than this is refused even before its `exp` (seed: SIGNATURE_EXPIRATION_WINDOW, 900 s); 0 disables. */
  expirationWindowSeconds: number;
  /** Skew allowed on `exp`, `nbf` and a future `iat` (seed: 300 s). */
  clockToleranceSeconds: number;
}

export interface GatewayConfig {
  port: number;
  host: string;
  logLevel: string;
  store: StoreLocation;
  /** The instance group deliveries go to. */
  group: string;
  /** Undefined only with the insecure switch: every delivery is then forwarded unverified. */
  signature: SignatureSettings | undefined;
  /** The URL QStash calls, compared with each token's `sub`; undefined: `sub` is not compared. */
  publicUrl: string | undefined;
  pathAliases: PathAliases;
  routePrefixes: readonly string[];
  maxBodyBytes: number;
  forwardTimeoutMs: number;
  /** COURIER_BODY_TIMEOUT, as Courier reads it: how long a delivery may take to arrive whole. */
  bodyTimeoutMs: number;
  /** Credential for the instance endpoints; undefined: only a group's registration secret works. */
  token: string | undefined;
  registry: { heartbeatIntervalMs: number; staleAfterMs: number; refreshMs: number };
}

// A typo in a security switch must stop the start, not silently mean "false".
const flag = z.enum(['true', 'false']).default('false').transform((value) => value === 'true');

const GATEWAY_ENV_SCHEMA = z.object({
  GATEWAY_GROUP: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'may only contain A-Z a-z 0-9 . _ - (1-128 characters)').default('default'),
  GATEWAY_PUBLIC_URL: z.string().url().optional(),
  GATEWAY_PATH_ALIASES: z.string().optional(),
  GATEWAY_ROUTES: z.string().optional(),
  GATEWAY_FORWARD_TIMEOUT: duration('30'),
  GATEWAY_CLOCK_TOLERANCE: duration('300'),
  SIGNATURE_EXPIRATION_WINDOW: duration('900'),
  GATEWAY_INSECURE_SKIP_SIGNATURE: flag,
  /** The seed's name for the same switch. */
  SKIP_SIGNATURE_VERIFY: flag,
});

/** The gateway's configuration: Courier's own settings (store, port, registry) plus the GATEWAY_* and seed variables. */
export function loadGatewayConfig(env: Record<string, string | undefined> = process.env): GatewayConfig {
  const base = loadConfig(env);
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = GATEWAY_ENV_SCHEMA.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const e = parsed.data;
  const insecure = e.GATEWAY_INSECURE_SKIP_SIGNATURE || e.SKIP_SIGNATURE_VERIFY;
  if (!insecure && base.currentSigningKey === undefined) {
    throw new Error(
      'invalid configuration: QSTASH_CURRENT_SIGNING_KEY is required to verify deliveries (GATEWAY_INSECURE_SKIP_SIGNATURE=true turns verification off, for tests only)',
    );
  }
  return {
    port: base.port,
    host: base.host,
    logLevel: base.logLevel,
    store: base.store,
    group: e.GATEWAY_GROUP,
    signature:
      insecure || base.currentSigningKey === undefined
        ? undefined
        : {
            keys: { current: base.currentSigningKey, next: base.nextSigningKey ?? base.currentSigningKey },
            expirationWindowSeconds: e.SIGNATURE_EXPIRATION_WINDOW / 1000,
            clockToleranceSeconds: e.GATEWAY_CLOCK_TOLERANCE / 1000,
          },
    publicUrl: e.GATEWAY_PUBLIC_URL,
    pathAliases: parsePathAliases(e.GATEWAY_PATH_ALIASES),
    routePrefixes: parseRoutePrefixes(e.GATEWAY_ROUTES),
    maxBodyBytes: base.limits.maxBodyBytes,
    forwardTimeoutMs: e.GATEWAY_FORWARD_TIMEOUT,
    bodyTimeoutMs: base.http.bodyTimeoutMs,
    token: base.token,
    registry: {
      heartbeatIntervalMs: base.gateway.heartbeatIntervalMs,
      staleAfterMs: base.gateway.staleAfterMs,
      refreshMs: base.gateway.registryRefreshMs,
    },
  };
}

function parsePathAliases(value: string | undefined): PathAliases {
  if (value === undefined) return createPathAliases(SEED_PATH_ALIASES);
  let table: unknown;
  try {
    table = JSON.parse(value);
  } catch {
    throw new Error('invalid configuration: GATEWAY_PATH_ALIASES must be a JSON object such as {"/old/path":"/new/path"}');
  }
  const checked = z.record(z.string(), z.string()).safeParse(table);
  if (!checked.success) throw new Error('invalid configuration: GATEWAY_PATH_ALIASES must map path strings to path strings');
  try {
    return createPathAliases(checked.data);
  } catch (error) {
    throw new Error(`invalid configuration: GATEWAY_PATH_ALIASES: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function parseRoutePrefixes(value: string | undefined): readonly string[] {
  if (value === undefined) return DEFAULT_ROUTE_PREFIXES;
  const prefixes = value.split(',').map((prefix) => prefix.trim()).filter(Boolean);
  if (prefixes.length === 0 || prefixes.some((prefix) => !prefix.startsWith('/'))) {
    throw new Error('invalid configuration: GATEWAY_ROUTES must be a comma-separated list of paths starting with /');
  }
  return prefixes;
}
