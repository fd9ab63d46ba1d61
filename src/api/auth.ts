import type { IncomingMessage } from 'node:http';
import { matchesDigest, secretDigest } from '../core/secrets.js';

/** The scheme is case-insensitive (RFC 9110 §11.1): `bearer x` and `BEARER x` are `Bearer x`. */
const BEARER = /^bearer +/i;

/**
 * Checks `Authorization: Bearer <token>`, or the documented `qstash_token`
 * query parameter (spec §1.2), in constant time (core/secrets.ts).
 */
export function createTokenCheck(token: string): (req: IncomingMessage, query: URLSearchParams) => boolean {
  const expected = secretDigest(token);
  return (req, query) => {
    const header = req.headers.authorization;
    const scheme = header === undefined ? null : BEARER.exec(header);
    const presented = scheme ? header!.slice(scheme[0].length).trim() : query.get('qstash_token');
    if (presented === null || presented === undefined) return false;
    return matchesDigest(presented, expected);
  };
}
