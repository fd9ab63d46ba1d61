/**
 * Stream tokens: short-lived, signed (HS256 JWTs, `jose`), never stored. A
 * read token lets a browser follow one stream without the API token; a
 * write token (given to the worker with each delivery of a message tied to
 * a stream) also lets it append to that stream, until the message is done.
 *
 * The signing secret is derived from the API token (HKDF-SHA256, its own
 * label), so every node sharing a store agrees on it with nothing new to
 * store, it is never a delivery signing key, and rotating the API token
 * revokes every stream token.
 */
import { hkdfSync } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';

export type StreamScope = 'read' | 'write';

export interface StreamClaims {
  streamId: string;
  scope: StreamScope;
  /** Epoch ms. */
  expiresAt: number;
}

const ISSUER = 'courier';
const AUDIENCE = 'courier-stream';

export function streamTokenSecret(apiToken: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', apiToken, 'courier', 'courier stream tokens v1', 32));
}

export async function mintStreamToken(secret: Uint8Array, claims: StreamClaims): Promise<string> {
  return new SignJWT({ scope: claims.scope })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(claims.streamId)
    .setExpirationTime(Math.floor(claims.expiresAt / 1000))
    .sign(secret);
}

/**
 * The token's claims if it is valid at `now`, for `streamId`, with at least
 * `need` (a write token may also read); otherwise why not, for the 401.
 */
export async function verifyStreamToken(
  secret: Uint8Array,
  token: string,
  streamId: string,
  need: StreamScope,
  now: number,
): Promise<{ ok: true; claims: StreamClaims } | { ok: false; reason: 'invalid' | 'expired' | 'other stream' | 'read only' }> {
  try {
    const { payload } = await jwtVerify(token, secret, {
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ['HS256'],
      currentDate: new Date(now),
    });
    const scope = payload.scope === 'write' ? 'write' : payload.scope === 'read' ? 'read' : undefined;
    if (scope === undefined || typeof payload.sub !== 'string' || typeof payload.exp !== 'number') return { ok: false, reason: 'invalid' };
    if (payload.sub !== streamId) return { ok: false, reason: 'other stream' };
    if (need === 'write' && scope !== 'write') return { ok: false, reason: 'read only' };
    return { ok: true, claims: { streamId: payload.sub, scope, expiresAt: payload.exp * 1000 } };
  } catch (error) {
    return { ok: false, reason: error instanceof errors.JWTExpired ? 'expired' : 'invalid' };
  }
}
