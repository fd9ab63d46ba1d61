import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * Checks `Authorization: Bearer <token>`, or the documented `qstash_token`
 * query parameter (spec §1.2). Both sides are hashed first so the comparison
 * takes the same time whatever the lengths, and never short-circuits.
 */
export function createTokenCheck(token: string): (req: IncomingMessage, query: URLSearchParams) => boolean {
  const expected = createHash('sha256').update(token).digest();
  return (req, query) => {
    const header = req.headers.authorization;
    const presented = header?.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : query.get('qstash_token');
    if (presented === null || presented === undefined) return false;
    return timingSafeEqual(createHash('sha256').update(presented).digest(), expected);
  };
}
