/**
 * Which paths the stand-alone gateway forwards, and under which name.
 *
 * Publishers and old QStash schedules keep calling the paths they were
 * configured with, while instances only serve the current ones, so the
 * gateway rewrites legacy paths with an alias table (seed 000's
 * `/api/tasks/download-tasks → /api/tasks/download`, …). An alias matches a
 * whole path or a leading run of whole segments: `/api/tasks/media-batch/7`
 * becomes `/api/tasks/batch/7`, but `/api/tasks/media-batch2` is left alone.
 * The longest matching alias wins. The query string is kept byte for byte.
 *
 * Dot segments (`..`, `%2e%2e`) are resolved before anything else, so a
 * target such as `/api/tasks/../admin` is judged, and forwarded, as the
 * `/admin` an instance's framework would resolve it to.
 */

export type PathAliases = ReadonlyMap<string, string>;

/** Seed 000's table: the long v0.15-era paths onto the short ones instances serve now. */
export const SEED_PATH_ALIASES: Readonly<Record<string, string>> = {
  '/api/tasks/download-tasks': '/api/tasks/download',
  '/api/tasks/upload-tasks': '/api/tasks/upload',
  '/api/tasks/media-batch': '/api/tasks/batch',
};

export const DEFAULT_ROUTE_PREFIXES: readonly string[] = ['/api/tasks/'];

/** Checks a table such as `GATEWAY_PATH_ALIASES`: absolute paths on both sides, no query, no trailing slash. */
export function createPathAliases(table: Readonly<Record<string, string>>): PathAliases {
  const aliases = new Map<string, string>();
  for (const [from, to] of Object.entries(table)) {
    for (const path of [from, to]) {
      if (!/^\/[^?#]*$/.test(path) || (path.length > 1 && path.endsWith('/'))) {
        throw new Error(`path alias "${from}" → "${to}": both sides must be absolute paths without a query or a trailing slash`);
      }
    }
    aliases.set(from, to);
  }
  return aliases;
}

export interface NormalisedTarget {
  /** The path after dot segments and aliases, what instances are called at. */
  path: string;
  /** `?…` exactly as received, or ''. */
  search: string;
}

/** The request target (`/path?query`) as the gateway forwards it. */
export function normaliseTarget(target: string, aliases: PathAliases): NormalisedTarget {
  const queryStart = target.indexOf('?');
  const rawPath = queryStart === -1 ? target : target.slice(0, queryStart);
  const search = queryStart === -1 ? '' : target.slice(queryStart);
  // The URL parser applies the WHATWG dot-segment rules (which also treat %2e as a dot); the origin is a placeholder.
  const resolved = new URL(rawPath.startsWith('/') ? rawPath : `/${rawPath}`, 'http://gateway.invalid').pathname;
  return { path: applyAlias(resolved, aliases), search };
}

function applyAlias(path: string, aliases: PathAliases): string {
  let best: [string, string] | undefined;
  for (const [from, to] of aliases) {
    const matches = path === from || path.startsWith(`${from}/`);
    if (matches && (best === undefined || from.length > best[0].length)) best = [from, to];
  }
  if (best === undefined) return path;
  const [from, to] = best;
  const rest = path.slice(from.length);
  // An alias onto the root must not produce `//rest`, which a URL parser would read as a host.
  return to === '/' ? rest || '/' : to + rest;
}

/** True when the path falls under one of the accepted prefixes (`GATEWAY_ROUTES`). */
export function isRoutedPath(path: string, prefixes: readonly string[]): boolean {
  return prefixes.some((prefix) => path.startsWith(prefix));
}
