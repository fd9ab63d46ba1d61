import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Receiver } from '@upstash/qstash';
import { bodyHash, signDelivery } from './signing.js';

const keys = { current: 'sig_current_key_for_tests', next: 'sig_next_key_for_tests' };

function claims(token: string): Record<string, unknown> {
  const [header, payload] = token.split('.');
  assert.deepEqual(JSON.parse(Buffer.from(header!, 'base64url').toString()), { alg: 'HS256', typ: 'JWT' });
  return JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
}

describe('delivery signatures (spec §12)', () => {
  it('hashes an empty body to the documented value', () => {
    assert.equal(bodyHash(new Uint8Array()), '47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU');
  });

  it('carries iss, sub, a five-minute exp, nbf 0, a jti and the body hash', () => {
    const nowMs = 1_700_000_000_123;
    const body = Buffer.from('{"a":1}');
    const token = signDelivery({ signingKey: keys.current, url: 'https://example.com/x?y=1', body, nowMs });
    const payload = claims(token);
    assert.equal(payload.iss, 'Upstash');
    assert.equal(payload.sub, 'https://example.com/x?y=1');
    assert.equal(payload.iat, 1_700_000_000);
    assert.equal(payload.exp, 1_700_000_300);
    assert.equal(payload.nbf, 0);
    assert.match(String(payload.jti), /^jwt_/);
    assert.equal(payload.body, bodyHash(body));
  });

  it('is accepted by the SDK Receiver with the current key, and with the next key after a rotation', async () => {
    const body = 'hello ✓';
    const url = 'https://example.com/hook';
    const receiver = new Receiver({ currentSigningKey: keys.current, nextSigningKey: keys.next });
    for (const signingKey of [keys.current, keys.next]) {
      const signature = signDelivery({ signingKey, url, body: Buffer.from(body), nowMs: Date.now() });
      assert.equal(await receiver.verify({ signature, body, url }), true);
    }
  });

  it('is rejected for another body, another URL, or an unknown key', async () => {
    const receiver = new Receiver({ currentSigningKey: keys.current, nextSigningKey: keys.next });
    const url = 'https://example.com/hook';
    const signature = signDelivery({ signingKey: keys.current, url, body: Buffer.from('a'), nowMs: Date.now() });
    await assert.rejects(receiver.verify({ signature, body: 'b', url }));
    await assert.rejects(receiver.verify({ signature, body: 'a', url: 'https://example.com/other' }));
    const foreign = signDelivery({ signingKey: 'sig_someone_else', url, body: Buffer.from('a'), nowMs: Date.now() });
    await assert.rejects(receiver.verify({ signature: foreign, body: 'a', url }));
  });

  it('is rejected once expired', async () => {
    const receiver = new Receiver({ currentSigningKey: keys.current, nextSigningKey: keys.next });
    const signature = signDelivery({ signingKey: keys.current, url: 'https://e.x/', body: Buffer.from(''), nowMs: Date.now() - 301_000 });
    await assert.rejects(receiver.verify({ signature, body: '', url: 'https://e.x/' }));
  });
});
