import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mintStreamToken, streamTokenSecret, verifyStreamToken } from './tokens.js';

const NOW = 1_800_000_000_000;

describe('stream tokens', () => {
  const secret = streamTokenSecret('api-token-0123456789');

  it('a read token reads its stream until it expires, and nothing else', async () => {
    const token = await mintStreamToken(secret, { streamId: 'task_1', scope: 'read', expiresAt: NOW + 60_000 });
    assert.deepEqual(await verifyStreamToken(secret, token, 'task_1', 'read', NOW), {
      ok: true,
      claims: { streamId: 'task_1', scope: 'read', expiresAt: NOW + 60_000 },
    });
    assert.deepEqual(await verifyStreamToken(secret, token, 'task_2', 'read', NOW), { ok: false, reason: 'other stream' });
    assert.deepEqual(await verifyStreamToken(secret, token, 'task_1', 'write', NOW), { ok: false, reason: 'read only' });
    assert.deepEqual(await verifyStreamToken(secret, token, 'task_1', 'read', NOW + 61_000), { ok: false, reason: 'expired' });
  });

  it('a write token may also read; a token signed with another API token is invalid', async () => {
    const token = await mintStreamToken(secret, { streamId: 'task_1', scope: 'write', expiresAt: NOW + 60_000 });
    assert.equal((await verifyStreamToken(secret, token, 'task_1', 'read', NOW)).ok, true);
    const other = streamTokenSecret('another-api-token-99');
    assert.deepEqual(await verifyStreamToken(other, token, 'task_1', 'read', NOW), { ok: false, reason: 'invalid' });
    assert.deepEqual(await verifyStreamToken(secret, 'not.a.jwt', 'task_1', 'read', NOW), { ok: false, reason: 'invalid' });
  });
});
