/**
 * Claiming on PostgreSQL: admission of waiting queue messages, leasing due
 * messages within their flow-control keys' limits, and when work falls due
 * next. Several nodes claim at once, so:
 * - a queue's admission runs with its row locked (FOR UPDATE), and counts its
 *   slot holders in a later statement, whose snapshot sees every admission
 *   committed before the lock was granted: parallelism holds across nodes;
 * - a flow-control key is likewise locked before its in-flight count and rate
 *   window are read, and its rate counters are updated in the same transaction;
 * - messages themselves are taken FOR UPDATE SKIP LOCKED, so two claims never
 *   lease one message and never wait on each other's rows.
 * Locks are taken queues first, then keys, each in name order, so claims
 * cannot deadlock one another.
 */
import { randomUUID } from 'node:crypto';
import type { ClaimedMessage } from '../../core/message.js';
import type { ClaimRequest, Lease } from '../port.js';
import { specFromRow } from '../rows.js';
import { array, earliest, exec, first, OID, rows, type Db } from './sql.js';

const LOCK_ADMITTABLE_QUEUES = `
  SELECT q.name FROM queues q WHERE q.paused = false AND EXISTS (
    SELECT 1 FROM messages m WHERE m.state = 'waiting' AND m.queue_name = q.name AND m.due_at <= $1)
  ORDER BY q.name FOR UPDATE OF q`;

/** The oldest due waiting messages of each locked queue move into its free slots (waiting → pending, holding the slot). */
const ADMIT = `
  WITH free AS (
    SELECT q.name, q.parallelism - (SELECT count(*) FROM messages s WHERE s.queue_slot = q.name) AS slots
    FROM queues q WHERE q.name = ANY($1::text[])
  ), admitted AS (
    SELECT w.seq FROM free CROSS JOIN LATERAL (
      SELECT m.seq FROM messages m WHERE m.state = 'waiting' AND m.queue_name = free.name AND m.due_at <= $2
      ORDER BY m.due_at, m.seq LIMIT greatest(free.slots, 0)) w
  )
  UPDATE messages SET state = 'pending', queue_slot = queue_name WHERE seq IN (SELECT seq FROM admitted)`;

const LOCK_CLAIMABLE_KEYS = `
  SELECT k.key FROM flow_control_keys k WHERE k.paused = false AND EXISTS (
    SELECT 1 FROM messages m WHERE m.state = 'pending' AND m.flow_control_key = k.key AND m.due_at <= $1)
  ORDER BY k.key FOR UPDATE OF k`;

/**
 * One statement: candidates of every kind (each from its own partial index,
 * locked SKIP LOCKED), the oldest due `limit` of them leased, an ACTIVE event
 * each, and the attempts counted against their keys' rate windows. A stalled
 * message (expired lease) is due since its lease ended; without that a steady
 * backlog of due pending work would starve it.
 * $1 now, $2 limit, $3 excluded origins, $4 lease id, $5 lease until, $6 locked keys.
 */
const CLAIM = `
  WITH free AS (
    SELECT seq, due_at AS at, 0 AS kind FROM messages
    WHERE state = 'pending' AND flow_control_key IS NULL AND due_at <= $1 AND origin <> ALL($3::text[])
    ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED
  ), stalled AS (
    SELECT seq, lease_until AS at, 1 AS kind FROM messages
    WHERE state = 'active' AND lease_until <= $1 AND origin <> ALL($3::text[])
    ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED
  ), room AS (
    SELECT k.key, least($2,
      coalesce(k.parallelism - (SELECT count(*) FROM messages a WHERE a.state = 'active' AND a.flow_control_key = k.key), $2),
      coalesce(k.rate - CASE WHEN $1 >= k.rate_period_start + k.period_ms THEN 0 ELSE k.rate_count END, $2)) AS n
    FROM flow_control_keys k WHERE k.key = ANY($6::text[])
  ), keyed AS (
    SELECT c.seq, c.at, 2 AS kind FROM room CROSS JOIN LATERAL (
      SELECT m.seq, m.due_at AS at FROM messages m
      WHERE m.state = 'pending' AND m.flow_control_key = room.key AND m.due_at <= $1 AND m.origin <> ALL($3::text[])
      ORDER BY m.due_at LIMIT greatest(room.n, 0) FOR UPDATE SKIP LOCKED) c
  ), chosen AS (
    SELECT * FROM (SELECT * FROM free UNION ALL SELECT * FROM stalled UNION ALL SELECT * FROM keyed) c
    ORDER BY at, kind, seq LIMIT $2
  ), leased AS (
    UPDATE messages m SET state = 'active', lease_id = $4, lease_until = $5 FROM chosen WHERE m.seq = chosen.seq
    RETURNING m.seq, m.retried, m.spec, m.body, m.flow_control_key, chosen.at, chosen.kind
  ), logged AS (
    INSERT INTO events (message_seq, time, state) SELECT seq, $1, 'ACTIVE' FROM leased ORDER BY at, kind, seq
  ), counted AS (
    -- A redelivery after an expired lease is an attempt too, and counts against its key's rate.
    UPDATE flow_control_keys k SET
      rate_count = CASE WHEN $1 >= k.rate_period_start + k.period_ms THEN a.n ELSE k.rate_count + a.n END,
      rate_period_start = CASE WHEN $1 >= k.rate_period_start + k.period_ms THEN $1 ELSE k.rate_period_start END
    FROM (SELECT flow_control_key AS key, count(*)::int AS n FROM leased WHERE flow_control_key IS NOT NULL
          GROUP BY flow_control_key) a
    WHERE k.key = a.key
  )
  SELECT seq, retried, spec, body FROM leased ORDER BY at, kind, seq`;

/**
 * What a claim may find, from the partial indexes alone: work gated by a
 * queue or key (only then are locks worth a transaction), and free or
 * stalled work. An empty claim (the delivery loop asks after every wake)
 * then costs this one cheap query.
 */
const PROBE = `
  SELECT EXISTS (SELECT 1 FROM queues q WHERE q.paused = false AND EXISTS (
           SELECT 1 FROM messages m WHERE m.state = 'waiting' AND m.queue_name = q.name AND m.due_at <= $1))
      OR EXISTS (SELECT 1 FROM flow_control_keys k WHERE k.paused = false AND EXISTS (
           SELECT 1 FROM messages m WHERE m.state = 'pending' AND m.flow_control_key = k.key AND m.due_at <= $1)) AS gated,
    EXISTS (SELECT 1 FROM messages WHERE state = 'pending' AND flow_control_key IS NULL AND due_at <= $1)
      OR EXISTS (SELECT 1 FROM messages WHERE state = 'active' AND lease_until <= $1) AS free`;

async function lease(db: Db, request: ClaimRequest, keys: readonly string[]): Promise<ClaimedMessage[]> {
  const leaseId = randomUUID();
  const leased = await rows<{ seq: number; retried: number; spec: string; body: Buffer }>(db, CLAIM, [
    request.now,
    request.limit,
    array(db, request.excludeOrigins ?? [], OID.text),
    leaseId,
    request.now + request.leaseMs,
    array(db, keys, OID.text),
  ]);
  return leased.map((row) => ({ spec: specFromRow(row), retried: row.retried, leaseId }));
}

/**
 * With no queue or key work due (the common case without queues and flow
 * control), the claim is the one CLAIM statement, atomic by itself: two round
 * trips and no transaction; with nothing due at all, one. Work gated by a queue or key that appears just
 * after the probe waits for the next claim, which its own notification triggers.
 */
export async function claimDue(pool: Db, request: ClaimRequest, transaction: <T>(work: (tx: Db) => Promise<T>) => Promise<T>): Promise<ClaimedMessage[]> {
  const probe = await first<{ gated: boolean; free: boolean }>(pool, PROBE, [request.now]);
  if (!probe || (!probe.gated && !probe.free)) return [];
  if (!probe.gated) return lease(pool, request, []);
  return transaction(async (tx) => {
    const queues = await rows<{ name: string }>(tx, LOCK_ADMITTABLE_QUEUES, [request.now]);
    if (queues.length > 0) await exec(tx, ADMIT, [array(tx, queues.map((q) => q.name), OID.text), request.now]);
    const keys = await rows<{ key: string }>(tx, LOCK_CLAIMABLE_KEYS, [request.now]);
    return lease(tx, request, keys.map((k) => k.key));
  });
}

export async function extendLeases(db: Db, leases: readonly Lease[], until: number): Promise<void> {
  if (leases.length === 0) return;
  await exec(
    db,
    `UPDATE messages m SET lease_until = $3
     FROM unnest($1::text[], $2::text[]) AS l(id, lease_id)
     WHERE m.id = l.id AND m.lease_id = l.lease_id AND m.state = 'active'`,
    [array(db, leases.map((l) => l.messageId), OID.text), array(db, leases.map((l) => l.leaseId), OID.text), until],
  );
}

/** See Store.nextDueAt: future due times of claimable work, and the end of full rate windows with work waiting. */
export async function nextDueAt(db: Db, now: number): Promise<number | undefined> {
  const row = await first<{ pending: number | null; lease: number | null; queued: number | null; keyed: number | null; reopens: number | null }>(
    db,
    `SELECT
       (SELECT min(due_at) FROM messages WHERE state = 'pending' AND flow_control_key IS NULL AND due_at > $1) AS pending,
       (SELECT min(lease_until) FROM messages WHERE state = 'active' AND lease_until > $1) AS lease,
       (SELECT min((SELECT min(m.due_at) FROM messages m WHERE m.state = 'waiting' AND m.queue_name = q.name AND m.due_at > $1))
          FROM queues q WHERE q.paused = false) AS queued,
       (SELECT min((SELECT min(m.due_at) FROM messages m
          WHERE m.state = 'pending' AND m.flow_control_key = k.key AND m.due_at > $1))
          FROM flow_control_keys k WHERE k.paused = false) AS keyed,
       (SELECT min(k.rate_period_start + k.period_ms) FROM flow_control_keys k
          WHERE k.paused = false AND k.rate IS NOT NULL AND k.rate_count >= k.rate AND k.rate_period_start + k.period_ms > $1
            AND EXISTS (SELECT 1 FROM messages m WHERE m.state = 'pending' AND m.flow_control_key = k.key)) AS reopens`,
    [now],
  );
  if (!row) return undefined;
  return earliest(
    row.pending ?? undefined,
    row.lease ?? undefined,
    row.queued ?? undefined,
    row.keyed ?? undefined,
    row.reopens ?? undefined,
  );
}
