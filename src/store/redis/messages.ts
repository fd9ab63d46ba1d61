/**
 * Messages on Redis: accepting, leasing, settling and canceling, each one script (enqueue, claim-due,
 * extend-leases, settle, cancel …), and the pub/sub channel `<prefix>:work` on which those scripts tell
 * every node about new work.
 */
import { randomUUID } from 'node:crypto';
import type { ClaimedMessage } from '../../core/message.js';
import { urlParts } from '../../core/message.js';
import type { CancelSelection, MessageStore, SettleResult } from '../port.js';
import { responseDetail, specFrom } from '../rows.js';
import { enqueueResults, messageArgs, responseBody, type Arg } from './codec.js';
import { pipelineResults, watchChannel, type RedisContext } from './context.js';
import { matchesMessage } from './filters.js';

const CANCEL_SCAN_PAGE = 500;
/** Ids per cancel script run: keeps each run short, since Redis serves nothing else meanwhile. */
const CANCEL_BATCH = 1_000;

/**
 * Unfinished messages matching a bulk cancel, in acceptance order. The script re-checks each, so one
 * that finished meanwhile is skipped rather than canceled.
 */
async function cancelCandidates(
  { redis, key }: RedisContext,
  selection: Exclude<CancelSelection, { messageIds: string[] }>,
): Promise<string[]> {
  const filter = 'filter' in selection ? selection.filter : undefined;
  const limit = selection.limit ?? Infinity;
  const chosen: string[] = [];
  let lower = '-inf';
  while (chosen.length < limit) {
    const page = await redis.zrangebyscore(key('live'), lower, '+inf', 'WITHSCORES', 'LIMIT', 0, CANCEL_SCAN_PAGE);
    if (page.length === 0) break;
    const ids = page.filter((_, index) => index % 2 === 0);
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hmget(key('m', id), 'cr', 'created', 'spec');
    const rows = (await pipelineResults(pipeline)) as (string | null)[][];
    ids.forEach((id, index) => {
      const [cr, created, spec] = rows[index]!;
      if (chosen.length >= limit || cr !== '0' || !spec) return;
      if (filter && !matchesMessage(specFrom(spec, null), filter, Number(created))) return;
      chosen.push(id);
    });
    lower = `(${page.at(-1)}`;
    if (ids.length < CANCEL_SCAN_PAGE) break;
  }
  return chosen;
}

/** The port's message verbs. */
export function redisMessages(ctx: RedisContext): MessageStore {
  const { redis, scripts, key } = ctx;
  return {
    async enqueue(messages, at, handoff) {
      if (messages.length === 0) return [];
      const limit = handoff && handoff.limit > 0 ? handoff.limit : 0;
      const excluded = new Set(handoff?.excludeOrigins ?? []);
      const leaseId = limit > 0 ? randomUUID() : '';
      const leaseUntil = String(at + (handoff?.leaseMs ?? 0));
      const args: Arg[] = [String(at), String(limit), leaseId, leaseUntil, String(messages.length)];
      for (const message of messages) {
        const eligible = limit > 0 && message.spec.notBefore <= at && !excluded.has(urlParts(message.spec.url).origin);
        args.push(...messageArgs(message, eligible));
      }
      return enqueueResults((await scripts.run('enqueue', args)) as string[]);
    },

    async getMessage(messageId) {
      const [state, retried, due, spec, body] = await redis.hmgetBuffer(
        key('m', messageId), 'state', 'retried', 'due', 'spec', 'body',
      );
      const live = state?.toString();
      if (live !== 'waiting' && live !== 'pending' && live !== 'active') return undefined;
      return {
        spec: specFrom(spec!, body),
        state: live === 'active' ? 'active' : 'pending',
        retried: Number(retried!.toString()),
        dueAt: Number(due!.toString()),
      };
    },

    async claimDue(request) {
      const leaseId = randomUUID();
      const exclude = request.excludeOrigins ?? [];
      const flat = (await scripts.runBuffer('claim-due', [
        String(request.now), String(request.limit), leaseId, String(request.now + request.leaseMs),
        String(exclude.length), ...exclude,
      ])) as Buffer[];
      const claimed: ClaimedMessage[] = [];
      for (let i = 0; i < flat.length; i += 3) {
        claimed.push({ spec: specFrom(flat[i]!, flat[i + 1]), retried: Number(flat[i + 2]!.toString()), leaseId });
      }
      return claimed;
    },

    async extendLeases(leases, until) {
      if (leases.length === 0) return;
      const pairs = leases.flatMap((lease) => [lease.messageId, lease.leaseId]);
      await scripts.run('extend-leases', [String(until), ...pairs]);
    },

    async nextDueAt(now) {
      const at = (await scripts.run('next-due', [String(now)])) as string;
      return at === '' ? undefined : Number(at);
    },

    async settle(batch) {
      if (batch.length === 0) return [];
      const args: Arg[] = [String(batch.length)];
      for (const settlement of batch) {
        const { response } = settlement;
        args.push(
          settlement.messageId,
          settlement.leaseId,
          settlement.kind,
          String(settlement.at),
          settlement.kind === 'retry' ? String(settlement.nextAt) : '',
          responseDetail(response),
          responseBody(response),
          settlement.kind === 'deadLetter' ? settlement.dlqId : '',
          response.status === undefined ? '' : String(response.status),
          // The FAILED event's error is delivery's decision (Settlement.failure); the store only records it.
          settlement.kind === 'deadLetter' ? responseDetail(undefined, { error: settlement.failure }) : '',
          String(settlement.followUps.length),
        );
        for (const followUp of settlement.followUps) args.push(...messageArgs(followUp));
      }
      return (await scripts.run('settle', args)) as SettleResult[];
    },

    async cancel(selection, at) {
      const chosen = 'messageIds' in selection ? selection.messageIds : await cancelCandidates(ctx, selection);
      let affected = 0;
      for (let start = 0; start < chosen.length; start += CANCEL_BATCH) {
        const ids = chosen.slice(start, start + CANCEL_BATCH);
        affected += (await scripts.run('cancel', [String(at), ...ids])) as number;
      }
      return affected;
    },

    /** A dedicated subscriber connection (a subscribed connection can run nothing else) on `<prefix>:work`. */
    async watchWork(onWork) {
      return watchChannel(ctx, key('work'), (message) => onWork(Number(message)));
    },
  };
}
