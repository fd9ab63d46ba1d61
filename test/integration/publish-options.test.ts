/**
 * The publish surface (spec §1.1, §1.3, §2.1, §2.5): every `Upstash-*` option
 * except flow control and queues, through the official SDK where it can say
 * it and raw HTTP where it cannot (binary bodies, odd destination URL forms).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Client, QstashError } from '@upstash/qstash';
import { startTestCourier, TEST_TOKEN, type TestCourier } from '../helpers/courier.js';
import { arrivalsAt, eventually, sleep, startDestination, uniquePath, waitForArrivals, type Destination } from '../helpers/destination.js';

/** The claims of a compact JWS, unverified (the Receiver checks the signature itself). */
function jwtClaims(token: string): Record<string, unknown> {
  const payload = token.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
}

const sha256Base64Url = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('base64url');

/** A pass-through proxy in front of Courier that records the requests the SDK really sends. */
async function startRecordingProxy(target: string): Promise<{ url: string; seen: { path: string; headers: IncomingHttpHeaders }[]; close(): Promise<void> }> {
  const seen: { path: string; headers: IncomingHttpHeaders }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push({ path: req.url ?? '', headers: req.headers });
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (value === undefined || ['host', 'connection', 'content-length', 'keep-alive'].includes(name)) continue;
        headers.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      const body = Buffer.concat(chunks);
      fetch(`${target}${req.url ?? ''}`, { method: req.method ?? 'GET', headers, body: body.byteLength > 0 ? body : undefined })
        .then(async (upstream) => {
          res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
          res.end(Buffer.from(await upstream.arrayBuffer()));
        })
        .catch((error: unknown) => {
          res.writeHead(502);
          res.end(String(error));
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('publish options (spec §2.1)', () => {
  let courier: TestCourier;
  let destination: Destination;

  before(async () => {
    courier = await startTestCourier();
    destination = await startDestination((arrival) => {
      if (arrival.path.startsWith('/fail')) return { status: 500, body: 'nope' };
      if (arrival.path.startsWith('/hang')) return { hang: true };
      return { status: 200, body: 'ok' };
    });
  });
  after(async () => {
    await courier.stop();
    await destination.close();
  });

  /** The log entries of one message, oldest first. */
  async function logStates(messageId: string): Promise<string[]> {
    const { logs } = await courier.client.logs({ messageIds: [messageId] });
    return logs.map((entry) => entry.state).reverse();
  }

  async function waitForState(messageId: string, state: string, timeoutMs = 5_000) {
    return eventually(
      async () => {
        const { logs } = await courier.client.logs({ messageIds: [messageId] });
        return logs.find((entry) => entry.state === state);
      },
      timeoutMs,
      `${state} in the log of ${messageId}`,
    );
  }

  describe('method', () => {
    for (const method of ['PUT', 'DELETE', 'PATCH'] as const) {
      it(`delivers with method ${method} and the published body`, async () => {
        const path = uniquePath(`method-${method.toLowerCase()}`);
        const { messageId } = await courier.client.publish({ url: destination.url(path), method, body: `payload for ${method}` });
        const [arrival] = await waitForArrivals(destination, path, 1);
        assert.equal(arrival!.method, method);
        assert.equal(arrival!.body.toString(), `payload for ${method}`);
        assert.equal(arrival!.headers['upstash-message-id'], messageId);
      });
    }

    it('delivers a GET with a body: the body arrives and the signature body claim hashes exactly those bytes', async () => {
      const path = uniquePath('method-get');
      const url = destination.url(path);
      await courier.client.publish({ url, method: 'GET', body: 'a body on a GET' });
      const [arrival] = await waitForArrivals(destination, path, 1);
      assert.equal(arrival!.method, 'GET');
      assert.equal(arrival!.body.toString(), 'a body on a GET');
      const signature = String(arrival!.headers['upstash-signature']);
      const claims = jwtClaims(signature);
      assert.equal(String(claims.body).replace(/=+$/, ''), sha256Base64Url(arrival!.body));
      assert.equal(claims.sub, url);
      assert.equal(await courier.receiver().verify({ signature, body: arrival!.body.toString(), url }), true);
    });

    it('delivers a GET without a body, signed over the empty body', async () => {
      const path = uniquePath('method-get-empty');
      await courier.client.publish({ url: destination.url(path), method: 'GET' });
      const [arrival] = await waitForArrivals(destination, path, 1);
      assert.equal(arrival!.method, 'GET');
      assert.equal(arrival!.body.byteLength, 0);
      const claims = jwtClaims(String(arrival!.headers['upstash-signature']));
      assert.equal(String(claims.body).replace(/=+$/, ''), sha256Base64Url(Buffer.alloc(0)));
    });
  });

  describe('delay and notBefore', () => {
    it('holds a `delay: 2` message for at least 2 s, and fires a 1 s delayed message at its due time, before the 2 s one is due', async () => {
      const slowPath = uniquePath('delay-2s');
      const fastPath = uniquePath('delay-1s');
      const sentAt = Date.now();
      const [slow, fast] = await Promise.all([
        courier.client.publish({ url: destination.url(slowPath), body: 'two', delay: 2 }),
        courier.client.publish({ url: destination.url(fastPath), body: 'one', delay: '1s' }),
      ]);
      const fastMessage = await courier.client.messages.get(fast.messageId);
      const dueAt = fastMessage.notBefore!;
      assert.ok(dueAt >= sentAt + 1000, 'notBefore is publish time + 1 s');
      const slowDueAt = (await courier.client.messages.get(slow.messageId)).notBefore!;
      assert.equal(slowDueAt - sentAt >= 2000, true);

      const [fastArrival] = await waitForArrivals(destination, fastPath, 1, 4_000);
      assert.equal(arrivalsAt(destination, slowPath).length, 0, 'the 2 s message has not fired after 1 s');
      assert.ok(fastArrival!.at >= dueAt, `fired ${dueAt - fastArrival!.at} ms before its due time`);

      const [slowArrival] = await waitForArrivals(destination, slowPath, 1, 4_000);
      assert.ok(slowArrival!.at >= slowDueAt, `the 2 s message fired ${slowDueAt - slowArrival!.at} ms before its due time`);
      // Promptness as order, not as a bound in ms: the 1 s message was not left for a later poll.
      assert.ok(fastArrival!.at < slowArrival!.at, 'the 1 s message arrived before the 2 s one');
    });

    it('delivers at notBefore (unix seconds), which takes precedence over delay', async () => {
      const path = uniquePath('not-before');
      const notBefore = Math.floor(Date.now() / 1000) + 2;
      const { messageId } = await courier.client.publish({ url: destination.url(path), body: 'nb', notBefore, delay: 600 });
      assert.equal((await courier.client.messages.get(messageId)).notBefore, notBefore * 1000);
      const [arrival] = await waitForArrivals(destination, path, 1, 4_000);
      // Delivered at all within the wait shows notBefore won over the 600 s delay; no bound in ms on how soon.
      assert.ok(arrival!.at >= notBefore * 1000, 'not delivered before notBefore');
    });

    it('reads a bare-integer Upstash-Delay as seconds and a compound one as its sum', async () => {
      for (const [header, ms] of [['600', 600_000], ['1h30m', 5_400_000], ['1d', 86_400_000]] as const) {
        const response = await courier.api(`/v2/publish/${destination.url(uniquePath('raw-delay'))}`, { method: 'POST', headers: { 'Upstash-Delay': header }, body: 'x' });
        assert.equal(response.status, 200, `Upstash-Delay: ${header}`);
        const { messageId } = (await response.json()) as { messageId: string };
        const message = await courier.client.messages.get(messageId);
        assert.equal(message.notBefore! - message.createdAt, ms, `Upstash-Delay: ${header}`);
        await courier.client.messages.cancel(messageId);
      }
    });

    it('rejects a malformed delay with 400 and stores nothing', async () => {
      const path = uniquePath('bad-delay');
      const response = await courier.api(`/v2/publish/${destination.url(path)}`, { method: 'POST', headers: { 'Upstash-Delay': 'soon' }, body: 'x' });
      assert.equal(response.status, 400);
      assert.match(((await response.json()) as { error: string }).error, /Upstash-Delay/);
      const { logs } = await courier.client.logs({ filter: { url: destination.url(path) } });
      assert.equal(logs.length, 0);
    });
  });

  describe('retries, retryDelay and timeout', () => {
    it('makes 1 + retries attempts spaced by the retryDelay expression, then FAILED', async () => {
      const path = uniquePath('fail-retries');
      const { messageId } = await courier.client.publish({ url: destination.url(path), body: 'r', retries: 2, retryDelay: '150' });
      const arrivals = await waitForArrivals(destination, path, 3, 5_000);
      assert.deepEqual(
        arrivals.map((arrival) => arrival.headers['upstash-retried']),
        ['0', '1', '2'],
      );
      for (let i = 1; i < arrivals.length; i++) {
        const gap = arrivals[i]!.at - arrivals[i - 1]!.at;
        assert.ok(gap >= 150, `retry ${i} came ${gap} ms after the previous attempt; the expression says 150 ms`);
        assert.ok(gap < 2_000, `retry ${i} came ${gap} ms after the previous attempt: the default backoff was used`);
      }
      await waitForState(messageId, 'FAILED');
      await sleep(300);
      assert.equal(arrivalsAt(destination, path).length, 3, 'no attempt after the last retry');
    });

    it('uses `retried` in the retryDelay expression', async () => {
      const path = uniquePath('fail-retried-expr');
      await courier.client.publish({ url: destination.url(path), body: 'r', retries: 2, retryDelay: '100 * (1 + retried) * (1 + retried)' });
      const arrivals = await waitForArrivals(destination, path, 3, 5_000);
      const firstGap = arrivals[1]!.at - arrivals[0]!.at;
      const secondGap = arrivals[2]!.at - arrivals[1]!.at;
      assert.ok(firstGap >= 100 && firstGap < 350, `first retry after ${firstGap} ms; expected ~100`);
      assert.ok(secondGap >= 400, `second retry after ${secondGap} ms; expected ≥ 400`);
    });

    it('makes exactly one attempt with `retries: 0`', async () => {
      const path = uniquePath('fail-no-retries');
      const { messageId } = await courier.client.publish({ url: destination.url(path), body: 'r', retries: 0 });
      await waitForState(messageId, 'FAILED');
      assert.equal(arrivalsAt(destination, path).length, 1);
      assert.deepEqual(await logStates(messageId), ['CREATED', 'ACTIVE', 'ERROR', 'FAILED']);
    });

    it('gives up on an attempt after `timeout` (the SDK sends "0.5s" unrounded)', async () => {
      const path = uniquePath('hang-timeout');
      const { messageId } = await courier.client.publish({ url: destination.url(path), body: 't', timeout: 0.5, retries: 0 });
      const [arrival] = await waitForArrivals(destination, path, 1);
      const failed = await waitForState(messageId, 'FAILED', 5_000);
      const waited = failed.time - arrival!.at;
      assert.ok(waited >= 450, `gave up after ${waited} ms; the timeout is 500 ms`);
      assert.ok(waited < 2_000, `gave up after ${waited} ms; the timeout is 500 ms`);
      const { logs } = await courier.client.logs({ messageIds: [messageId] });
      const error = logs.find((entry) => entry.state === 'ERROR');
      assert.match(error?.error ?? '', /timeout/i);
    });

    it('rejects retries beyond the configured maximum with 400', async () => {
      await assert.rejects(
        courier.client.publish({ url: destination.url(uniquePath('too-many-retries')), body: 'x', retries: 100_000 }),
        (error: unknown) => error instanceof QstashError && error.status === 400 && /Upstash-Retries/.test(error.message),
      );
    });

    it('rejects an unparsable retryDelay expression with 400', async () => {
      await assert.rejects(
        courier.client.publish({ url: destination.url(uniquePath('bad-retry-delay')), body: 'x', retryDelay: 'pow(2,' }),
        (error: unknown) => error instanceof QstashError && error.status === 400 && /Upstash-Retry-Delay/.test(error.message),
      );
    });
  });

  it('records callback and failureCallback on the message', async () => {
    const callback = destination.url('/callback-target');
    const failureCallback = destination.url('/failure-callback-target');
    const { messageId } = await courier.client.publish({ url: destination.url(uniquePath('callbacks')), body: 'c', delay: 600, callback, failureCallback });
    const message = await courier.client.messages.get(messageId);
    assert.equal(message.callback, callback);
    assert.equal(message.failureCallback, failureCallback);
    await courier.client.messages.cancel(messageId);
  });

  it('forwards user headers: Upstash-Forward-* on the wire, unprefixed at the destination', async () => {
    const proxy = await startRecordingProxy(courier.url);
    try {
      const client = new Client({ baseUrl: proxy.url, token: TEST_TOKEN, enableTelemetry: false });
      const path = uniquePath('forward');
      await client.publish({
        url: destination.url(path),
        body: 'f',
        headers: { 'X-Tenant': 'acme', Authorization: 'Bearer user-token', 'Content-Type': 'text/plain' },
      });
      const wire = proxy.seen.find((request) => request.path.startsWith('/v2/publish/'));
      assert.ok(wire, 'the publish went through the proxy');
      assert.equal(wire.headers['upstash-forward-x-tenant'], 'acme');
      assert.equal(wire.headers['upstash-forward-authorization'], 'Bearer user-token');
      assert.equal(wire.headers['x-tenant'], undefined);
      assert.equal(wire.headers.authorization, `Bearer ${TEST_TOKEN}`);

      const [arrival] = await waitForArrivals(destination, path, 1);
      assert.equal(arrival!.headers['x-tenant'], 'acme');
      assert.equal(arrival!.headers.authorization, 'Bearer user-token');
      assert.equal(arrival!.headers['content-type'], 'text/plain');
      const leaked = Object.keys(arrival!.headers).filter((name) => name.startsWith('upstash-forward-') || name === 'upstash-method');
      assert.deepEqual(leaked, [], 'no config or prefixed header reaches the destination');
    } finally {
      await proxy.close();
    }
  });

  describe('deduplication (spec §2.5)', () => {
    it('answers a repeated deduplicationId with the first messageId, deduplicated: true (202), and delivers once', async () => {
      const path = uniquePath('dedup-id');
      const url = destination.url(path);
      const first = await courier.client.publish({ url, body: 'one', deduplicationId: 'order-42' });
      assert.equal(first.deduplicated, undefined, 'the first publish is not marked deduplicated');

      const raw = await courier.api(`/v2/publish/${url}`, { method: 'POST', headers: { 'Upstash-Deduplication-Id': 'order-42' }, body: 'two' });
      assert.equal(raw.status, 202);
      assert.deepEqual(await raw.json(), { messageId: first.messageId, url, deduplicated: true });

      const third = await courier.client.publish({ url, body: 'three', deduplicationId: 'order-42' });
      assert.equal(third.messageId, first.messageId);
      assert.equal(third.deduplicated, true);

      const [arrival] = await waitForArrivals(destination, path, 1);
      assert.equal(arrival!.body.toString(), 'one');
      await sleep(300);
      assert.equal(arrivalsAt(destination, path).length, 1);
    });

    it('accepts Upstash-Content-Based-Deduplication: false as no deduplication', async () => {
      const url = destination.url(uniquePath('dedup-false'));
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const response = await courier.api(`/v2/publish/${url}`, {
          method: 'POST',
          headers: { 'Upstash-Content-Based-Deduplication': 'false', 'Upstash-Delay': '600s' },
          body: 'same',
        });
        assert.equal(response.status, 200);
        ids.push(((await response.json()) as { messageId: string }).messageId);
      }
      assert.notEqual(ids[0], ids[1]);
      await courier.client.messages.cancel(ids);
    });

    it('counts forwarded headers in content-based deduplication', async () => {
      const url = destination.url(uniquePath('dedup-content-headers'));
      const first = await courier.client.publish({ url, body: 'same', delay: 600, contentBasedDeduplication: true, headers: { 'X-Tenant': 'a' } });
      const other = await courier.client.publish({ url, body: 'same', delay: 600, contentBasedDeduplication: true, headers: { 'X-Tenant': 'b' } });
      const again = await courier.client.publish({ url, body: 'same', delay: 600, contentBasedDeduplication: true, headers: { 'X-Tenant': 'a' } });
      assert.notEqual(other.messageId, first.messageId);
      assert.equal(again.messageId, first.messageId);
      await courier.client.messages.cancel([first.messageId, other.messageId]);
    });

    it('scopes a deduplicationId to its destination', async () => {
      const a = await courier.client.publish({ url: destination.url(uniquePath('dedup-scope-a')), body: 'x', deduplicationId: 'shared-id' });
      const b = await courier.client.publish({ url: destination.url(uniquePath('dedup-scope-b')), body: 'x', deduplicationId: 'shared-id' });
      assert.notEqual(a.messageId, b.messageId);
      assert.equal(b.deduplicated, undefined);
    });

    it('deduplicates on content: same body and URL → same message; a different body → a new one', async () => {
      const path = uniquePath('dedup-content');
      const url = destination.url(path);
      const first = await courier.client.publishJSON({ url, body: { order: 1 }, contentBasedDeduplication: true });
      const again = await courier.client.publishJSON({ url, body: { order: 1 }, contentBasedDeduplication: true });
      const other = await courier.client.publishJSON({ url, body: { order: 2 }, contentBasedDeduplication: true });
      assert.equal(again.messageId, first.messageId);
      assert.equal(again.deduplicated, true);
      assert.notEqual(other.messageId, first.messageId);
      assert.equal(other.deduplicated, undefined);
      const arrivals = await waitForArrivals(destination, path, 2);
      await sleep(300);
      assert.equal(arrivalsAt(destination, path).length, 2);
      assert.deepEqual(arrivals.map((arrival) => arrival.body.toString()).sort(), ['{"order":1}', '{"order":2}']);
    });
  });

  it('attaches labels: GET shows label and labels, and logs filter by label', async () => {
    const labelled = await courier.client.publish({ url: destination.url(uniquePath('labels')), body: 'l', delay: 600, label: ['billing', 'eu-west'] });
    const unlabelled = await courier.client.publish({ url: destination.url(uniquePath('labels-other')), body: 'l', delay: 600, label: 'other' });
    const message = await courier.client.messages.get(labelled.messageId);
    assert.equal(message.label, 'billing');
    assert.deepEqual(message.labels, ['billing', 'eu-west']);

    const { logs } = await courier.client.logs({ filter: { label: 'eu-west' } });
    assert.ok(logs.length > 0);
    assert.ok(logs.every((entry) => entry.messageId === labelled.messageId));
    assert.deepEqual(logs[0]!.labels, ['billing', 'eu-west']);
    await courier.client.messages.cancel([labelled.messageId, unlabelled.messageId]);
  });

  describe('redact', () => {
    it('shows REDACTED:… for the body and the named header in GET and logs, yet delivers the real values', async () => {
      const path = uniquePath('redact');
      const url = destination.url(path);
      const { messageId } = await courier.client.publish({
        url,
        body: 'card=4111-1111',
        delay: 1,
        headers: { Authorization: 'Bearer s3cret', 'X-Visible': 'shown' },
        redact: { body: true, header: ['Authorization'] },
      });
      const message = await courier.client.messages.get(messageId);
      assert.match(message.body ?? '', /^REDACTED:/);
      assert.ok(!(message.body ?? '').includes('4111'));
      assert.match(message.header?.Authorization?.[0] ?? '', /^REDACTED:/);
      assert.ok(!JSON.stringify(message).includes('s3cret'), 'the secret appears nowhere in GET');
      assert.deepEqual(message.header?.['X-Visible'], ['shown']);

      const { logs } = await courier.client.logs({ messageIds: [messageId] });
      const created = logs.find((entry) => entry.state === 'CREATED');
      assert.ok(created);
      assert.match(created.body ?? '', /^REDACTED:/);
      const logHeader = created.header as unknown as Record<string, string[]>;
      assert.match(logHeader.Authorization?.[0] ?? '', /^REDACTED:/);
      assert.ok(!JSON.stringify(logs).includes('s3cret'));
      assert.ok(!JSON.stringify(logs).includes(Buffer.from('card=4111-1111').toString('base64')));

      const [arrival] = await waitForArrivals(destination, path, 1, 4_000);
      assert.equal(arrival!.body.toString(), 'card=4111-1111');
      assert.equal(arrival!.headers.authorization, 'Bearer s3cret');
      assert.equal(await courier.receiver().verify({ signature: String(arrival!.headers['upstash-signature']), body: 'card=4111-1111', url }), true);
    });

    it('redacts every header with `header: true` and leaves the body shown', async () => {
      const { messageId } = await courier.client.publish({
        url: destination.url(uniquePath('redact-all')),
        body: 'visible body',
        delay: 600,
        headers: { 'X-One': '1', 'X-Two': '2' },
        redact: { header: true },
      });
      const message = await courier.client.messages.get(messageId);
      assert.equal(message.body, 'visible body');
      assert.match(message.header?.['X-One']?.[0] ?? '', /^REDACTED:/);
      assert.match(message.header?.['X-Two']?.[0] ?? '', /^REDACTED:/);
      await courier.client.messages.cancel(messageId);
    });

    it('accepts the docs spelling `headers[Name]` via raw HTTP', async () => {
      const response = await courier.api(`/v2/publish/${destination.url(uniquePath('redact-docs'))}`, {
        method: 'POST',
        headers: { 'Upstash-Redact-Fields': 'headers[X-Secret], body', 'Upstash-Forward-X-Secret': 'hidden', 'Upstash-Delay': '600s' },
        body: 'b',
      });
      assert.equal(response.status, 200);
      const { messageId } = (await response.json()) as { messageId: string };
      const message = await courier.client.messages.get(messageId);
      assert.match(message.header?.['X-Secret']?.[0] ?? '', /^REDACTED:/);
      assert.match(message.body ?? '', /^REDACTED:/);
      await courier.client.messages.cancel(messageId);
    });
  });

  it('passes a binary (non-UTF-8) body byte-for-byte; a pending GET shows it as bodyBase64', async () => {
    const path = uniquePath('binary');
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x41, 0x0a, 0xf0, 0x9f]);
    const response = await courier.api(`/v2/publish/${destination.url(path)}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream', 'Upstash-Delay': '1s' },
      body: bytes,
    });
    assert.equal(response.status, 200);
    const { messageId } = (await response.json()) as { messageId: string };

    const got = await courier.api(`/v2/messages/${messageId}`);
    assert.equal(got.status, 200);
    const message = (await got.json()) as { body?: string; bodyBase64?: string };
    assert.equal(message.bodyBase64, bytes.toString('base64'));
    assert.equal(message.body, undefined);

    const [arrival] = await waitForArrivals(destination, path, 1, 4_000);
    assert.ok(arrival!.body.equals(bytes), `got ${arrival!.body.toString('hex')}, sent ${bytes.toString('hex')}`);
    assert.equal(arrival!.headers['content-type'], 'application/octet-stream');
  });

  describe('destination URL forms (raw HTTP, spec §1.1)', () => {
    async function rawPublish(destinationText: string): Promise<{ status: number; body: { messageId?: string; url?: string; error?: string } }> {
      const response = await courier.api(`/v2/publish/${destinationText}`, { method: 'POST', body: 'u' });
      return { status: response.status, body: (await response.json()) as { messageId?: string; url?: string } };
    }

    it('preserves the destination query string exactly (order, repeats, empty values, escapes)', async () => {
      const path = `${uniquePath('query')}?b=2&a=1&a=3&empty=&enc=%2F%3D&flag`;
      const result = await rawPublish(destination.url(path));
      assert.equal(result.status, 200);
      assert.equal(result.body.url, destination.url(path));
      const [arrival] = await waitForArrivals(destination, path, 1);
      assert.equal(arrival!.path, path);
    });

    it('preserves %20 in the path and the query', async () => {
      const path = `${uniquePath('space%20dir')}/x?name=a%20b`;
      const result = await rawPublish(destination.url(path));
      assert.equal(result.status, 200);
      const [arrival] = await waitForArrivals(destination, path, 1);
      assert.equal(arrival!.path, path);
      const claims = jwtClaims(String(arrival!.headers['upstash-signature']));
      assert.equal(claims.sub, destination.url(path), 'the JWT sub is the URL as published');
    });

    it('repairs a merged `http:/host` into `http://host`', async () => {
      const path = uniquePath('single-slash');
      const merged = destination.url(path).replace('http://', 'http:/');
      const result = await rawPublish(merged);
      assert.equal(result.status, 200);
      assert.equal(result.body.url, destination.url(path));
      const [arrival] = await waitForArrivals(destination, path, 1);
      assert.equal(arrival!.path, path);
    });

    it('accepts a fully encoded `http%3A%2F%2F…` destination', async () => {
      const path = `${uniquePath('encoded')}?x=1&y=2`;
      const result = await rawPublish(encodeURIComponent(destination.url(path)));
      assert.equal(result.status, 200);
      assert.equal(result.body.url, destination.url(path));
      const [arrival] = await waitForArrivals(destination, path, 1);
      assert.equal(arrival!.path, path);
    });

    it('rejects a destination that is not an http(s) URL with 400', async () => {
      const result = await rawPublish('ftp://example.com/file');
      assert.equal(result.status, 400);
      assert.equal(typeof result.body.error, 'string');
    });
  });

  describe('authentication (spec §1.2)', () => {
    it('rejects a publish with a wrong token with 401 and a JSON error', async () => {
      const response = await fetch(`${courier.url}/v2/publish/${destination.url(uniquePath('bad-token'))}`, {
        method: 'POST',
        headers: { Authorization: 'Bearer wrong' },
        body: 'x',
      });
      assert.equal(response.status, 401);
      assert.equal(typeof ((await response.json()) as { error: unknown }).error, 'string');
    });

    it('accepts ?qstash_token= and strips it from the destination query string', async () => {
      const path = uniquePath('query-token');
      const response = await fetch(`${courier.url}/v2/publish/${destination.url(path)}?a=1&qstash_token=${TEST_TOKEN}&b=2`, { method: 'POST', body: 'x' });
      assert.equal(response.status, 200);
      const [arrival] = await waitForArrivals(destination, `${path}?a=1&b=2`, 1);
      assert.ok(!arrival!.path.includes('qstash_token'));
    });

    it('leaves the rest of the destination query byte-for-byte when stripping ?qstash_token=', async () => {
      const path = uniquePath('query-token-exact');
      const query = '?name=a%20b&flag&slash=%2F';
      const response = await fetch(`${courier.url}/v2/publish/${destination.url(path)}${query}&qstash_token=${TEST_TOKEN}`, { method: 'POST', body: 'x' });
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as { url: string }).url, destination.url(`${path}${query}`));
      const [arrival] = await eventually(() => {
        const found = destination.arrivals.filter((a) => a.path.startsWith(path));
        return found.length > 0 ? found : undefined;
      });
      assert.equal(arrival!.path, `${path}${query}`);
    });
  });

  it('accepts publishJSON with no body: Content-Type json and an empty body', async () => {
    const path = uniquePath('json-no-body');
    const url = destination.url(path);
    const { messageId } = await courier.client.publishJSON({ url });
    assert.match(messageId, /^msg_/);
    const [arrival] = await waitForArrivals(destination, path, 1);
    assert.equal(arrival!.body.byteLength, 0);
    assert.equal(arrival!.headers['content-type'], 'application/json');
    assert.equal(await courier.receiver().verify({ signature: String(arrival!.headers['upstash-signature']), body: '', url }), true);
  });
});

describe('deduplication window (spec §2.5, COURIER_DEDUP_WINDOW)', () => {
  let courier: TestCourier;
  let destination: Destination;
  before(async () => {
    courier = await startTestCourier({ COURIER_DEDUP_WINDOW: '1s' });
    destination = await startDestination();
  });
  after(async () => {
    await courier.stop();
    await destination.close();
  });

  it('forgets a deduplicationId once the window has passed', async () => {
    const url = destination.url('/dedup-window');
    const first = await courier.client.publish({ url, body: 'x', delay: 600, deduplicationId: 'window-id' });
    const during = await courier.client.publish({ url, body: 'x', delay: 600, deduplicationId: 'window-id' });
    assert.equal(during.messageId, first.messageId);
    await sleep(1_100);
    const afterWindow = await courier.client.publish({ url, body: 'x', delay: 600, deduplicationId: 'window-id' });
    assert.notEqual(afterWindow.messageId, first.messageId);
    assert.equal(afterWindow.deduplicated, undefined);
    await courier.client.messages.cancel([first.messageId, afterWindow.messageId]);
  });
});
