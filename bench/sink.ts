/**
 * The destination every benchmark scenario delivers to. Runs as its own
 * process (`node --import tsx bench/sink.ts`) so its CPU use shows up the way
 * a real destination's would, and so it cannot share an event loop with the
 * load generator.
 *
 * Any request outside /_control/ is a delivery: the sink reads the body,
 * stamps the arrival time, answers 200 with no body, and counts. Courier
 * retries a failed delivery only after ~12 s, so answering fast and never
 * failing matters more here than anything else.
 *
 * Control endpoints (used by bench/sink-process.ts):
 *   POST /_control/reset   {"run","expected"}  start a new measurement
 *   GET  /_control/wait?target=N&timeoutMs=T   long-poll until N unique arrived or T passed; answers SinkStats
 *   GET  /_control/report                      SinkStats plus every latency
 *
 * Env: SINK_PORT (default 0 = any free port). Prints one JSON line
 * `{"event":"listening","port":…}` on stdout once ready.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  CONTROL_PREFIX,
  preciseNow,
  type MessageBody,
  type ResetRequest,
  type SinkReadyLine,
  type SinkReport,
  type SinkStats,
} from './protocol.js';

class Measurement {
  readonly run: string;
  readonly expected: number;
  // Typed arrays sized up front: no allocation per arrival, and a bitmap
  // makes the duplicate check O(1) without a Set of 20,000 numbers.
  private readonly seen: Uint8Array;
  private readonly latencies: Float64Array;
  unique = 0;
  duplicates = 0;
  stale = 0;
  malformed = 0;
  retried = 0;
  firstArrival: number | null = null;
  lastArrival: number | null = null;

  constructor(run: string, expected: number) {
    this.run = run;
    this.expected = expected;
    this.seen = new Uint8Array(expected);
    this.latencies = new Float64Array(expected);
  }

  record(body: string, arrivedAt: number, retriedHeader: string | undefined): void {
    let message: MessageBody;
    try {
      message = JSON.parse(body) as MessageBody;
    } catch {
      this.malformed++;
      return;
    }
    if (message.r !== this.run) {
      this.stale++;
      return;
    }
    const seq = message.s;
    if (!Number.isInteger(seq) || seq < 0 || seq >= this.expected || typeof message.t !== 'number') {
      this.malformed++;
      return;
    }
    if (this.seen[seq] === 1) {
      this.duplicates++;
      return;
    }
    this.seen[seq] = 1;
    this.latencies[this.unique] = arrivedAt - message.t;
    this.unique++;
    this.firstArrival ??= arrivedAt;
    this.lastArrival = arrivedAt;
    if (retriedHeader !== undefined && retriedHeader !== '0') this.retried++;
  }

  stats(): SinkStats {
    return {
      run: this.run,
      expected: this.expected,
      unique: this.unique,
      duplicates: this.duplicates,
      stale: this.stale,
      malformed: this.malformed,
      retried: this.retried,
      firstArrival: this.firstArrival,
      lastArrival: this.lastArrival,
    };
  }

  report(): SinkReport {
    return { ...this.stats(), latenciesMs: Array.from(this.latencies.subarray(0, this.unique)) };
  }
}

interface Waiter {
  target: number;
  respond: () => void;
}

let current = new Measurement('none', 0);
let waiters: Waiter[] = [];

function wakeWaiters(): void {
  if (waiters.length === 0) return;
  const ready = waiters.filter((w) => current.unique >= w.target);
  if (ready.length === 0) return;
  waiters = waiters.filter((w) => current.unique < w.target);
  for (const w of ready) w.respond();
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage, onBody: (body: string) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => onBody(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
}

function handleDelivery(req: IncomingMessage, res: ServerResponse): void {
  readBody(req, (body) => {
    // Stamp before anything else so parsing and bookkeeping do not count as latency.
    const arrivedAt = preciseNow();
    res.writeHead(200, { 'content-length': '0' });
    res.end();
    const retried = req.headers['upstash-retried'];
    current.record(body, arrivedAt, Array.isArray(retried) ? retried[0] : retried);
    wakeWaiters();
  });
}

function handleControl(req: IncomingMessage, res: ServerResponse, url: URL): void {
  const route = `${req.method ?? 'GET'} ${url.pathname.slice(CONTROL_PREFIX.length)}`;
  switch (route) {
    case 'POST reset':
      readBody(req, (body) => {
        let request: ResetRequest;
        try {
          request = JSON.parse(body) as ResetRequest;
        } catch {
          sendJson(res, 400, { error: 'body must be JSON {"run","expected"}' });
          return;
        }
        if (typeof request.run !== 'string' || !Number.isInteger(request.expected) || request.expected < 0) {
          sendJson(res, 400, { error: 'body must be JSON {"run","expected"}' });
          return;
        }
        // Release anyone still waiting on the old measurement; they will see its final stats.
        const old = current;
        for (const w of waiters) w.respond();
        waiters = [];
        current = new Measurement(request.run, request.expected);
        sendJson(res, 200, old.stats());
      });
      return;
    case 'GET wait': {
      const target = Number(url.searchParams.get('target') ?? current.expected);
      const timeoutMs = Math.min(Number(url.searchParams.get('timeoutMs') ?? 1000), 60_000);
      const measurement = current;
      if (measurement.unique >= target) {
        sendJson(res, 200, measurement.stats());
        return;
      }
      let done = false;
      const waiter: Waiter = {
        target,
        respond: () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          sendJson(res, 200, measurement.stats());
        },
      };
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w !== waiter);
        waiter.respond();
      }, timeoutMs);
      waiters.push(waiter);
      return;
    }
    case 'GET report':
      sendJson(res, 200, current.report());
      return;
    default:
      sendJson(res, 404, { error: `no control route ${route}` });
  }
}

const server = createServer((req, res) => {
  const path = req.url ?? '/';
  if (path.startsWith(CONTROL_PREFIX)) {
    handleControl(req, res, new URL(path, 'http://sink'));
  } else {
    handleDelivery(req, res);
  }
});

// Outlive the senders' idle timeouts (undici: 4 s) so connections are reused
// rather than raced against the server closing them.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 70_000;

server.listen(Number(process.env.SINK_PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('sink: unexpected listen address');
  const ready: SinkReadyLine = { event: 'listening', port: address.port };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
});

// The runner ends the sink with SIGTERM; close quickly rather than wait for keep-alive sockets.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
// If the runner dies without signalling, stdin (a pipe from it) closes: follow it.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
