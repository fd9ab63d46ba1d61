/**
 * A real local HTTP server standing in for a user's endpoint. Each arrival is
 * recorded with its headers and exact body bytes; a script decides each
 * answer (status, headers, delay, hang, connection reset).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Arrival {
  method: string;
  /** Path and query, as received. */
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

export type Answer =
  | { status: number; headers?: Record<string, string>; body?: string; delayMs?: number }
  | { hang: true }
  | { reset: true };

export type Script = (arrival: Arrival, index: number) => Answer;

export interface Destination {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  url(path?: string): string;
  arrivals: Arrival[];
  /** How many requests are being handled now (a hanging one stays open until the client gives up). */
  open: number;
  /** How many requests were being handled at the same time, at most. */
  maxConcurrent: number;
  script: Script;
  waitFor(count: number, timeoutMs?: number): Promise<Arrival[]>;
  close(): Promise<void>;
}

export const ok: Script = () => ({ status: 200, body: 'ok' });

/** Requests in flight across every destination sharing this counter, and the most seen at once. */
export interface Concurrency {
  current: number;
  max: number;
}

/**
 * Holds every request `ms` before answering 200 and counts requests in flight
 * across every destination given the same counter. The decrement timer is
 * created before the reply timer, so it runs just before the reply leaves:
 * Courier (any node) cannot start the next attempt in a freed slot while this
 * one is still counted, and nothing in flight goes uncounted.
 */
export const holding =
  (counter: Concurrency, ms: number): Script =>
  () => {
    counter.current += 1;
    counter.max = Math.max(counter.max, counter.current);
    setTimeout(() => {
      counter.current -= 1;
    }, ms);
    return { status: 200, body: 'ok', delayMs: ms };
  };

export async function startDestination(script: Script = ok): Promise<Destination> {
  const sockets = new Set<Socket>();
  const waiters: { count: number; resolve: () => void }[] = [];
  let concurrent = 0;
  const destination: Destination = {
    origin: '',
    url: (path = '/hook') => `${destination.origin}${path}`,
    arrivals: [],
    open: 0,
    maxConcurrent: 0,
    script,
    waitFor(count, timeoutMs = 10_000) {
      if (destination.arrivals.length >= count) return Promise.resolve(destination.arrivals);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${count} arrivals; got ${destination.arrivals.length}`)),
          timeoutMs,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(destination.arrivals);
          },
        });
      });
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const arrival: Arrival = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        at: Date.now(),
      };
      const index = destination.arrivals.push(arrival) - 1;
      concurrent += 1;
      destination.open = concurrent;
      destination.maxConcurrent = Math.max(destination.maxConcurrent, concurrent);
      for (const waiter of [...waiters]) {
        if (destination.arrivals.length >= waiter.count) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
      const answer = destination.script(arrival, index);
      const done = () => {
        concurrent -= 1;
        destination.open = concurrent;
      };
      if ('hang' in answer) {
        res.on('close', done);
        return;
      }
      if ('reset' in answer) {
        done();
        req.socket.destroy();
        return;
      }
      const send = () => {
        done();
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body ?? '');
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  destination.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return destination;
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let pathCounter = 0;
/** A fresh destination path per call, so arrivals of one test never mix with another's. */
export const uniquePath = (name: string) => `/${name}-${++pathCounter}`;

/** The arrivals at exactly `path` (path and query), in order. */
export function arrivalsAt(destination: Destination, path: string): Arrival[] {
  return destination.arrivals.filter((arrival) => arrival.path === path);
}

/** Waits until at least `count` requests have arrived at `path`; resolves with them all. */
export function waitForArrivals(destination: Destination, path: string, count: number, timeoutMs = 5_000): Promise<Arrival[]> {
  return eventually(
    () => {
      const found = arrivalsAt(destination, path);
      return found.length >= count ? found : undefined;
    },
    timeoutMs,
    `${count} arrival(s) at ${path}`,
  );
}
