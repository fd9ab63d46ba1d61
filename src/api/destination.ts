/** Destinations as they arrive in a raw request target (spec §1.1). */
import { invalid } from '../core/errors.js';

export const MAX_URL_LENGTH = 8192;

/**
 * An absolute http(s) URL, returned as given (the JWT `sub` must equal the
 * text the receiver knows), with one repair: a proxy that merged `//` into `/`
 * (`https:/host`) is undone.
 */
export function parseDestinationUrl(raw: string, field: string): string {
  let url = raw.trim();
  const merged = /^(https?):\/(?!\/)/i.exec(url);
  if (merged) url = `${merged[1]}://${url.slice(merged[0].length)}`;
  if (url.length > MAX_URL_LENGTH) throw invalid(field, `URL longer than ${MAX_URL_LENGTH} characters`);
  if (!/^https?:\/\//i.test(url)) throw invalid(field, `must be an http:// or https:// URL, got "${raw}"`);
  if (!URL.canParse(url)) throw invalid(field, `"${raw}" is not a valid URL`);
  const parsed = new URL(url);
  if (parsed.hostname === '') throw invalid(field, `"${raw}" has no host`);
  if (parsed.username || parsed.password) throw invalid(field, 'credentials in the URL are not allowed; forward an Authorization header instead');
  return url;
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
