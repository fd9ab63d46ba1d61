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
 * What counts as one expected unit is the reset's `key` (bench/protocol.ts):
 * the body's sequence number, that number per endpoint path (fan-out), or
 * the path alone (schedules, whose bodies are fixed templates), optionally
 * within a time window and counting a header such as Upstash-Schedule-Id.
 *
 * Control endpoints (used by bench/sink-process.ts):
 *   POST /_control/reset   ResetRequest        start a new measurement
 *   GET  /_control/wait?target=N&timeoutMs=T   long-poll until N unique arrived or T passed; answers SinkStats
 *   GET  /_control/report                      SinkStats plus every latency
 *
 * Env: SINK_PORT (default 0 = any free port). Prints one JSON line
 * `{"event":"listening","port":…}` on stdout once ready.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  CONTROL_PREFIX,
  preciseNow,
  type MessageBody,
  type ResetRequest,
  type SinkKey,
  type SinkReadyLine,
  type SinkReport,
  type SinkStats,
} from './protocol.js';

/** The trailing `/<integer>` of a path (query excluded), or −1. */
function trailingIndex(path: string): number {
  const queryAt = path.indexOf('?');
  const end = queryAt === -1 ? path.length : queryAt;
  const slash = path.lastIndexOf('/', end - 1);
  if (slash === -1 || slash === end - 1) return -1;
  const value = Number(path.slice(slash + 1, end));
  return Number.isInteger(value) && value >= 0 ? value : -1;
}

/** The segment before the trailing index: `/sink/<run>/<i>` → `<run>`. */
function runSegment(path: string): string {
  const queryAt = path.indexOf('?');
  const end = path.lastIndexOf('/', (queryAt === -1 ? path.length : queryAt) - 1);
  return path.slice(path.lastIndexOf('/', end - 1) + 1, end);
}

interface Arrival {
  body: string;
  path: string;
  headers: IncomingHttpHeaders;
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

class Measurement {
  readonly run: string;
  readonly expected: number;
  private readonly key: SinkKey;
  private readonly paths: number;
  private readonly window: { from: number; to: number } | undefined;
  private readonly countHeader: string | undefined;
  // Typed arrays sized up front: no allocation per arrival, and a bitmap
  // makes the duplicate check O(1) without a Set of 20,000 numbers.
  private readonly seen: Uint8Array;
  private readonly latencies: Float64Array;
  private readonly headerValues = new Set<string>();
  unique = 0;
  duplicates = 0;
  stale = 0;
  malformed = 0;
  retried = 0;
  early = 0;
  late = 0;
  withHeader = 0;
  firstArrival: number | null = null;
  lastArrival: number | null = null;

  constructor(request: ResetRequest) {
    this.run = request.run;
    this.expected = request.expected;
    this.key = request.key ?? 'seq';
    this.paths = request.paths ?? 1;
    this.window = request.window;
    this.countHeader = request.countHeader;
    this.seen = new Uint8Array(request.expected);
    this.latencies = new Float64Array(request.expected);
  }

  /**
   * `preciseNow` is stamped on arrival; `path` mode measures against a
   * wall-clock due time (Courier decides what is due by Date.now()), so it
   * takes Date.now() instead.
   */
  record(arrival: Arrival, preciseArrivedAt: number): void {
    let unit: number;
    let arrivedAt = preciseArrivedAt;
    let latency: number;
    if (this.key === 'path') {
      arrivedAt = Date.now();
      if (runSegment(arrival.path) !== this.run) {
        this.stale++;
        return;
      }
      unit = trailingIndex(arrival.path);
      latency = arrivedAt - (this.window?.from ?? arrivedAt);
    } else {
      let message: MessageBody;
      try {
        message = JSON.parse(arrival.body) as MessageBody;
      } catch {
        this.malformed++;
        return;
      }
      if (message.r !== this.run) {
        this.stale++;
        return;
      }
      if (!Number.isInteger(message.s) || message.s < 0 || typeof message.t !== 'number') {
        this.malformed++;
        return;
      }
      if (this.key === 'seq') {
        unit = message.s;
      } else {
        const index = trailingIndex(arrival.path);
        unit = index >= 0 && index < this.paths ? message.s * this.paths + index : -1;
      }
      latency = arrivedAt - message.t;
    }
    if (unit < 0 || unit >= this.expected) {
      this.malformed++;
      return;
    }
    if (this.window !== undefined) {
      if (arrivedAt < this.window.from) {
        this.early++;
        return;
      }
      if (arrivedAt > this.window.to) {
        this.late++;
        return;
      }
    }
    if (this.seen[unit] === 1) {
      this.duplicates++;
      return;
    }
    this.seen[unit] = 1;
    this.latencies[this.unique] = latency;
    this.unique++;
    this.firstArrival ??= arrivedAt;
    this.lastArrival = arrivedAt;
    const retried = headerValue(arrival.headers, 'upstash-retried');
    if (retried !== undefined && retried !== '0') this.retried++;
    if (this.countHeader !== undefined) {
      const value = headerValue(arrival.headers, this.countHeader);
      if (value !== undefined) {
        this.withHeader++;
        this.headerValues.add(value);
      }
    }
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
      early: this.early,
      late: this.late,
      withHeader: this.withHeader,
      distinctHeaderValues: this.headerValues.size,
      firstArrival: this.firstArrival,
      lastArrival: this.lastArrival,
    };
  }

  report(): SinkReport {
    return { ...this.stats(), latenciesMs: Array.from(this.latencies.subarray(0, this.unique)) };
  }
}

/** Checks a reset body; returns the problem, or undefined when it is usable. */
function invalidReset(request: ResetRequest): string | undefined {
  if (typeof request.run !== 'string' || request.run === '' || request.run.includes('/')) return '"run" must be a non-empty string without "/"';
  if (!Number.isInteger(request.expected) || request.expected < 0) return '"expected" must be a non-negative integer';
  const key = request.key ?? 'seq';
  if (key !== 'seq' && key !== 'seq-path' && key !== 'path') return '"key" must be seq, seq-path or path';
  if (key === 'seq-path' && (!Number.isInteger(request.paths) || request.paths! < 1)) return '"paths" must be a positive integer for seq-path';
  if (key === 'path' && request.window === undefined) return '"window" is required for path';
  if (request.window !== undefined && !(typeof request.window.from === 'number' && typeof request.window.to === 'number')) {
    return '"window" must be {"from","to"} in ms';
  }
  if (request.countHeader !== undefined && (typeof request.countHeader !== 'string' || request.countHeader !== request.countHeader.toLowerCase())) {
    return '"countHeader" must be a lower-case header name';
  }
  return undefined;
}

interface Waiter {
  target: number;
  respond: () => void;
}

let current = new Measurement({ run: 'none', expected: 0 });
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
    current.record({ body, path: req.url ?? '/', headers: req.headers }, arrivedAt);
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
        const problem = invalidReset(request);
        if (problem !== undefined) {
          sendJson(res, 400, { error: problem });
          return;
        }
        // Release anyone still waiting on the old measurement; they will see its final stats.
        const old = current;
        for (const w of waiters) w.respond();
        waiters = [];
        current = new Measurement(request);
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
