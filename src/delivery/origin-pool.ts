/**
 * The undici Pool for one destination origin, with a guard against a socket
 * leak in undici's HTTP/1 client.
 *
 * HAZARD (seen with undici 7.30; reported as nodejs/undici#5845, fix in
 * PR #5846, unreleased at the time of writing): when a request running on a socket is aborted, the Client
 * destroys that socket but puts the aborted request back as pending, opens a
 * NEW connection for it, and only then sees that it was aborted. The new
 * socket serves nothing and sits idle for the pool's keep-alive time: 400
 * timed-out attempts to a destination that never answers left ~600 sockets
 * open. Courier aborts an attempt at its deadline and when it cuts off a
 * body it will not store, so it meets this on every slow destination.
 *
 * The guard: every attempt is dispatched with a mark (`ATTEMPT` on the
 * dispatch options), each Client of the pool remembers the mark of the last
 * attempt it was given, and an attempt that gives up sets `abandoned` before
 * it aborts. With pipelining 1 a Client holds one attempt at a time and a
 * new one replaces the mark, so a connect for a Client whose last attempt is
 * abandoned can only be that spurious one (or one for an attempt whose
 * deadline passed while it waited in the pool's queue): the connector
 * refuses it. Nothing fails that was not already over, and the Pool drops a
 * Client whose connect failed (connectionError), creating a fresh one when
 * it needs one. Once undici is fixed the guard never fires.
 */
import { Client, Pool, type Dispatcher } from 'undici';
import type { buildConnector } from 'undici';

export const ATTEMPT = Symbol('courier.attempt');

/** What the guard knows of an attempt. */
export interface AttemptMark {
  /** Set by the attempt before it aborts itself; never unset. */
  abandoned: boolean;
}

export type MarkedDispatchOptions = Dispatcher.DispatchOptions & { [ATTEMPT]?: AttemptMark };

class AbandonedAttemptError extends Error {
  readonly code = 'COURIER_ATTEMPT_ABANDONED';
  constructor() {
    super('not connecting for an attempt that was given up');
  }
}

class AttemptClient extends Client {
  lastAttempt: AttemptMark | undefined;

  override dispatch(options: MarkedDispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.lastAttempt = options[ATTEMPT];
    return super.dispatch(options, handler);
  }
}

export interface OriginPoolOptions {
  connections: number;
  keepAliveTimeoutMs: number;
}

export function createOriginPool(origin: string, options: OriginPoolOptions): Pool {
  return new Pool(origin, {
    connections: options.connections,
    pipelining: 1,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    factory(url, clientOptions) {
      const { connect } = clientOptions as { connect?: unknown };
      // The Pool always hands its Clients a connector function (built from its own options).
      if (typeof connect !== 'function') throw new Error('undici Pool gave its client no connector function');
      const connector = connect as buildConnector.connector;
      const client: AttemptClient = new AttemptClient(url, {
        ...(clientOptions as Client.Options),
        connect(connectOptions, callback) {
          if (client.lastAttempt?.abandoned === true) {
            callback(new AbandonedAttemptError(), null);
            return;
          }
          connector(connectOptions, callback);
        },
      });
      return client;
    },
  });
}
