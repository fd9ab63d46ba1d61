/**
 * What happened, read back from Redis: the event log (P:events, newest first by event number) and the DLQ
 * (P:dlq, oldest first by entry number). Filters are evaluated here over pages of the index, so a
 * filtered read costs the entries it skips; the cursor is the last entry number returned.
 */
import type { Redis } from 'ioredis';
import type { DeadLetter, LogEvent, MessageSpec } from '../../core/message.js';
import type { DeadLetterSelection, EventQuery, Page } from '../port.js';
import { deadLetterFrom, eventFrom, specFrom } from '../rows.js';
import { optionalNumber } from './codec.js';
import { matchesDeadLetter, matchesMessage } from './filters.js';

const IN_PROGRESS_STATES = ['ACTIVE', 'RETRY', 'ERROR'];
const SCAN_PAGE = 500;

type Row = (Buffer | null)[];

export class RedisHistory {
  constructor(
    private readonly redis: Redis,
    private readonly key: (...parts: string[]) => string,
  ) {}

  /** Specs (with bodies) of the given messages, one round trip; purged ones are absent. */
  async specs(ids: Iterable<string>, known = new Map<string, MessageSpec>()): Promise<Map<string, MessageSpec>> {
    const wanted = [...new Set(ids)].filter((id) => !known.has(id));
    if (wanted.length === 0) return known;
    const pipeline = this.redis.pipeline();
    for (const id of wanted) pipeline.hmgetBuffer(this.key('m', id), 'spec', 'body');
    const results = (await pipeline.exec()) ?? [];
    wanted.forEach((id, index) => {
      const [error, row] = results[index] as [Error | null, Row];
      if (!error && row[0]) known.set(id, specFrom(row[0], row[1]));
    });
    return known;
  }

  private async eventRows(seqs: string[]): Promise<Row[]> {
    const pipeline = this.redis.pipeline();
    for (const seq of seqs) pipeline.hmgetBuffer(this.key('ev', seq), 't', 's', 'm', 'd', 'b');
    return ((await pipeline.exec()) ?? []).map(([, row]) => row as Row);
  }

  async listEvents(query: EventQuery): Promise<Page<LogEvent>> {
    const states = query.states && query.states.length > 0
      ? new Set(query.states.flatMap((state) => (state === 'IN_PROGRESS' ? IN_PROGRESS_STATES : [state])))
      : undefined;
    const byIds = query.messageIds && query.messageIds.length > 0;
    const filter = byIds ? undefined : query.filter;
    const cursor = query.cursor === undefined ? undefined : Number(query.cursor);
    const found: { seq: string; event: LogEvent }[] = [];
    const specs = new Map<string, MessageSpec>();
    const take = async (seqs: string[]): Promise<void> => {
      const rows = await this.eventRows(seqs);
      await this.specs(rows.flatMap((row) => (row[2] ? [row[2].toString()] : [])), specs);
      seqs.forEach((seq, index) => {
        const [t, s, m, d, b] = rows[index]!;
        if (!t || !s || !m || found.length > query.count) return;
        const spec = specs.get(m.toString());
        const time = Number(t.toString());
        if (!spec || (states && !states.has(s.toString())) || !matchesMessage(spec, filter, time)) return;
        found.push({ seq, event: eventFrom(time, s.toString(), spec, d, b) });
      });
    };

    if (byIds) {
      const pipeline = this.redis.pipeline();
      for (const id of query.messageIds!) pipeline.lrange(this.key('me', id), 0, -1);
      const all = ((await pipeline.exec()) ?? [])
        .flatMap(([, seqs]) => (seqs as string[]).map(Number))
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
        const seqs = await this.redis.zrevrangebyscore(this.key('events'), upper, '-inf', 'LIMIT', 0, batch);
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
  }

  private async deadLetterRows(dlqIds: string[]): Promise<{ seq: number; entry: DeadLetter; status?: number }[]> {
    const pipeline = this.redis.pipeline();
    for (const id of dlqIds) pipeline.hmgetBuffer(this.key('d', id), 'seq', 'm', 'created', 'status', 'resp', 'body');
    const rows = ((await pipeline.exec()) ?? []).map(([, row]) => row as Row);
    const specs = await this.specs(rows.flatMap((row) => (row[1] ? [row[1].toString()] : [])));
    const out: { seq: number; entry: DeadLetter; status?: number }[] = [];
    dlqIds.forEach((dlqId, index) => {
      const [seq, m, created, status, resp, body] = rows[index]!;
      const spec = m && specs.get(m.toString());
      if (!seq || !spec || !resp) return;
      const entry = deadLetterFrom(dlqId, Number(created!.toString()), spec, resp, body);
      const row: { seq: number; entry: DeadLetter; status?: number } = { seq: Number(seq.toString()), entry };
      const code = optionalNumber(status);
      if (code !== undefined) row.status = code;
      out.push(row);
    });
    return out;
  }

  /** The selected entries in DLQ order, and whether more may match after them. */
  async selectDeadLetters(
    selection: DeadLetterSelection,
  ): Promise<{ rows: { seq: number; entry: DeadLetter }[]; more: boolean }> {
    if ('dlqIds' in selection) {
      const rows = await this.deadLetterRows(selection.dlqIds);
      return { rows: rows.sort((a, b) => a.seq - b.seq), more: false };
    }
    const { filter, count } = selection;
    const found: { seq: number; entry: DeadLetter }[] = [];
    let lower = selection.cursor === undefined ? '-inf' : `(${selection.cursor}`;
    while (found.length <= count) {
      const ids = await this.redis.zrangebyscore(this.key('dlq'), lower, '+inf', 'WITHSCORES', 'LIMIT', 0, SCAN_PAGE);
      if (ids.length === 0) break;
      const dlqIds = ids.filter((_, index) => index % 2 === 0);
      for (const row of await this.deadLetterRows(dlqIds)) {
        if (found.length > count) break;
        if (matchesDeadLetter(row.entry.spec, row.status, filter, row.entry.createdAt)) found.push(row);
      }
      lower = `(${ids.at(-1)}`;
      if (dlqIds.length < SCAN_PAGE) break;
    }
    const more = found.length > count;
    return { rows: found.slice(0, count), more };
  }

  async listDeadLetters(selection: DeadLetterSelection): Promise<Page<DeadLetter>> {
    const { rows, more } = await this.selectDeadLetters(selection);
    const page: Page<DeadLetter> = { items: rows.map((row) => row.entry) };
    if (more && rows.length > 0) page.cursor = String(rows.at(-1)!.seq);
    return page;
  }
}
