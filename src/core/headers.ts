/** Header names as Go canonicalises them (`content-type` → `Content-Type`), which is how QStash shows them. */
export function canonicalHeaderName(name: string): string {
  return name
    .toLowerCase()
    .split('-')
    .map((part) => (part.length === 0 ? part : part[0]!.toUpperCase() + part.slice(1)))
    .join('-');
}

/**
 * A response header map as QStash shows it: Go-canonical names, repeated
 * names merged, and the connection's own headers (which say nothing about the
 * response) left out.
 */
export function canonicalHeaderLists(headers: Record<string, string[]>): Record<string, string[]> {
  const lists: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(headers)) {
    if (UNFORWARDABLE_HEADERS.has(name.toLowerCase())) continue;
    const key = canonicalHeaderName(name);
    lists[key] = [...(lists[key] ?? []), ...values];
  }
  return lists;
}

/** RFC 9110 token characters. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Field values: visible ASCII, obs-text, space and tab; never CR, LF or NUL. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export function isHeaderName(name: string): boolean {
  return TOKEN.test(name);
}

export function isHeaderValue(value: string): boolean {
  return FIELD_VALUE.test(value);
}

/**
 * Headers a publisher may not have forwarded to a destination: they describe
 * the connection or the framing, which Courier's own request decides. The
 * HTTP client would reject most of them anyway, at delivery time, after the
 * message was accepted; refusing them at publish keeps that failure visible.
 */
export const UNFORWARDABLE_HEADERS = new Set([
  'connection',
  'content-length',
  'expect',
  'host',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
