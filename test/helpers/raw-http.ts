/**
 * HTTP/1.1 over a bare socket, for requests fetch (and undici) would refuse
 * to send or would "fix" first: a request target with `\`, `///` or dot
 * segments kept byte for byte, header bytes exactly as given.
 */
import { connect } from 'node:net';

export interface RawRequest {
  method?: string;
  /** Sent as is, after the method. */
  target: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** Sends one request with `Connection: close` and reads the answer until the server closes. */
export function rawRequest(port: number, request: RawRequest, timeoutMs = 5_000): Promise<RawResponse> {
  const body = request.body ?? '';
  const lines = [`${request.method ?? 'POST'} ${request.target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  for (const [name, value] of Object.entries(request.headers ?? {})) lines.push(`${name}: ${value}`);
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  const bytes = `${lines.join('\r\n')}\r\n\r\n${body}`;
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms to ${request.method ?? 'POST'} ${JSON.stringify(request.target)}`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A reset after the answer was read is fine: what matters is what came back.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        reject(error);
      }
    });
    socket.write(bytes);
  });
}

function parse(raw: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`expected an HTTP response, got ${JSON.stringify(raw.slice(0, 200))}`);
  const [statusLine = '', ...lines] = raw.slice(0, end).split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!match) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  // Courier's replies carry a Content-Length, never chunked framing.
  return { status: Number(match[1]), headers, body: raw.slice(end + 4) };
}
