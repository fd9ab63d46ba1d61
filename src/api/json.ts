/**
 * JSON request bodies, parsed with their nesting bounded.
 *
 * HAZARD: `JSON.parse` has no depth limit and runs on the event loop: 10 MB
 * of `[[[[…` (5,000,000 levels) held every other request for 2.8 s before its
 * 400. `parseJsonBody` first scans the bytes once, counting `[`/`{` depth
 * outside strings, and refuses a body nested beyond MAX_JSON_DEPTH at the
 * first byte past the limit, so an attack costs microseconds and a legitimate
 * body one linear pass. The scan works on raw UTF-8 bytes: the bytes of `"`,
 * `\`, brackets and braces never occur inside a multi-byte character.
 * Every JSON request body goes through here (management bodies, batches,
 * bulk selections); message bodies are bytes and are never parsed.
 */
import { invalid } from '../core/errors.js';

/**
 * The deepest nesting any Courier request needs is a batch item's headers
 * (3 levels); 64 leaves room for clients that wrap bodies without letting a
 * body cost more than one pass over its bytes. Documented in the README.
 */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/** The deepest nesting in `bytes`, stopping as soon as it exceeds `limit` (then `limit + 1`). Malformed JSON is JSON.parse's to refuse. */
export function jsonDepth(bytes: Uint8Array, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) {
      depth--;
    }
  }
  return deepest;
}

/**
 * Parses a JSON request body; too deep or unparseable is a 400 naming
 * `body`, with `malformed` as the message for the latter (each route says
 * what shape it wanted).
 */
export function parseJsonBody(raw: Buffer, malformed = 'must be valid JSON'): unknown {
  if (jsonDepth(raw) > MAX_JSON_DEPTH) throw invalid('body', `nested deeper than ${MAX_JSON_DEPTH} levels (the JSON nesting limit)`);
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw invalid('body', malformed);
  }
}
