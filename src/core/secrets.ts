/**
 * Secrets are compared as SHA-256 digests: both sides then have the same
 * length, so the comparison takes the same time whatever was presented and
 * never short-circuits. A stored secret (a group's registration secret) is
 * kept only as its digest.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const secretDigest = (secret: string): Buffer => createHash('sha256').update(secret).digest();

/** Whether `presented` is the secret whose digest is `expected`, in constant time. */
export function matchesDigest(presented: string, expected: Buffer): boolean {
  const digest = secretDigest(presented);
  return digest.length === expected.length && timingSafeEqual(digest, expected);
}
