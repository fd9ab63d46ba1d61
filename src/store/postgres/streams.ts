/**
 * Task streams on PostgreSQL: a `streams` row per stream and its events in
 * `stream_events`, keyed (stream_id, seq); the append rules are the shared
 * planAppend (stream-rows.ts). Nodes append to one stream at once, so an
 * append locks the stream's row first and the seqs it hands out are decided
 * under that lock; other nodes are told after the commit (StreamNotifier).
 *
 * An append is one transaction of three statements: lock (creating the row
 * if needed), then the events and the row's new state together, then COMMIT.
 */
import type { StreamStore } from '../port.js';
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
import { array, exec, first, OID, rows, type Db, type Pg } from './sql.js';

/**
 * Creates the stream's row if it is missing and locks it, in one statement:
 * the no-op DO UPDATE takes the row lock that INSERT … DO NOTHING would not,
 * and returns the latest committed row even when it waited for a concurrent
 * append (READ COMMITTED re-reads a row it waited for). So concurrent appends
 * to one stream run one after the other, each seeing the last one's seqs.
 * The row is created open and empty; an append that is then refused rolls
 * back, so a refused first append creates nothing.
 */
const LOCK_STREAM = `INSERT INTO streams (id, state, last_seq, first_seq, created_at, updated_at, message_id, writer_closed)
  VALUES ($1::text, 'open', 0, 0, $2::bigint, $2::bigint, $3::text, false)
  ON CONFLICT (id) DO UPDATE SET last_seq = streams.last_seq
  RETURNING ${STREAM_COLUMNS}`;

/** The batch's events (one unnest, whatever its size) and the row's new state, as one statement. */
const WRITE_APPEND = `WITH inserted AS (
    INSERT INTO stream_events (stream_id, seq, type, data, json, at)
    SELECT $1::text, s, t, d, j, $6::bigint FROM unnest($2::bigint[], $3::text[], $4::bytea[], $5::bool[]) AS e(s, t, d, j)
  )
  UPDATE streams SET state = $7::text, last_seq = $8::bigint, first_seq = $9::bigint, updated_at = $6::bigint,
    ended_at = $10::bigint, writer_closed = $11::boolean
  WHERE id = $1::text`;

/**
 * Closed streams past retention, and their events, in one statement. Safe as
 * one snapshot because a closed stream takes no more events (an append to it
 * writes nothing); SKIP LOCKED leaves a stream another node is sweeping to it.
 */
const REMOVE_ENDED = `WITH removed AS (
    DELETE FROM streams WHERE id IN (
      SELECT id FROM streams WHERE ended_at < $1 ORDER BY ended_at LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING id
  ), dropped AS (
    DELETE FROM stream_events WHERE stream_id IN (SELECT id FROM removed)
  )
  SELECT count(*) AS removed FROM removed`;

/**
 * Open streams with no write since the cut-off, locked for the idle close. A
 * stream locked by an append in progress is being written, so it is skipped
 * rather than waited for.
 */
const LOCK_IDLE = `SELECT ${STREAM_COLUMNS} FROM streams WHERE state = 'open' AND updated_at < $1
  ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED`;

/** Thrown inside an append's transaction to roll it back; carries the answer out. */
class Unchanged extends Error {
  constructor(readonly plan: AppendPlan) {
    super('unchanged');
  }
}

async function write(db: Db, plan: AppendPlan): Promise<void> {
  if (!plan.write) return;
  const { stream, events } = plan.write;
  await exec(db, WRITE_APPEND, [
    stream.id,
    array(db, events.map((e) => e.seq), OID.int8),
    array(db, events.map((e) => e.type), OID.text),
    array(db, events.map((e) => Buffer.from(e.data, 'utf8')), OID.bytea),
    array(db, events.map((e) => e.json), OID.bool),
    stream.updatedAt,
    stream.state,
    stream.lastSeq,
    stream.firstSeq,
    stream.endedAt ?? null,
    stream.writerClosed,
  ]);
}

/** The port's stream verbs. */
export function postgresStreams(pg: Pg): StreamStore {
  const told = (plan: AppendPlan): void => {
    if (plan.write) pg.streamNotifier.tell(plan.write.stream.id, plan.write.stream.lastSeq);
  };

  return {
    async appendStreamEvents(append) {
      let plan: AppendPlan;
      try {
        plan = await pg.transaction(async (tx) => {
          const row = await first<StreamRow>(tx, LOCK_STREAM, [append.streamId, append.at, append.messageId ?? null]);
          const decided = planAppend(streamFromRow(row!), append);
          // Nothing to write: roll back, so neither the row's no-op update nor a row created just now is kept.
          if (!decided.write) throw new Unchanged(decided);
          await write(tx, decided);
          return decided;
        });
      } catch (error) {
        if (error instanceof Unchanged) return error.plan.result;
        throw error;
      }
      told(plan);
      return plan.result;
    },

    async getStream(streamId) {
      const row = await first<StreamRow>(pg.sql, `SELECT ${STREAM_COLUMNS} FROM streams WHERE id = $1`, [streamId]);
      return row && streamFromRow(row);
    },

    async listStreams(query) {
      const params: unknown[] = [];
      const where: string[] = [];
      if (query.state !== undefined) where.push(`state = $${params.push(query.state)}`);
      if (query.cursor !== undefined) where.push(`id > $${params.push(query.cursor)}`);
      const found = await rows<StreamRow>(
        pg.sql,
        // Four texts at most (state and cursor each set or not), so they may stay prepared.
        `SELECT ${STREAM_COLUMNS} FROM streams ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY id LIMIT $${params.push(query.count + 1)}`,
        params,
      );
      const more = found.length > query.count;
      const items = found.slice(0, query.count).map(streamFromRow);
      return more ? { items, cursor: items[items.length - 1]!.id } : { items };
    },

    async readStreamEvents(streamId, afterSeq, limit) {
      const found = await rows<StreamEventRow>(
        pg.sql,
        'SELECT seq, type, data, json, at FROM stream_events WHERE stream_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
        [streamId, afterSeq, limit],
      );
      return found.map(streamEventFromRow);
    },

    /**
     * Two statements, not one: deleting the row first waits for an append in
     * progress, and the events' DELETE then runs on a fresh snapshot that sees
     * what that append committed (one statement's snapshot would miss them and
     * leave events behind for a recreated stream to collide with).
     */
    async deleteStream(streamId) {
      return pg.transaction(async (tx) => {
        if ((await exec(tx, 'DELETE FROM streams WHERE id = $1', [streamId])) === 0) return false;
        await exec(tx, 'DELETE FROM stream_events WHERE stream_id = $1', [streamId]);
        return true;
      });
    },

    async expireStreams(request) {
      const removed = await pg.retrying(async () => {
        const row = await first<{ removed: number }>(pg.sql, REMOVE_ENDED, [request.closedBefore, request.limit]);
        return row?.removed ?? 0;
      });
      const plans = await pg.transaction(async (tx) => {
        const idle = await rows<StreamRow>(tx, LOCK_IDLE, [request.idleBefore, request.limit]);
        const closing = idle.map((row) => planAppend(streamFromRow(row), idleAppend(row.id, request)));
        for (const plan of closing) await write(tx, plan);
        return closing;
      });
      for (const plan of plans) told(plan);
      return { closedIdle: plans.map((plan) => plan.write!.stream.id), removed };
    },

    /** LISTEN on the driver's dedicated connection, as watchWork does; payloads are `<lastSeq> <streamId>`. */
    async watchStreams(onAppend) {
      const { unlisten } = await pg.sql.listen(pg.streamChannel, (payload) => {
        const space = payload.indexOf(' ');
        const lastSeq = Number(payload.slice(0, space));
        if (space > 0 && Number.isSafeInteger(lastSeq)) onAppend(payload.slice(space + 1), lastSeq);
      });
      return async () => {
        // close() already ended the listening connection, and with it the LISTEN.
        if (!pg.closed) await unlisten();
      };
    },
  };
}
