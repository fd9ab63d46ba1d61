/** The `node:http` side of the worker: IncomingMessage in, ServerResponse out. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IncomingDelivery, Reply } from './incoming.js';

export function readNodeRequest(request: IncomingMessage): IncomingDelivery {
  const headers = new Headers();
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  const scheme = (request.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  // An absolute-form target (sent to proxies) carries its own origin.
  const url = new URL(request.url ?? '/', `${scheme}://${request.headers.host ?? 'localhost'}`);
  return {
    method: request.method ?? 'GET',
    target: url.pathname + url.search,
    receivedUrl: url.href,
    headers,
    readBody: (limit) => readNodeBody(request, limit),
  };
}

export function writeNodeResponse(request: IncomingMessage, response: ServerResponse, reply: Reply): void {
  if (response.headersSent || response.destroyed) return;
  // A body left unread (413, or a refusal before reading) would otherwise be
  // drained from the socket to keep it alive: close instead.
  if (!request.complete) response.setHeader('connection', 'close');
  response.writeHead(reply.status, reply.headers);
  response.end(reply.body);
}

function readNodeBody(request: IncomingMessage, limit: number): Promise<Uint8Array | undefined> {
  if (Number(request.headers['content-length']) > limit) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        stop();
        request.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      stop();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error): void => {
      stop();
      reject(error);
    };
    const onClose = (): void => {
      if (request.complete) return;
      stop();
      reject(new Error('the client closed the connection before sending the whole body'));
    };
    const stop = (): void => {
      request.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
    };
    request.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}
