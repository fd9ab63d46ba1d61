/** Flow-control keys on PostgreSQL (spec §11.9): limits, pins, counters as reported (claiming is in claims.ts). */
import type { FlowControlChange, FlowControlState } from '../../core/flow-control.js';
import type { FlowControlStore } from '../port.js';
import { exec, first, rows, type Db, type Pg } from './sql.js';

interface KeyRow {
  key: string;
  parallelism: number | null;
  rate: number | null;
  period_ms: number;
  paused: boolean;
  pinned_parallelism: boolean;
  pinned_rate: boolean;
  rate_count: number;
  rate_period_start: number;
  wait_list_size: number;
  in_flight: number;
}

const SELECT_KEY = `SELECT k.*,
  (SELECT count(*) FROM messages m WHERE m.state = 'pending' AND m.flow_control_key = k.key AND m.due_at <= $1) AS wait_list_size,
  (SELECT count(*) FROM messages m WHERE m.state = 'active' AND m.flow_control_key = k.key) AS in_flight
  FROM flow_control_keys k`;

function stateFromRow(row: KeyRow, now: number): FlowControlState {
  const windowOver = now >= row.rate_period_start + row.period_ms;
  const state: FlowControlState = {
    key: row.key,
    waitListSize: row.wait_list_size,
    parallelismCount: row.in_flight,
    rateCount: windowOver ? 0 : row.rate_count,
    periodMs: row.period_ms,
    ratePeriodStart: row.rate_period_start,
    paused: row.paused,
    pinnedParallelism: row.pinned_parallelism,
    pinnedRate: row.pinned_rate,
  };
  if (row.parallelism !== null) state.parallelism = row.parallelism;
  if (row.rate !== null) state.rate = row.rate;
  return state;
}

/** Applies an operator's change to a key; false if the key is unknown. */
async function applyChange(db: Db, key: string, change: FlowControlChange, at: number): Promise<boolean> {
  const run = async (set: string, params: unknown[] = []): Promise<boolean> =>
    (await exec(db, `UPDATE flow_control_keys SET ${set}, updated_at = $1 WHERE key = $2`, [at, key, ...params])) > 0;
  switch (change.kind) {
    case 'pause':
      return run('paused = true');
    case 'resume':
      return run('paused = false');
    case 'resetRate':
      return run('rate_count = 0, rate_period_start = $1');
    case 'unpin':
      return run(
        `pinned_parallelism = CASE WHEN $3 THEN false ELSE pinned_parallelism END,
         pinned_rate = CASE WHEN $4 THEN false ELSE pinned_rate END`,
        [change.parallelism, change.rate],
      );
    case 'pin': {
      const pinsRate = change.rate !== undefined || change.periodMs !== undefined;
      // A pin starts the rate over, so the new limit applies from a fresh window.
      return run(
        `parallelism = CASE WHEN $3 THEN $4::int ELSE parallelism END,
         pinned_parallelism = pinned_parallelism OR $3,
         rate = CASE WHEN $5 THEN $6::int ELSE rate END,
         period_ms = CASE WHEN $7 THEN $8::bigint ELSE period_ms END,
         pinned_rate = pinned_rate OR $9,
         rate_count = 0, rate_period_start = 0`,
        [
          change.parallelism !== undefined,
          change.parallelism ?? null,
          change.rate !== undefined,
          change.rate ?? null,
          change.periodMs !== undefined,
          change.periodMs ?? null,
          pinsRate,
        ],
      );
    }
  }
}

/** The port's flow-control verbs. */
export function postgresFlowControls(pg: Pg): FlowControlStore {
  return {
    async getFlowControl(key: string, now: number) {
      const db = pg.sql;
      const row = await first<KeyRow>(db, `${SELECT_KEY} WHERE k.key = $2`, [now, key]);
      return row && stateFromRow(row, now);
    },

    async listFlowControls(now: number) {
      const db = pg.sql;
      return (await rows<KeyRow>(db, `${SELECT_KEY} ORDER BY k.key COLLATE "C"`, [now])).map((row) => stateFromRow(row, now));
    },

    async changeFlowControl(key, change, at) {
      const found = await applyChange(pg.sql, key, change, at);
      // Anything but a pause may let waiting work start.
      if (found && change.kind !== 'pause') pg.notifier.tell(at);
      return found;
    },
  };
}
