/**
 * HTTP over a raw socket, for what a client library will not send (garbage
 * after a request, no Host, CONNECT, half a body) and for reading every byte
 * the server writes until it closes the connection.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: string;
}

/**
 * Writes `request` in one write, then reads until the server closes. A server
 * that never closes fails after `guardMs` (a guard against a hung test, not a
 * duration being asserted).
 */
export function exchange(port: number, request: string | Buffer, guardMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let answer = '';
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not close the connection within ${guardMs} ms; it wrote: ${JSON.stringify(answer)}`));
    }, guardMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('close', () => {
      clearTimeout(guard);
      resolve(answer);
    });
    // A reset after the server's answer still leaves that answer to check.
    socket.on('error', () => undefined);
  });
}

/** Splits what a server wrote into its responses (each framed by Content-Length, or chunked). */
export function parseResponses(raw: string): RawResponse[] {
  const responses: RawResponse[] = [];
  let rest = raw;
  while (rest.length > 0) {
    const headEnd = rest.indexOf('\r\n\r\n');
    assert.notEqual(headEnd, -1, `an incomplete response head: ${JSON.stringify(rest)}`);
    const [statusLine = '', ...lines] = rest.slice(0, headEnd).split('\r\n');
    const match = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine);
    assert.ok(match, `not a status line: ${JSON.stringify(statusLine)}`);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    rest = rest.slice(headEnd + 4);
    let body = '';
    if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const sizeEnd = rest.indexOf('\r\n');
        const size = parseInt(rest.slice(0, sizeEnd), 16);
        body += rest.slice(sizeEnd + 2, sizeEnd + 2 + size);
        rest = rest.slice(sizeEnd + 2 + size + 2);
        if (size === 0) break;
      }
    } else {
      // The bodies here are ASCII JSON, so characters are bytes.
      const length = Number(headers['content-length'] ?? 0);
      body = rest.slice(0, length);
      rest = rest.slice(length);
    }
    responses.push({ status: Number(match[1]), headers, body });
  }
  return responses;
}

/** A JSON error body of the Courier shape: `{"error", "code"}`. Returns the code. */
export function errorCode(response: RawResponse): string {
  assert.equal(response.headers['content-type'], 'application/json', JSON.stringify(response));
  const body = JSON.parse(response.body) as Record<string, unknown>;
  assert.equal(typeof body.error, 'string', response.body);
  assert.equal(typeof body.code, 'string', response.body);
  return body.code as string;
}

export interface RawRequest {
  method?: string;
  /** Sent as is, after the method: fetch and undici would refuse or "fix" a target with `\`, `///` or dot segments. */
  target: string;
  headers?: Record<string, string>;
  body?: string;
}

/** One request with `Connection: close`, header bytes exactly as given; the first response the server wrote. */
export async function rawRequest(port: number, request: RawRequest, guardMs = 5_000): Promise<RawResponse> {
  const body = request.body ?? '';
  const lines = [`${request.method ?? 'POST'} ${request.target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  for (const [name, value] of Object.entries(request.headers ?? {})) lines.push(`${name}: ${value}`);
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  const [response] = parseResponses(await exchange(port, `${lines.join('\r\n')}\r\n\r\n${body}`, guardMs));
  assert.ok(response, `no HTTP response to ${request.method ?? 'POST'} ${JSON.stringify(request.target)}`);
  return response;
}
