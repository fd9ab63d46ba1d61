import { randomBytes, randomInt } from 'node:crypto';

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/**
 * Random bytes drawn from a pooled buffer: a message needs several ids, and
 * one 64 KiB fill is far cheaper than a system call per id (the same reason
 * crypto.randomUUID keeps a cache). Every byte is used once.
 */
const POOL_SIZE = 64 * 1024;
let pool = randomBytes(POOL_SIZE);
let poolOffset = 0;

function nextRandomByte(): number {
  if (poolOffset === POOL_SIZE) {
    pool = randomBytes(POOL_SIZE);
    poolOffset = 0;
  }
  return pool[poolOffset++]!;
}

/** Random base58 text; rejection sampling keeps the alphabet uniform. */
export function randomBase58(length: number): string {
  let out = '';
  while (out.length < length) {
    const byte = nextRandomByte();
    if (byte < 232) out += BASE58[byte % 58];
  }
  return out;
}

// Upstash's id shapes (spec §1.7), kept for familiarity; nothing parses them.
export const newMessageId = (): string => `msg_${randomBase58(26)}`;
export const newSigningKey = (): string => `sig_${randomBase58(28)}`;
export const newToken = (): string => randomBase58(40);
export const newScheduleId = (): string => `scd_${randomBase58(26)}`;
export const newJwtId = (): string => `jwt_${randomBase58(20)}`;

/**
 * DLQ ids look like Upstash's `<ms>-<seq>`. The suffix is random rather than a
 * per-process counter so that several nodes sharing one store never collide;
 * ordering comes from the store's own sequence, not from this text.
 */
export const newDlqId = (now: number): string => `${now}-${randomInt(0, 2 ** 31)}`;
