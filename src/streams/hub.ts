/**
 * The per-node fan-out of task streams to their SSE followers.
 *
 * Sources of live events, per stream id with followers on this node:
 * - this node's appends (`stream.appended` on the bus): pushed as they are,
 *   framed once for all followers, with no store read;
 * - other nodes' appends (`store.watchStreams`, PostgreSQL NOTIFY or Redis
 *   pub/sub): the hub reads the events after the last seq it pushed, once
 *   per stream per notification, never per follower, and pushes them;
 * - `poke` (a stream closed by the retention sweep): the same read.
 *
 * Correctness does not rest on the hub: a follower takes only the seq after
 * its own, and reads the store itself across a hole (follower.ts). The
 * hub's bookkeeping (`known`) only keeps those reads rare.
 *
 * Followers per node are bounded (`maxFollowers`, then 503); one
 * keep-alive timer serves them all and runs only while there are any. A
 * follower that leaves is removed at once, with its stream's entry when it
 * was the last one: a disconnected client holds nothing.
 */
import type { Logger } from 'pino';
import { CourierError } from '../core/errors.js';
import type { EventBus } from '../core/events.js';
import type { StreamEvent, StreamRecord } from '../core/stream.js';
import type { StreamStore } from '../store/port.js';
import { Follower, frameEvents } from './follower.js';

/** Events per read for other nodes' appends; a burst past it is read in several. */
const REMOTE_PAGE = 500;

export interface HubSettings {
  maxFollowers: number;
  followerBufferBytes: number;
  keepAliveMs: number;
}

export interface HubDeps {
  store: Pick<StreamStore, 'getStream' | 'readStreamEvents' | 'watchStreams'>;
  events: Pick<EventBus, 'on'>;
  logger: Logger;
  settings: HubSettings;
}

interface Topic {
  followers: Set<Follower>;
  /** Every event up to this seq has been pushed to the followers; undefined until the hub knows. */
  known: number | undefined;
  /** Another node reported the stream reached this seq (or `Infinity`: read to learn). */
  target: number;
  reading: boolean;
}

export class StreamHub {
  private readonly topics = new Map<string, Topic>();
  private count = 0;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopWatching: (() => Promise<void>) | undefined;

  constructor(private readonly deps: HubDeps) {}

  async start(): Promise<void> {
    this.unsubscribe = this.deps.events.on('stream.appended', ({ stream, events }) => this.local(stream, events));
    this.stopWatching = await this.deps.store.watchStreams((streamId, lastSeq) => this.remote(streamId, lastSeq));
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const topic of this.topics.values()) for (const follower of topic.followers) follower.end();
    await this.stopWatching?.();
    this.stopWatching = undefined;
    this.stopTimer();
  }

  /** Followers on this node now. */
  get followerCount(): number {
    return this.count;
  }

  /**
   * A new follower of `streamId`, receiving live events from now on: attach
   * before reading history, so nothing appended meanwhile is missed.
   */
  attach(streamId: string): Follower {
    if (this.count >= this.deps.settings.maxFollowers) {
      throw new CourierError(
        'TOO_MANY_FOLLOWERS',
        `this node already serves ${this.deps.settings.maxFollowers} stream followers (COURIER_STREAM_MAX_FOLLOWERS); try again later or another node`,
        undefined,
        { retryAfterSeconds: 1 },
      );
    }
    const follower = new Follower({
      streamId,
      store: this.deps.store,
      bufferBytes: this.deps.settings.followerBufferBytes,
      onDetach: (gone) => this.remove(gone),
    });
    let topic = this.topics.get(streamId);
    if (!topic) {
      topic = { followers: new Set(), known: undefined, target: 0, reading: false };
      this.topics.set(streamId, topic);
    }
    topic.followers.add(follower);
    this.count += 1;
    this.startTimer();
    return follower;
  }

  /** Ends the responses of a stream's followers here (it was deleted). */
  end(streamId: string): void {
    const topic = this.topics.get(streamId);
    if (topic) for (const follower of topic.followers) follower.end();
  }

  /** Something appended to the stream outside the bus (the retention sweep): read and push what is new. */
  poke(streamId: string): void {
    this.remote(streamId, Infinity);
  }

  private local(stream: StreamRecord, events: readonly StreamEvent[]): void {
    const topic = this.topics.get(stream.id);
    if (!topic || events.length === 0) return;
    const first = events[0]!.seq;
    const last = events[events.length - 1]!.seq;
    // A stream deleted and created again starts at 1 again.
    if (first === 1) topic.known = undefined;
    const framed = frameEvents(events);
    for (const follower of topic.followers) follower.receive(framed, stream);
    if (topic.known === undefined || first <= topic.known + 1) topic.known = Math.max(topic.known ?? 0, last);
    // Events before these were appended through another node and not read yet.
    else this.remote(stream.id, last);
  }

  private remote(streamId: string, lastSeq: number): void {
    const topic = this.topics.get(streamId);
    if (!topic) return;
    // Lower than what was pushed: the stream was deleted and created again elsewhere.
    if (topic.known !== undefined && lastSeq < topic.known) topic.known = undefined;
    const base = this.base(topic, false);
    if (base === undefined && Number.isFinite(lastSeq)) {
      // Every follower is still replaying from the store: telling them how far it goes costs no read.
      for (const follower of topic.followers) follower.receive([], { state: 'open', lastSeq });
      return;
    }
    if (base !== undefined && lastSeq <= base) return;
    topic.target = Math.max(topic.target, lastSeq);
    if (topic.reading) return;
    topic.reading = true;
    this.read(streamId, topic)
      .catch((error: unknown) => {
        // The followers' own reads are the fallback: tell them the store is ahead, they read when they can.
        this.deps.logger.warn({ err: error, streamId }, 'reading a stream for its followers failed');
        const stub = { state: 'open' as const, lastSeq: Number.isFinite(topic.target) ? topic.target : 0 };
        for (const follower of topic.followers) follower.receive([], stub);
      })
      .finally(() => {
        topic.reading = false;
      });
  }

  /** Reads what is new for a topic and pushes it, until the hub has reached every seq it was told of. */
  private async read(streamId: string, topic: Topic): Promise<void> {
    while (topic.followers.size > 0) {
      const stream = await this.deps.store.getStream(streamId);
      if (!stream) return;
      const base = this.base(topic, true) ?? 0;
      if (base >= stream.lastSeq) {
        topic.known = base;
        // Nothing new, but the state may be (closed by the sweep): followers at the end can finish.
        for (const follower of topic.followers) follower.receive([], stream);
        topic.target = 0;
        return;
      }
      const events = await this.deps.store.readStreamEvents(streamId, base, REMOTE_PAGE);
      if (events.length === 0) return;
      const last = events[events.length - 1]!.seq;
      const framed = frameEvents(events);
      // The state read before the events applies only once the last of them is pushed.
      const state = last >= stream.lastSeq ? stream : { state: 'open' as const, lastSeq: last };
      for (const follower of topic.followers) follower.receive(framed, state);
      topic.known = Math.max(topic.known ?? 0, last);
      if (topic.known >= topic.target && last >= stream.lastSeq) {
        topic.target = 0;
        return;
      }
    }
  }

  /**
   * Where the hub's next read starts: what it pushed, else the least seq a
   * follower that finished its replay has (all followers when `all`);
   * undefined when no follower qualifies.
   */
  private base(topic: Topic, all: boolean): number | undefined {
    if (topic.known !== undefined) return topic.known;
    let least: number | undefined;
    for (const follower of topic.followers) {
      if (!all && !follower.settled) continue;
      const latest = follower.latest ?? 0;
      least = least === undefined ? latest : Math.min(least, latest);
    }
    return least;
  }

  private remove(follower: Follower): void {
    const topic = this.topics.get(follower.streamId);
    if (!topic || !topic.followers.delete(follower)) return;
    this.count -= 1;
    if (topic.followers.size === 0) this.topics.delete(follower.streamId);
    if (this.count === 0) this.stopTimer();
  }

  private startTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      for (const topic of this.topics.values()) for (const follower of topic.followers) follower.tick();
    }, this.deps.settings.keepAliveMs);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
