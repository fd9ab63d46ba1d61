/**
 * A hostile client's inputs (issue 11): every row is a request that must be a
 * 400 INVALID_REQUEST naming the field at fault, on every store alike, and
 * must change nothing: no log event, DLQ entry, URL group, schedule, queue or
 * instance appears, and the destination the rows point at is never called.
 *
 * - URLs that do not survive WHATWG parsing as given (CR, LF, NUL, a space,
 *   `\`, an empty host) in every place a URL enters.
 * - Forwarded header names and values that could never be sent (batch).
 * - Numbers out of any store's range, and NUL in text that reaches a store.
 * - JSON bodies of the wrong type (`null`, a number, a string, an array).
 *
 * Requests fetch would refuse or rewrite go over a raw socket (helpers/raw-http.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually, sleep, startDestination, type Destination } from '../helpers/destination.js';
import { rawRequest } from '../helpers/raw-http.js';

interface Case {
  name: string;
  method?: string;
  /** The request target, built from the origin of the destination that must never be called. */
  target: (origin: string) => string;
  headers?: Record<string, string>;
  body?: (origin: string) => string;
  /** The error text must name this field. */
  field: string;
  /** Send with fetch instead of a raw socket (the target is plain). */
  viaFetch?: true;
}

const json = { 'Content-Type': 'application/json' };
const CRLF_INJECTION = 'a\r\nX-Injected: 1';

function batch(name: string, items: (origin: string) => unknown[], field: string): Case {
  return { name: `batch: ${name}`, target: () => '/v2/batch', headers: json, body: (o) => JSON.stringify(items(o)), field, viaFetch: true };
}

/** A fully percent-encoded destination (`http%3A%2F%2F…`) is decoded once; what it decodes to is checked like any other. */
const encoded = (url: string) => encodeURIComponent(url);

const URL_CASES: Case[] = [
  { name: 'publish to http:///x (an empty host)', target: () => '/v2/publish/http:///x', field: 'destination' },
  { name: 'publish to https:///x', target: () => '/v2/publish/https:///x', field: 'destination' },
  { name: 'publish with a backslash (read as /)', target: (o) => `/v2/publish/${o}\\evil`, field: 'destination' },
  { name: 'publish, encoded CR LF', target: (o) => `/v2/publish/${encoded(`${o}/a\r\nX-Injected: 1`)}`, field: 'destination' },
  { name: 'publish, encoded NUL', target: (o) => `/v2/publish/${encoded(`${o}/a\0b`)}`, field: 'destination' },
  { name: 'publish, encoded space', target: (o) => `/v2/publish/${encoded(`${o}/a b`)}`, field: 'destination' },
  { name: 'enqueue to http:///x', target: () => '/v2/enqueue/hostile-q/http:///x', field: 'destination' },
  { name: 'enqueue, encoded LF', target: (o) => `/v2/enqueue/hostile-q/${encoded(`${o}/a\nb`)}`, field: 'destination' },
  {
    name: 'schedule to http:///x',
    target: () => '/v2/schedules/http:///x',
    headers: { 'Upstash-Cron': '* * * * *' },
    field: 'destination',
  },
  {
    name: 'schedule, encoded CR',
    target: (o) => `/v2/schedules/${encoded(`${o}/a\rb`)}`,
    headers: { 'Upstash-Cron': '* * * * *' },
    field: 'destination',
  },
  { name: 'Upstash-Callback with a space', target: (o) => `/v2/publish/${o}/never`, headers: { 'Upstash-Callback': 'http://127.0.0.1:9/a b' }, field: 'Upstash-Callback' },
  { name: 'Upstash-Callback to http:///x', target: (o) => `/v2/publish/${o}/never`, headers: { 'Upstash-Callback': 'http:///x' }, field: 'Upstash-Callback' },
  {
    name: 'Upstash-Failure-Callback with a backslash',
    target: (o) => `/v2/publish/${o}/never`,
    headers: { 'Upstash-Failure-Callback': 'http://127.0.0.1:9\\x' },
    field: 'Upstash-Failure-Callback',
  },
  batch('a destination with a space', (o) => [{ destination: `${o}/a b` }], '[0].destination'),
  batch('a destination with CR LF', (o) => [{ destination: `${o}/ok` }, { destination: `${o}/a\r\nb` }], '[1].destination'),
  batch('a destination with NUL', (o) => [{ destination: `${o}/a\0b` }], '[0].destination'),
  batch('a destination with a tab', (o) => [{ destination: `${o}/a\tb` }], '[0].destination'),
  batch('a destination with a leading space', (o) => [{ destination: ` ${o}/a` }], '[0].destination'),
  batch('destination http:///x', () => [{ destination: 'http:///x' }], '[0].destination'),
  batch('a callback with LF', (o) => [{ destination: `${o}/a`, headers: { 'Upstash-Callback': `${o}/cb\n` } }], '[0].headers.Upstash-Callback'),
  {
    name: 'URL-group endpoint with a space',
    target: () => '/v2/topics/hostile-group/endpoints',
    headers: json,
    body: (o) => JSON.stringify({ endpoints: [{ url: `${o}/a b` }] }),
    field: 'endpoints[0].url',
    viaFetch: true,
  },
  {
    name: 'URL-group endpoint http:///x (the second)',
    target: () => '/v2/topics/hostile-group/endpoints',
    headers: json,
    body: (o) => JSON.stringify({ endpoints: [{ url: `${o}/fine` }, { url: 'http:///x' }] }),
    field: 'endpoints[1].url',
    viaFetch: true,
  },
  {
    name: 'URL-group endpoint with NUL',
    target: () => '/v2/topics/hostile-group/endpoints',
    headers: json,
    body: (o) => JSON.stringify({ endpoints: [{ url: `${o}/a\0` }] }),
    field: 'endpoints[0].url',
    viaFetch: true,
  },
  {
    name: 'instance heartbeat url http:///x',
    target: () => '/v1/instances/heartbeat',
    headers: json,
    body: () => JSON.stringify({ group: 'hostile', id: 'i1', url: 'http:///x' }),
    field: 'url',
    viaFetch: true,
  },
  {
    name: 'instance heartbeat url with CR LF',
    target: () => '/v1/instances/heartbeat',
    headers: json,
    body: (o) => JSON.stringify({ group: 'hostile', id: 'i1', url: `${o}/\r\n` }),
    field: 'url',
    viaFetch: true,
  },
];

const HEADER_CASES: Case[] = [
  batch('a header value with CR LF', (o) => [{ destination: `${o}/a`, headers: { 'X-Evil': CRLF_INJECTION } }], '[0].headers.X-Evil'),
  batch(
    'a CR LF value forwarded by Upstash-Header-Forward',
    (o) => [{ destination: `${o}/a` }, { destination: `${o}/a`, headers: { 'Upstash-Header-Forward': 'true', 'X-Evil': CRLF_INJECTION } }],
    '[1].headers.X-Evil',
  ),
  batch('a header name with a space', (o) => [{ destination: `${o}/a`, headers: { 'X Evil': '1' } }], '[0].headers.X evil'),
  batch('a forwarded header name with a colon', (o) => [{ destination: `${o}/a`, headers: { 'Upstash-Forward-X:Y': '1' } }], '[0].headers.Upstash-Forward-X:y'),
  batch('a forwarded value with NUL', (o) => [{ destination: `${o}/a`, headers: { 'Upstash-Forward-X-Evil': 'a\0b' } }], '[0].headers.Upstash-Forward-X-Evil'),
  batch('a deduplication id with NUL', (o) => [{ destination: `${o}/a`, headers: { 'Upstash-Deduplication-Id': 'a\0b' } }], '[0].headers.Upstash-Deduplication-Id'),
  batch('a callback-forwarded value with LF', (o) => [
    { destination: `${o}/a`, headers: { 'Upstash-Callback': `${o}/cb`, 'Upstash-Callback-Forward-X': 'a\nb' } },
  ], '[0].headers.Upstash-Callback-Forward-X'),
];

const BIG = '99999999999999999999';
const NUMBER_AND_NUL_CASES: Case[] = [
  ...(
    [
      ['GET', `/v2/events?fromDate=${BIG}`, 'fromDate'],
      ['GET', '/v2/events?fromDate=1e24', 'fromDate'],
      ['GET', `/v2/events?toDate=${BIG}`, 'toDate'],
      ['GET', '/v2/events?toDate=253402300800000', 'toDate'],
      ['GET', `/v2/logs?fromDate=${BIG}`, 'fromDate'],
      ['GET', `/v2/dlq?fromDate=${BIG}`, 'fromDate'],
      ['DELETE', `/v2/messages?toDate=${BIG}`, 'toDate'],
      ['DELETE', `/v2/dlq?fromDate=${BIG}`, 'fromDate'],
      ['POST', `/v2/dlq/retry?toDate=${BIG}`, 'toDate'],
      ['GET', `/v2/events?count=${BIG}`, 'count'],
      ['GET', `/v2/dlq?cursor=${BIG}`, 'cursor'],
      ['GET', '/v2/dlq?responseStatus=99999999999', 'responseStatus'],
      ['GET', '/v2/messages/%00', 'messageId'],
      ['DELETE', '/v2/messages/msg_%00', 'messageId'],
      ['GET', '/v2/dlq/%00', 'dlqId'],
      ['DELETE', '/v2/dlq/1-0%00', 'dlqId'],
      ['POST', '/v2/dlq/retry/%00', 'dlqId'],
      ['GET', '/v2/events?messageId=%00', 'messageId'],
      ['GET', '/v2/events?url=http%3A%2F%2Fx%2F%00', 'url'],
      ['GET', '/v2/events?label=%00', 'label'],
      ['GET', '/v2/dlq?queueName=%00', 'queueName'],
      ['DELETE', '/v2/messages?messageIds=%00', 'messageIds'],
      ['DELETE', '/v2/dlq?dlqIds=%00', 'dlqIds'],
      ['GET', '/v2/queues/%00', 'queue'],
      ['GET', '/v2/schedules/%00', 'scheduleId'],
    ] as const
  ).map(([method, target, field]): Case => ({ name: `${method} ${target}`, method, target: () => target, field, viaFetch: true })),
  {
    name: 'DELETE /v2/dlq with a NUL id in the legacy body',
    method: 'DELETE',
    target: () => '/v2/dlq',
    headers: json,
    body: () => JSON.stringify({ dlqIds: ['\0'] }),
    field: 'dlqIds',
    viaFetch: true,
  },
  {
    name: 'DELETE /v2/messages with a NUL id in the legacy body',
    method: 'DELETE',
    target: () => '/v2/messages',
    headers: json,
    body: () => JSON.stringify({ messageIds: ['msg_\0'] }),
    field: 'messageIds',
    viaFetch: true,
  },
  {
    name: 'removing a URL-group endpoint by a NUL url',
    method: 'DELETE',
    target: () => '/v2/topics/hostile-group/endpoints',
    headers: json,
    body: () => JSON.stringify({ endpoints: [{ url: 'http://x/\0' }] }),
    field: 'endpoints[0].url',
    viaFetch: true,
  },
  {
    name: 'instance heartbeat with a NUL hostname',
    target: () => '/v1/instances/heartbeat',
    headers: json,
    body: (o) => JSON.stringify({ group: 'hostile', id: 'i1', url: `${o}/`, hostname: 'a\0b' }),
    field: 'hostname',
    viaFetch: true,
  },
];

/** Every endpoint that reads a JSON object, given what is not one. */
const WRONG_JSON = ['null', '5', '"x"', '[]'];
const JSON_ENDPOINTS: [method: string, target: string][] = [
  ['DELETE', '/v2/dlq'],
  ['POST', '/v2/dlq/retry'],
  ['DELETE', '/v2/messages'],
  ['POST', '/v2/queues'],
  ['POST', '/v2/topics/hostile-group/endpoints'],
  ['DELETE', '/v2/topics/hostile-group/endpoints'],
  ['POST', '/v1/instances/heartbeat'],
  ['PUT', '/v1/instance-groups/hostile'],
  ['POST', '/v1/work-keys/hostile/k1/claim'],
];
const JSON_CASES: Case[] = [
  ...JSON_ENDPOINTS.flatMap(([method, target]) =>
    WRONG_JSON.map((body): Case => ({ name: `${method} ${target} with ${body}`, method, target: () => target, headers: json, body: () => body, field: 'body', viaFetch: true })),
  ),
  // The batch takes an array, so anything else is the wrong type; an empty one is refused too.
  ...WRONG_JSON.map((body) => batch(`a body of ${body}`, () => JSON.parse(body) as unknown[], 'body')),
  batch('an item of null', () => [null], '[0]'),
];

describe('hostile input', () => {
  let courier: TestCourier;
  /** Every row points here; it must never be called. */
  let forbidden: Destination;
  let good: Destination;

  async function list(path: string, key?: string): Promise<number> {
    const res = await courier.api(path);
    assert.equal(res.status, 200, `${path}: ${res.status}`);
    const body = (await res.json()) as Record<string, unknown[]> | unknown[];
    const items = key === undefined ? body : (body as Record<string, unknown[]>)[key];
    assert.ok(Array.isArray(items), `${path} lists ${key ?? 'items'}`);
    return items.length;
  }

  /** Everything a rejected request could have written. */
  async function snapshot(): Promise<Record<string, number>> {
    return {
      events: await list('/v2/events?count=1000', 'events'),
      dlq: await list('/v2/dlq', 'messages'),
      urlGroups: await list('/v2/topics'),
      schedules: await list('/v2/schedules'),
      queues: await list('/v2/queues'),
      instances: await list('/v1/instances'),
    };
  }

  before(async () => {
    courier = await startTestCourier();
    forbidden = await startDestination(() => ({ status: 200 }));
    good = await startDestination(() => ({ status: 500 }));
    // A DLQ entry, so that a bulk DLQ request taken wrongly would visibly change something.
    const failing = await courier.api(`/v2/publish/${good.url('/fail')}`, { method: 'POST', headers: { 'Upstash-Retries': '0' }, body: 'f' });
    assert.equal(failing.status, 200);
    await failing.arrayBuffer();
    await eventually(async () => ((await list('/v2/dlq', 'messages')) === 1 ? true : undefined), 10_000, 'the sentinel DLQ entry');
    // The log count must be settled before the rows compare it.
    let last = -1;
    await eventually(async () => {
      const now = await list('/v2/events?count=1000', 'events');
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

  async function send(testCase: Case): Promise<{ status: number; contentType: string | undefined; text: string }> {
    const target = testCase.target(forbidden.origin);
    const body = testCase.body?.(forbidden.origin);
    if (testCase.viaFetch) {
      const res = await courier.api(target, { method: testCase.method ?? 'POST', headers: testCase.headers ?? {}, ...(body === undefined ? {} : { body }) });
      return { status: res.status, contentType: res.headers.get('content-type') ?? undefined, text: await res.text() };
    }
    const res = await rawRequest(courier.server.port, {
      method: testCase.method ?? 'POST',
      target,
      headers: { Authorization: `Bearer ${courier.token}`, ...testCase.headers },
      ...(body === undefined ? {} : { body }),
    });
    return { status: res.status, contentType: res.headers['content-type'], text: res.body };
  }

  const groups: [string, Case[]][] = [
    ['URLs', URL_CASES],
    ['forwarded headers', HEADER_CASES],
    ['numbers and NUL', NUMBER_AND_NUL_CASES],
    ['JSON of the wrong type', JSON_CASES],
  ];
  for (const [group, cases] of groups) {
    describe(group, () => {
      for (const testCase of cases) {
        it(`400 INVALID_REQUEST for ${testCase.name}, naming ${testCase.field}, storing nothing`, async () => {
          const before = await snapshot();
          const { status, contentType, text } = await send(testCase);
          assert.equal(status, 400, `status for ${testCase.name}: ${text}`);
          assert.equal(contentType, 'application/json');
          const reply = JSON.parse(text) as { error?: unknown; code?: unknown };
          assert.equal(reply.code, 'INVALID_REQUEST', text);
          assert.equal(typeof reply.error, 'string', text);
          assert.ok(
            (reply.error as string).toLowerCase().includes(testCase.field.toLowerCase()),
            `error ${JSON.stringify(reply.error)} should name ${JSON.stringify(testCase.field)}`,
          );
          assert.deepEqual(await snapshot(), before, 'nothing was stored or changed');
        });
      }
    });
  }

  it('called the destination of none of the rejected requests', async () => {
    await sleep(200);
    assert.deepEqual(forbidden.arrivals.map((arrival) => arrival.path), []);
  });
});
