/** Conversions between the port's types and what the Redis scripts take and give back. */
import type { AttemptResponse, NewMessage } from '../../core/message.js';
import { urlParts } from '../../core/message.js';
import type { EnqueueResult } from '../port.js';
import { specJson, toBuffer } from '../rows.js';

export type Arg = string | Buffer;

export const DEFAULT_PERIOD_MS = 1_000;

/**
 * The MSG_ARGS fields lib.lua's insert_message reads, in its order. `eligible` says whether a handoff may
 * lease it (due by `at`, origin not excluded); the script adds the rest of the rule.
 */
export function messageArgs(message: NewMessage, eligible = false): Arg[] {
  const { spec, dedup, queueSlot } = message;
  const fc = spec.flowControl;
  return [
    spec.messageId,
    specJson(spec),
    toBuffer(spec.body),
    String(spec.notBefore),
    String(spec.createdAt),
    spec.queueName ?? '',
    queueSlot ?? '',
    fc?.key ?? '',
    fc?.parallelism === undefined ? '' : String(fc.parallelism),
    fc?.rate === undefined ? '' : String(fc.rate),
    String(fc?.periodMs ?? DEFAULT_PERIOD_MS),
    dedup?.key ?? '',
    dedup ? String(dedup.expiresAt) : '',
    urlParts(spec.url).origin,
    spec.scheduleId ?? '',
    eligible ? '1' : '0',
  ];
}

export const responseBody = (response: AttemptResponse): Buffer =>
  response.body && response.body.byteLength > 0 ? toBuffer(response.body) : Buffer.alloc(0);

/** A numeric field that may be unset (stored as an empty string). */
export const optionalNumber = (value: string | Buffer | null | undefined): number | undefined =>
  value === null || value === undefined || value.length === 0 ? undefined : Number(value.toString());

/** Turns flat script answers of [messageId, deduplicated, leaseId] triples into results. */
export function enqueueResults(flat: string[], from = 0, count = flat.length / 3): EnqueueResult[] {
  const results: EnqueueResult[] = [];
  for (let n = 0; n < count; n++) {
    const [messageId, deduplicated, leaseId] = flat.slice(from + n * 3, from + n * 3 + 3) as [string, string, string];
    const result: EnqueueResult = { messageId, deduplicated: deduplicated === '1' };
    if (leaseId) result.leaseId = leaseId;
    results.push(result);
  }
  return results;
}
