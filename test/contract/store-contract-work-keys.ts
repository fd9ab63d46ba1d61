/**
 * Store contract cases for work keys: the claims the worker kit's shared
 * de-duplication makes (Store.claimWorkKey). runStoreContract calls this
 * inside its suite, so every case runs on that suite's fresh, empty store.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Store } from '../../src/store/port.js';

export interface WorkKeyKit {
  /** The current case's store (set by the suite's beforeEach). */
  store: () => Store;
  /** The base time every case counts from. */
  T: number;
}

const HOUR = 60 * 60 * 1000;

export function runWorkKeyCases(kit: WorkKeyKit): void {
  const { T } = kit;
  const store = (): Store => kit.store();

  describe('work keys', () => {
    it('a free key is claimed; while the claim holds, claims of it fail and do not extend it', async () => {
      assert.equal(await store().claimWorkKey('workers', 'msg_1', T + HOUR, T), true);
      assert.equal(await store().claimWorkKey('workers', 'msg_1', T + 2 * HOUR, T + 1), false);
      assert.equal(await store().claimWorkKey('workers', 'msg_1', T + 3 * HOUR, T + HOUR - 1), false);
      // The refused claims above left the first expiry in place: it ends at T + HOUR, not later.
      assert.equal(await store().claimWorkKey('workers', 'msg_1', T + 3 * HOUR, T + HOUR), true);
    });

    it('an expired claim is taken over, and then holds until its own expiry', async () => {
      assert.equal(await store().claimWorkKey('workers', 'msg_1', T + HOUR, T), true);
      assert.equal(await store().claimWorkKey('workers', 'msg_1', T + 5 * HOUR, T + 2 * HOUR), true, 'expired: taken over');
      assert.equal(await store().claimWorkKey('workers', 'msg_1', T + 6 * HOUR, T + 5 * HOUR - 1), false);
      assert.equal(await store().claimWorkKey('workers', 'msg_1', T + 6 * HOUR, T + 5 * HOUR), true, 'at ≥ expiresAt is expired');
    });

    it('a release frees the key at once; releasing an unknown or released key answers false', async () => {
      assert.equal(await store().claimWorkKey('workers', 'msg_1', T + HOUR, T), true);
      assert.equal(await store().releaseWorkKey('workers', 'msg_1'), true);
      assert.equal(await store().releaseWorkKey('workers', 'msg_1'), false, 'already released');
      assert.equal(await store().releaseWorkKey('workers', 'never-claimed'), false);
      assert.equal(await store().claimWorkKey('workers', 'msg_1', T + HOUR, T + 1), true, 'claimable again after release');
    });

    it('scopes are independent, even when scope and key could be joined the same way', async () => {
      assert.equal(await store().claimWorkKey('a', 'msg_1', T + HOUR, T), true);
      assert.equal(await store().claimWorkKey('b', 'msg_1', T + HOUR, T), true, 'same key, other scope');
      assert.equal(await store().claimWorkKey('x:y', 'z', T + HOUR, T), true);
      assert.equal(await store().claimWorkKey('x', 'y:z', T + HOUR, T), true, 'not confused with scope "x:y", key "z"');
      assert.equal(await store().releaseWorkKey('a', 'msg_1'), true);
      assert.equal(await store().claimWorkKey('b', 'msg_1', T + HOUR, T + 1), false, 'releasing in one scope leaves the other held');
      assert.equal(await store().claimWorkKey('x:y', 'z', T + HOUR, T + 1), false);
    });

    it('of 5 concurrent claims of one key exactly one succeeds, for a free and for an expired key', async () => {
      const claims = (expiresAt: number, at: number) =>
        Promise.all(Array.from({ length: 5 }, () => store().claimWorkKey('workers', 'msg_race', expiresAt, at)));
      assert.equal((await claims(T + HOUR, T)).filter(Boolean).length, 1);
      assert.equal((await claims(T + 3 * HOUR, T + 2 * HOUR)).filter(Boolean).length, 1);
    });

    it('purge forgets claims that expired before dedupBefore and keeps the rest', async () => {
      await store().claimWorkKey('workers', 'expired', T + 100, T);
      await store().claimWorkKey('other', 'expired', T + 149, T);
      await store().claimWorkKey('workers', 'at-cutoff', T + 150, T);
      await store().claimWorkKey('workers', 'live', T + HOUR, T);
      await store().purge({ logsBefore: T, deadLettersBefore: T, dedupBefore: T + 150 });
      // A release answers whether a claim was still stored: the purged ones are gone.
      assert.equal(await store().releaseWorkKey('workers', 'expired'), false);
      assert.equal(await store().releaseWorkKey('other', 'expired'), false);
      assert.equal(await store().releaseWorkKey('workers', 'at-cutoff'), true, 'expiring exactly at the cutoff is kept');
      assert.equal(await store().claimWorkKey('workers', 'live', T + 2 * HOUR, T + 150), false, 'a live claim survives and still holds');
    });
  });
}
