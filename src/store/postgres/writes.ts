/**
 * The message writes several verbs share (enqueue, settle's follow-ups,
 * replays, schedule firings): storing a batch of messages with their dedup
 * keys, queues and flow-control keys, and appending log events. Each runs
 * inside the caller's transaction, in a fixed number of round trips whatever
 * the batch size.
 */
import { randomUUID } from 'node:crypto';
import type { FlowControlConfig, NewMessage } from '../../core/message.js';
import type { EnqueueResult, Handoff } from '../port.js';
import { specColumns } from '../rows.js';
import { array, earliest, exec, OID, rows, type Db } from './sql.js';

const DEFAULT_PERIOD_MS = 1_000;

export interface NewEvent {
  seq: number;
  time: number;
  state: string;
  detail?: string | null;
  body?: Buffer | null;
}

/** Appends events in the given order (their seq order is the log's order). */
export async function appendEvents(db: Db, events: readonly NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  await exec(
    db,
    `INSERT INTO events (message_seq, time, state, detail, response_body)
     SELECT s, t, st, d, b FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bytea[])
       WITH ORDINALITY AS e(s, t, st, d, b, ord) ORDER BY ord`,
    [
      array(db, events.map((e) => e.seq), OID.int8),
      array(db, events.map((e) => e.time), OID.int8),
      array(db, events.map((e) => e.state), OID.text),
      array(db, events.map((e) => e.detail ?? null), OID.text),
      array(db, events.map((e) => e.body ?? null), OID.bytea),
    ],
  );
}

export interface Inserted {
  results: EnqueueResult[];
  /** The earliest due time among messages stored claimable-later (not handed off), for the work notification. */
  dueAt?: number;
}

/**
 * Claims the batch's dedup keys. The first message with a key in the batch
 * competes for it; the key is taken when free or expired (ON CONFLICT waits
 * for a concurrent holder to commit, so of concurrent enqueues exactly one
 * wins). Answers, per input index, the message id to report as the holder.
 */
async function claimDedupKeys(db: Db, messages: readonly NewMessage[], at: number): Promise<Map<number, string>> {
  const holders = new Map<number, string>();
  const firstByKey = new Map<string, number>();
  messages.forEach((message, index) => {
    if (message.dedup && !firstByKey.has(message.dedup.key)) firstByKey.set(message.dedup.key, index);
  });
  if (firstByKey.size === 0) return holders;
  // Sorted, so concurrent batches lock keys in one order and cannot deadlock.
  const keys = [...firstByKey.keys()].sort();
  const contenders = keys.map((key) => messages[firstByKey.get(key)!]!);
  const won = await rows<{ key: string }>(
    db,
    `INSERT INTO dedup_keys (key, message_id, expires_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
     ON CONFLICT (key) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at
       WHERE dedup_keys.expires_at <= $4
     RETURNING key`,
    [
      array(db, keys, OID.text),
      array(db, contenders.map((m) => m.spec.messageId), OID.text),
      array(db, contenders.map((m) => m.dedup!.expiresAt), OID.int8),
      at,
    ],
  );
  const wonKeys = new Set(won.map((row) => row.key));
  const lost = keys.filter((key) => !wonKeys.has(key));
  const holderOf = new Map<string, string>();
  if (lost.length > 0) {
    const found = await rows<{ key: string; message_id: string }>(
      db,
      'SELECT key, message_id FROM dedup_keys WHERE key = ANY($1::text[])',
      [array(db, lost, OID.text)],
    );
    for (const row of found) holderOf.set(row.key, row.message_id);
  }
  messages.forEach((message, index) => {
    if (!message.dedup) return;
    const key = message.dedup.key;
    const firstIndex = firstByKey.get(key)!;
    const holder = holderOf.get(key) ?? (index === firstIndex ? undefined : messages[firstIndex]!.spec.messageId);
    if (holder !== undefined) holders.set(index, holder);
  });
  return holders;
}

/** Enqueueing into an unknown queue creates it (spec §3.1). */
async function ensureQueues(db: Db, names: string[], at: number): Promise<void> {
  if (names.length === 0) return;
  await exec(
    db,
    `INSERT INTO queues (name, parallelism, paused, created_at, updated_at)
     SELECT n, 1, false, $2, $2 FROM unnest($1::text[]) AS n ON CONFLICT (name) DO NOTHING`,
    [array(db, [...new Set(names)].sort(), OID.text), at],
  );
}

/** Each key takes the config of its batch's last message, except for what is pinned. */
async function applyFlowConfigs(db: Db, configs: FlowControlConfig[], at: number): Promise<void> {
  if (configs.length === 0) return;
  const lastByKey = new Map<string, FlowControlConfig>();
  for (const config of configs) lastByKey.set(config.key, config);
  const latest = [...lastByKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  await exec(
    db,
    `INSERT INTO flow_control_keys (key, parallelism, rate, period_ms, created_at, updated_at)
     SELECT k, p, r, pm, $5, $5 FROM unnest($1::text[], $2::int[], $3::int[], $4::bigint[]) AS c(k, p, r, pm)
     ON CONFLICT (key) DO UPDATE SET
       parallelism = CASE WHEN flow_control_keys.pinned_parallelism THEN flow_control_keys.parallelism ELSE excluded.parallelism END,
       rate = CASE WHEN flow_control_keys.pinned_rate THEN flow_control_keys.rate ELSE excluded.rate END,
       period_ms = CASE WHEN flow_control_keys.pinned_rate THEN flow_control_keys.period_ms ELSE excluded.period_ms END,
       updated_at = excluded.updated_at`,
    [
      array(db, latest.map((c) => c.key), OID.text),
      array(db, latest.map((c) => c.parallelism ?? null), OID.int4),
      array(db, latest.map((c) => c.rate ?? null), OID.int4),
      array(db, latest.map((c) => c.periodMs ?? DEFAULT_PERIOD_MS), OID.int8),
      at,
    ],
  );
}

const MESSAGE_COLUMNS = [
  ['id', 'text'], ['state', 'text'], ['lease_id', 'text'], ['lease_until', 'bigint'], ['due_at', 'bigint'],
  ['created_at', 'bigint'], ['origin', 'text'], ['url', 'text'], ['host', 'text'], ['path', 'text'],
  ['labels', 'text'], ['caller_ip', 'text'], ['topic_name', 'text'], ['schedule_id', 'text'], ['queue_name', 'text'],
  ['flow_control_key', 'text'], ['queue_slot', 'text'], ['spec', 'text'], ['body', 'bytea'],
] as const;
const COLUMN_NAMES = MESSAGE_COLUMNS.map(([name]) => name).join(', ');

/**
 * Messages and their CREATED (and, when handed off, ACTIVE) events in one
 * statement; message seqs follow the input order (`ord`), as the log's order
 * does. The rows travel as one JSON parameter: JSON.stringify is native,
 * where nineteen parallel arrays cost the driver an escape per element (in
 * a same-machine A/B about 40 % less client CPU per row, the same server
 * CPU). Bodies are base64 in the JSON.
 */
const INSERT_MESSAGES = `
  WITH input AS (
    SELECT * FROM json_to_recordset($1::text::json) AS i(${MESSAGE_COLUMNS.map(([name, type]) => `${name} ${type === 'bytea' ? 'text' : type}`).join(', ')}, ord int)
  ), m AS (
    INSERT INTO messages (${COLUMN_NAMES})
    SELECT ${MESSAGE_COLUMNS.map(([name, type]) => (type === 'bytea' ? `decode(${name}, 'base64')` : name)).join(', ')} FROM input ORDER BY ord
    RETURNING seq, id, state
  )
  INSERT INTO events (message_seq, time, state)
  SELECT m.seq, $2, s.state FROM m
    CROSS JOIN (VALUES (1, 'CREATED'), (2, 'ACTIVE')) AS s(n, state)
  WHERE s.n = 1 OR m.state = 'active' ORDER BY m.seq, s.n`;

/**
 * Stores messages (or finds their dedup holders): waiting in their queue,
 * pending, or active under the handoff's lease. Runs inside a transaction
 * when any message carries a dedup key, a queue or a flow-control key.
 */
export async function insertMessages(
  db: Db,
  messages: readonly NewMessage[],
  at: number,
  handoff?: Handoff,
): Promise<Inserted> {
  const holders = await claimDedupKeys(db, messages, at);
  const stored = messages.filter((_, index) => !holders.has(index));
  await ensureQueues(
    db,
    stored.filter((m) => m.spec.queueName !== undefined && m.queueSlot === undefined).map((m) => m.spec.queueName!),
    at,
  );
  await applyFlowConfigs(db, stored.flatMap((m) => (m.spec.flowControl ? [m.spec.flowControl] : [])), at);

  const lease = handoff && handoff.limit > 0 ? { id: randomUUID(), until: at + handoff.leaseMs } : undefined;
  const excluded = new Set(handoff?.excludeOrigins ?? []);
  let left = handoff?.limit ?? 0;
  let dueAt: number | undefined;
  const leased = new Set<string>();
  const rowsJson: Record<string, unknown>[] = [];
  for (const message of stored) {
    const { spec } = message;
    const values = specColumns(spec);
    const waits = spec.queueName !== undefined && message.queueSlot === undefined;
    const gated = waits || spec.flowControl !== undefined || message.queueSlot !== undefined;
    const handedOff = lease !== undefined && !gated && left > 0 && spec.notBefore <= at && !excluded.has(values.origin);
    if (handedOff) {
      left -= 1;
      leased.add(spec.messageId);
    } else {
      dueAt = earliest(dueAt, spec.notBefore);
    }
    rowsJson.push({
      ...values,
      body: (values.body as Buffer).toString('base64'),
      state: handedOff ? 'active' : waits ? 'waiting' : 'pending',
      lease_id: handedOff ? lease.id : null,
      lease_until: handedOff ? lease.until : null,
      queue_slot: message.queueSlot ?? null,
      ord: rowsJson.length,
    });
  }
  if (stored.length > 0) await exec(db, INSERT_MESSAGES, [JSON.stringify(rowsJson), at]);
  const results = messages.map((message, index): EnqueueResult => {
    const holder = holders.get(index);
    if (holder !== undefined) return { messageId: holder, deduplicated: true };
    const messageId = message.spec.messageId;
    return leased.has(messageId) ? { messageId, deduplicated: false, leaseId: lease!.id } : { messageId, deduplicated: false };
  });
  return dueAt === undefined ? { results } : { results, dueAt };
}

/** Whether a batch needs more than the one INSERT statement (and so a transaction). */
export const needsTransaction = (messages: readonly NewMessage[]): boolean =>
  messages.some((m) => m.dedup !== undefined || m.spec.queueName !== undefined || m.spec.flowControl !== undefined);
