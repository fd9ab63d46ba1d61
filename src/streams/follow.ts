/**
 * Opening an SSE follow of a stream: where the replay starts, and the
 * order that makes it exact.
 *
 * HAZARD (the replay/live race, Mercure's longest-lived bug): the follower
 * is attached to the hub BEFORE the stream is read, so an event appended
 * while the history is read reaches it live; it is then sent once, in its
 * place, because a follower only ever takes the seq after its own
 * (follower.ts). Reading first and attaching after would lose what was
 * appended in between.
 *
 * Positions (the client's Last-Event-ID: the last seq it has):
 * - `from: earliest` (the default): from the oldest event stored;
 *   `from: latest`: only what is appended from now on.
 * - `after: n`, `firstSeq - 1 <= n <= lastSeq`: from n + 1.
 * - `after: n` of a closed stream with n = lastSeq, or `from: latest` of a
 *   closed one: nothing will ever come: `finished` (the route answers 204,
 *   which stops EventSource reconnecting).
 * - `after: n` that is no longer stored (n < firstSeq - 1) or never was (n >
 *   lastSeq: a foreign id, or the stream was deleted and created again):
 *   one `gap` frame `{requested: n, firstAvailable: m}`, then the replay
 *   from m. Loss is always visible, never silent.
 * - a stream nothing has written yet: the response waits for its first
 *   event (a positive n gets a gap with firstAvailable 1 first).
 */
import type { StreamRecord } from '../core/stream.js';
import type { StreamStore } from '../store/port.js';
import type { StreamHub } from './hub.js';
import { connectedFrame, gapFrame } from './sse.js';

export type FollowPosition = { after: number } | { from: 'earliest' | 'latest' };

export type ReplayPlan = { finished: true } | { finished: false; after: number; gap?: { requested: number; firstAvailable: number } };

export function planReplay(stream: StreamRecord | undefined, position: FollowPosition): ReplayPlan {
  if (!stream) {
    if ('after' in position && position.after > 0) return { finished: false, after: 0, gap: { requested: position.after, firstAvailable: 1 } };
    return { finished: false, after: 0 };
  }
  const closed = stream.state !== 'open';
  const last = stream.lastSeq;
  // No event stored (all purged, or none yet): the next one to come is the first available.
  const first = stream.firstSeq > 0 ? stream.firstSeq : last + 1;
  if ('from' in position) {
    if (position.from === 'latest') return closed ? { finished: true } : { finished: false, after: last };
    return { finished: false, after: first - 1 };
  }
  const requested = position.after;
  if (requested === last && closed) return { finished: true };
  if (requested > last || requested < first - 1) return { finished: false, after: first - 1, gap: { requested, firstAvailable: first } };
  return { finished: false, after: requested };
}

export type FollowStart =
  | { kind: 'finished' }
  /** `frames` is the response body; `cut` resolves with the last frame if the follower is cut off (slow consumer). */
  | { kind: 'follow'; frames: AsyncIterable<string>; cut: Promise<string> };

export interface FollowDeps {
  store: Pick<StreamStore, 'getStream'>;
  hub: Pick<StreamHub, 'attach'>;
  retryMs: number;
}

export async function openFollow(deps: FollowDeps, streamId: string, position: FollowPosition, signal: AbortSignal): Promise<FollowStart> {
  const follower = deps.hub.attach(streamId);
  try {
    const stream = await deps.store.getStream(streamId);
    const plan = planReplay(stream, position);
    if (plan.finished) {
      follower.detach();
      return { kind: 'finished' };
    }
    let prefix = connectedFrame(deps.retryMs, {
      streamId,
      after: plan.after,
      lastSeq: stream?.lastSeq ?? 0,
      state: stream?.state ?? 'open',
    });
    if (plan.gap) prefix += gapFrame(plan.gap.requested, plan.gap.firstAvailable);
    follower.start(plan.after, prefix, stream, signal);
    return { kind: 'follow', frames: follower.frames(), cut: follower.cut };
  } catch (error) {
    follower.detach();
    throw error;
  }
}
