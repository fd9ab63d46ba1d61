/**
 * Flow-control keys on SQLite (spec §11.9): each key's limits, pins and rate
 * window, and the choice of which of its waiting messages may start now.
 */
import type { FlowControlChange, FlowControlState } from '../../core/flow-control.js';
import type { FlowControlConfig } from '../../core/message.js';
import type { FlowControlStore } from '../port.js';
import type { Sql } from './sql.js';

const DEFAULT_PERIOD_MS = 1_000;

interface KeyRow {
  key: string;
  parallelism: number | null;
  rate: number | null;
  period_ms: number;
  paused: number;
  pinned_parallelism: number;
  pinned_rate: number;
  rate_count: number;
  rate_period_start: number;
}

/** A message a claim may lease, with the time it has been due since and its flow-control key (null: none). */
export interface Candidate {
  seq: number;
  at: number;
  key?: string | null;
}

const windowOver = (row: KeyRow, now: number): boolean => now >= row.rate_period_start + row.period_ms;

/** The message's config becomes the key's, except for what is pinned. */
export function applyMessageConfig(sql: Sql, config: FlowControlConfig, at: number): void {
  sql
    .stmt(`INSERT INTO flow_control_keys (key, parallelism, rate, period_ms, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (key) DO UPDATE SET
             parallelism = CASE WHEN pinned_parallelism = 1 THEN parallelism ELSE excluded.parallelism END,
             rate = CASE WHEN pinned_rate = 1 THEN rate ELSE excluded.rate END,
             period_ms = CASE WHEN pinned_rate = 1 THEN period_ms ELSE excluded.period_ms END,
             updated_at = excluded.updated_at`)
    .run(config.key, config.parallelism ?? null, config.rate ?? null, config.periodMs ?? DEFAULT_PERIOD_MS, at, at);
}

/**
 * For each unpaused key with due messages, the oldest of them that fit its
 * free parallelism and what is left of its rate window, at most `limit` per key.
 */
export function flowControlCandidates(
  sql: Sql,
  now: number,
  limit: number,
  originCondition: string,
  excludedOrigins: readonly string[],
): Candidate[] {
  const keys = sql
    .stmt(`SELECT k.* FROM flow_control_keys k WHERE k.paused = 0 AND EXISTS (
             SELECT 1 FROM messages m WHERE m.state = 'pending' AND m.flow_control_key = k.key AND m.due_at <= ?)`)
    .all(now) as KeyRow[];
  const chosen: Candidate[] = [];
  for (const row of keys) {
    let room = limit;
    if (row.parallelism !== null) room = Math.min(room, row.parallelism - inFlight(sql, row.key));
    if (row.rate !== null) room = Math.min(room, row.rate - (windowOver(row, now) ? 0 : row.rate_count));
    if (room <= 0) continue;
    chosen.push(
      ...(sql
        .stmt(`SELECT seq, due_at AS at, flow_control_key AS key FROM messages
               WHERE state = 'pending' AND flow_control_key = ? AND due_at <= ? ${originCondition}
               ORDER BY due_at LIMIT ?`)
        .all(row.key, now, ...excludedOrigins, room) as Candidate[]),
    );
  }
  return chosen;
}

/** Counts `attempts` started now against the key's rate window, opening a new window if the last one ended. */
export function countAttempts(sql: Sql, key: string, attempts: number, now: number): void {
  sql
    .stmt(`UPDATE flow_control_keys SET
             rate_count = CASE WHEN ? >= rate_period_start + period_ms THEN ? ELSE rate_count + ? END,
             rate_period_start = CASE WHEN ? >= rate_period_start + period_ms THEN ? ELSE rate_period_start END
           WHERE key = ?`)
    .run(now, attempts, attempts, now, now, key);
}

function inFlight(sql: Sql, key: string): number {
  return sql
    .stmt(`SELECT count(*) FROM messages WHERE state = 'active' AND flow_control_key = ?`)
    .pluck()
    .get(key) as number;
}

/**
 * When a key's waiting work may next start without a settle freeing a
 * slot: a future due time, or the end of a full rate window.
 */
export function flowControlNextDueAt(sql: Sql, now: number): number | undefined {
  const due = sql
    .stmt(`SELECT min((SELECT min(m.due_at) FROM messages m
             WHERE m.state = 'pending' AND m.flow_control_key = k.key AND m.due_at > ?))
           FROM flow_control_keys k WHERE k.paused = 0`)
    .pluck()
    .get(now) as number | null;
  const reopens = sql
    .stmt(`SELECT min(k.rate_period_start + k.period_ms) FROM flow_control_keys k
           WHERE k.paused = 0 AND k.rate IS NOT NULL AND k.rate_count >= k.rate AND k.rate_period_start + k.period_ms > ?
             AND EXISTS (SELECT 1 FROM messages m WHERE m.state = 'pending' AND m.flow_control_key = k.key)`)
    .pluck()
    .get(now) as number | null;
  const times = [due, reopens].filter((at): at is number => at !== null);
  return times.length > 0 ? Math.min(...times) : undefined;
}

function keyState(sql: Sql, row: KeyRow, now: number): FlowControlState {
  const waitListSize = sql
    .stmt(`SELECT count(*) FROM messages WHERE state = 'pending' AND flow_control_key = ? AND due_at <= ?`)
    .pluck()
    .get(row.key, now) as number;
  const state: FlowControlState = {
    key: row.key,
    waitListSize,
    parallelismCount: inFlight(sql, row.key),
    rateCount: windowOver(row, now) ? 0 : row.rate_count,
    periodMs: row.period_ms,
    ratePeriodStart: row.rate_period_start,
    paused: row.paused === 1,
    pinnedParallelism: row.pinned_parallelism === 1,
    pinnedRate: row.pinned_rate === 1,
  };
  if (row.parallelism !== null) state.parallelism = row.parallelism;
  if (row.rate !== null) state.rate = row.rate;
  return state;
}

/** The port's flow-control verbs. */
export function sqliteFlowControls(sql: Sql): FlowControlStore {
  return {
    async getFlowControl(key, now) {
      const row = sql.stmt('SELECT * FROM flow_control_keys WHERE key = ?').get(key) as KeyRow | undefined;
      return row && keyState(sql, row, now);
    },

    async listFlowControls(now) {
      return (sql.stmt('SELECT * FROM flow_control_keys ORDER BY key').all() as KeyRow[]).map((row) => keyState(sql, row, now));
    },

    async changeFlowControl(key, change, at) {
      const run = (set: string, ...params: unknown[]): boolean =>
        sql.stmt(`UPDATE flow_control_keys SET ${set}, updated_at = ? WHERE key = ?`).run(...params, at, key).changes > 0;
      switch (change.kind) {
        case 'pause':
          return run('paused = 1');
        case 'resume':
          return run('paused = 0');
        case 'resetRate':
          return run('rate_count = 0, rate_period_start = ?', at);
        case 'unpin':
          return run(
            `pinned_parallelism = CASE WHEN ? THEN 0 ELSE pinned_parallelism END,
             pinned_rate = CASE WHEN ? THEN 0 ELSE pinned_rate END`,
            change.parallelism ? 1 : 0,
            change.rate ? 1 : 0,
          );
        case 'pin': {
          const pinsRate = change.rate !== undefined || change.periodMs !== undefined;
          // A pin starts the rate over, so the new limit applies from a fresh window.
          return run(
            `parallelism = CASE WHEN ? THEN ? ELSE parallelism END,
             pinned_parallelism = CASE WHEN ? THEN 1 ELSE pinned_parallelism END,
             rate = CASE WHEN ? THEN ? ELSE rate END,
             period_ms = CASE WHEN ? THEN ? ELSE period_ms END,
             pinned_rate = CASE WHEN ? THEN 1 ELSE pinned_rate END,
             rate_count = 0, rate_period_start = 0`,
            change.parallelism !== undefined ? 1 : 0,
            change.parallelism ?? null,
            change.parallelism !== undefined ? 1 : 0,
            change.rate !== undefined ? 1 : 0,
            change.rate ?? null,
            change.periodMs !== undefined ? 1 : 0,
            change.periodMs ?? null,
            pinsRate ? 1 : 0,
          );
        }
      }
    },
  };
}
