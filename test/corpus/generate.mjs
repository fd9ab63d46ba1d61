#!/usr/bin/env node
/**
 * Writes test/corpus/malformed-requests.json: the corpus of malformed requests
 * test/integration/malformed-corpus.test.ts replays against a running Courier
 * on every store (issue 11, "Hardening"). The test reads the committed JSON,
 * never this script: regenerate with `node test/corpus/generate.mjs` and
 * commit both; `--check` fails when the committed file is stale.
 *
 * An entry is one request on a fresh connection:
 *
 *   { name, category, auth, raw }                  bytes sent as they are
 *   { name, category, auth, method, path,          built by the test into
 *     headers?, body? | bodyGen?, chunked?,        `METHOD path HTTP/1.1`,
 *     expect? }                                    Host, then these headers
 *
 * - `raw` and `path` are latin1: each character is one byte (`\r\n`, `\u0000`
 *   and `\u00ff` travel as those bytes). `body` is UTF-8.
 * - Placeholders, replaced by the test: `{{TOKEN}}` the API token, `{{HOST}}`
 *   Courier's `127.0.0.1:<port>`, `{{DEST}}` the URL of a destination that
 *   must never be called, `{{DEST_PORT}}` its port, `{{TOKEN_PREFIX}}` the
 *   token without its last character, `{{TOKEN_BASIC}}` base64 of
 *   `user:<token>`, `{{REPEAT c N}}` the character c N times (long paths and
 *   header values without long lines here).
 * - `auth: true` on a built entry adds `Authorization: Bearer {{TOKEN}}`
 *   (unless its headers set Authorization); on a raw entry it only records
 *   that the bytes carry the token.
 * - `bodyGen` builds a big body from a compact description, so this file
 *   stays small: `{ nest: N, open, close, core?, prefix?, suffix? }`
 *   is prefix + open×N + core + close×N + suffix; `{ repeat, times, prefix?, suffix? }`
 *   is prefix + repeat×times + suffix. `chunked: true` sends the body with
 *   `Transfer-Encoding: chunked` in 64 KiB chunks instead of Content-Length.
 * - `expect`: absent means the request must be rejected (a 4xx JSON error
 *   with a string `code` and `error`); `"accepted"` marks the few valid
 *   variants kept beside their malformed neighbours (RFC 9110 §11.1: the
 *   auth scheme is case-insensitive, so `bearer <token>` is a valid login).
 *   Every entry, accepted or not, must store nothing and call no destination.
 *
 * Framing that RFC 9112 lets a server either reject or tolerate (LF-only
 * lines, obs-fold, identical duplicate Content-Lengths) is sent with a body
 * that is itself invalid, so either way the answer is a 4xx JSON error; a
 * smuggled second request always publishes to {{DEST}}, so a server that
 * runs it fails the "destination received nothing" check.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const OUT = join(dirname(fileURLToPath(import.meta.url)), 'malformed-requests.json');
const entries = [];
const add = (entry) => entries.push({ auth: true, ...entry });
const JSON_TYPE = { 'Content-Type': 'application/json' };
const json = (value) => JSON.stringify(value);

// ---------------------------------------------------------------------------
// The JSON endpoints: a valid body for each, so a wrong field type is the
// request's only fault. Field types list what the schema accepts.
const ENDPOINTS = [
  {
    id: 'queue upsert',
    method: 'POST',
    path: '/v2/queues',
    base: { queueName: 'corpus-q', parallelism: 1, paused: false },
    fields: { queueName: ['string'], parallelism: ['number'], paused: ['boolean'] },
    emptyObjectInvalid: true,
  },
  {
    id: 'batch',
    method: 'POST',
    path: '/v2/batch',
    base: [{ destination: '{{DEST}}', body: 'x' }],
    emptyObjectInvalid: true,
  },
  {
    id: 'url-group add',
    method: 'POST',
    path: '/v2/topics/corpus-group/endpoints',
    base: { endpoints: [{ name: 'e1', url: '{{DEST}}' }] },
    fields: { endpoints: ['array'] },
    emptyObjectInvalid: true,
  },
  {
    id: 'url-group remove',
    method: 'DELETE',
    path: '/v2/topics/corpus-group/endpoints',
    base: { endpoints: [{ name: 'e1' }] },
    fields: { endpoints: ['array'] },
    emptyObjectInvalid: true,
  },
  {
    id: 'legacy bulk cancel',
    method: 'DELETE',
    path: '/v2/messages',
    base: { messageIds: ['msg_corpus'] },
    // A number is accepted on purpose (the legacy body's ids may be numbers); `{}` means "cancel all".
    fields: { messageIds: ['array', 'string', 'number'] },
    emptyObjectInvalid: false,
  },
  {
    id: 'DLQ bulk delete',
    method: 'DELETE',
    path: '/v2/dlq',
    base: { dlqIds: ['1-0'] },
    fields: { dlqIds: ['array'] },
    emptyObjectInvalid: true,
  },
  {
    id: 'DLQ bulk retry',
    method: 'POST',
    path: '/v2/dlq/retry',
    base: { dlqIds: ['1-0'] },
    fields: { dlqIds: ['array'] },
    emptyObjectInvalid: true,
  },
  {
    id: 'instance heartbeat',
    method: 'POST',
    path: '/v1/instances/heartbeat',
    base: { group: 'corpus-grp', id: 'i1', url: '{{DEST}}' },
    fields: {
      group: ['string'],
      id: ['string'],
      url: ['string'],
      hostname: ['string'],
      region: ['string'],
      status: ['string'],
      startedAt: ['number'],
      weight: ['number'],
      priority: ['number'],
      capabilities: ['array'],
      maxInFlight: ['number'],
    },
    emptyObjectInvalid: true,
  },
  {
    id: 'instance-group settings',
    method: 'PUT',
    path: '/v1/instance-groups/corpus-grp',
    base: {},
    fields: {
      strategy: ['string'],
      regionAffinity: ['boolean'],
      heartbeatIntervalSeconds: ['number'],
      staleAfterSeconds: ['number'],
      slowStartSeconds: ['number'],
      panicThresholdPercent: ['number'],
      outlier: ['object'],
      healthCheck: ['object', 'null'],
      registrationSecret: ['string', 'null'],
    },
    // `{}` is a valid (empty) settings patch.
    emptyObjectInvalid: false,
  },
  {
    id: 'work-key claim',
    method: 'POST',
    path: '/v1/work-keys/corpus-scope/k1/claim',
    base: { ttlSeconds: 30 },
    fields: { ttlSeconds: ['number'] },
    emptyObjectInvalid: true,
  },
];

const WRONG = { null: null, number: 1, string: 's', array: [], object: {}, boolean: true };
const typeOf = (value) => (value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value);

// Top-level bodies that are valid JSON of the wrong type, then bodies that are not JSON.
const TOP_LEVEL = [null, 0, 1, -1, 1.5, 's', '', '{}', [], [null], [1], true, false];
const NOT_JSON = ['{', '}', 'nul', 'tru', '{"a":1,}', "{'a':1}", 'NaN', 'undefined', '\ufeff{}', '{} x', '[]]', '{"a" 1}', '"\\u00"'];

for (const endpoint of ENDPOINTS) {
  const cat = 'wrong-json-types';
  for (const value of TOP_LEVEL) {
    // The batch body must be an array: `[]` (empty) and `[null]`/`[1]` (items not objects) are still invalid.
    add({ name: `${endpoint.id}: body ${json(value)}`, category: cat, method: endpoint.method, path: endpoint.path, headers: JSON_TYPE, body: json(value) });
  }
  if (endpoint.emptyObjectInvalid) {
    add({ name: `${endpoint.id}: body {}`, category: cat, method: endpoint.method, path: endpoint.path, headers: JSON_TYPE, body: '{}' });
  }
  for (const text of NOT_JSON) {
    add({ name: `${endpoint.id}: body not JSON ${json(text)}`, category: cat, method: endpoint.method, path: endpoint.path, headers: JSON_TYPE, body: text });
  }
  for (const [field, accepted] of Object.entries(endpoint.fields ?? {})) {
    for (const [kind, value] of Object.entries(WRONG)) {
      if (accepted.includes(kind)) continue;
      add({
        name: `${endpoint.id}: ${field} ${kind} ${json(value)}`,
        category: cat,
        method: endpoint.method,
        path: endpoint.path,
        headers: JSON_TYPE,
        body: json({ ...endpoint.base, [field]: value }),
      });
    }
  }
}

// Values of the right JSON type that are still out of range or malformed.
const QUEUE = ENDPOINTS[0];
for (const [field, value] of [
  ['parallelism', 0],
  ['parallelism', -1],
  ['parallelism', 1.5],
  ['parallelism', 99999999999999999999],
  ['queueName', ''],
  ['queueName', 'a b'],
  ['queueName', 'a/b'],
  ['queueName', 'a\u0000b'],
  ['queueName', 'x'.repeat(129)], // 129 characters: one over the limit
]) {
  add({ name: `queue upsert: ${field} ${json(value).slice(0, 40)}`, category: 'wrong-json-types', method: 'POST', path: QUEUE.path, headers: JSON_TYPE, body: json({ ...QUEUE.base, [field]: value }) });
}
// `1e309` is valid JSON text that parses to Infinity.
add({ name: 'queue upsert: parallelism 1e309', category: 'wrong-json-types', method: 'POST', path: '/v2/queues', headers: JSON_TYPE, body: '{"queueName":"corpus-q","parallelism":1e309}' });

// Batch items: the item itself, each field, and the header values.
const ITEM = { destination: '{{DEST}}', body: 'x' };
for (const [kind, value] of Object.entries(WRONG)) {
  if (kind !== 'object') add({ name: `batch: item ${kind} ${json(value)}`, category: 'wrong-json-types', method: 'POST', path: '/v2/batch', headers: JSON_TYPE, body: json([ITEM, value]) });
}
for (const [field, accepted] of Object.entries({ destination: ['string'], headers: ['object'], body: ['string'], queue: ['string'] })) {
  for (const [kind, value] of Object.entries(WRONG)) {
    if (accepted.includes(kind)) continue;
    add({ name: `batch: item ${field} ${kind} ${json(value)}`, category: 'wrong-json-types', method: 'POST', path: '/v2/batch', headers: JSON_TYPE, body: json([{ ...ITEM, [field]: value }]) });
  }
}
for (const header of ['upstash-method', 'upstash-retries', 'upstash-delay', 'upstash-forward-x-corpus', 'content-type']) {
  for (const [kind, value] of Object.entries(WRONG)) {
    if (kind === 'string') continue;
    add({
      name: `batch: item header ${header} ${kind} ${json(value)}`,
      category: 'wrong-json-types',
      method: 'POST',
      path: '/v2/batch',
      headers: JSON_TYPE,
      body: json([{ ...ITEM, headers: { [header]: value } }]),
    });
  }
}
// Batch item headers the single publish refuses (bad-input.test.ts) must be refused in a batch too.
for (const [header, value] of [
  ['Upstash-Forward-Host', 'evil.example'],
  ['Upstash-Forward-Content-Length', '5'],
  ['Upstash-Forward-Transfer-Encoding', 'chunked'],
  ['Upstash-Method', 'FOO'],
  ['Upstash-Delay', '-1s'],
  ['Upstash-Retries', '-1'],
  ['Upstash-Timeout', 'abc'],
  ['Upstash-Not-Before', 'soon'],
  ['Upstash-Retry-Delay', 'process.exit()'],
  ['Upstash-Label', 'has spaces'],
  ['Upstash-Redact-Fields', 'bogus'],
  ['Upstash-Flow-Control-Value', 'parallelism=abc'],
]) {
  add({ name: `batch: item header ${header}: ${value}`, category: 'wrong-json-types', method: 'POST', path: '/v2/batch', headers: JSON_TYPE, body: json([{ ...ITEM, headers: { [header]: value } }]) });
}

// URL-group endpoint items.
for (const id of ['url-group add', 'url-group remove']) {
  const endpoint = ENDPOINTS.find((e) => e.id === id);
  const item = endpoint.base.endpoints[0];
  for (const [kind, value] of Object.entries(WRONG)) {
    if (kind !== 'object') add({ name: `${id}: endpoints[0] ${kind} ${json(value)}`, category: 'wrong-json-types', method: endpoint.method, path: endpoint.path, headers: JSON_TYPE, body: json({ endpoints: [value] }) });
  }
  for (const field of ['name', 'url']) {
    for (const [kind, value] of Object.entries(WRONG)) {
      if (kind === 'string') continue;
      add({
        name: `${id}: endpoints[0].${field} ${kind} ${json(value)}`,
        category: 'wrong-json-types',
        method: endpoint.method,
        path: endpoint.path,
        headers: JSON_TYPE,
        body: json({ endpoints: [{ ...item, [field]: value }] }),
      });
    }
  }
}
for (const url of ['', 'ftp://127.0.0.1/x', 'not a url', 'http://']) {
  add({ name: `url-group add: endpoint url ${json(url)}`, category: 'wrong-json-types', method: 'POST', path: '/v2/topics/corpus-group/endpoints', headers: JSON_TYPE, body: json({ endpoints: [{ url }] }) });
}

// Id lists whose items are of the wrong type (DLQ bulk bodies, the legacy cancel body).
for (const [id, field] of [
  ['DLQ bulk delete', 'dlqIds'],
  ['DLQ bulk retry', 'dlqIds'],
  ['legacy bulk cancel', 'messageIds'],
]) {
  const endpoint = ENDPOINTS.find((e) => e.id === id);
  for (const list of [[null], [{}], [[]], [true], ...(field === 'dlqIds' ? [[1]] : [])]) {
    add({ name: `${id}: ${field} ${json(list)}`, category: 'wrong-json-types', method: endpoint.method, path: endpoint.path, headers: JSON_TYPE, body: json({ [field]: list }) });
  }
}
for (const [field, value] of [
  ['url', {}],
  ['fromDate', true],
  ['fromDate', {}],
  ['queueName', [null]],
  ['bogus', 'x'],
]) {
  add({ name: `legacy bulk cancel: filter ${field} ${json(value)}`, category: 'wrong-json-types', method: 'DELETE', path: '/v2/messages', headers: JSON_TYPE, body: json({ [field]: value }) });
}

// Schedules: the body is raw bytes (any JSON is a valid payload), so the faults are in the cron header.
for (const body of ['null', '1', '"s"', '[]']) {
  add({ name: `schedule create: body ${body} without Upstash-Cron`, category: 'wrong-json-types', method: 'POST', path: '/v2/schedules/{{DEST}}', headers: JSON_TYPE, body });
}
for (const cron of ['null', '1', '[]', '{}', 'true', '* * *', '* * * * * * *', '60 * * * *', '* 24 * * *', '*/0 * * * *', 'CRON_TZ=Mars/Olympus * * * * *', 'CRON_TZ= * * * * *']) {
  add({ name: `schedule create: Upstash-Cron ${json(cron)}`, category: 'wrong-json-types', method: 'POST', path: '/v2/schedules/{{DEST}}', headers: { ...JSON_TYPE, 'Upstash-Cron': cron }, body: '{}' });
}

// ---------------------------------------------------------------------------
// Bad percent-encoding in paths (every route with a parameter) and queries.
const BAD_ENCODINGS = ['%', '%zz', '%0', '%00', '%C0%AF', '%E0%80%AF', '%ED%A0%80', '%FF'];
const PARAM_ROUTES = [
  ['GET', '/v2/messages/X'],
  ['DELETE', '/v2/messages/X'],
  ['GET', '/v2/dlq/X'],
  ['DELETE', '/v2/dlq/X'],
  ['POST', '/v2/dlq/retry/X'],
  ['GET', '/v2/queues/X'],
  ['DELETE', '/v2/queues/X'],
  ['POST', '/v2/queues/X/pause'],
  ['POST', '/v2/queues/X/resume'],
  ['GET', '/v2/schedules/X'],
  ['DELETE', '/v2/schedules/X'],
  ['PATCH', '/v2/schedules/X/pause'],
  ['POST', '/v2/schedules/X/trigger'],
  ['GET', '/v2/schedules/X/runs'],
  ['GET', '/v2/topics/X'],
  ['DELETE', '/v2/topics/X'],
  ['POST', '/v2/topics/X/endpoints', json({ endpoints: [{ url: '{{DEST}}' }] })],
  ['DELETE', '/v2/topics/X/endpoints', json({ endpoints: [{ url: '{{DEST}}' }] })],
  ['GET', '/v2/flowControl/X'],
  ['POST', '/v2/flowControl/X/pause'],
  ['POST', '/v2/flowControl/X/pin?parallelism=1'],
  ['POST', '/v2/enqueue/X/{{DEST}}', 'x'],
  ['GET', '/v1/instance-groups/X'],
  ['PUT', '/v1/instance-groups/X', '{}'],
  ['DELETE', '/v1/instances/X/i1'],
  ['POST', '/v1/work-keys/X/k1/claim', json({ ttlSeconds: 30 })],
  ['POST', '/v1/work-keys/corpus-scope/X/claim', json({ ttlSeconds: 30 })],
  ['DELETE', '/v1/work-keys/corpus-scope/X'],
];
for (const [method, template, body] of PARAM_ROUTES) {
  for (const bad of BAD_ENCODINGS) {
    const path = template.replace('X', `corpus${bad}`);
    add({ name: `${method} ${path}`, category: 'percent-encoding', method, path, ...(body === undefined ? {} : { headers: JSON_TYPE, body }) });
  }
}
// In a destination's host (and so in a URL that cannot be parsed).
for (const bad of BAD_ENCODINGS) {
  for (const prefix of ['/v2/publish/', '/v2/enqueue/corpus-q/', '/v2/schedules/']) {
    const headers = prefix === '/v2/schedules/' ? { 'Upstash-Cron': '* * * * *' } : {};
    add({ name: `POST ${prefix} destination host 127.0.0.1${bad}`, category: 'percent-encoding', method: 'POST', path: `${prefix}http://127.0.0.1${bad}:{{DEST_PORT}}/corpus`, headers, body: 'x' });
  }
}
const QUERY_ROUTES = [
  ['GET', '/v2/events'],
  ['GET', '/v2/logs'],
  ['GET', '/v2/dlq'],
  ['DELETE', '/v2/messages'],
  ['DELETE', '/v2/dlq'],
  ['POST', '/v2/dlq/retry'],
];
for (const [method, path] of QUERY_ROUTES) {
  for (const bad of BAD_ENCODINGS) {
    for (const param of ['label', 'count']) {
      const target = `${path}?${param}=corpus${bad}`;
      add({ name: `${method} ${target}`, category: 'percent-encoding', method, path: target });
    }
  }
}

// ---------------------------------------------------------------------------
// Out-of-range and malformed numbers in queries.
const NUMBERS = ['99999999999999999999', '1e24', '-1', '1.5', 'Infinity', 'NaN', '0x10', '9007199254740993', '1e3', ''];
const NUMBER_PARAMS = [
  ['GET', '/v2/events', ['count', 'fromDate', 'toDate']],
  ['GET', '/v2/logs', ['count', 'fromDate']],
  ['GET', '/v2/dlq', ['count', 'fromDate', 'toDate', 'responseStatus']],
  ['DELETE', '/v2/messages', ['count', 'fromDate', 'toDate']],
  ['DELETE', '/v2/dlq', ['count', 'fromDate']],
  ['POST', '/v2/dlq/retry', ['count', 'toDate']],
  ['POST', '/v2/flowControl/corpus-key/pin', ['parallelism', 'rate', 'period']],
];
for (const [method, path, params] of NUMBER_PARAMS) {
  for (const param of params) {
    const values = param === 'count' ? [...NUMBERS, '0', '-100'] : NUMBERS;
    for (const value of values) {
      const target = `${path}?${param}=${value}`;
      add({ name: `${method} ${target}`, category: 'query-numbers', method, path: target });
    }
  }
}

// ---------------------------------------------------------------------------
// CR, LF, NUL, space and other controls in destinations and forwarded headers.
const CONTROLS = [
  ['CR', '\r'],
  ['LF', '\n'],
  ['CRLF', '\r\n'],
  ['NUL', '\u0000'],
  ['space', ' '],
  ['TAB', '\t'],
  ['DEL', '\u007f'],
  ['SOH', '\u0001'],
];
for (const [label, char] of CONTROLS) {
  // Raw in the request target: the request line itself is broken.
  for (const prefix of ['/v2/publish/', '/v2/schedules/']) {
    add({
      name: `raw ${label} in the request target of ${prefix}`,
      category: 'control-chars',
      raw: `POST ${prefix}http://127.0.0.1:{{DEST_PORT}}/cor${char}pus HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\nUpstash-Cron: * * * * *\r\nContent-Length: 1\r\n\r\nx`,
    });
  }
  // Inside a JSON string, where no HTTP parser stands guard.
  const inPath = `http://127.0.0.1:{{DEST_PORT}}/cor${char}pus`;
  add({ name: `batch: destination with ${label}`, category: 'control-chars', method: 'POST', path: '/v2/batch', headers: JSON_TYPE, body: json([{ destination: inPath }]) });
  add({ name: `url-group add: endpoint url with ${label}`, category: 'control-chars', method: 'POST', path: '/v2/topics/corpus-group/endpoints', headers: JSON_TYPE, body: json({ endpoints: [{ url: inPath }] }) });
  add({ name: `heartbeat: url with ${label}`, category: 'control-chars', method: 'POST', path: '/v1/instances/heartbeat', headers: JSON_TYPE, body: json({ group: 'corpus-grp', id: 'i1', url: inPath }) });
  add({ name: `batch: callback with ${label}`, category: 'control-chars', method: 'POST', path: '/v2/batch', headers: JSON_TYPE, body: json([{ ...ITEM, headers: { 'upstash-callback': inPath } }]) });
  add({ name: `batch: host with ${label}`, category: 'control-chars', method: 'POST', path: '/v2/batch', headers: JSON_TYPE, body: json([{ destination: `http://127.0.0.1${char}:{{DEST_PORT}}/corpus` }]) });
  if (label !== 'space' && label !== 'TAB') {
    // A field value may hold spaces and tabs (RFC 9110 §5.5), never other controls.
    add({ name: `batch: forwarded header value with ${label}`, category: 'control-chars', method: 'POST', path: '/v2/batch', headers: JSON_TYPE, body: json([{ ...ITEM, headers: { 'upstash-forward-x-corpus': `a${char}Injected: 1` } }]) });
  }
  add({ name: `batch: forwarded header name with ${label}`, category: 'control-chars', method: 'POST', path: '/v2/batch', headers: JSON_TYPE, body: json([{ ...ITEM, headers: { [`upstash-forward-x${char}corpus`]: 'v' } }]) });
  // Trailing whitespace (space, TAB, CR, LF) is trimmed on purpose (api/destination.ts); other controls are not whitespace.
  if (!/^\s$|^\r\n$/.test(char)) {
    add({ name: `batch: destination ending in ${label}`, category: 'control-chars', method: 'POST', path: '/v2/batch', headers: JSON_TYPE, body: json([{ destination: `{{DEST}}${char}` }]) });
  }
}
for (const [label, name] of [
  ['empty', 'upstash-forward-'],
  ['colon', 'upstash-forward-x:corpus'],
  ['parenthesis', 'upstash-forward-(x)'],
  ['non-ASCII', 'upstash-forward-x\u00e9'],
  ['slash', 'upstash-forward-x/y'],
]) {
  add({ name: `batch: forwarded header name ${label} ${json(name)}`, category: 'control-chars', method: 'POST', path: '/v2/batch', headers: JSON_TYPE, body: json([{ ...ITEM, headers: { [name]: 'v' } }]) });
}
// Raw header lines of a publish: the HTTP parser's guard.
for (const [label, line] of [
  ['NUL in a forwarded value', 'Upstash-Forward-X-Corpus: a\u0000b'],
  ['CR in a forwarded value', 'Upstash-Forward-X-Corpus: a\rb'],
  ['SOH in a forwarded value', 'Upstash-Forward-X-Corpus: a\u0001b'],
  ['DEL in a forwarded value', 'Upstash-Forward-X-Corpus: a\u007fb'],
  ['space in a forwarded name', 'Upstash-Forward-X Corpus: v'],
  ['NUL in a forwarded name', 'Upstash-Forward-X\u0000Corpus: v'],
  ['empty forwarded name', 'Upstash-Forward-: v'],
  ['non-token forwarded name', 'Upstash-Forward-(x): v'],
]) {
  add({
    name: `publish: raw header with ${label}`,
    category: 'control-chars',
    raw: `POST /v2/publish/{{DEST}} HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\n${line}\r\nContent-Length: 1\r\n\r\nx`,
  });
}

// ---------------------------------------------------------------------------
// Malformed callbacks.
const BAD_CALLBACKS = [
  'not a url',
  'ftp://127.0.0.1/cb',
  'http://',
  'http://user:pw@127.0.0.1:{{DEST_PORT}}/cb',
  'http://127.0.0.1:99999/cb',
  'http://[::1/cb',
  'javascript:alert(1)',
  '//127.0.0.1:{{DEST_PORT}}/cb',
  '/relative/cb',
  'http://127.0.0.1%zz/cb',
  'http://a b/cb',
  'http://127.0.0.1:{{DEST_PORT}}/{{REPEAT c 9000}}',
];
for (const header of ['Upstash-Callback', 'Upstash-Failure-Callback']) {
  for (const value of BAD_CALLBACKS) {
    add({ name: `publish: ${header} ${json(value.slice(0, 60))}`, category: 'callbacks', method: 'POST', path: '/v2/publish/{{DEST}}', headers: { [header]: value }, body: 'x' });
  }
  for (const value of BAD_CALLBACKS.slice(0, 4)) {
    add({ name: `batch: ${header} ${json(value)}`, category: 'callbacks', method: 'POST', path: '/v2/batch', headers: JSON_TYPE, body: json([{ ...ITEM, headers: { [header.toLowerCase()]: value } }]) });
    add({ name: `schedule create: ${header} ${json(value)}`, category: 'callbacks', method: 'POST', path: '/v2/schedules/{{DEST}}', headers: { 'Upstash-Cron': '* * * * *', [header]: value }, body: 'x' });
  }
  for (const [option, value] of [
    ['Method', 'FOO'],
    ['Timeout', 'abc'],
    ['Retries', '-1'],
    ['Delay', 'abc'],
    ['Retry-Delay', 'process.exit()'],
  ]) {
    add({
      name: `publish: ${header}-${option}: ${value}`,
      category: 'callbacks',
      method: 'POST',
      path: '/v2/publish/{{DEST}}',
      headers: { [header]: 'http://127.0.0.1:{{DEST_PORT}}/cb', [`${header}-${option}`]: value },
      body: 'x',
    });
  }
  add({ name: `publish: ${header}-Forward-Host`, category: 'callbacks', method: 'POST', path: '/v2/publish/{{DEST}}', headers: { [header]: 'http://127.0.0.1:{{DEST_PORT}}/cb', [`${header}-Forward-Host`]: 'evil.example' }, body: 'x' });
  add({ name: `publish: ${header}-Retries without ${header}`, category: 'callbacks', method: 'POST', path: '/v2/publish/{{DEST}}', headers: { [`${header}-Retries`]: '3' }, body: 'x' });
}

// ---------------------------------------------------------------------------
// Request smuggling and framing. Each smuggled request publishes to {{DEST}}.
const SMUGGLED = 'POST /v2/publish/{{DEST}} HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\nContent-Length: 1\r\n\r\nx';
const head = (method, path, lines) => `${method} ${path} HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;
const BAD_QUEUE = '{"queueName":1}';
const CHUNKED_SMUGGLE = `0\r\n\r\n${SMUGGLED}`;
const smuggling = (name, raw) => add({ name, category: 'smuggling', raw });
smuggling('Content-Length then Transfer-Encoding chunked', head('POST', '/v2/queues', ['Content-Type: application/json', `Content-Length: ${CHUNKED_SMUGGLE.length}`, 'Transfer-Encoding: chunked']) + CHUNKED_SMUGGLE);
smuggling('Transfer-Encoding chunked then Content-Length', head('POST', '/v2/queues', ['Content-Type: application/json', 'Transfer-Encoding: chunked', 'Content-Length: 5']) + CHUNKED_SMUGGLE);
smuggling('Content-Length 0 with Transfer-Encoding chunked', head('POST', '/v2/queues', ['Content-Length: 0', 'Transfer-Encoding: chunked']) + `f\r\n${BAD_QUEUE}\r\n0\r\n\r\n`);
smuggling('duplicate identical Content-Length (invalid body)', head('POST', '/v2/queues', ['Content-Type: application/json', `Content-Length: ${BAD_QUEUE.length}`, `Content-Length: ${BAD_QUEUE.length}`]) + BAD_QUEUE);
smuggling('conflicting Content-Length (short first)', head('POST', '/v2/queues', ['Content-Type: application/json', 'Content-Length: 2', `Content-Length: ${2 + SMUGGLED.length}`]) + `{}${SMUGGLED}`);
smuggling('conflicting Content-Length (long first)', head('POST', '/v2/queues', ['Content-Type: application/json', `Content-Length: ${2 + SMUGGLED.length}`, 'Content-Length: 2']) + `{}${SMUGGLED}`);
smuggling('Content-Length list "2, 40"', head('POST', '/v2/queues', ['Content-Type: application/json', 'Content-Length: 2, 40']) + `{}${SMUGGLED}`);
for (const value of ['-1', '+2', '0x2', '2.0', '2 2', '1e1', '99999999999999999999', '', 'abc']) {
  smuggling(`Content-Length ${json(value)}`, head('POST', '/v2/queues', ['Content-Type: application/json', `Content-Length: ${value}`]) + `{}${SMUGGLED}`);
}
smuggling('Content-Length with a space before the colon', head('POST', '/v2/queues', ['Content-Type: application/json', 'Content-Length : 2']) + `{}${SMUGGLED}`);
smuggling('Transfer-Encoding: chunked, identity', head('POST', '/v2/queues', ['Content-Type: application/json', 'Transfer-Encoding: chunked, identity']) + CHUNKED_SMUGGLE);
smuggling('Transfer-Encoding chunked then identity (two lines)', head('POST', '/v2/queues', ['Content-Type: application/json', 'Transfer-Encoding: chunked', 'Transfer-Encoding: identity']) + CHUNKED_SMUGGLE);
smuggling('Transfer-Encoding: xchunked', head('POST', '/v2/queues', ['Content-Type: application/json', 'Transfer-Encoding: xchunked']) + CHUNKED_SMUGGLE);
smuggling('Transfer-Encoding with a space before the colon', head('POST', '/v2/queues', ['Content-Type: application/json', 'Transfer-Encoding : chunked', 'Content-Length: 2']) + `{}${SMUGGLED}`);
smuggling('Transfer-Encoding with a vertical tab', head('POST', '/v2/queues', ['Content-Type: application/json', 'Transfer-Encoding:\u000bchunked']) + CHUNKED_SMUGGLE);
smuggling('Transfer-Encoding: CHUNKED (invalid body)', head('POST', '/v2/queues', ['Content-Type: application/json', 'Transfer-Encoding: CHUNKED']) + `f\r\n${BAD_QUEUE}\r\n0\r\n\r\n`);
smuggling(
  'Transfer-Encoding chunked on HTTP/1.0 with Content-Length',
  `POST /v2/queues HTTP/1.0\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: ${CHUNKED_SMUGGLE.length}\r\n\r\n${CHUNKED_SMUGGLE}`,
);
for (const [label, chunks] of [
  ['non-hex chunk size', 'zz\r\n{}\r\n0\r\n\r\n'],
  ['negative chunk size', '-1\r\n{}\r\n0\r\n\r\n'],
  ['0x-prefixed chunk size', '0x2\r\n{}\r\n0\r\n\r\n'],
  ['overflowing chunk size', 'ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n'],
  ['chunk size with a leading space', ' 2\r\n{}\r\n0\r\n\r\n'],
  ['chunk longer than its size', `1\r\n{}\r\n0\r\n\r\n${SMUGGLED}`],
  ['chunk data without its CRLF', '2\r\n{}0\r\n\r\n'],
  ['a trailer line without a colon', '2\r\n{}\r\n0\r\nNoColon\r\n\r\n'],
  ['LF-only chunk lines', `2\n{}\n0\n\n${SMUGGLED}`],
  ['a chunk extension with a bare CR', '2;a\rb\r\n{}\r\n0\r\n\r\n'],
]) {
  smuggling(`chunked: ${label}`, head('POST', '/v2/queues', ['Content-Type: application/json', 'Transfer-Encoding: chunked']) + chunks);
}
smuggling('obs-fold in an ordinary header (invalid body)', head('POST', '/v2/queues', ['Content-Type: application/json', 'X-Corpus: a', ' folded', `Content-Length: ${BAD_QUEUE.length}`]) + BAD_QUEUE);
smuggling('obs-fold in Transfer-Encoding', head('POST', '/v2/queues', ['Content-Type: application/json', 'Content-Length: 2', 'Transfer-Encoding: identity', ' chunked']) + `{}${SMUGGLED}`);
smuggling('obs-fold in Content-Length', head('POST', '/v2/queues', ['Content-Type: application/json', 'Content-Length:', ` ${BAD_QUEUE.length}`]) + BAD_QUEUE);
smuggling('a header line starting with whitespace right after the request line', `POST /v2/queues HTTP/1.1\r\n Host: {{HOST}}\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\nContent-Length: ${BAD_QUEUE.length}\r\n\r\n${BAD_QUEUE}`);
smuggling('LF-only line endings (invalid body)', `POST /v2/queues HTTP/1.1\nHost: {{HOST}}\nAuthorization: Bearer {{TOKEN}}\nContent-Type: application/json\nContent-Length: ${BAD_QUEUE.length}\n\n${BAD_QUEUE}`);
smuggling('mixed CRLF and LF line endings (invalid body)', `POST /v2/queues HTTP/1.1\r\nHost: {{HOST}}\nAuthorization: Bearer {{TOKEN}}\r\nContent-Type: application/json\nContent-Length: ${BAD_QUEUE.length}\r\n\r\n${BAD_QUEUE}`);
smuggling('bare CR line endings', `POST /v2/queues HTTP/1.1\rHost: {{HOST}}\rAuthorization: Bearer {{TOKEN}}\rContent-Length: 2\r\r{}`);
smuggling('LF-only with a Transfer-Encoding hidden behind a bare CR', `POST /v2/queues HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\nX-Corpus: a\rTransfer-Encoding: chunked\r\nContent-Length: ${2 + SMUGGLED.length}\r\n\r\n{}${SMUGGLED}`);

// ---------------------------------------------------------------------------
// The request line, Host, Expect, CONNECT, Upgrade and unknown methods.
const protocol = (name, raw) => add({ name, category: 'http-protocol', raw });
protocol('missing Host on GET', 'GET /v2/queues HTTP/1.1\r\nAuthorization: Bearer {{TOKEN}}\r\n\r\n');
protocol('missing Host on publish', 'POST /v2/publish/{{DEST}} HTTP/1.1\r\nAuthorization: Bearer {{TOKEN}}\r\nContent-Length: 1\r\n\r\nx');
protocol('missing Host on health', 'GET /health/ready HTTP/1.1\r\n\r\n');
protocol('two Host headers', 'POST /v2/publish/{{DEST}} HTTP/1.1\r\nHost: {{HOST}}\r\nHost: evil.example\r\nAuthorization: Bearer {{TOKEN}}\r\nContent-Length: 1\r\n\r\nx');
protocol('Host with a space', 'POST /v2/publish/{{DEST}} HTTP/1.1\r\nHost: 127.0.0.1 evil\r\nAuthorization: Bearer {{TOKEN}}\r\nContent-Length: 1\r\n\r\nx');
protocol('Host with userinfo', 'POST /v2/publish/{{DEST}} HTTP/1.1\r\nHost: user@{{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\nContent-Length: 1\r\n\r\nx');
// RFC 9110 §10.1.1: a server MAY answer an unknown expectation with 417 or ignore it, so each request is
// otherwise invalid too (a bad body, no credentials): either way the answer must be a JSON 4xx.
for (const expect of ['bogus', '100-continue, bogus', '200-ok']) {
  protocol(`Expect: ${expect} on a queue upsert`, `POST /v2/queues HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\nContent-Type: application/json\r\nExpect: ${expect}\r\nContent-Length: ${BAD_QUEUE.length}\r\n\r\n${BAD_QUEUE}`);
}
protocol('Expect: bogus on an unauthenticated publish', 'POST /v2/publish/{{DEST}} HTTP/1.1\r\nHost: {{HOST}}\r\nExpect: bogus\r\nContent-Length: 1\r\n\r\nx');
protocol('Expect: bogus on an unauthenticated GET', 'GET /v2/queues HTTP/1.1\r\nHost: {{HOST}}\r\nExpect: bogus\r\n\r\n');
protocol('CONNECT to an authority', 'CONNECT 127.0.0.1:{{DEST_PORT}} HTTP/1.1\r\nHost: 127.0.0.1:{{DEST_PORT}}\r\nAuthorization: Bearer {{TOKEN}}\r\n\r\n');
protocol('CONNECT to a path', 'CONNECT /v2/queues HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\n\r\n');
protocol('CONNECT without credentials', 'CONNECT {{HOST}} HTTP/1.1\r\nHost: {{HOST}}\r\n\r\n');
// RFC 9110 §7.8: a server may ignore Upgrade, so these requests are otherwise invalid; what they probe is an answer at all.
protocol('Upgrade: websocket without credentials', 'GET /v2/queues HTTP/1.1\r\nHost: {{HOST}}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
protocol('Upgrade: h2c on an invalid queue upsert', `POST /v2/queues HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Type: application/json\r\nContent-Length: ${BAD_QUEUE.length}\r\n\r\n${BAD_QUEUE}`);
protocol('the HTTP/2 connection preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
for (const method of ['FROB', 'get', 'Post', 'PROPFIND', 'MKCOL', 'SEARCH', 'PURGE', 'LINK', 'UNLINK', 'REPORT', 'LOCK', 'TRACE', 'OPTIONS', 'M-SEARCH', 'QUERY', 'G\u0000ET', '{{REPEAT X 300}}']) {
  protocol(`method ${json(method.slice(0, 20))} on /v2/queues`, `${method} /v2/queues HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\nContent-Length: 0\r\n\r\n`);
}
protocol('OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\n\r\n');
// RFC 9112 §3: a recipient MAY split the request line on any whitespace, so these carry no credentials.
protocol('a request line with two spaces', 'GET  /v2/queues HTTP/1.1\r\nHost: {{HOST}}\r\n\r\n');
protocol('a request line with a trailing space', 'GET /v2/queues HTTP/1.1 \r\nHost: {{HOST}}\r\n\r\n');
protocol('a request line without a version', 'GET /v2/queues\r\nHost: {{HOST}}\r\n\r\n');
protocol('a lower-case version', 'GET /v2/queues http/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\n\r\n');
protocol('a target without a leading slash', 'GET v2/queues HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\n\r\n');
protocol('an authority-form target on GET', 'GET {{HOST}} HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\n\r\n');
protocol('a header line without a colon', 'GET /v2/queues HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\nNoColonHere\r\n\r\n');
protocol('an empty header name', 'GET /v2/queues HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\r\n: value\r\n\r\n');
protocol('an unauthenticated GET, Expect: bogus, whose body is a second request', `GET /v2/queues HTTP/1.1\r\nHost: {{HOST}}\r\nContent-Length: ${SMUGGLED.length}\r\nExpect: bogus\r\n\r\n${SMUGGLED}`);

// ---------------------------------------------------------------------------
// Wrong credentials, on a queue upsert that would store a queue if it were let in.
const UPSERT = json({ queueName: 'corpus-cred' });
const creds = (name, lines, extra = {}) => add({ name, category: 'credentials', auth: false, method: 'POST', path: '/v2/queues', headers: { ...JSON_TYPE, ...lines }, body: UPSERT, ...extra });
creds('no Authorization', {});
creds('empty Authorization', { Authorization: '' });
creds('scheme only', { Authorization: 'Bearer' });
creds('wrong token', { Authorization: 'Bearer wrong' });
creds('token plus a character', { Authorization: 'Bearer {{TOKEN}}x' });
creds('token without its last character', { Authorization: 'Bearer {{TOKEN_PREFIX}}' });
creds('the token twice', { Authorization: 'Bearer {{TOKEN}} {{TOKEN}}' });
creds('two credentials in one header', { Authorization: 'Bearer {{TOKEN}}, Bearer {{TOKEN}}' });
creds('Basic scheme with the token', { Authorization: 'Basic {{TOKEN_BASIC}}' });
creds('Token scheme', { Authorization: 'Token {{TOKEN}}' });
creds('no scheme', { Authorization: '{{TOKEN}}' });
creds('no space after the scheme', { Authorization: 'Bearer{{TOKEN}}' });
creds('quoted token', { Authorization: 'Bearer "{{TOKEN}}"' });
creds('token in Proxy-Authorization', { 'Proxy-Authorization': 'Bearer {{TOKEN}}' });
creds('token in X-Authorization', { 'X-Authorization': 'Bearer {{TOKEN}}' });
creds('two Authorization headers, valid first', { Authorization: ['Bearer {{TOKEN}}', 'Bearer wrong'] });
creds('two Authorization headers, valid second', { Authorization: ['Bearer wrong', 'Bearer {{TOKEN}}'] });
creds('empty qstash_token query', {}, { path: '/v2/queues?qstash_token=' });
creds('wrong qstash_token query', {}, { path: '/v2/queues?qstash_token=wrong' });
creds('qstash_token query plus a character', {}, { path: '/v2/queues?qstash_token={{TOKEN}}x' });
creds('qstash_token with bad percent-encoding', {}, { path: '/v2/queues?qstash_token=%zz' });
add({ name: 'token with a NUL', category: 'credentials', auth: false, raw: `POST /v2/queues HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{TOKEN}}\u0000\r\nContent-Type: application/json\r\nContent-Length: ${UPSERT.length}\r\n\r\n${UPSERT}` });
for (const [method, path] of [
  ['POST', '/v2/publish/{{DEST}}'],
  ['POST', '/v2/batch'],
  ['GET', '/v2/events'],
  ['DELETE', '/v2/messages'],
  ['DELETE', '/v2/dlq'],
  ['POST', '/v2/dlq/retry'],
  ['POST', '/v2/keys/rotate'],
  ['GET', '/v2/keys'],
  ['POST', '/v2/schedules/{{DEST}}'],
  ['POST', '/v2/topics/corpus-group/endpoints'],
  ['PUT', '/v1/instance-groups/corpus-grp'],
]) {
  add({ name: `${method} ${path} with a wrong token`, category: 'credentials', auth: false, method, path, headers: { Authorization: 'Bearer wrong', 'Upstash-Cron': '* * * * *', ...JSON_TYPE }, body: path === '/v2/batch' ? json([ITEM]) : '{}' });
}
// Valid variants (RFC 9110 §11.1: the scheme is case-insensitive): they must be let in.
for (const scheme of ['bearer', 'BEARER', 'bEaReR']) {
  add({ name: `scheme ${scheme} (valid)`, category: 'credentials', auth: false, method: 'GET', path: '/v2/queues', headers: { Authorization: `${scheme} {{TOKEN}}` }, expect: 'accepted' });
}
add({ name: 'lower-case header name (valid)', category: 'credentials', auth: false, raw: 'GET /v2/queues HTTP/1.1\r\nhost: {{HOST}}\r\nauthorization: Bearer {{TOKEN}}\r\n\r\n', expect: 'accepted' });

// ---------------------------------------------------------------------------
// Huge and deeply nested bodies. The test caps message bodies at 1 MiB and
// batches at 2 MiB (COURIER_MAX_BODY_BYTES, COURIER_MAX_BATCH_BYTES), so a
// "huge" body is 2-3 MB; management JSON is capped at 1 MiB by Courier itself.
const huge = (name, fields) => add({ name, category: 'huge-nested', headers: JSON_TYPE, ...fields });
for (const endpoint of ENDPOINTS) {
  huge(`${endpoint.id}: arrays nested 100000 deep`, { method: endpoint.method, path: endpoint.path, bodyGen: { nest: 100000, open: '[', close: ']' } });
  huge(`${endpoint.id}: objects nested 100000 deep`, { method: endpoint.method, path: endpoint.path, bodyGen: { nest: 100000, open: '{"a":', close: '}', core: '1' } });
  huge(`${endpoint.id}: 2 MB string`, { method: endpoint.method, path: endpoint.path, bodyGen: { prefix: '"', repeat: 'a', times: 2000000, suffix: '"' } });
}
huge('queue upsert: 500000 unclosed arrays', { method: 'POST', path: '/v2/queues', bodyGen: { prefix: '', repeat: '[', times: 500000, suffix: '' } });
huge('batch: an item whose headers nest 100000 deep', { method: 'POST', path: '/v2/batch', bodyGen: { nest: 100000, open: '{"a":', close: '}', core: '"v"', prefix: '[{"destination":"{{DEST}}","headers":', suffix: '}]' } });
huge('batch: an item whose body nests 100000 deep', { method: 'POST', path: '/v2/batch', bodyGen: { nest: 100000, open: '[', close: ']', prefix: '[{"destination":"{{DEST}}","body":', suffix: '}]' } });
huge('batch: 5001 items', { method: 'POST', path: '/v2/batch', bodyGen: { prefix: '[', repeat: '{"destination":"{{DEST}}"},', times: 5000, suffix: '{"destination":"{{DEST}}"}]' } });
huge('batch: 3 MB, over the batch limit', { method: 'POST', path: '/v2/batch', bodyGen: { prefix: '[{"destination":"{{DEST}}","body":"', repeat: 'a', times: 3000000, suffix: '"}]' } });
huge('batch: 3 MB chunked, over the batch limit', { method: 'POST', path: '/v2/batch', chunked: true, bodyGen: { prefix: '[{"destination":"{{DEST}}","body":"', repeat: 'a', times: 3000000, suffix: '"}]' } });
huge('publish: 2 MB body, over the body limit', { method: 'POST', path: '/v2/publish/{{DEST}}', headers: {}, bodyGen: { repeat: 'a', times: 2000000 } });
huge('publish: 2 MB chunked body, over the body limit', { method: 'POST', path: '/v2/publish/{{DEST}}', headers: {}, chunked: true, bodyGen: { repeat: 'a', times: 2000000 } });
huge('enqueue: 2 MB body, over the body limit', { method: 'POST', path: '/v2/enqueue/corpus-q/{{DEST}}', headers: {}, bodyGen: { repeat: 'a', times: 2000000 } });
huge('schedule create: 2 MB body, over the body limit', { method: 'POST', path: '/v2/schedules/{{DEST}}', headers: { 'Upstash-Cron': '* * * * *' }, bodyGen: { repeat: 'a', times: 2000000 } });
huge('publish: a 9000-character destination', { method: 'POST', path: '/v2/publish/{{DEST}}/{{REPEAT a 9000}}', headers: {}, body: 'x' });
huge('publish: a 70000-character destination (over the header limit)', { method: 'POST', path: '/v2/publish/{{DEST}}/{{REPEAT a 70000}}', headers: {}, body: 'x' });
huge('publish: a 70 KB header', { method: 'POST', path: '/v2/publish/{{DEST}}', headers: { 'Upstash-Forward-X-Corpus': '{{REPEAT a 70000}}' }, body: 'x' });
huge('publish: a Content-Length of 10 GB', { method: 'POST', path: '/v2/publish/{{DEST}}', headers: { 'Content-Length': '10737418240' }, body: 'x' });

// ---------------------------------------------------------------------------
const names = new Set();
for (const entry of entries) {
  if (names.has(entry.name)) throw new Error(`duplicate corpus entry name: ${entry.name}`);
  names.add(entry.name);
}
// One entry a line: diffs stay readable.
const text = `[\n${entries.map((entry) => JSON.stringify(entry)).join(',\n')}\n]\n`;
if (process.argv.includes('--check')) {
  if (readFileSync(OUT, 'utf8') !== text) {
    console.error(`${OUT} is stale: run node test/corpus/generate.mjs`);
    process.exit(1);
  }
} else {
  writeFileSync(OUT, text);
}
const counts = {};
for (const entry of entries) counts[entry.category] = (counts[entry.category] ?? 0) + 1;
console.log(`${entries.length} entries`, counts);
