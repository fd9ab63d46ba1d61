import type { IncomingMessage } from 'node:http';
import { matchesDigest, secretDigest } from '../core/secrets.js';

/**
 * Checks `Authorization: Bearer <token>`, or the documented `qstash_token`
 * query parameter (spec §1.2), in constant time (core/secrets.ts).
 */
export function createTokenCheck(token: string): (req: IncomingMessage, query: URLSearchParams) => boolean {
  const expected = secretDigest(token);
  return (req, query) => {
    const header = req.headers.authorization;
    const presented = header?.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : query.get('qstash_token');
    if (presented === null || presented === undefined) return false;
    return matchesDigest(presented, expected);
  };
}
