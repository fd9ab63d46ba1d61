/**
 * Task streams on Redis: P:s:<id> hashes, P:se:<id> events scored by seq, the P:streams… indexes (see the
 * stream section of scripts/lib.lua). Appends, deletes and retention are the stream-*.lua scripts; reads
 * here are single commands or pipelines that need no atomicity (an event, once stored, never changes).
 *
 * Every append publishes '<last seq> <id>' on the P:streams channel from inside its script, so a node
 * watching hears of it after it is stored, in the order Redis ran the scripts.
 */
import type { NewStreamEvent, StreamEvent, StreamRecord, StreamState } from '../../core/stream.js';
import type { StreamAppend, StreamAppendResult, StreamStore } from '../port.js';
import type { Arg } from './codec.js';
import { pipelineResults, watchChannel, type RedisContext } from './context.js';

/** lib.lua's STREAM_FIELDS, in its order. */
const STREAM_FIELDS = ['state', 'last', 'first', 'created', 'updated', 'ended', 'msg', 'wclosed'] as const;
/** Per event in stream-append.lua's ARGV: type, data, json, writer seq. */
const eventArgs = (event: NewStreamEvent): Arg[] => [
  event.type,
  event.data,
  event.json ? '1' : '0',
  event.seq === undefined ? '' : String(event.seq),
];

/** A stream from its STREAM_FIELDS values (strings, in order); undefined when the hash is gone. */
function streamFrom(id: string, values: readonly (string | null)[]): StreamRecord | undefined {
  const [state, last, first, created, updated, ended, msg, wclosed] = values;
  if (!state) return undefined;
  const stream: StreamRecord = {
    id,
    state: state as StreamState,
    lastSeq: Number(last),
    firstSeq: Number(first),
    createdAt: Number(created),
    updatedAt: Number(updated),
    writerClosed: wclosed === '1',
  };
  if (ended) stream.endedAt = Number(ended);
  if (msg) stream.messageId = msg;
  return stream;
}

/** An event from its P:se:<id> member, seq|at|json|type|data (data is the rest, '|' and newlines included). */
function eventFrom(member: string): StreamEvent {
  const a = member.indexOf('|');
  const b = member.indexOf('|', a + 1);
  const c = member.indexOf('|', b + 1);
  const d = member.indexOf('|', c + 1);
  return {
    seq: Number(member.slice(0, a)),
    at: Number(member.slice(a + 1, b)),
    json: member.slice(b + 1, c) === '1',
    type: member.slice(c + 1, d),
    data: member.slice(d + 1),
  };
}

/** stream-append.lua's answer: kind, expected seq, STREAM_FIELDS, then a seq per event ('0' skipped). */
function appendResult(append: StreamAppend, answer: string[]): StreamAppendResult {
  const [kind, expected] = answer as [string, string];
  const fieldsEnd = 2 + STREAM_FIELDS.length;
  if (kind === 'gap') return { kind: 'gap', expectedSeq: Number(expected) };
  const stream = streamFrom(append.streamId, answer.slice(2, fieldsEnd))!;
  if (kind === 'closed') return { kind: 'closed', stream };
  if (kind === 'full') return { kind: 'full', stream };
  if (kind !== 'appended') throw new Error(`stream-append: unexpected answer ${kind}`);
  const assigned = answer.slice(fieldsEnd);
  const events = append.events.flatMap((event, index): StreamEvent[] => {
    const seq = Number(assigned[index] ?? 0);
    return seq === 0 ? [] : [{ seq, type: event.type, data: event.data, json: event.json, at: append.at }];
  });
  return { kind: 'appended', stream, events };
}

/** The port's task-stream verbs. */
export function redisStreams(ctx: RedisContext): StreamStore {
  const { redis, scripts, key } = ctx;
  return {
    async appendStreamEvents(append) {
      const args: Arg[] = [
        append.streamId,
        String(append.at),
        append.author,
        append.closes ?? '',
        append.messageId ?? '',
        String(append.maxEvents),
        String(append.events.length),
        ...append.events.flatMap(eventArgs),
      ];
      return appendResult(append, (await scripts.run('stream-append', args)) as string[]);
    },

    async getStream(streamId) {
      return streamFrom(streamId, await redis.hmget(key('s', streamId), ...STREAM_FIELDS));
    },

    async listStreams(query) {
      if (query.count <= 0) return { items: [] };
      const index = query.state === undefined ? key('streams') : key('streams', query.state);
      const min = query.cursor === undefined ? '-' : `(${query.cursor}`;
      // One more than asked says whether another page follows.
      const ids = await redis.zrangebylex(index, min, '+', 'LIMIT', 0, query.count + 1);
      const page = ids.slice(0, query.count);
      const pipeline = redis.pipeline();
      for (const id of page) pipeline.hmget(key('s', id), ...STREAM_FIELDS);
      const rows = await pipelineResults(pipeline);
      // A stream deleted, or moved to another state, between the two reads is left out; the cursor is the
      // last id looked at, so the next page still starts after it.
      const items = page.flatMap((id, n) => {
        const stream = streamFrom(id, rows[n] as (string | null)[]);
        return stream && (query.state === undefined || stream.state === query.state) ? [stream] : [];
      });
      return ids.length > query.count ? { items, cursor: page.at(-1)! } : { items };
    },

    async readStreamEvents(streamId, afterSeq, limit) {
      if (limit <= 0) return [];
      const members = await redis.zrangebyscore(key('se', streamId), `(${afterSeq}`, '+inf', 'LIMIT', 0, limit);
      return members.map(eventFrom);
    },

    async deleteStream(streamId) {
      return (await scripts.run('stream-delete', [streamId])) === 1;
    },

    async expireStreams(request) {
      const { idleEvent } = request;
      const [closedIdle, removed] = (await scripts.run('stream-expire', [
        String(request.idleBefore),
        String(request.closedBefore),
        String(request.at),
        idleEvent.type,
        idleEvent.data,
        idleEvent.json ? '1' : '0',
        String(request.limit),
      ])) as [string[], number];
      return { closedIdle, removed };
    },

    async watchStreams(onAppend) {
      return watchChannel(ctx, key('streams'), (message) => {
        const space = message.indexOf(' ');
        onAppend(message.slice(space + 1), Number(message.slice(0, space)));
      });
    },
  };
}
