/**
 * One SSE follower of one stream: the frames queued for its connection and
 * the position it has reached. The hub (hub.ts) pushes live events in; the
 * connection pulls frames out (`frames()`, the reply's body).
 *
 * Invariant: the follower queues event `latest + 1` and nothing else, so
 * every seq reaches the client exactly once and in order, whatever order
 * the sources (its own replay, local appends, reads for other nodes'
 * appends) deliver them in. An event past `latest + 1` is a hole: the
 * follower remembers the store has it (`behind`) and reads the store from
 * `latest` before it waits again. Replay is the same mechanism: the
 * follower starts `behind` the stream's last seq.
 *
 * The buffer: live frames it has not taken are bounded by `bufferBytes`.
 * Past it, a follower that still holds frames (its client reads slower
 * than the stream is written) is cut off: `cut` resolves with the
 * slow-consumer frame and the host ends the response with it. One that was
 * waiting (it had taken everything: a single large batch arrived) is not
 * slow: the rest of the batch is left to its reads of the store, paced by
 * its connection.
 */
import type { StreamEvent, StreamRecord } from '../core/stream.js';
import type { StreamStore } from '../store/port.js';
import { eventFrame, KEEP_ALIVE_FRAME, SLOW_CONSUMER_FRAME } from './sse.js';

/** An event as the hub pushes it: framed once for all of a stream's followers. */
export interface Framed {
  seq: number;
  frame: string;
  bytes: number;
}

export function frameEvents(events: readonly StreamEvent[]): Framed[] {
  return events.map((event) => {
    const frame = eventFrame(event);
    return { seq: event.seq, frame, bytes: Buffer.byteLength(frame) };
  });
}

/**
 * Events read per store read while replaying or filling a hole: 200 events
 * of at most 64 KiB is 12.5 MiB at worst, read only once the previous page
 * was taken, so a replay is paced by the client and bounded in memory.
 */
const PAGE = 200;

export interface FollowerOptions {
  streamId: string;
  store: Pick<StreamStore, 'readStreamEvents'>;
  bufferBytes: number;
  /** Called once, when the follower lets go (the client left, it was cut off or ended). */
  onDetach: (follower: Follower) => void;
}

export class Follower {
  readonly streamId: string;
  /** The highest seq queued for the client; undefined until `start`. */
  latest: number | undefined;
  /** The store holds events up to at least this seq. */
  private behind = 0;
  /** The stream is closed and its last seq is this one. */
  private closedAt: number | undefined;
  private queue: string[] = [];
  private liveBytes = 0;
  private wake: (() => void) | undefined;
  private done = false;
  private detached = false;
  private wroteSinceTick = true;
  private signal: AbortSignal | undefined;
  private readonly onAbort = () => {
    this.detach();
    this.notify();
  };
  /** Resolves with the last frame when the follower is cut off (slow consumer). */
  readonly cut: Promise<string>;
  private resolveCut!: (frame: string) => void;

  constructor(private readonly options: FollowerOptions) {
    this.streamId = options.streamId;
    this.cut = new Promise<string>((resolve) => {
      this.resolveCut = resolve;
    });
  }

  /** It has replayed what the store held when it started and takes live events as they come. */
  get settled(): boolean {
    return this.latest !== undefined && this.behind <= this.latest;
  }

  /**
   * Replay starts after `after`; `prefix` (connected, gap) goes first.
   * `signal` (the client left) lets go of the hub at once, even if the body
   * was never read: a generator never started runs no `finally`.
   */
  start(after: number, prefix: string, stream: Pick<StreamRecord, 'state' | 'lastSeq'> | undefined, signal: AbortSignal): void {
    this.latest = after;
    this.queue.push(prefix);
    if (stream) this.learn(stream);
    this.signal = signal;
    if (signal.aborted) return this.detach();
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Live events, in seq order within one call (a batch), from the hub. */
  receive(events: readonly Framed[], stream: Pick<StreamRecord, 'state' | 'lastSeq'>): void {
    if (this.done) return;
    this.learn(stream);
    const idle = this.wake !== undefined;
    for (const event of events) {
      if (this.latest === undefined || event.seq > this.latest + 1) {
        this.behind = Math.max(this.behind, event.seq);
        continue;
      }
      if (event.seq <= this.latest) continue;
      if (this.liveBytes + event.bytes > this.options.bufferBytes) {
        if (!idle) return this.cutOff();
        // See the header: not slow, only a large batch; the store has the rest.
        this.behind = Math.max(this.behind, event.seq);
        break;
      }
      this.queue.push(event.frame);
      this.liveBytes += event.bytes;
      this.latest = event.seq;
    }
    this.notify();
  }

  /** The hub's keep-alive tick: a comment if nothing was written since the last one. */
  tick(): void {
    if (!this.wroteSinceTick && this.latest !== undefined && this.queue.length === 0 && !this.done) {
      this.queue.push(KEEP_ALIVE_FRAME);
      this.notify();
    }
    this.wroteSinceTick = false;
  }

  /** Ends the response after what is queued (the stream was deleted, the node is closing). */
  end(): void {
    this.done = true;
    this.notify();
  }

  /**
   * The response body. HAZARD: it must also wake on `signal` (the client
   * left), or its `finally`, which lets go of the hub, would wait for the
   * next event of a stream that may never have one.
   */
  async *frames(): AsyncGenerator<string> {
    try {
      while (!this.signal?.aborted) {
        if (this.queue.length > 0) {
          const chunk = this.queue.length === 1 ? this.queue[0]! : this.queue.join('');
          this.queue = [];
          this.liveBytes = 0;
          this.wroteSinceTick = true;
          yield chunk;
          continue;
        }
        if (this.done) return;
        const latest = this.latest ?? 0;
        if (this.behind > latest) {
          await this.catchUp(latest);
          continue;
        }
        if (this.closedAt !== undefined && latest >= this.closedAt) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      this.detach();
    }
  }

  detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.done = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.options.onDetach(this);
  }

  private learn(stream: Pick<StreamRecord, 'state' | 'lastSeq'>): void {
    this.behind = Math.max(this.behind, stream.lastSeq);
    if (stream.state !== 'open') this.closedAt = stream.lastSeq;
  }

  private async catchUp(after: number): Promise<void> {
    const events = await this.options.store.readStreamEvents(this.streamId, after, PAGE);
    if (events.length === 0) {
      // The store has less than we were told (the stream was deleted meanwhile): wait for news instead of spinning.
      this.behind = this.latest ?? 0;
      return;
    }
    for (const event of events) {
      // Live events may have been queued while the read was in flight: those are already sent.
      if (this.latest !== undefined && event.seq <= this.latest) continue;
      this.queue.push(eventFrame(event));
      this.latest = event.seq;
    }
  }

  private cutOff(): void {
    this.queue = [];
    this.liveBytes = 0;
    this.resolveCut(SLOW_CONSUMER_FRAME);
    this.detach();
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
