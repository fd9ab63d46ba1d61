/** A flow-control key's limits and live counters (spec §11.9), as `GET /v2/flowControl/{key}` shows them. */
export interface FlowControlState {
  key: string;
  /** Messages with this key that are due but not in flight. */
  waitListSize: number;
  /** Undefined: unlimited. */
  parallelism?: number;
  parallelismCount: number;
  rate?: number;
  rateCount: number;
  periodMs: number;
  /** When the current rate window began (ms); 0 before the first attempt. */
  ratePeriodStart: number;
  paused: boolean;
  pinnedParallelism: boolean;
  pinnedRate: boolean;
}

/** One management action on a key; the store applies it atomically. */
export type FlowControlChange =
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'pin'; parallelism?: number; rate?: number; periodMs?: number }
  | { kind: 'unpin'; parallelism: boolean; rate: boolean }
  | { kind: 'resetRate' };
