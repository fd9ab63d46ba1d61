import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { Receiver } from '@upstash/qstash';
import { SignJWT } from 'jose';
import { bodyHash, signDelivery } from '../delivery/signing.js';
import { DeliveryVerificationError, type VerificationFailure, verifyDelivery } from './verify.js';

/** The official SDK's dev-mode signing keys (`DEV_CREDENTIALS` in @upstash/qstash). */
const SDK_KEYS = { current: 'sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r', next: 'sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs' };
const COURIER_KEYS = { current: 'sig_courier_current_for_tests', next: 'sig_courier_next_for_tests' };
const URL = 'https://worker.example.com/api/tasks/download';

/** A token as hosted QStash makes it (spec §12.1): padded body hash, nbf 0, a jwt_ id. */
function qstashSignature(input: {
  key: string;
  url: string;
  body: string | Uint8Array;
  iat?: number;
  overrides?: Record<string, unknown>;
  issuer?: string;
}): Promise<string> {
  const iat = input.iat ?? Math.floor(Date.now() / 1000);
  const bytes = typeof input.body === 'string' ? Buffer.from(input.body) : input.body;
  return new SignJWT({ body: `${bodyHash(bytes)}=`, nbf: 0, ...input.overrides })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(input.issuer ?? 'Upstash')
    .setSubject(input.url)
    .setIssuedAt(iat)
    .setExpirationTime(iat + 300)
    .setJti(`jwt_${randomUUID()}`)
    .sign(new TextEncoder().encode(input.key));
}

async function refusal(promise: Promise<unknown>): Promise<VerificationFailure> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DeliveryVerificationError, `expected a DeliveryVerificationError, got ${String(error)}`);
    return error.reason;
  }
  assert.fail('the delivery verified');
}

describe('verifyDelivery: signatures made by Courier', () => {
  const body = '{"taskId":"task_123","type":"download"}';

  it('accepts the current key, and the next key after a rotation, returning the claims', async () => {
    for (const signingKey of [COURIER_KEYS.current, COURIER_KEYS.next]) {
      const signature = signDelivery({ signingKey, url: URL, body: Buffer.from(body), nowMs: Date.now() });
      const claims = await verifyDelivery({ signature, rawBody: body, url: URL, keys: COURIER_KEYS });
      assert.equal(claims.sub, URL);
      assert.equal(claims.iss, 'Upstash');
      assert.equal(claims.body, bodyHash(Buffer.from(body)));
    }
  });

  it('accepts raw bytes as well as the undecoded text, including non-ASCII bodies', async () => {
    const text = '{"name":"文件.mp4","size":1}';
    const signature = signDelivery({ signingKey: COURIER_KEYS.current, url: URL, body: Buffer.from(text), nowMs: Date.now() });
    await verifyDelivery({ signature, rawBody: text, url: URL, keys: COURIER_KEYS });
    await verifyDelivery({ signature, rawBody: new TextEncoder().encode(text), url: URL, keys: COURIER_KEYS });
  });

  it('SIGNATURE_MISSING without a header', async () => {
    assert.equal(await refusal(verifyDelivery({ signature: null, rawBody: body, url: URL, keys: COURIER_KEYS })), 'SIGNATURE_MISSING');
    assert.equal(await refusal(verifyDelivery({ signature: '', rawBody: body, url: URL, keys: COURIER_KEYS })), 'SIGNATURE_MISSING');
  });

  it('SIGNATURE_INVALID for a foreign key, a tampered token and a non-token', async () => {
    const foreign = signDelivery({ signingKey: 'sig_someone_else', url: URL, body: Buffer.from(body), nowMs: Date.now() });
    assert.equal(await refusal(verifyDelivery({ signature: foreign, rawBody: body, url: URL, keys: COURIER_KEYS })), 'SIGNATURE_INVALID');
    const genuine = signDelivery({ signingKey: COURIER_KEYS.current, url: URL, body: Buffer.from(body), nowMs: Date.now() });
    const [header, payload, mac] = genuine.split('.');
    const forgedPayload = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), sub: 'https://evil.example.com/' }),
    ).toString('base64url');
    const tampered = `${header}.${forgedPayload}.${mac}`;
    assert.equal(await refusal(verifyDelivery({ signature: tampered, rawBody: body, keys: COURIER_KEYS })), 'SIGNATURE_INVALID');
    assert.equal(await refusal(verifyDelivery({ signature: 'v2,abc123def456', rawBody: body, url: URL, keys: COURIER_KEYS })), 'SIGNATURE_INVALID');
  });

  it('SIGNATURE_EXPIRED after five minutes, unless the clock tolerance covers the skew', async () => {
    const nowMs = Date.now();
    const signature = signDelivery({ signingKey: COURIER_KEYS.current, url: URL, body: Buffer.from(body), nowMs: nowMs - 301_000 });
    const input = { signature, rawBody: body, url: URL, keys: COURIER_KEYS, now: nowMs };
    assert.equal(await refusal(verifyDelivery(input)), 'SIGNATURE_EXPIRED');
    await verifyDelivery({ ...input, clockToleranceSeconds: 10 });
  });

  it('does not fall through to the next key when the current key signed an expired token', async () => {
    const nowMs = Date.now();
    const signature = signDelivery({ signingKey: COURIER_KEYS.current, url: URL, body: Buffer.from(body), nowMs: nowMs - 600_000 });
    const error = await verifyDelivery({ signature, rawBody: body, url: URL, keys: COURIER_KEYS, now: nowMs }).catch((e: unknown) => e);
    assert.ok(error instanceof DeliveryVerificationError);
    assert.equal(error.reason, 'SIGNATURE_EXPIRED');
    assert.match(error.message, /expired/);
  });

  it('URL_MISMATCH for another endpoint or for the internal URL behind a proxy; publicUrl rebuilds the signed one', async () => {
    const signature = signDelivery({ signingKey: COURIER_KEYS.current, url: `${URL}?tenant=a`, body: Buffer.from(body), nowMs: Date.now() });
    const other = verifyDelivery({ signature, rawBody: body, url: 'https://worker.example.com/api/tasks/upload?tenant=a', keys: COURIER_KEYS });
    assert.equal(await refusal(other), 'URL_MISMATCH');
    const internal = verifyDelivery({ signature, rawBody: body, url: 'http://10.0.0.5:7860/api/tasks/download?tenant=a', keys: COURIER_KEYS });
    const error = await internal.catch((e: unknown) => e);
    assert.ok(error instanceof DeliveryVerificationError);
    assert.equal(error.reason, 'URL_MISMATCH');
    assert.match(error.message, /publicUrl/);
    for (const publicUrl of ['https://worker.example.com', 'https://worker.example.com/']) {
      await verifyDelivery({ signature, rawBody: body, publicUrl, path: '/api/tasks/download?tenant=a', keys: COURIER_KEYS });
    }
  });

  it('BODY_MISMATCH for a parsed and re-serialised body, with a message that says so', async () => {
    const wire = '{ "taskId": "task_123",\n  "type": "download" }';
    const signature = signDelivery({ signingKey: COURIER_KEYS.current, url: URL, body: Buffer.from(wire), nowMs: Date.now() });
    await verifyDelivery({ signature, rawBody: wire, url: URL, keys: COURIER_KEYS });
    const reserialised = JSON.stringify(JSON.parse(wire));
    const error = await verifyDelivery({ signature, rawBody: reserialised, url: URL, keys: COURIER_KEYS }).catch((e: unknown) => e);
    assert.ok(error instanceof DeliveryVerificationError);
    assert.equal(error.reason, 'BODY_MISMATCH');
    assert.match(error.message, /raw bytes/);
  });
});

describe('verifyDelivery: signatures made as hosted QStash makes them (SDK dev keys)', () => {
  const body = '{"groupId":"media_group_123","taskIds":["task_1","task_2"]}';
  const receiver = new Receiver({ currentSigningKey: SDK_KEYS.current, nextSigningKey: SDK_KEYS.next });

  it('accepts what the official Receiver accepts, with either key', async () => {
    for (const key of [SDK_KEYS.current, SDK_KEYS.next]) {
      const signature = await qstashSignature({ key, url: URL, body });
      assert.equal(await receiver.verify({ signature, body, url: URL }), true);
      const claims = await verifyDelivery({ signature, rawBody: body, url: URL, keys: SDK_KEYS });
      assert.match(String(claims.jti), /^jwt_/);
    }
  });

  it('refuses, with the right reason, each token the official Receiver refuses', async () => {
    const nowS = Math.floor(Date.now() / 1000);
    const cases: Array<{ reason: VerificationFailure; signature: string; body?: string; url?: string }> = [
      { reason: 'SIGNATURE_INVALID', signature: await qstashSignature({ key: 'sig_not_ours', url: URL, body }) },
      { reason: 'SIGNATURE_INVALID', signature: await qstashSignature({ key: SDK_KEYS.current, url: URL, body, issuer: 'Someone' }) },
      { reason: 'SIGNATURE_EXPIRED', signature: await qstashSignature({ key: SDK_KEYS.current, url: URL, body, iat: nowS - 400 }) },
      {
        reason: 'SIGNATURE_NOT_YET_VALID',
        signature: await qstashSignature({ key: SDK_KEYS.current, url: URL, body, overrides: { nbf: nowS + 120 } }),
      },
      { reason: 'URL_MISMATCH', signature: await qstashSignature({ key: SDK_KEYS.current, url: URL, body }), url: `${URL}-tasks` },
      { reason: 'BODY_MISMATCH', signature: await qstashSignature({ key: SDK_KEYS.current, url: URL, body }), body: `${body} ` },
    ];
    for (const c of cases) {
      const sent = { body: c.body ?? body, url: c.url ?? URL };
      await assert.rejects(receiver.verify({ signature: c.signature, ...sent }), `the SDK refuses the ${c.reason} case too`);
      const reason = await refusal(verifyDelivery({ signature: c.signature, rawBody: sent.body, url: sent.url, keys: SDK_KEYS }));
      assert.equal(reason, c.reason);
    }
  });

  it('refuses an HS512 token even with the right key: HS256 only', async () => {
    const iat = Math.floor(Date.now() / 1000);
    const signature = await new SignJWT({ body: bodyHash(Buffer.from(body)) })
      .setProtectedHeader({ alg: 'HS512' })
      .setIssuer('Upstash')
      .setSubject(URL)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 300)
      .sign(new TextEncoder().encode(SDK_KEYS.current));
    assert.equal(await refusal(verifyDelivery({ signature, rawBody: body, url: URL, keys: SDK_KEYS })), 'SIGNATURE_INVALID');
  });

  it('refuses a token without exp, which would never expire', async () => {
    const signature = await new SignJWT({ body: bodyHash(Buffer.from(body)) })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('Upstash')
      .setSubject(URL)
      .setIssuedAt()
      .sign(new TextEncoder().encode(SDK_KEYS.current));
    assert.equal(await refusal(verifyDelivery({ signature, rawBody: body, url: URL, keys: SDK_KEYS })), 'SIGNATURE_INVALID');
  });
});
