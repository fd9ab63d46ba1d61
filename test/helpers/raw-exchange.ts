/**
 * One HTTP/1.1 exchange over a raw socket, for the malformed-request corpus (raw-http.ts reads until close instead): write exact bytes, read one
 * response (status line, headers, then a Content-Length or chunked body, or
 * everything until the server closes). For requests no HTTP client would
 * send: smuggling, broken framing, control characters, unknown methods.
 *
 * Interim 1xx responses are skipped. The guard bounds the whole exchange:
 * a server that neither answers nor closes in time is a failed exchange,
 * not a slow one.
 */
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Map<string, string>;
  body: Buffer;
}

export type RawOutcome =
  | { ok: true; response: RawResponse; /** Bytes that followed the response within `lingerMs` (a second response). */ extra: Buffer }
  | { ok: false; problem: string; received: Buffer };

export interface ExchangeOptions {
  guardMs: number;
  /** After a complete response, wait this long for bytes that should not come; 0: close at once. */
  lingerMs?: number;
}

type Parsed = { response: RawResponse; used: number } | 'incomplete' | { malformed: string };

/** Parses one response from the start of `data`; `closed` says the server has ended the stream. */
export function parseResponse(data: Buffer, closed: boolean): Parsed {
  let offset = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', offset);
    if (end === -1) return closed ? { malformed: 'the connection closed inside the response head' } : 'incomplete';
    const [statusLine = '', ...lines] = data.subarray(offset, end).toString('latin1').split('\r\n');
    const match = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
    if (!match) return { malformed: `bad status line ${JSON.stringify(statusLine.slice(0, 80))}` };
    const status = Number(match[1]);
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon <= 0) return { malformed: `bad header line ${JSON.stringify(line.slice(0, 80))}` };
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
    }
    const bodyStart = end + 4;
    if (status >= 100 && status < 200 && status !== 101) {
      offset = bodyStart;
      continue;
    }
    if (status === 204 || status === 304) return { response: { status, headers, body: Buffer.alloc(0) }, used: bodyStart };
    if (/\bchunked\b/i.test(headers.get('transfer-encoding') ?? '')) return parseChunked(data, bodyStart, status, headers, closed);
    const length = headers.get('content-length');
    if (length !== undefined) {
      if (!/^\d+$/.test(length)) return { malformed: `bad Content-Length ${JSON.stringify(length)}` };
      const needed = bodyStart + Number(length);
      if (data.length < needed) return closed ? { malformed: 'the connection closed inside the body' } : 'incomplete';
      return { response: { status, headers, body: data.subarray(bodyStart, needed) }, used: needed };
    }
    // Neither length nor chunked: the body runs until the server closes.
    if (!closed) return 'incomplete';
    return { response: { status, headers, body: data.subarray(bodyStart) }, used: data.length };
  }
}

function parseChunked(data: Buffer, start: number, status: number, headers: Map<string, string>, closed: boolean): Parsed {
  const chunks: Buffer[] = [];
  let offset = start;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', offset);
    if (lineEnd === -1) return closed ? { malformed: 'the connection closed inside a chunk' } : 'incomplete';
    const size = parseInt(data.subarray(offset, lineEnd).toString('latin1').split(';')[0]!.trim(), 16);
    if (Number.isNaN(size)) return { malformed: 'bad chunk size in the response' };
    if (size === 0) {
      // The last chunk's line, any trailers, then the empty line.
      const trailerEnd = data.indexOf('\r\n\r\n', lineEnd);
      if (trailerEnd === -1) return closed ? { malformed: 'the connection closed inside the trailers' } : 'incomplete';
      return { response: { status, headers, body: Buffer.concat(chunks) }, used: trailerEnd + 4 };
    }
    const dataStart = lineEnd + 2;
    if (data.length < dataStart + size + 2) return closed ? { malformed: 'the connection closed inside a chunk' } : 'incomplete';
    chunks.push(data.subarray(dataStart, dataStart + size));
    offset = dataStart + size + 2;
  }
}

/** Connects to 127.0.0.1:`port`, writes `parts` in order, and reads one response. Never rejects. */
export function rawExchange(port: number, parts: readonly Buffer[], options: ExchangeOptions): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let settled = false;
    let lingerTimer: NodeJS.Timeout | undefined;
    let done: { response: RawResponse; used: number } | undefined;

    const finish = (outcome: RawOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      clearTimeout(lingerTimer);
      socket.destroy();
      resolve(outcome);
    };
    const guard = setTimeout(() => {
      if (done) return finish({ ok: true, response: done.response, extra: data.subarray(done.used) });
      finish({ ok: false, problem: `no complete answer within ${options.guardMs} ms`, received: data });
    }, options.guardMs);

    const check = (closed: boolean) => {
      if (done) {
        if (closed || data.length > done.used) finish({ ok: true, response: done.response, extra: data.subarray(done.used) });
        return;
      }
      const parsed = parseResponse(data, closed);
      if (parsed === 'incomplete') return;
      if ('malformed' in parsed) return finish({ ok: false, problem: parsed.malformed, received: data });
      done = parsed;
      if (closed || !options.lingerMs || data.length > parsed.used) return finish({ ok: true, response: parsed.response, extra: data.subarray(parsed.used) });
      lingerTimer = setTimeout(() => finish({ ok: true, response: parsed.response, extra: Buffer.alloc(0) }), options.lingerMs);
    };

    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      check(false);
    });
    // A reset while we still write (a 413 closes early) is fine: what counts is what came back.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (settled) return;
      if (data.length === 0 && !done) return finish({ ok: false, problem: 'the server closed the connection without answering', received: data });
      check(true);
    });
    socket.on('connect', () => {
      for (const part of parts) {
        if (socket.destroyed) break;
        socket.write(part);
      }
    });
  });
}
