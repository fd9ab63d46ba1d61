import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memoryDedupe } from './dedupe.js';

describe('memoryDedupe', () => {
  it('claims an id once until it is released', async () => {
    const dedupe = memoryDedupe();
    assert.equal(await dedupe.claim('msg_1'), true);
    assert.equal(await dedupe.claim('msg_1'), false);
    assert.equal(await dedupe.claim('msg_2'), true);
    await dedupe.release('msg_1');
    assert.equal(await dedupe.claim('msg_1'), true);
  });

  it('keeps at most max ids, forgetting the oldest first', async () => {
    const dedupe = memoryDedupe({ max: 2 });
    for (const id of ['a', 'b', 'c']) assert.equal(await dedupe.claim(id), true);
    assert.equal(await dedupe.claim('c'), false);
    assert.equal(await dedupe.claim('b'), false);
    assert.equal(await dedupe.claim('a'), true, 'the oldest claim was evicted');
  });

  it('forgets a claim once its ttl has passed', async () => {
    let now = 1_000_000;
    const dedupe = memoryDedupe({ ttlMs: 60_000, now: () => now });
    assert.equal(await dedupe.claim('msg_1'), true);
    now += 30_000;
    assert.equal(await dedupe.claim('msg_2'), true);
    now += 29_999;
    assert.equal(await dedupe.claim('msg_1'), false);
    now += 1;
    assert.equal(await dedupe.claim('msg_1'), true, 'msg_1 expired');
    assert.equal(await dedupe.claim('msg_2'), false, 'msg_2 has not');
  });
});
