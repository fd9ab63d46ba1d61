/**
 * `Upstash-Signature`: an HS256 JWT that the SDK's `Receiver.verify()` accepts
 * (spec §12). The key is the signing-key string's UTF-8 bytes, not decoded.
 *
 * Written with node:crypto rather than jose: this runs once per attempt on the
 * hot path, must be synchronous, and HS256 compact serialisation is a few
 * lines. The tests verify every signature with the SDK's Receiver, which uses
 * jose, so the two implementations check each other.
 */
import * as crypto from 'node:crypto';
import { newJwtId } from '../core/ids.js';

/** Receivers reject a token older than this; each attempt is signed afresh. */
const TOKEN_LIFETIME_SECONDS = 300;
const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

/** One-shot hashing (Node ≥ 20.12) skips a Hash object per call; older 20.x falls back to it. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'base64url') => string }).hash;

export function bodyHash(body: Uint8Array): string {
  return oneShotHash ? oneShotHash('sha256', body, 'base64url') : crypto.createHash('sha256').update(body).digest('base64url');
}

/** The HMAC key imported once per signing key rather than once per attempt. */
let cachedKey: { text: string; key: crypto.KeyObject } | undefined;
function hmacKey(signingKey: string): crypto.KeyObject {
  if (cachedKey?.text !== signingKey) cachedKey = { text: signingKey, key: crypto.createSecretKey(Buffer.from(signingKey, 'utf8')) };
  return cachedKey.key;
}

export function signDelivery(input: { signingKey: string; url: string; body: Uint8Array; nowMs: number }): string {
  const iat = Math.floor(input.nowMs / 1000);
  const claims = {
    iss: 'Upstash',
    sub: input.url,
    exp: iat + TOKEN_LIFETIME_SECONDS,
    // nbf 0, as hosted QStash does since 2024: a receiver whose clock is behind ours still accepts.
    nbf: 0,
    iat,
    jti: newJwtId(),
    body: bodyHash(input.body),
  };
  const signingInput = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const signature = crypto.createHmac('sha256', hmacKey(input.signingKey)).update(signingInput).digest('base64url');
  return `${signingInput}.${signature}`;
}
