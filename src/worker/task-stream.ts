/**
 * `task.stream`: the worker's side of a stream tied to its message. A
 * delivery of such a message carries `Courier-Stream-Id`, a write token for
 * that stream only (`Courier-Stream-Token`) and `Courier-Stream-Seq`, the seq
 * of this attempt's `running` status, which Courier stored before sending.
 *
 * Writes go to `POST {courierUrl}/v1/streams/{id}/events` (Bearer token).
 * Batching: writes made while a request is on the wire (or in the same tick)
 * wait and go together in the next one, so a writer faster than one round
 * trip costs one request per round trip, not one per event.
 *
 * Idempotent resend: the kit numbers its events from `Courier-Stream-Seq`
 * (writer `seq`), so a batch whose answer was lost is resent as is, and the
 * store skips what it already holds. Without that header (Courier could not
 * store `running` in time) the first batch goes unnumbered and the answer
 * tells where the numbering continues.
 *
 * A retried delivery: the stream keeps what earlier attempts wrote (it is
 * append-only); this attempt's `running` status says `attempt: n`, and
 * `startSeq` is its seq. A deterministic writer calls `history()` (the events
 * up to `startSeq`) and skips the output it already wrote. A stream the
 * previous attempt closed (`end`/`fail`) refuses further writes (409).
 *
 * HAZARD: an attempt Courier gave up on (its time-out) may still be running
 * when the retry starts: its events then carry seqs the retry also uses, and
 * whichever arrives second is skipped. Keep handlers inside the time-out.
 */

export interface StreamEventView {
  seq: number;
  type: string;
  /** A string as written, or the JSON value. */
  data: unknown;
  at?: number;
}

export interface TaskStream {
  /** The stream this delivery reports to; undefined when the message is tied to none (writes then reject). */
  readonly id: string | undefined;
  /** The seq of this attempt's `running` status: events at or below it were there before the attempt began. 0 if unknown. */
  readonly startSeq: number;
  /** The last seq known to be stored: startSeq, then each batch's answer. */
  readonly lastSeq: number;
  /** Appends one event (`content`, or a user type); resolves once stored. */
  write(type: string, data: unknown): Promise<void>;
  /** Writes `end`: the worker's output is complete; Courier's `delivered` status then closes the stream. */
  end(data?: unknown): Promise<void>;
  /** Writes `error` (`{message}` for an Error or a string). The delivery's own outcome still decides the message. */
  fail(error: unknown): Promise<void>;
  /** Resolves once everything written so far is stored; rejects with the first write failure. */
  flush(): Promise<void>;
  /** The stream's events up to `startSeq`: what was written before this attempt (e.g. by a failed one). */
  history(): Promise<StreamEventView[]>;
}

export class TaskStreamError extends Error {
  constructor(
    message: string,
    /** The HTTP status Courier answered, if it answered. */
    readonly status?: number,
    /** Courier's error code, when it sent one. */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'TaskStreamError';
  }
  /** The stream is closed (by this or an earlier attempt's end/fail, or by Courier). */
  get closed(): boolean {
    return this.code === 'STREAM_CLOSED';
  }
  /** Closed or full: no retry of the delivery could write there either. */
  get final(): boolean {
    return this.code === 'STREAM_CLOSED' || this.code === 'STREAM_FULL';
  }
}

export interface TaskStreamOptions {
  /** Courier's base URL. */
  courierUrl: string | undefined;
  headers: Headers;
  fetch: typeof fetch;
}

const NOT_TIED = 'this delivery is not tied to a stream (no Courier-Stream-Id / Courier-Stream-Token headers)';
/** The API's limit per request. */
const MAX_BATCH = 1_000;
/** Resends of a batch that got no answer, a 5xx or a 429, before its writes fail: about 4.5 s in all. */
const RESEND_DELAYS_MS = [250, 1_000, 3_000];

interface Pending {
  event: { type: string; data: unknown };
  resolve: () => void;
  reject: (error: unknown) => void;
}

export function createTaskStream(options: TaskStreamOptions): TaskStream {
  const id = options.headers.get('courier-stream-id') ?? undefined;
  const token = options.headers.get('courier-stream-token') ?? undefined;
  const seqHeader = Number(options.headers.get('courier-stream-seq') ?? '');
  const startSeq = Number.isSafeInteger(seqHeader) && seqHeader > 0 ? seqHeader : 0;
  /** The seq the kit's numbering has reached; undefined until known. */
  let numbered: number | undefined = startSeq > 0 ? startSeq : undefined;
  let lastSeq = startSeq;
  let closedHere = false;
  let failure: Error | undefined;
  let queue: Pending[] = [];
  let sending: Promise<void> | undefined;

  const base = (): string => {
    if (id === undefined || token === undefined) throw new TaskStreamError(NOT_TIED);
    if (options.courierUrl === undefined) throw new TaskStreamError('the worker has no courierUrl, so it cannot write to the stream');
    return `${options.courierUrl.replace(/\/+$/, '')}/v1/streams/${encodeURIComponent(id)}`;
  };

  async function request(method: 'GET' | 'POST', url: string, body?: unknown): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      let response: Response | undefined;
      let error: unknown;
      try {
        response = await options.fetch(url, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      } catch (caught) {
        error = caught;
      }
      if (response?.ok) return response.json();
      const retryable = response === undefined || response.status >= 500 || response.status === 429;
      const delay = RESEND_DELAYS_MS[attempt];
      if (retryable && delay !== undefined) {
        await response?.body?.cancel();
        await new Promise((resolve) => setTimeout(resolve, delay));
        continue;
      }
      if (!response) throw new TaskStreamError(`cannot reach Courier: ${error instanceof Error ? error.message : String(error)}`);
      const text = await response.text();
      let code: string | undefined;
      try {
        const parsed = JSON.parse(text) as { code?: unknown };
        if (typeof parsed.code === 'string') code = parsed.code;
      } catch {
        // Not JSON: the text is the message.
      }
      throw new TaskStreamError(`Courier answered ${response.status} to a stream ${method}: ${text.slice(0, 500)}`, response.status, code);
    }
  }

  async function sendAll(): Promise<void> {
    // Let writes of the same tick join the first batch.
    await Promise.resolve();
    for (;;) {
      // HAZARD: cleared in the same synchronous step as the emptiness check. A write made after it
      // starts a new sender; cleared any later (a .finally), a write resumed by the last batch's
      // resolve could run in between, find a sender still set, and never be sent.
      if (queue.length === 0) {
        sending = undefined;
        return;
      }
      const batch = queue.slice(0, MAX_BATCH);
      queue = queue.slice(batch.length);
      if (failure !== undefined) {
        for (const item of batch) item.reject(failure);
        continue;
      }
      const from = numbered;
      const events = batch.map((item, index) => (from === undefined ? item.event : { ...item.event, seq: from + index + 1 }));
      try {
        const answer = (await request('POST', `${base()}/events`, events)) as { seq?: unknown };
        const seq = typeof answer.seq === 'number' ? answer.seq : undefined;
        numbered = from === undefined ? seq : from + batch.length;
        if (seq !== undefined) lastSeq = Math.max(lastSeq, seq);
        for (const item of batch) item.resolve();
      } catch (error) {
        failure = error instanceof Error ? error : new TaskStreamError(String(error));
        for (const item of batch) item.reject(failure);
      }
    }
  }

  function enqueue(type: string, data: unknown): Promise<void> {
    // Not sticky: no retry of this delivery would be tied to a stream either.
    if (id === undefined || token === undefined) return handled(Promise.reject(new TaskStreamError(NOT_TIED)));
    if (closedHere) return handled(Promise.reject(new TaskStreamError('the stream was already ended or failed by this delivery')));
    if (failure !== undefined) return handled(Promise.reject(failure));
    const written = new Promise<void>((resolve, reject) => queue.push({ event: { type, data }, resolve, reject }));
    sending ??= sendAll();
    return handled(written);
  }

  return {
    id,
    startSeq,
    get lastSeq() {
      return lastSeq;
    },
    write(type, data) {
      return enqueue(type, data);
    },
    end(data) {
      const written = enqueue('end', data ?? '');
      closedHere = true;
      return written;
    },
    fail(error) {
      const data = error instanceof Error ? { message: error.message } : typeof error === 'string' ? { message: error } : error;
      const written = enqueue('error', data ?? { message: 'failed' });
      closedHere = true;
      return written;
    },
    async flush() {
      while (sending) await sending;
      if (failure !== undefined) throw failure;
    },
    async history() {
      const url = base();
      const events: StreamEventView[] = [];
      let after = 0;
      while (after < startSeq) {
        const page = (await request('GET', `${url}/events?after=${after}&limit=${MAX_BATCH}`)) as { events?: StreamEventView[] };
        const got = page.events ?? [];
        if (got.length === 0) break;
        for (const event of got) if (event.seq <= startSeq) events.push(event);
        after = got[got.length - 1]!.seq;
      }
      return events;
    },
  };
}

/** A write's promise that a handler may ignore: its failure also surfaces in flush(), and must not end the process. */
function handled(promise: Promise<void>): Promise<void> {
  promise.catch(() => undefined);
  return promise;
}
