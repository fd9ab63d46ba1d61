/** Work keys on Redis: one sorted set P:wk of claims by expiry (see work-key-claim.lua). */
import type { WorkKeyStore } from '../port.js';
import type { RedisContext } from './context.js';

/** The port's work-key verbs. */
export function redisWorkKeys({ scripts }: RedisContext): WorkKeyStore {
  return {
    async claimWorkKey(scope, key, expiresAt, at) {
      return (await scripts.run('work-key-claim', [scope, key, String(expiresAt), String(at)])) === 1;
    },

    async releaseWorkKey(scope, key) {
      return (await scripts.run('work-key-release', [scope, key])) === 1;
    },
  };
}
