/**
 * Replays the committed corpus of malformed requests (test/corpus/
 * malformed-requests.json, written by test/corpus/generate.mjs, which
 * documents the entry format) against one running Courier on the store
 * COURIER_TEST_STORE names (issue 11, "Hardening").
 *
 * Each entry goes byte-exact over its own connection and must, within one
 * second (a hung answer is a failure, not a slow one):
 * - get an answer below 500;
 * - unless marked `"expect": "accepted"`: a 4xx whose body is JSON with a
 *   string `code` and `error`; accepted ones: a 2xx;
 * - draw no second response (a smuggled request the server ran);
 * - store nothing: the log, the DLQ, queues, schedules, URL groups, flow
 *   control keys, instance groups, instances and the backlog are what they
 *   were before it.
 * Afterwards the destination every entry names has received nothing, and
 * the server is still ready and still delivers.
 *
 * Every failing entry is collected and reported in one message (name,
 * status, body snippet), so one run shows all of them. Set
 * COURIER_CORPUS_REPORT=<file> to also write them as JSON.
 *
 * Two sentinels make destructive acceptance visible: a message delayed by an
 * hour (a bulk cancel that lets a bad request through cancels it) and a DLQ
 * entry (a bulk delete or retry removes it); each is planted again after an
 * entry destroys it.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually, sleep, startDestination, type Destination } from '../helpers/destination.js';
import { rawExchange, type RawOutcome } from '../helpers/raw-exchange.js';

interface BodyGen {
  nest?: number;
  open?: string;
  close?: string;
  core?: string;
  repeat?: string;
  times?: number;
  prefix?: string;
  suffix?: string;
}

interface Entry {
  name: string;
  category: string;
  auth: boolean;
  raw?: string;
  method?: string;
  path?: string;
  headers?: Record<string, string | string[]>;
  body?: string;
  bodyGen?: BodyGen;
  chunked?: boolean;
  expect?: 'accepted';
}

interface Failure {
  name: string;
  category: string;
  status?: number;
  problem: string;
  body: string;
}

/** The requirement itself: an answer within a second. */
const GUARD_MS = 1_000;
/** How long a raw entry's connection stays open after its answer, to catch a second (smuggled) response. */
const LINGER_MS = 30;
/** Chunk size for `chunked: true` entries. */
const CHUNK_BYTES = 64 * 1024;

const CORPUS_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', 'corpus', 'malformed-requests.json');
const CORPUS = JSON.parse(readFileSync(CORPUS_FILE, 'utf8')) as Entry[];

interface Vars {
  token: string;
  host: string;
  dest: string;
  destPort: string;
}

function fill(text: string, vars: Vars): string {
  return text
    .replace(/\{\{REPEAT (.) (\d+)\}\}/g, (_, char: string, times: string) => char.repeat(Number(times)))
    .replaceAll('{{TOKEN_PREFIX}}', vars.token.slice(0, -1))
    .replaceAll('{{TOKEN_BASIC}}', Buffer.from(`user:${vars.token}`).toString('base64'))
    .replaceAll('{{TOKEN}}', vars.token)
    .replaceAll('{{HOST}}', vars.host)
    .replaceAll('{{DEST_PORT}}', vars.destPort)
    .replaceAll('{{DEST}}', vars.dest);
}

function generate(gen: BodyGen, vars: Vars): Buffer {
  const prefix = fill(gen.prefix ?? '', vars);
  const suffix = fill(gen.suffix ?? '', vars);
  const middle =
    gen.nest !== undefined
      ? `${(gen.open ?? '').repeat(gen.nest)}${gen.core ?? ''}${(gen.close ?? '').repeat(gen.nest)}`
      : fill(gen.repeat ?? '', vars).repeat(gen.times ?? 0);
  return Buffer.from(prefix + middle + suffix, 'utf8');
}

/** The bytes of one entry, in the order they are written. */
function requestBytes(entry: Entry, vars: Vars): Buffer[] {
  if (entry.raw !== undefined) return [Buffer.from(fill(entry.raw, vars), 'latin1')];
  const headers = Object.entries(entry.headers ?? {}).flatMap(([name, value]) => (Array.isArray(value) ? value : [value]).map((v) => [name, fill(v, vars)] as const));
  const has = (name: string) => headers.some(([n]) => n.toLowerCase() === name);
  const lines = [`${entry.method ?? 'GET'} ${fill(entry.path ?? '/', vars)} HTTP/1.1`, `Host: ${vars.host}`];
  if (entry.auth && !has('authorization')) lines.push(`Authorization: Bearer ${vars.token}`);
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  const body = entry.bodyGen ? generate(entry.bodyGen, vars) : entry.body === undefined ? undefined : Buffer.from(fill(entry.body, vars), 'utf8');
  if (body !== undefined && entry.chunked) {
    lines.push('Transfer-Encoding: chunked');
    const parts: Buffer[] = [Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')];
    for (let at = 0; at < body.length; at += CHUNK_BYTES) {
      const chunk = body.subarray(at, at + CHUNK_BYTES);
      parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
    }
    parts.push(Buffer.from('0\r\n\r\n'));
    return parts;
  }
  if (body !== undefined && !has('content-length')) lines.push(`Content-Length: ${body.length}`);
  return [Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body ?? Buffer.alloc(0)];
}

const snippet = (bytes: Buffer) => JSON.stringify(bytes.subarray(0, 160).toString('latin1'));

/** What is wrong with one answer, or undefined when it is what the corpus requires. */
function judge(entry: Entry, outcome: RawOutcome): Omit<Failure, 'name' | 'category'> | undefined {
  if (!outcome.ok) return { problem: outcome.problem, body: snippet(outcome.received) };
  const { status, headers, body } = outcome.response;
  const fail = (problem: string) => ({ status, problem, body: snippet(body) });
  if (outcome.extra.length > 0) return { status, problem: `a second response followed (a smuggled request was run): ${snippet(outcome.extra)}`, body: snippet(body) };
  if (status >= 500) return fail('a 5xx');
  if (entry.expect === 'accepted') return status >= 200 && status < 300 ? undefined : fail('a valid variant was not accepted');
  if (status < 400) return fail('accepted (expected a 4xx)');
  if (!/^application\/json\b/i.test(headers.get('content-type') ?? '')) return fail(`content-type ${JSON.stringify(headers.get('content-type') ?? null)}, not JSON`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return fail('the body is not JSON');
  }
  const { code, error } = (parsed ?? {}) as { code?: unknown; error?: unknown };
  if (typeof code !== 'string' || typeof error !== 'string') return fail('the body lacks a string code and error');
  return undefined;
}

describe('the malformed-request corpus', () => {
  let courier: TestCourier;
  /** Every entry names this destination; it must never be called. */
  let forbidden: Destination;
  /** Where the sentinels and the final good publish go. */
  let good: Destination;
  let vars: Vars;
  const failures: Failure[] = [];
  /** The entry being replayed, and for each arrival at the forbidden destination the entry replayed when it came. */
  let replaying = '(before the corpus)';
  const arrivedDuring: string[] = [];

  let sentinelMessageId = '';
  let sentinelDlqId = '';
  /** Every message id the log has shown: a later entry is blamed only for ids that are new. */
  const knownMessageIds = new Set<string>();

  async function getJson(path: string): Promise<{ status: number; body: unknown; text: string }> {
    const res = await courier.api(path);
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.status, body, text };
  }

  /**
   * What a rejected request could have stored or changed, per area, as
   * comparable text. Only what a request changes goes in, never what an
   * earlier (wrongly accepted) message changes while it is delivered and
   * retried: new message ids (schedule runs excluded: a schedule an earlier
   * entry created fires later), the two sentinels, and the names and
   * settings of queues, schedules, URL groups, flow-control keys, instance
   * groups and instances.
   */
  async function snapshot(): Promise<Record<string, string>> {
    const area = async (path: string, pick: (body: unknown) => unknown) => {
      const { status, body, text } = await getJson(path);
      return status === 200 ? JSON.stringify(pick(body)) : `status ${status}: ${text.slice(0, 100)}`;
    };
    type Event = { messageId?: string; scheduleId?: string };
    const [events, sentinelMessage, sentinelDeadLetter, queues, schedules, urlGroups, flowControl, instanceGroups, instances] = await Promise.all([
      area('/v2/events?count=1000', (body) => {
        const ids = new Set<string>();
        for (const event of (body as { events: Event[] }).events) {
          if (event.messageId !== undefined && event.scheduleId === undefined && !knownMessageIds.has(event.messageId)) ids.add(event.messageId);
        }
        return [...ids].sort();
      }),
      courier.api(`/v2/messages/${sentinelMessageId}`).then(async (res) => `status ${res.status}: ${(await res.text()).includes('"messageId"') ? 'found' : 'not found'}`),
      courier.api(`/v2/dlq/${sentinelDlqId}`).then(async (res) => `status ${res.status}: ${(await res.text()).includes('"dlqId"') ? 'found' : 'not found'}`),
      area('/v2/queues', (body) => (body as { name: string; parallelism: number; paused: boolean }[]).map((q) => [q.name, q.parallelism, q.paused])),
      area('/v2/schedules', (body) => (body as { scheduleId: string; isPaused: boolean }[]).map((s) => [s.scheduleId, s.isPaused])),
      area('/v2/topics', (body) => body),
      area('/v2/flowControl', (body) => (Array.isArray(body) ? body : [body]).map((k) => (k as { flowControlKey?: string; isPaused?: boolean }).flowControlKey ?? k)),
      area('/v1/instance-groups', (body) => body),
      area('/v1/instances', (body) => (body as { group?: string; id?: string; url?: string }[]).map((i) => [i.group, i.id, i.url])),
    ]);
    return { events, sentinelMessage, sentinelDeadLetter, queues, schedules, urlGroups, flowControl, instanceGroups, instances };
  }

  /** Adds the log's message ids so far to the known ones. */
  async function learnMessageIds(): Promise<void> {
    const { body } = await getJson('/v2/events?count=1000');
    for (const event of (body as { events: { messageId?: string }[] }).events) if (event.messageId) knownMessageIds.add(event.messageId);
  }

  /** A message delayed by an hour: a bulk cancel that lets a bad request through cancels it. */
  async function plantSentinelMessage(): Promise<void> {
    const res = await courier.api(`/v2/publish/${good.url('/sentinel')}`, { method: 'POST', headers: { 'Upstash-Delay': '1h' }, body: 's' });
    assert.equal(res.status, 200);
    sentinelMessageId = ((await res.json()) as { messageId: string }).messageId;
  }

  /** A DLQ entry: a bulk delete or retry that lets a bad request through removes it. */
  async function plantSentinelDeadLetter(): Promise<void> {
    const res = await courier.api(`/v2/publish/${good.url('/fail')}`, { method: 'POST', headers: { 'Upstash-Retries': '0' }, body: 'f' });
    assert.equal(res.status, 200);
    const { messageId } = (await res.json()) as { messageId: string };
    sentinelDlqId = await eventually(async () => {
      const { body } = await getJson('/v2/dlq?count=100');
      return (body as { messages: { dlqId: string; messageId: string }[] }).messages.find((m) => m.messageId === messageId)?.dlqId;
    }, 10_000, 'the sentinel DLQ entry');
  }

  /** Waits until two snapshots 50 ms apart agree (a publish's events land just after its answer), then returns it. */
  async function settledSnapshot(): Promise<Record<string, string>> {
    let last = '';
    let current: Record<string, string> = {};
    await eventually(async () => {
      await learnMessageIds();
      current = await snapshot();
      const text = JSON.stringify(current);
      const stable = text === last;
      last = text;
      if (!stable) await sleep(50);
      return stable ? true : undefined;
    }, 5_000, 'a stable snapshot');
    return current;
  }

  before(async () => {
    // Small limits keep the "huge" entries moderate (2-3 MB) while still over them.
    courier = await startTestCourier({ COURIER_MAX_BODY_BYTES: String(1024 * 1024), COURIER_MAX_BATCH_BYTES: String(2 * 1024 * 1024) });
    forbidden = await startDestination(() => {
      arrivedDuring.push(replaying);
      return { status: 200 };
    });
    good = await startDestination((arrival) => (arrival.path.startsWith('/fail') ? { status: 500 } : { status: 200 }));
    vars = { token: courier.token, host: `127.0.0.1:${courier.server.port}`, dest: forbidden.url('/corpus'), destPort: new URL(forbidden.origin).port };
    await plantSentinelMessage();
    await plantSentinelDeadLetter();
  });

  after(async () => {
    await courier.stop();
    await forbidden.close();
    await good.close();
  });

  it(`answers each of the ${CORPUS.length} entries below 500, as a JSON error with a code, within ${GUARD_MS} ms, storing nothing`, async () => {
    let state = await settledSnapshot();
    for (const entry of CORPUS) {
      replaying = entry.name;
      const outcome = await rawExchange(courier.server.port, requestBytes(entry, vars), { guardMs: GUARD_MS, lingerMs: entry.raw === undefined ? 0 : LINGER_MS });
      const verdict = judge(entry, outcome);
      let next: Record<string, string>;
      try {
        next = await snapshot();
      } catch (error) {
        // The server stopped answering its own API: name the entry that did it, then stop.
        failures.push({ name: entry.name, category: entry.category, problem: `the server stopped answering afterwards: ${String(error)}`, body: '' });
        break;
      }
      const changed = Object.keys(next).filter((area) => next[area] !== state[area]);
      const problems = verdict ? [verdict.problem] : [];
      if (changed.length > 0) {
        problems.push(`stored or changed: ${changed.map((area) => `${area} ${state[area]} -> ${next[area]}`.slice(0, 200)).join('; ')}`);
        // Start the next entry from a clean slate: its sentinels in place, this entry's messages known.
        if (next.sentinelMessage !== state.sentinelMessage) await plantSentinelMessage();
        if (next.sentinelDeadLetter !== state.sentinelDeadLetter) await plantSentinelDeadLetter();
        next = await settledSnapshot();
      }
      if (problems.length > 0) {
        const status = outcome.ok ? outcome.response.status : undefined;
        const body = verdict?.body ?? (outcome.ok ? snippet(outcome.response.body) : '');
        failures.push({ name: entry.name, category: entry.category, ...(status === undefined ? {} : { status }), problem: problems.join('; '), body });
      }
      state = next;
    }
    replaying = '(after the corpus)';
    if (process.env.COURIER_CORPUS_REPORT) writeFileSync(process.env.COURIER_CORPUS_REPORT, `${JSON.stringify(failures, null, 1)}\n`);
    const lines = failures.map((f) => `- [${f.category}] ${f.name}: ${f.status === undefined ? 'no status' : f.status}, ${f.problem}; body ${f.body}`);
    assert.equal(failures.length, 0, `${failures.length} corpus failure(s) on ${process.env.COURIER_TEST_STORE ?? 'sqlite'}:\n${lines.join('\n')}`);
  });

  it('called the destination of none of them', async () => {
    await sleep(300);
    // A delivery usually lands while its entry is replayed (each stored message is waited on): it names the culprit.
    const lines = forbidden.arrivals.map((a, i) => `- ${a.method} ${JSON.stringify(a.path)} during ${JSON.stringify(arrivedDuring[i])}`);
    assert.equal(forbidden.arrivals.length, 0, `${forbidden.arrivals.length} arrival(s):\n${lines.join('\n')}`);
  });

  it('is still ready, and still accepts and delivers a normal publish', async () => {
    const ready = await fetch(`${courier.url}/health/ready`);
    assert.equal(ready.status, 200, await ready.text());
    const res = await courier.api(`/v2/publish/${good.url('/after')}`, { method: 'POST', body: 'still alive' });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    const arrival = await eventually(() => good.arrivals.find((a) => a.path === '/after'), 10_000, 'the good delivery');
    assert.equal(arrival.body.toString(), 'still alive');
  });
});
