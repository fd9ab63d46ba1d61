/**
 * Task streams on SQLite: a `streams` row per stream and its events in
 * `stream_events`, keyed (stream_id, seq). Every verb is one transaction on
 * the one connection, so appends to a stream are serial by construction; the
 * append rules themselves are the shared planAppend (stream-rows.ts).
 * SQLite is one process: there is no other node to tell of an append, so
 * watchStreams listens to nothing.
 */
import type { StreamRecord } from '../../core/stream.js';
import type { StreamAppend, StreamStore } from '../port.js';
import {
  idleAppend,
  planAppend,
  STREAM_COLUMNS,
  streamEventFromRow,
  streamFromRow,
  type AppendPlan,
  type StreamEventRow,
  type StreamRow,
} from '../stream-rows.js';
import type { Sql } from './sql.js';

const UPSERT_STREAM = `INSERT INTO streams (${STREAM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (id) DO UPDATE SET state = excluded.state, last_seq = excluded.last_seq, first_seq = excluded.first_seq,
    updated_at = excluded.updated_at, ended_at = excluded.ended_at, writer_closed = excluded.writer_closed`;
const INSERT_EVENT = 'INSERT INTO stream_events (stream_id, seq, type, data, json, at) VALUES (?, ?, ?, ?, ?, ?)';

function readStream(sql: Sql, streamId: string): StreamRecord | undefined {
  const row = sql.stmt(`SELECT ${STREAM_COLUMNS} FROM streams WHERE id = ?`).get(streamId) as StreamRow | undefined;
  return row && streamFromRow(row);
}

/** Writes what planAppend decided: the stream's row (created or updated) and its new events. */
function write(sql: Sql, plan: AppendPlan): void {
  if (!plan.write) return;
  const { stream, events } = plan.write;
  sql
    .stmt(UPSERT_STREAM)
    .run(
      stream.id,
      stream.state,
      stream.lastSeq,
      stream.firstSeq,
      stream.createdAt,
      stream.updatedAt,
      stream.endedAt ?? null,
      stream.messageId ?? null,
      stream.writerClosed ? 1 : 0,
    );
  const insert = sql.stmt(INSERT_EVENT);
  for (const event of events) insert.run(stream.id, event.seq, event.type, event.data, event.json ? 1 : 0, event.at);
}

function deleteStreamRows(sql: Sql, streamId: string): boolean {
  sql.stmt('DELETE FROM stream_events WHERE stream_id = ?').run(streamId);
  return sql.stmt('DELETE FROM streams WHERE id = ?').run(streamId).changes > 0;
}

/** The port's stream verbs. */
export function sqliteStreams(sql: Sql): StreamStore {
  return {
    async appendStreamEvents(append: StreamAppend) {
      return sql.transaction(() => {
        const plan = planAppend(readStream(sql, append.streamId), append);
        write(sql, plan);
        return plan.result;
      });
    },

    async getStream(streamId) {
      return readStream(sql, streamId);
    },

    async listStreams(query) {
      const where = [query.state !== undefined ? 'state = ?' : '', query.cursor !== undefined ? 'id > ?' : ''].filter(Boolean);
      const params = [query.state, query.cursor].filter((value) => value !== undefined);
      const rows = sql
        .stmt(`SELECT ${STREAM_COLUMNS} FROM streams ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`)
        .all(...params, query.count + 1) as StreamRow[];
      const more = rows.length > query.count;
      if (more) rows.pop();
      const items = rows.map(streamFromRow);
      return more ? { items, cursor: items[items.length - 1]!.id } : { items };
    },

    async readStreamEvents(streamId, afterSeq, limit) {
      const rows = sql
        .stmt('SELECT seq, type, data, json, at FROM stream_events WHERE stream_id = ? AND seq > ? ORDER BY seq LIMIT ?')
        .all(streamId, afterSeq, limit) as StreamEventRow[];
      return rows.map(streamEventFromRow);
    },

    async deleteStream(streamId) {
      return sql.transaction(() => deleteStreamRows(sql, streamId));
    },

    /** Removal first, so a stream this call fails as idle is never removed by the same call. */
    async expireStreams(request) {
      return sql.transaction(() => {
        const ended = sql
          .stmt('SELECT id FROM streams WHERE ended_at < ? ORDER BY ended_at, id LIMIT ?')
          .pluck()
          .all(request.closedBefore, request.limit) as string[];
        for (const id of ended) deleteStreamRows(sql, id);
        const idle = sql
          .stmt(`SELECT ${STREAM_COLUMNS} FROM streams WHERE state = 'open' AND updated_at < ? ORDER BY updated_at, id LIMIT ?`)
          .all(request.idleBefore, request.limit) as StreamRow[];
        for (const row of idle) write(sql, planAppend(streamFromRow(row), idleAppend(row.id, request)));
        return { closedIdle: idle.map((row) => row.id), removed: ended.length };
      });
    },

    async watchStreams() {
      return async () => undefined;
    },
  };
}

