/**
 * What happened, read back from Redis: the event log (P:events, newest first by event number) and the DLQ
 * (P:dlq, oldest first by entry number). Filters are evaluated here over pages of the index, so a
 * filtered read costs the entries it skips; the cursor is the last entry number returned. The DLQ's
 * entries are written by settle (messages.ts); removing and replaying them are scripts.
 */
import type { DeadLetter, LogEvent, MessageSpec } from '../../core/message.js';
import type { DeadLetterSelection, EventQuery, HistoryStore, Page } from '../port.js';
import { deadLetterFrom, eventFrom, specFrom } from '../rows.js';
import { enqueueResults, messageArgs, optionalNumber, type Arg } from './codec.js';
import { pipelineResults, type RedisContext, type Row } from './context.js';
import { matchesDeadLetter, matchesMessage } from './filters.js';

const IN_PROGRESS_STATES = ['ACTIVE', 'RETRY', 'ERROR'];
const SCAN_PAGE = 500;

type DeadLetterRow = { seq: number; entry: DeadLetter; status?: number };

/** Specs (with bodies) of the given messages, one round trip; purged ones are absent. */
async function specs(
  { redis, key }: RedisContext,
  ids: Iterable<string>,
  known = new Map<string, MessageSpec>(),
): Promise<Map<string, MessageSpec>> {
  const wanted = [...new Set(ids)].filter((id) => !known.has(id));
  if (wanted.length === 0) return known;
  const pipeline = redis.pipeline();
  for (const id of wanted) pipeline.hmgetBuffer(key('m', id), 'spec', 'body');
  const rows = (await pipelineResults(pipeline)) as Row[];
  wanted.forEach((id, index) => {
    const row = rows[index]!;
    if (row[0]) known.set(id, specFrom(row[0], row[1]));
  });
  return known;
}

async function eventRows({ redis, key }: RedisContext, seqs: string[]): Promise<Row[]> {
  const pipeline = redis.pipeline();
  for (const seq of seqs) pipeline.hmgetBuffer(key('ev', seq), 't', 's', 'm', 'd', 'b');
  return (await pipelineResults(pipeline)) as Row[];
}

async function deadLetterRows(ctx: RedisContext, dlqIds: string[]): Promise<DeadLetterRow[]> {
  const { redis, key } = ctx;
  const pipeline = redis.pipeline();
  for (const id of dlqIds) pipeline.hmgetBuffer(key('d', id), 'seq', 'm', 'created', 'status', 'resp', 'body');
  const rows = (await pipelineResults(pipeline)) as Row[];
  const known = await specs(ctx, rows.flatMap((row) => (row[1] ? [row[1].toString()] : [])));
  const out: DeadLetterRow[] = [];
  dlqIds.forEach((dlqId, index) => {
    const [seq, m, created, status, resp, body] = rows[index]!;
    const spec = m && known.get(m.toString());
    if (!seq || !spec || !resp) return;
    const entry = deadLetterFrom(dlqId, Number(created!.toString()), spec, resp, body);
    const row: DeadLetterRow = { seq: Number(seq.toString()), entry };
    const code = optionalNumber(status);
    if (code !== undefined) row.status = code;
    out.push(row);
  });
  return out;
}

/** The selected entries in DLQ order, and whether more may match after them. */
async function selectDeadLetters(
  ctx: RedisContext,
  selection: DeadLetterSelection,
): Promise<{ rows: { seq: number; entry: DeadLetter }[]; more: boolean }> {
  if ('dlqIds' in selection) {
    const rows = await deadLetterRows(ctx, selection.dlqIds);
    return { rows: rows.sort((a, b) => a.seq - b.seq), more: false };
  }
  const { filter, count } = selection;
  const found: { seq: number; entry: DeadLetter }[] = [];
  let lower = selection.cursor === undefined ? '-inf' : `(${selection.cursor}`;
  while (found.length <= count) {
    const ids = await ctx.redis.zrangebyscore(ctx.key('dlq'), lower, '+inf', 'WITHSCORES', 'LIMIT', 0, SCAN_PAGE);
    if (ids.length === 0) break;
    const dlqIds = ids.filter((_, index) => index % 2 === 0);
    for (const row of await deadLetterRows(ctx, dlqIds)) {
      if (found.length > count) break;
      if (matchesDeadLetter(row.entry.spec, row.status, filter, row.entry.createdAt)) found.push(row);
    }
    lower = `(${ids.at(-1)}`;
    if (dlqIds.length < SCAN_PAGE) break;
  }
  const more = found.length > count;
  return { rows: found.slice(0, count), more };
}

async function deadLetterPage(ctx: RedisContext, selection: DeadLetterSelection): Promise<Page<DeadLetter>> {
  const { rows, more } = await selectDeadLetters(ctx, selection);
  const page: Page<DeadLetter> = { items: rows.map((row) => row.entry) };
  if (more && rows.length > 0) page.cursor = String(rows.at(-1)!.seq);
  return page;
}

/** The port's log and DLQ verbs. */
export function redisHistory(ctx: RedisContext): HistoryStore {
  const { redis, key, scripts } = ctx;
  return {
    async listEvents(query: EventQuery) {
      const states = query.states && query.states.length > 0
        ? new Set(query.states.flatMap((state) => (state === 'IN_PROGRESS' ? IN_PROGRESS_STATES : [state])))
        : undefined;
      const byIds = query.messageIds && query.messageIds.length > 0;
      const filter = byIds ? undefined : query.filter;
      const cursor = query.cursor === undefined ? undefined : Number(query.cursor);
      const found: { seq: string; event: LogEvent }[] = [];
      const known = new Map<string, MessageSpec>();
      const take = async (seqs: string[]): Promise<void> => {
        const rows = await eventRows(ctx, seqs);
        await specs(ctx, rows.flatMap((row) => (row[2] ? [row[2].toString()] : [])), known);
        seqs.forEach((seq, index) => {
          const [t, s, m, d, b] = rows[index]!;
          if (!t || !s || !m || found.length > query.count) return;
          const spec = known.get(m.toString());
          const time = Number(t.toString());
          if (!spec || (states && !states.has(s.toString())) || !matchesMessage(spec, filter, time)) return;
          found.push({ seq, event: eventFrom(time, s.toString(), spec, d, b) });
        });
      };

      if (byIds) {
        const pipeline = redis.pipeline();
        for (const id of query.messageIds!) pipeline.lrange(key('me', id), 0, -1);
        const all = ((await pipelineResults(pipeline)) as string[][])
          .flatMap((seqs) => seqs.map(Number))
          .filter((seq) => cursor === undefined || seq < cursor)
          .sort((a, b) => b - a)
          .map(String);
        for (let start = 0; start < all.length && found.length <= query.count; start += SCAN_PAGE) {
          await take(all.slice(start, start + SCAN_PAGE));
        }
      } else {
        const batch = states || filter ? SCAN_PAGE : query.count + 1;
        let upper = cursor === undefined ? '+inf' : `(${cursor}`;
        while (found.length <= query.count) {
          const seqs = await redis.zrevrangebyscore(key('events'), upper, '-inf', 'LIMIT', 0, batch);
          if (seqs.length === 0) break;
          await take(seqs);
          upper = `(${seqs.at(-1)}`;
          if (seqs.length < batch) break;
        }
      }
      const more = found.length > query.count;
      const kept = found.slice(0, query.count);
      const page: Page<LogEvent> = { items: kept.map((entry) => entry.event) };
      if (more && kept.length > 0) page.cursor = kept.at(-1)!.seq;
      return page;
    },

    async listDeadLetters(selection) {
      return deadLetterPage(ctx, selection);
    },

    async getDeadLetter(dlqId) {
      return (await deadLetterPage(ctx, { dlqIds: [dlqId] })).items[0];
    },

    async deleteDeadLetters(selection) {
      const { rows, more } = await selectDeadLetters(ctx, selection);
      const dlqIds = rows.map((row) => row.entry.dlqId);
      const deleted = dlqIds.length === 0 ? 0 : ((await scripts.run('delete-dead-letters', dlqIds)) as number);
      return more && rows.length > 0 ? { deleted, cursor: String(rows.at(-1)!.seq) } : { deleted };
    },

    async replayDeadLetters(items, at) {
      if (items.length === 0) return [];
      const args: Arg[] = [String(at), String(items.length)];
      for (const { dlqId, message } of items) args.push(dlqId, ...messageArgs(message));
      const flat = (await scripts.run('replay-dead-letters', args)) as string[];
      return items.map((_, n) => (flat[n * 3] === '' ? undefined : enqueueResults(flat, n * 3, 1)[0]));
    },
  };
}
