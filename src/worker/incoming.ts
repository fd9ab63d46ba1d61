/**
 * What the worker core sees of a request, whichever server received it, and
 * what it answers; plus reading a Web `Request` body under a size limit.
 */

/** What either adapter hands to the shared core. */
export interface IncomingDelivery {
  method: string;
  /** Path and query, as received. */
  target: string;
  /** The absolute URL the request arrived at (used for `sub` when no publicUrl is set). */
  receivedUrl: string;
  headers: Headers;
  /** The body, or undefined when it is larger than the limit. */
  readBody: (limit: number) => Promise<Uint8Array | undefined>;
}

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export async function readWebBody(request: Request, limit: number): Promise<Uint8Array | undefined> {
  if (Number(request.headers.get('content-length')) > limit) return undefined;
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}
