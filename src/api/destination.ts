/**
 * URLs and names as they arrive: destinations in a raw request target (spec
 * §1.1), callbacks, URL-group endpoints, schedule destinations and instance
 * URLs. Every URL Courier will call is parsed here, once, with the WHATWG
 * parser, and what is stored is the parser's serialisation: the same string
 * is delivered to (delivery/http-client.ts splits it) and signed as the JWT
 * `sub` (delivery/signing.ts), so a receiver verifying with the URL it was
 * called on agrees with us.
 *
 * HAZARD: the WHATWG parser is forgiving. It silently drops tab, CR and LF
 * anywhere, trims leading and trailing controls and spaces, reads `\` as `/`,
 * and skips empty hosts (`http:///x` is host `x`). Each of those turns the
 * text a client gave into a different URL, so they are refused before
 * parsing instead of "cleaned up". What the parser only normalises (case of
 * scheme and host, a default port, dot segments, percent-encoding of
 * characters such as non-ASCII, an empty query or a fragment, which are never
 * sent) is accepted, and the normalised form is what the publish answers.
 * One exception to the parser's serialisation: a URL given without a path is
 * kept without one (the parser would add `/`).
 */
import { invalid } from '../core/errors.js';

export const MAX_URL_LENGTH = 8192;

/** C0 controls (NUL, tab, CR, LF, …), space, DEL and `\`: no URL holds them as text. */
const NOT_IN_A_URL = /[\x00-\x20\x7f\\]/;

function describe(char: string): string {
  const names: Record<string, string> = { '\0': 'NUL', '\t': 'a tab', '\r': 'CR', '\n': 'LF', ' ': 'a space', '\\': 'a backslash' };
  return names[char] ?? `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Refuses text a URL cannot hold, naming the first offending character. */
function checkUrlCharacters(url: string, field: string): void {
  const bad = NOT_IN_A_URL.exec(url);
  if (bad) throw invalid(field, `contains ${describe(bad[0])}, which a URL cannot hold; percent-encode it`);
}

/**
 * An absolute http(s) URL, normalised by the WHATWG parser (see the header),
 * with one repair: a proxy that merged `//` into `/` (`https:/host`) is undone.
 */
export function parseDestinationUrl(raw: string, field: string): string {
  let url = raw;
  const merged = /^(https?):\/(?!\/)/i.exec(url);
  if (merged) url = `${merged[1]}://${url.slice(merged[0].length)}`;
  if (url.length > MAX_URL_LENGTH) throw invalid(field, `URL longer than ${MAX_URL_LENGTH} characters`);
  checkUrlCharacters(url, field);
  const authority = /^https?:\/\/([^/?#]*)/i.exec(url);
  if (!authority) throw invalid(field, `must be an http:// or https:// URL, got "${raw}"`);
  if (authority[1] === '') throw invalid(field, `"${raw}" has no host`);
  if (!URL.canParse(url)) throw invalid(field, `"${raw}" is not a valid URL`);
  const parsed = new URL(url);
  if (parsed.hostname === '') throw invalid(field, `"${raw}" has no host`);
  if (parsed.username || parsed.password) throw invalid(field, 'credentials in the URL are not allowed; forward an Authorization header instead');
  // Neither is sent on the wire; keeping them would sign a URL the receiver is never called on.
  parsed.hash = '';
  if (parsed.search === '') parsed.search = '';
  // A bare origin stays bare (`https://example.com`, not `…com/`): it is still called at `/`, and
  // receivers that verify with the URL they published to keep working.
  if (/^([?#]|$)/.test(url.slice(authority[0].length))) return `${parsed.origin}${parsed.search}`;
  return parsed.href;
}

/**
 * The path (and query) of an instance-group destination, `group:<name>/<path>`,
 * normalised like a URL's: it is joined to an instance's URL at each attempt.
 */
export function parseDestinationPath(path: string, field: string): string {
  checkUrlCharacters(path, field);
  // Appended to a base rather than resolved against it: `//x` stays a path, never a host.
  const joined = `http://instance${path}`;
  if (!path.startsWith('/') || !URL.canParse(joined)) throw invalid(field, `"${path}" is not a valid path`);
  const parsed = new URL(joined);
  if (parsed.host !== 'instance') throw invalid(field, `"${path}" is not a valid path`);
  return `${parsed.pathname}${parsed.search}`;
}

/** A `url` filter value: normalised like a stored destination when it is one, so the two compare equal. */
export function normaliseUrlFilter(value: string): string {
  try {
    return parseDestinationUrl(value, 'url');
  } catch {
    return value;
  }
}

/**
 * Text that reaches a store as a string (an id, a filter value) must not hold
 * NUL: PostgreSQL cannot store it, and no id Courier issues contains one.
 */
export function checkText(value: string, field: string): string {
  if (value.includes('\0')) throw invalid(field, 'must not contain NUL');
  return value;
}

/** Queue, schedule and URL group names (spec §1.7). */
export const NAME = /^[A-Za-z0-9._-]{1,128}$/;

export function checkName(name: string, field: string): string {
  if (!NAME.test(name)) throw invalid(field, `"${name}" may only contain A-Z a-z 0-9 . _ - (1-128 characters)`);
  return name;
}

/** Flow-control keys also allow `:` and `@`, for keys like `tenant:42` or `user@example.com`. */
const FLOW_CONTROL_KEY = /^[A-Za-z0-9._:@-]{1,128}$/;

export function checkFlowControlKey(key: string, field: string): string {
  if (!FLOW_CONTROL_KEY.test(key)) throw invalid(field, `"${key}" may only contain A-Z a-z 0-9 . _ : @ - (1-128 characters)`);
  return key;
}
