/**
 * Bad input never reaches the store and never costs a 5xx (spec §1.5, §1.7,
 * §2.1, §18). Each row of the table is one malformed request; for each we
 * check the status, that the answer is JSON `{"error"}` naming the offending
 * field, and that nothing was stored (the log count is unchanged). The
 * destination every row points at must never be called, and the sentinel
 * message and DLQ entry must survive every bulk request with a bad filter.
 * Then raw bytes the HTTP parser itself rejects, and a normal publish to show
 * the process is still serving.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually, sleep, startDestination, type Destination } from '../helpers/destination.js';

interface Case {
  name: string;
  method?: string;
  /** Built from the URL of the destination that must never be called. */
  path: (destination: string) => string;
  headers?: Record<string, string>;
  body?: string | ((destination: string) => string);
  /** The expected status, or the acceptable ones. */
  status: number | number[];
  /** The error text must mention this (the field, header or id at fault). */
  mentions: string;
}

const publish = (d: string) => `/v2/publish/${d}`;
const YEAR_AND_A_MONTH_AHEAD_S = Math.floor(Date.now() / 1000) + 400 * 86_400;

function header(name: string, value: string, mentions = name): Case {
  return { name: `${name}: ${JSON.stringify(value)}`, path: publish, headers: { [name]: value }, status: 400, mentions };
}

function batch(name: string, body: (d: string) => string, mentions: string): Case {
  return { name: `batch: ${name}`, path: () => '/v2/batch', headers: { 'Content-Type': 'application/json' }, body, status: 400, mentions };
}

const CASES: Case[] = [
  // Publish config headers (spec §2.1), each a 400 naming the header.
  header('Upstash-Method', 'FOO'),
  header('Upstash-Delay', 'abc'),
  header('Upstash-Delay', '-1s'),
  header('Upstash-Delay', '10x'),
  header('Upstash-Delay', '1e3'),
  header('Upstash-Delay', '366d'),
  header('Upstash-Not-Before', 'soon'),
  header('Upstash-Not-Before', String(YEAR_AND_A_MONTH_AHEAD_S)),
  header('Upstash-Retries', '-1'),
  header('Upstash-Retries', '1.5'),
  header('Upstash-Retries', 'abc'),
  header('Upstash-Retries', '101'),
  header('Upstash-Retry-Delay', 'pow(1)'),
  header('Upstash-Retry-Delay', '1+'),
  header('Upstash-Retry-Delay', 'process.exit()'),
  header('Upstash-Retry-Delay', 'foo(1)'),
  header('Upstash-Retry-Delay', 'constructor'),
  header('Upstash-Timeout', '0'),
  header('Upstash-Timeout', 'abc'),
  header('Upstash-Timeout', '3h'),
  header('Upstash-Callback', 'not a url'),
  header('Upstash-Callback', 'ftp://x'),
  header('Upstash-Failure-Callback', 'ftp://x'),
  {
    name: 'Upstash-Callback-Method: "FOO"',
    path: publish,
    headers: { 'Upstash-Callback': 'http://127.0.0.1:9/cb', 'Upstash-Callback-Method': 'FOO' },
    status: 400,
    mentions: 'Upstash-Callback-Method',
  },
  header('Upstash-Callback-Retries', '3'),
  header('Upstash-Content-Based-Deduplication', 'maybe'),
  header('Upstash-Redact-Fields', 'bogus'),
  header('Upstash-Label', 'has spaces'),
  header('Upstash-Deduplication-Id', 'x'.repeat(600)),
  header('Upstash-Forward-Host', 'evil.example'),
  header('Upstash-Forward-Transfer-Encoding', 'chunked'),
  header('Upstash-Forward-Content-Length', '5'),

  // Destinations.
  { name: 'destination ftp://x', path: () => '/v2/publish/ftp://x', status: 400, mentions: 'destination' },
  { name: 'destination http://', path: () => '/v2/publish/http://', status: 400, mentions: 'destination' },
  { name: 'destination "not a url!"', path: () => '/v2/publish/not a url!', status: 400, mentions: 'destination' },
  {
    name: 'destination with credentials',
    path: (d) => `/v2/publish/${d.replace('http://', 'http://user:pw@')}`,
    status: 400,
    mentions: 'destination',
  },

  // Unknown ids.
  { name: 'GET an unknown message', method: 'GET', path: () => '/v2/messages/msg_unknown123', status: 404, mentions: 'msg_unknown123' },
  { name: 'DELETE an unknown message', method: 'DELETE', path: () => '/v2/messages/msg_unknown123', status: 404, mentions: 'msg_unknown123' },
  { name: 'GET an unknown DLQ entry', method: 'GET', path: () => '/v2/dlq/1-0', status: 404, mentions: '1-0' },
  { name: 'DELETE an unknown DLQ entry', method: 'DELETE', path: () => '/v2/dlq/1-0', status: 404, mentions: '1-0' },
  { name: 'retry an unknown DLQ entry', method: 'POST', path: () => '/v2/dlq/retry/1-0', status: 404, mentions: '1-0' },
  // A malformed percent-encoding in an id is the client's mistake: 400 or 404, never 500.
  ...(
    [
      ['GET', '/v2/messages/%ZZ'],
      ['DELETE', '/v2/messages/%ZZ'],
      ['GET', '/v2/dlq/%ZZ'],
      ['DELETE', '/v2/dlq/%E0%A4%A'],
      ['POST', '/v2/dlq/retry/%ZZ'],
    ] as const
  ).map(([method, path]): Case => ({ name: `${method} ${path} (bad percent-encoding)`, method, path: () => path, status: [400, 404], mentions: '%' })),

  // Batch bodies (spec §4).
  batch('not JSON', () => '{nope', 'body'),
  batch('not an array', (d) => JSON.stringify({ destination: d, body: 'x' }), 'body'),
  batch('an empty array', () => '[]', 'body'),
  batch('an item without destination', () => JSON.stringify([{ body: 'x' }]), '[0].destination'),
  batch('an item with a bad destination', () => JSON.stringify([{ destination: 'ftp://x' }]), '[0].destination'),
  batch(
    'a good item, then one with a bad header (nothing of the batch is stored)',
    (d) => JSON.stringify([{ destination: d, body: 'good' }, { destination: d, headers: { 'Upstash-Retries': 'abc' }, body: 'bad' }]),
    '[1].headers.Upstash-Retries',
  ),
  batch('an item whose body is not a string', (d) => JSON.stringify([{ destination: d, body: 5 }]), '[0].body'),
  batch('an item whose headers are not strings', (d) => JSON.stringify([{ destination: d, headers: { 'Upstash-Retries': 3 } }]), '[0].headers'),
  batch('an item that is not an object', () => JSON.stringify(['x']), '[0]'),
  batch('1001 items', (d) => JSON.stringify(Array.from({ length: 1001 }, (_, i) => ({ destination: d, body: String(i) }))), '1000'),

  // Query parameters (spec §5.3, §6, §9.1).
  { name: 'GET /v2/dlq?count=0', method: 'GET', path: () => '/v2/dlq?count=0', status: 400, mentions: 'count' },
  { name: 'GET /v2/dlq?count=abc', method: 'GET', path: () => '/v2/dlq?count=abc', status: 400, mentions: 'count' },
  { name: 'GET /v2/dlq?count=101', method: 'GET', path: () => '/v2/dlq?count=101', status: 400, mentions: 'count' },
  { name: 'GET /v2/dlq?cursor=xyz', method: 'GET', path: () => '/v2/dlq?cursor=xyz', status: 400, mentions: 'cursor' },
  { name: 'GET /v2/events?cursor=xyz', method: 'GET', path: () => '/v2/events?cursor=xyz', status: 400, mentions: 'cursor' },
  { name: 'GET /v2/events?count=abc', method: 'GET', path: () => '/v2/events?count=abc', status: 400, mentions: 'count' },
  { name: 'GET /v2/events?state=SLEEPING', method: 'GET', path: () => '/v2/events?state=SLEEPING', status: 400, mentions: 'state' },
  { name: 'GET /v2/events?fromDate=yesterday', method: 'GET', path: () => '/v2/events?fromDate=yesterday', status: 400, mentions: 'fromDate' },
  { name: 'GET /v2/dlq?responseStatus=oops', method: 'GET', path: () => '/v2/dlq?responseStatus=oops', status: 400, mentions: 'responseStatus' },
  { name: 'DELETE /v2/messages?bogus=1', method: 'DELETE', path: () => '/v2/messages?bogus=1', status: 400, mentions: 'bogus' },
  { name: 'DELETE /v2/messages?labell=x (typo)', method: 'DELETE', path: () => '/v2/messages?labell=x', status: 400, mentions: 'labell' },
  { name: 'DELETE /v2/messages?count=0', method: 'DELETE', path: () => '/v2/messages?count=0', status: 400, mentions: 'count' },
  {
    name: 'DELETE /v2/messages with a body that is not JSON',
    method: 'DELETE',
    path: () => '/v2/messages',
    headers: { 'Content-Type': 'application/json' },
    body: '{nope',
    status: 400,
    mentions: 'body',
  },
  {
    name: 'DELETE /v2/messages with an unknown key in the legacy body',
    method: 'DELETE',
    path: () => '/v2/messages',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ bogus: 'x' }),
    status: 400,
    mentions: 'bogus',
  },
  // A filter named with no value must not widen a bulk mutation to everything.
  { name: 'DELETE /v2/messages?label= (empty filter)', method: 'DELETE', path: () => '/v2/messages?label=', status: 400, mentions: 'label' },
  {
    name: 'DELETE /v2/messages with an empty messageIds array in the legacy body',
    method: 'DELETE',
    path: () => '/v2/messages',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ messageIds: [] }),
    status: 400,
    mentions: 'messageIds',
  },
  {
    name: 'DELETE /v2/messages with an empty filter array in the legacy body',
    method: 'DELETE',
    path: () => '/v2/messages',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ url: [] }),
    status: 400,
    mentions: 'url',
  },
  { name: 'DELETE /v2/dlq?label= (empty filter)', method: 'DELETE', path: () => '/v2/dlq?label=', status: 400, mentions: 'label' },
  { name: 'DELETE /v2/dlq?dlqIds= (empty id list)', method: 'DELETE', path: () => '/v2/dlq?dlqIds=', status: 400, mentions: 'dlqIds' },
  { name: 'POST /v2/dlq/retry?label= (empty filter)', method: 'POST', path: () => '/v2/dlq/retry?label=', status: 400, mentions: 'label' },
  { name: 'DELETE /v2/dlq?bogus=1', method: 'DELETE', path: () => '/v2/dlq?bogus=1', status: 400, mentions: 'bogus' },
  { name: 'DELETE /v2/dlq?host=x (not a DLQ filter)', method: 'DELETE', path: () => '/v2/dlq?host=x', status: 400, mentions: 'host' },
  {
    name: 'DELETE /v2/dlq with a legacy body without dlqIds',
    method: 'DELETE',
    path: () => '/v2/dlq',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ids: ['1-0'] }),
    status: 400,
    mentions: 'dlqIds',
  },
  { name: 'POST /v2/dlq/retry?bogus=1', method: 'POST', path: () => '/v2/dlq/retry?bogus=1', status: 400, mentions: 'bogus' },
  {
    name: 'POST /v2/dlq/retry with a bad Upstash-Retries override',
    method: 'POST',
    path: () => '/v2/dlq/retry?dlqIds=1-0',
    headers: { 'Upstash-Retries': 'abc' },
    status: 400,
    mentions: 'Upstash-Retries',
  },

  // Surfaces Courier does not support (spec §14, §18): 404, never 501.
  { name: 'publish to api/llm', path: () => '/v2/publish/api/llm', status: 404, mentions: 'not supported' },
  { name: 'DELETE /v2/workflows/runs/x', method: 'DELETE', path: () => '/v2/workflows/runs/x', status: 404, mentions: 'not supported' },
  {
    name: 'POST /llm/v1/chat/completions',
    path: () => '/llm/v1/chat/completions',
    headers: { 'Content-Type': 'application/json' },
    body: '{"model":"x","messages":[]}',
    status: 404,
    mentions: 'not supported',
  },

  // Routing.
  { name: 'an unknown route', method: 'GET', path: () => '/v2/nope', status: 404, mentions: '/v2/nope' },
  { name: 'the root path', method: 'GET', path: () => '/', status: 404, mentions: 'GET /' },
  { name: 'PUT on publish', method: 'PUT', path: publish, status: 405, mentions: 'PUT' },
  { name: 'GET on batch', method: 'GET', path: () => '/v2/batch', status: 405, mentions: 'GET' },
  { name: 'POST on events', method: 'POST', path: () => '/v2/events', status: 405, mentions: 'POST' },
  { name: 'PATCH on a message', method: 'PATCH', path: () => '/v2/messages/msg_x', status: 405, mentions: 'PATCH' },
];

/** Sends raw bytes and returns everything the server answered until it closed the connection. */
function rawExchange(port: number, bytes: string | Buffer, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms; got ${JSON.stringify(Buffer.concat(chunks).toString())}`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A reset after the answer was read is fine: what matters is what came back.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(bytes);
  });
}

function parseRawResponse(raw: string): { status: number; headers: Map<string, string>; body: string } {
  const end = raw.indexOf('\r\n\r\n');
  assert.ok(end > 0, `expected an HTTP response, got ${JSON.stringify(raw.slice(0, 200))}`);
  const [statusLine = '', ...lines] = raw.slice(0, end).split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  assert.ok(match, `bad status line ${JSON.stringify(statusLine)}`);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(match[1]), headers, body: raw.slice(end + 4) };
}

describe('bad input', () => {
  let courier: TestCourier;
  /** Every bad request points here; it must never be called. */
  let forbidden: Destination;
  /** Where the sentinels (one delayed message, one DLQ entry) and the final good publish go. */
  let good: Destination;
  let sentinelMessageId: string;
  let sentinelDlqId: string;

  async function eventCount(): Promise<number> {
    const res = await courier.api('/v2/events?count=1000');
    assert.equal(res.status, 200);
    const { events } = (await res.json()) as { events: unknown[] };
    return events.length;
  }

  /** What a rejected request must leave untouched: the log, the backlog and the DLQ. */
  async function snapshot(): Promise<{ events: number; backlog: unknown }> {
    const res = await courier.api('/health/detailed');
    const { backlog } = (await res.json()) as { backlog: unknown };
    return { events: await eventCount(), backlog };
  }

  before(async () => {
    courier = await startTestCourier();
    forbidden = await startDestination(() => ({ status: 200 }));
    good = await startDestination((arrival) => (arrival.path.startsWith('/fail') ? { status: 500 } : { status: 200 }));

    const delayed = await courier.api(`/v2/publish/${good.url('/sentinel')}`, { method: 'POST', headers: { 'Upstash-Delay': '1h' }, body: 's' });
    assert.equal(delayed.status, 200);
    sentinelMessageId = ((await delayed.json()) as { messageId: string }).messageId;

    const failing = await courier.api(`/v2/publish/${good.url('/fail')}`, { method: 'POST', headers: { 'Upstash-Retries': '0' }, body: 'f' });
    assert.equal(failing.status, 200);
    await failing.arrayBuffer();
    sentinelDlqId = await eventually(async () => {
      const res = await courier.api('/v2/dlq');
      const { messages } = (await res.json()) as { messages: { dlqId: string }[] };
      return messages[0]?.dlqId;
    }, 10_000, 'the sentinel DLQ entry');
    // The log count must be settled before the table compares it.
    let last = -1;
    await eventually(async () => {
      const now = await eventCount();
      const stable = now === last;
      last = now;
      await sleep(50);
      return stable ? true : undefined;
    }, 5_000, 'a stable log count');
  });

  after(async () => {
    await courier.stop();
    await forbidden.close();
    await good.close();
  });

  for (const testCase of CASES) {
    const statuses = Array.isArray(testCase.status) ? testCase.status : [testCase.status];
    it(`${statuses.join('/')} for ${testCase.name}, naming ${JSON.stringify(testCase.mentions)}, changing nothing`, async () => {
      const destination = forbidden.url('/never');
      const before = await snapshot();
      const res = await courier.api(testCase.path(destination), {
        method: testCase.method ?? 'POST',
        headers: testCase.headers,
        body: typeof testCase.body === 'function' ? testCase.body(destination) : testCase.body,
      });
      const text = await res.text();
      assert.ok(statuses.includes(res.status), `status ${res.status} for ${testCase.name}: ${text}`);
      assert.equal(res.headers.get('content-type'), 'application/json');
      const body = JSON.parse(text) as { error?: unknown };
      assert.equal(typeof body.error, 'string', `an {"error"} body: ${text}`);
      assert.ok(
        (body.error as string).toLowerCase().includes(testCase.mentions.toLowerCase()),
        `error ${JSON.stringify(body.error)} should mention ${JSON.stringify(testCase.mentions)}`,
      );
      assert.deepEqual(await snapshot(), before, 'nothing was stored or changed');
    });
  }

  it('called none of the destinations of the rejected requests', async () => {
    await sleep(200);
    assert.equal(forbidden.arrivals.length, 0, `arrivals: ${forbidden.arrivals.map((a) => a.path).join(', ')}`);
  });

  it('kept the pending message and the DLQ entry through every bulk request with a bad filter', async () => {
    const message = await courier.api(`/v2/messages/${sentinelMessageId}`);
    assert.equal(message.status, 200);
    await message.arrayBuffer();
    const entry = await courier.api(`/v2/dlq/${sentinelDlqId}`);
    assert.equal(entry.status, 200);
    await entry.arrayBuffer();
  });

  const RAW_CASES: { name: string; bytes: () => string; status: number }[] = [
    { name: 'a garbage request line', bytes: () => 'GARBAGE\r\n\r\n', status: 400 },
    { name: 'an unknown method', bytes: () => 'FROB /health HTTP/1.1\r\nHost: x\r\n\r\n', status: 400 },
    { name: 'a header line without a colon', bytes: () => 'GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n', status: 400 },
    {
      name: 'headers over 64 KiB',
      bytes: () => `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(66 * 1024)}\r\n\r\n`,
      status: 431,
    },
    { name: 'a non-numeric Content-Length', bytes: () => 'POST /v2/batch HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', status: 400 },
    {
      name: 'both Content-Length and chunked Transfer-Encoding',
      bytes: () => 'POST /v2/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      status: 400,
    },
  ];

  for (const raw of RAW_CASES) {
    it(`answers ${raw.name} the HTTP parser rejects with a JSON ${raw.status}, and keeps serving`, async () => {
      const before = await snapshot();
      const answer = parseRawResponse(await rawExchange(courier.server.port, raw.bytes()));
      assert.equal(answer.status, raw.status);
      assert.equal(answer.headers.get('content-type'), 'application/json');
      const body = JSON.parse(answer.body) as { error?: unknown };
      assert.equal(typeof body.error, 'string');
      const health = await fetch(`${courier.url}/health`);
      assert.equal(health.status, 200);
      assert.equal(await health.text(), 'OK');
      assert.deepEqual(await snapshot(), before);
    });
  }

  it('still accepts and delivers a normal publish after all of the above', async () => {
    const res = await courier.api(`/v2/publish/${good.url('/after')}`, { method: 'POST', body: 'still alive' });
    assert.equal(res.status, 200);
    const { messageId } = (await res.json()) as { messageId: string };
    const arrival = await eventually(() => good.arrivals.find((a) => a.path === '/after'), 10_000, 'the good delivery');
    assert.equal(arrival.body.toString(), 'still alive');
    assert.equal(arrival.headers['upstash-message-id'], messageId);
  });
});
