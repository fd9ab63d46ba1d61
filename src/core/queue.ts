/** A queue (spec §3): FIFO admission of its messages, at most `parallelism` at a time. */
export interface QueueSettings {
  name: string;
  parallelism: number;
  paused: boolean;
}

export interface QueueRecord extends QueueSettings {
  /** Messages of the queue not yet finished: waiting their turn, or admitted. */
  lag: number;
  createdAt: number;
  updatedAt: number;
}
