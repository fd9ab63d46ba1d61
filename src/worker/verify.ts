/**
 * Verifying a delivery's `Upstash-Signature` on the receiving side, for
 * deliveries made by Courier or by hosted QStash (spec §12: an HS256 JWT
 * whose key is the signing-key string's UTF-8 bytes, with `iss` "Upstash",
 * `sub` the destination URL and `body` the base64url SHA-256 of the raw body).
 *
 * This file ships inside users' workers, so it uses only `jose` and Web
 * platform APIs (WebCrypto, TextEncoder): it runs on Node, Bun, Deno and
 * edge runtimes alike.
 */
import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';

/** Why a delivery was refused. Stable: log and alert on these, not on messages. */
export const VERIFICATION_FAILURES = [
  'SIGNATURE_MISSING',
  'SIGNATURE_INVALID',
  'SIGNATURE_EXPIRED',
  'SIGNATURE_NOT_YET_VALID',
  'URL_MISMATCH',
  'BODY_MISMATCH',
] as const;
export type VerificationFailure = (typeof VERIFICATION_FAILURES)[number];

export class DeliveryVerificationError extends Error {
  readonly reason: VerificationFailure;

  constructor(reason: VerificationFailure, message: string) {
    super(message);
    this.name = 'DeliveryVerificationError';
    this.reason = reason;
  }
}

export interface SigningKeys {
  current: string;
  /** After a key rotation, deliveries signed with the next key still verify. */
  next?: string;
}

/** The claims of a verified delivery token. */
export interface DeliveryClaims extends JWTPayload {
  iss: 'Upstash';
  sub: string;
  exp: number;
  body: string;
}

export interface VerifyDeliveryInput {
  /** The `Upstash-Signature` header, as received. */
  signature: string | null | undefined;
  /**
   * The body exactly as it arrived on the wire. A string is taken as its
   * UTF-8 bytes, which is only right if the string is the undecoded body.
   */
  rawBody: Uint8Array | string;
  /**
   * The public URL the delivery was addressed to (path and query included):
   * it must equal the token's `sub`. Give either this or `publicUrl` + `path`.
   */
  url?: string;
  /** The public origin (and base path) this worker is reached at, e.g. `https://worker.example.com`. */
  publicUrl?: string;
  /** With `publicUrl`: the request's path and query as received, e.g. `/api/tasks/download?x=1`. */
  path?: string;
  keys: SigningKeys;
  /** Seconds of clock skew allowed on `exp`/`nbf`; default 0, as the official SDK's Receiver. */
  clockToleranceSeconds?: number;
  /** Milliseconds since the epoch; defaults to the current time. */
  now?: number;
}

/**
 * Verifies a delivery and returns its claims, or throws a
 * `DeliveryVerificationError` whose `reason` says what was wrong.
 *
 * It guards against the two mistakes behind most "invalid signature" reports:
 *
 * 1. **Verifying a re-serialised body.** The `body` claim hashes the exact
 *    bytes that were sent. A body that a framework has already parsed and
 *    `JSON.stringify`-ed again differs in whitespace, key order or number
 *    format, and no longer matches. Pass the raw bytes (or the undecoded
 *    text) and parse only after verifying; the error for a mismatch says so.
 * 2. **Verifying against the wrong URL.** `sub` is the URL the delivery was
 *    addressed to, i.e. the public one. Behind a proxy, load balancer or
 *    gateway, the URL the server sees (`http://10.0.0.5:7860/...`) is not it.
 *    Pass the public URL as `url`, or the public base as `publicUrl` with the
 *    request's `path`, and it is rebuilt. Headers such as `X-Forwarded-Host`
 *    are never trusted for this: a caller controls them, and a token signed
 *    for another service sharing the keys could then be replayed here.
 *
 * The signature is checked with the current key, then the next one. Both the
 * HMAC (jose, WebCrypto) and the body-hash comparison run in constant time.
 * When neither `url` nor `publicUrl` is given, `sub` is not compared (as the
 * SDK's Receiver without `url`): any endpoint's delivery would then verify.
 */
export async function verifyDelivery(input: VerifyDeliveryInput): Promise<DeliveryClaims> {
  if (!input.signature) throw new DeliveryVerificationError('SIGNATURE_MISSING', 'the Upstash-Signature header is missing');
  const url = input.url ?? (input.publicUrl === undefined ? undefined : publicRequestUrl(input.publicUrl, input.path ?? '/'));
  const claims = await verifyToken(input.signature, input.keys, input.clockToleranceSeconds ?? 0, input.now ?? Date.now());

  if (url !== undefined && !constantTimeEqual(claims.sub, url)) {
    throw new DeliveryVerificationError(
      'URL_MISMATCH',
      `the delivery was signed for ${claims.sub} but verified against ${url}; behind a proxy or gateway, verify against the public URL (publicUrl)`,
    );
  }
  const actual = await sha256Base64url(typeof input.rawBody === 'string' ? new TextEncoder().encode(input.rawBody) : input.rawBody);
  // Padding is optional in the claim (spec §12.1): every receiver strips it.
  if (!constantTimeEqual(claims.body.replace(/=+$/, ''), actual)) {
    throw new DeliveryVerificationError(
      'BODY_MISMATCH',
      'the body does not match the signed hash; verify the raw bytes as received, not a parsed and re-serialised body',
    );
  }
  return claims;
}

/** `publicUrl` + the request's path, with exactly one slash between them. */
export function publicRequestUrl(publicUrl: string, path: string): string {
  return publicUrl.replace(/\/+$/, '') + (path.startsWith('/') ? path : `/${path}`);
}

async function verifyToken(token: string, keys: SigningKeys, clockTolerance: number, now: number): Promise<DeliveryClaims> {
  const candidates = keys.next === undefined || keys.next === keys.current ? [keys.current] : [keys.current, keys.next];
  let failure: unknown;
  for (const key of candidates) {
    try {
      const { payload } = await jwtVerify(token, new TextEncoder().encode(key), {
        algorithms: ['HS256'],
        issuer: 'Upstash',
        // Without exp a token would stay valid forever; sub and body carry what is verified.
        requiredClaims: ['exp', 'sub', 'body'],
        clockTolerance,
        currentDate: new Date(now),
      });
      if (typeof payload.body !== 'string') throw new DeliveryVerificationError('SIGNATURE_INVALID', 'the body claim is not a string');
      return payload as DeliveryClaims;
    } catch (error) {
      failure = error;
      // Only a signature that does not match this key means "try the next one";
      // any later check failed on a token this key did sign.
      if (!(error instanceof joseErrors.JWSSignatureVerificationFailed)) break;
    }
  }
  throw explain(failure);
}

function explain(error: unknown): DeliveryVerificationError {
  if (error instanceof DeliveryVerificationError) return error;
  if (error instanceof joseErrors.JWTExpired) return new DeliveryVerificationError('SIGNATURE_EXPIRED', 'the signature has expired');
  if (error instanceof joseErrors.JWTClaimValidationFailed && error.claim === 'nbf' && error.reason === 'check_failed') {
    return new DeliveryVerificationError('SIGNATURE_NOT_YET_VALID', 'the signature is not valid yet (nbf is in the future)');
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new DeliveryVerificationError('SIGNATURE_INVALID', 'the signature matches neither the current nor the next signing key');
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new DeliveryVerificationError('SIGNATURE_INVALID', `the signature is not a valid delivery token: ${detail}`);
}

async function sha256Base64url(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  let binary = '';
  for (const byte of digest) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Compares without an early exit, so the time taken does not reveal how much of a guess was right. */
function constantTimeEqual(a: string, b: string): boolean {
  const left = new TextEncoder().encode(a);
  const right = new TextEncoder().encode(b);
  let difference = left.length ^ right.length;
  for (let i = 0; i < left.length; i++) difference |= left[i]! ^ (right[i % right.length] ?? 0);
  return difference === 0;
}
