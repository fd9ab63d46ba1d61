/**
 * Authentication (spec §1.2), the body size limit (spec §2.1, §18), and the
 * credentials a real `src/main.ts` process generates, keeps and never logs.
 * The last two parts spawn `node --import tsx src/main.ts` as a child process
 * so that they see exactly what an operator sees: stdout, stderr, files.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Receiver } from '@upstash/qstash';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually, sleep, startDestination, type Destination } from '../helpers/destination.js';
import { freePort, killChildren, spawnMain, stopMain, waitUntilServing } from '../helpers/processes.js';

async function expectJsonError(res: Response, status: number, mentions?: string): Promise<string> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.equal(res.headers.get('content-type'), 'application/json');
  const body = JSON.parse(text) as { error?: unknown };
  assert.equal(typeof body.error, 'string', text);
  if (mentions !== undefined) assert.ok((body.error as string).includes(mentions), `${text} should mention ${mentions}`);
  return body.error as string;
}

async function eventCount(courier: TestCourier): Promise<number> {
  const res = await courier.api('/v2/events?count=1000');
  assert.equal(res.status, 200);
  return ((await res.json()) as { events: unknown[] }).events.length;
}

/** Sends raw bytes (ending with `Connection: close` semantics) and returns the parsed answer. */
function rawExchange(port: number, bytes: string): Promise<{ status: number; contentType: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer within 5 s'));
    }, 5_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(raw);
      if (end < 0 || !match) return reject(new Error(`not an HTTP response: ${JSON.stringify(raw.slice(0, 200))}`));
      const contentType = /\r\ncontent-type:\s*([^\r]*)/i.exec(raw.slice(0, end))?.[1];
      resolve({ status: Number(match[1]), contentType, body: raw.slice(end + 4) });
    });
    socket.write(bytes);
  });
}

function chunked(path: string, token: string, parts: string[]): string {
  const body = parts.map((part) => `${Buffer.byteLength(part).toString(16)}\r\n${part}\r\n`).join('');
  return (
    `POST ${path} HTTP/1.1\r\nHost: courier\r\nAuthorization: Bearer ${token}\r\nContent-Type: text/plain\r\n` +
    `Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}0\r\n\r\n`
  );
}

describe('authentication', () => {
  let courier: TestCourier;
  let destination: Destination;
  let keysAtStart: { current: string; next: string };
  before(async () => {
    courier = await startTestCourier();
    destination = await startDestination();
    keysAtStart = courier.server.keys.signingKeys();
  });
  after(async () => {
    await courier.stop();
    await destination.close();
  });

  /** Every authenticated route, with a request that would succeed (or 404) given the token. */
  const ROUTES: { method: string; path: (d: string) => string; body?: string }[] = [
    { method: 'POST', path: (d) => `/v2/publish/${d}`, body: 'x' },
    { method: 'POST', path: () => '/v2/publish/api/llm', body: 'x' },
    { method: 'POST', path: () => '/v2/batch', body: '[]' },
    { method: 'GET', path: () => '/v2/events' },
    { method: 'GET', path: () => '/v2/logs' },
    { method: 'GET', path: () => '/v2/messages/msg_x' },
    { method: 'DELETE', path: () => '/v2/messages/msg_x' },
    { method: 'DELETE', path: () => '/v2/messages' },
    { method: 'GET', path: () => '/v2/dlq' },
    { method: 'DELETE', path: () => '/v2/dlq' },
    { method: 'POST', path: () => '/v2/dlq/retry' },
    { method: 'GET', path: () => '/v2/dlq/1-0' },
    { method: 'DELETE', path: () => '/v2/dlq/1-0' },
    { method: 'POST', path: () => '/v2/dlq/retry/1-0' },
    { method: 'GET', path: () => '/v2/keys' },
    { method: 'POST', path: () => '/v2/keys/rotate' },
    { method: 'DELETE', path: () => '/v2/workflows/runs/x' },
    { method: 'POST', path: () => '/llm/v1/chat/completions', body: '{}' },
  ];
  const WRONG_CREDENTIALS: { name: string; headers: () => Record<string, string> }[] = [
    { name: 'no token', headers: () => ({}) },
    { name: 'a wrong token', headers: () => ({ Authorization: 'Bearer not-the-token' }) },
    { name: 'a token with one character more', headers: () => ({ Authorization: `Bearer ${courier.token}x` }) },
    { name: 'an empty bearer token', headers: () => ({ Authorization: 'Bearer ' }) },
    { name: 'the right token under the Basic scheme', headers: () => ({ Authorization: `Basic ${Buffer.from(`${courier.token}:`).toString('base64')}` }) },
    { name: 'the right token under the Token scheme', headers: () => ({ Authorization: `Token ${courier.token}` }) },
    { name: 'the bare token without a scheme', headers: () => ({ Authorization: courier.token }) },
  ];

  for (const route of ROUTES) {
    it(`${route.method} ${route.path('<url>')} answers 401 JSON without valid credentials`, async () => {
      for (const credentials of WRONG_CREDENTIALS) {
        const res = await fetch(`${courier.url}${route.path(destination.url())}`, {
          method: route.method,
          headers: credentials.headers(),
          body: route.body,
        });
        const text = await res.text();
        assert.equal(res.status, 401, `${credentials.name}: ${text}`);
        assert.equal(res.headers.get('content-type'), 'application/json', credentials.name);
        assert.equal(typeof (JSON.parse(text) as { error?: unknown }).error, 'string');
      }
    });
  }

  it('stored, rotated and delivered nothing for all those 401s', async () => {
    assert.equal(await eventCount(courier), 0);
    const keys = await courier.api('/v2/keys');
    assert.deepEqual(await keys.json(), keysAtStart, 'POST /v2/keys/rotate without valid credentials rotated nothing');
    await sleep(100);
    assert.equal(destination.arrivals.length, 0);
  });

  it('accepts ?qstash_token= on publish and strips it from the delivered URL, keeping the rest of the query as sent', async () => {
    const cases = [
      { query: `?a=1&qstash_token=${courier.token}`, delivered: '/q1?a=1' },
      { query: `?qstash_token=${courier.token}`, delivered: '/q2' },
      { query: `?tenant=a%20b&qstash_token=${courier.token}&flag&x=%2F`, delivered: '/q3?tenant=a%20b&flag&x=%2F' },
      // URLSearchParams decodes the name, so the auth check accepts this spelling; it must be stripped too.
      { query: `?qstash%5Ftoken=${courier.token}&b=2`, delivered: '/q4?b=2' },
    ];
    for (const [index, { query, delivered }] of cases.entries()) {
      const res = await fetch(`${courier.url}/v2/publish/${destination.url(`/q${index + 1}`)}${query}`, { method: 'POST', body: `q${index + 1}` });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      const { url } = JSON.parse(text) as { url: string };
      assert.ok(!url.includes(courier.token), 'the response does not echo the token in the url');
      const arrival = await eventually(() => destination.arrivals.find((a) => a.body.toString() === `q${index + 1}`), 10_000, delivered);
      assert.equal(arrival.path, delivered);
      const keys = courier.server.keys.signingKeys();
      const receiver = new Receiver({ currentSigningKey: keys.current, nextSigningKey: keys.next });
      assert.equal(
        await receiver.verify({ signature: String(arrival.headers['upstash-signature']), body: arrival.body.toString(), url: `${destination.origin}${delivered}` }),
        true,
        'the signature is for the URL without the token',
      );
    }
  });

  it('accepts the Bearer scheme in any case, as RFC 9110 says auth schemes are', async () => {
    for (const scheme of ['bearer', 'BEARER', 'bEaReR']) {
      const res = await fetch(`${courier.url}/v2/keys`, { headers: { Authorization: `${scheme} ${courier.token}` } });
      assert.equal(res.status, 200, `${scheme}: ${await res.clone().text()}`);
      assert.deepEqual(await res.json(), keysAtStart);
    }
    const wrong = await fetch(`${courier.url}/v2/keys`, { headers: { Authorization: 'bearer not-the-token' } });
    assert.equal(wrong.status, 401);
    await wrong.arrayBuffer();
  });

  it('refuses a wrong ?qstash_token= with a 401', async () => {
    const res = await fetch(`${courier.url}/v2/publish/${destination.url('/wrong')}?qstash_token=nope`, { method: 'POST', body: 'x' });
    await expectJsonError(res, 401);
  });

  it('serves the plain health probes without a token, and /health/detailed only with it', async () => {
    for (const path of ['/health', '/health/live', '/health/ready']) {
      const res = await fetch(`${courier.url}${path}`);
      assert.equal(res.status, 200, path);
      await res.arrayBuffer();
    }
    await expectJsonError(await fetch(`${courier.url}/health/detailed`), 401);
  });
});

describe('body size limit (COURIER_MAX_BODY_BYTES=1024)', () => {
  let courier: TestCourier;
  let destination: Destination;
  before(async () => {
    courier = await startTestCourier({ COURIER_MAX_BODY_BYTES: '1024' });
    destination = await startDestination();
  });
  after(async () => {
    await courier.stop();
    await destination.close();
  });

  it('refuses 1025 bytes with a 413 JSON naming the limit, and stores nothing', async () => {
    const res = await courier.api(`/v2/publish/${destination.url('/big')}`, { method: 'POST', body: 'a'.repeat(1025) });
    await expectJsonError(res, 413, '1024');
    assert.equal(await eventCount(courier), 0);
  });

  it('refuses a chunked body over the limit (no Content-Length) with a 413 JSON, and stores nothing', async () => {
    const answer = await rawExchange(
      courier.server.port,
      chunked(`/v2/publish/${destination.url('/chunked-big')}`, courier.token, ['a'.repeat(600), 'b'.repeat(600)]),
    );
    assert.equal(answer.status, 413, answer.body);
    assert.equal(answer.contentType, 'application/json');
    assert.equal(typeof (JSON.parse(answer.body) as { error?: unknown }).error, 'string');
    assert.equal(await eventCount(courier), 0);
  });

  it('refuses a batch item whose body is over the limit with a 413, and stores nothing', async () => {
    const res = await courier.api('/v2/batch', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify([{ destination: destination.url('/b'), body: 'a'.repeat(1025) }]),
    });
    await expectJsonError(res, 413, '[0].body');
    assert.equal(await eventCount(courier), 0);
  });

  it('accepts exactly 1024 bytes, with or without Content-Length, and delivers them intact', async () => {
    const exact = Buffer.alloc(1024, 'z').toString();
    const res = await courier.api(`/v2/publish/${destination.url('/exact')}`, { method: 'POST', body: exact });
    assert.equal(res.status, 200, await res.text());
    const answer = await rawExchange(
      courier.server.port,
      chunked(`/v2/publish/${destination.url('/exact-chunked')}`, courier.token, [exact.slice(0, 500), exact.slice(500)]),
    );
    assert.equal(answer.status, 200, answer.body);
    await destination.waitFor(2);
    await sleep(100);
    assert.deepEqual(destination.arrivals.map((a) => a.path).sort(), ['/exact', '/exact-chunked']);
    for (const arrival of destination.arrivals) assert.equal(arrival.body.toString(), exact);
  });

  it('keeps serving after refusing large bodies', async () => {
    const res = await courier.api(`/v2/publish/${destination.url('/small')}`, { method: 'POST', body: 'small' });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  });
});

// ---------------------------------------------------------------------------
// A real `src/main.ts` process.

interface ChildCourier {
  url: string;
  port: number;
  dataDir: string;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then wait for the exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
}

async function spawnCourier(dataDir: string, env: Record<string, string> = {}): Promise<ChildCourier> {
  const port = await freePort();
  let output = '';
  const main = spawnMain({ PORT: String(port), HOST: '127.0.0.1', COURIER_DATA_DIR: dataDir, ...env }, (chunk) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  await waitUntilServing(main, url, '/health', () => output);
  // main.ts logs this right after printing any generated credentials, on the
  // same stream: once it is here, everything start-up prints is here.
  await eventually(() => (output.includes('Courier listening') ? true : undefined), 5_000, 'the start-up log line');
  return {
    url,
    port,
    dataDir,
    output: () => output,
    stop: () => stopMain(main),
  };
}

after(killChildren);

describe('secrets stay out of the logs of a running courier', () => {
  const TOKEN = 'tok_SecretLogCanary_0123456789abcdef';
  const CURRENT = 'sig_CurrentKeyCanary0123456789ab';
  const NEXT = 'sig_NextKeyCanary0123456789abcd';
  let dataDir: string;
  let destination: Destination;
  let courier: ChildCourier;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'courier-logs-'));
    // The first attempt at /flaky fails (with its headers and body in the logs, if anything logs them), the retry succeeds.
    destination = await startDestination((arrival, index) =>
      arrival.path === '/flaky' && destination.arrivals.filter((a) => a.path === '/flaky').length === 1
        ? { status: 500, headers: { 'Retry-After': '0' }, body: `failed #${index}` }
        : { status: 200, body: 'ok' },
    );
    courier = await spawnCourier(dataDir, {
      QSTASH_TOKEN: TOKEN,
      QSTASH_CURRENT_SIGNING_KEY: CURRENT,
      QSTASH_NEXT_SIGNING_KEY: NEXT,
      COURIER_LOG_LEVEL: 'trace',
    });
  });
  after(async () => {
    await courier?.stop();
    await destination.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('logs neither the token nor the signing keys after publishes, 401s, deliveries and a retry', async () => {
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const ok = await fetch(`${courier.url}/v2/publish/${destination.url('/hook')}`, {
      method: 'POST',
      headers: { ...auth, 'Upstash-Forward-X-Api-Key': 'forwarded-value' },
      body: 'hello',
    });
    assert.equal(ok.status, 200, await ok.text());
    const flaky = await fetch(`${courier.url}/v2/publish/${destination.url('/flaky')}`, { method: 'POST', headers: auth, body: 'again' });
    assert.equal(flaky.status, 200, await flaky.text());
    for (const name of ['qstash_token', 'qstash%5Ftoken']) {
      const viaQuery = await fetch(`${courier.url}/v2/publish/${destination.url('/query')}?${name}=${TOKEN}`, { method: 'POST', body: 'q' });
      assert.equal(viaQuery.status, 200, await viaQuery.text());
    }
    const deniedHeaders: Record<string, string>[] = [{ Authorization: `Basic ${TOKEN}` }, { Authorization: `Bearer ${TOKEN}-wrong` }, {}];
    for (const headers of deniedHeaders) {
      const denied = await fetch(`${courier.url}/v2/events`, { headers });
      assert.equal(denied.status, 401);
      await denied.arrayBuffer();
    }
    const keys = await fetch(`${courier.url}/v2/keys`, { headers: auth });
    assert.deepEqual(await keys.json(), { current: CURRENT, next: NEXT });
    const bad = await fetch(`${courier.url}/v2/publish/${destination.url('/x')}`, { method: 'POST', headers: { ...auth, 'Upstash-Retries': 'abc' } });
    assert.equal(bad.status, 400);
    await bad.arrayBuffer();

    // hello, the failed and the retried /flaky, and /query twice.
    await destination.waitFor(5);
    await courier.stop();
    const output = courier.output();
    assert.ok(output.length > 0, 'the child logged something at trace level');
    assert.ok(!output.includes(TOKEN), 'the token appears in the logs');
    assert.ok(!output.includes(CURRENT), 'the current signing key appears in the logs');
    assert.ok(!output.includes(NEXT), 'the next signing key appears in the logs');
    assert.ok(!/QSTASH_TOKEN=/.test(output), 'configured credentials are not printed as generated');
  });
});

describe('credentials generated on the first start', () => {
  let root: string;
  let dataDir: string;
  let generated: Record<string, string>;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'courier-first-start-'));
    // A data dir that does not exist yet: Courier creates it, with whatever permissions it chooses.
    dataDir = join(root, 'data');
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const keysWith = (url: string, token: string) => fetch(`${url}/v2/keys`, { headers: { Authorization: `Bearer ${token}` } });

  it('prints the four QSTASH_* lines, writes them to courier.env with mode 0600, and they work', async () => {
    const courier = await spawnCourier(dataDir);
    try {
      const output = courier.output();
      generated = {};
      for (const name of ['QSTASH_URL', 'QSTASH_TOKEN', 'QSTASH_CURRENT_SIGNING_KEY', 'QSTASH_NEXT_SIGNING_KEY']) {
        const match = new RegExp(`^${name}=(\\S+)$`, 'm').exec(output);
        assert.ok(match, `${name}= is printed:\n${output}`);
        generated[name] = match[1]!;
      }
      assert.equal(generated.QSTASH_URL, `http://localhost:${courier.port}`);
      const envFile = join(dataDir, 'courier.env');
      assert.equal(statSync(envFile).mode & 0o777, 0o600);
      const written = readFileSync(envFile, 'utf8');
      for (const [name, value] of Object.entries(generated)) assert.ok(written.includes(`${name}=${value}\n`), `${name} in courier.env`);

      const keys = await keysWith(courier.url, generated.QSTASH_TOKEN!);
      assert.equal(keys.status, 200);
      assert.deepEqual(await keys.json(), { current: generated.QSTASH_CURRENT_SIGNING_KEY, next: generated.QSTASH_NEXT_SIGNING_KEY });
    } finally {
      await courier.stop();
    }
  });

  it('keeps the stored credentials out of reach of other users', () => {
    // courier.db holds the token and the signing keys, as courier.env does.
    const dirMode = statSync(dataDir).mode & 0o777;
    const dbMode = statSync(join(dataDir, 'courier.db')).mode & 0o777;
    assert.ok(
      (dirMode & 0o077) === 0 || (dbMode & 0o077) === 0,
      `data dir is ${dirMode.toString(8)} and courier.db is ${dbMode.toString(8)}: other users can read the stored token and keys`,
    );
  });

  it('reuses the same token and keys on the next start, without printing them again', async () => {
    const courier = await spawnCourier(dataDir);
    try {
      assert.ok(!/QSTASH_TOKEN=/.test(courier.output()), courier.output());
      assert.ok(!courier.output().includes(generated.QSTASH_TOKEN!), 'the token is not printed or logged again');
      const keys = await keysWith(courier.url, generated.QSTASH_TOKEN!);
      assert.equal(keys.status, 200);
      assert.deepEqual(await keys.json(), { current: generated.QSTASH_CURRENT_SIGNING_KEY, next: generated.QSTASH_NEXT_SIGNING_KEY });
    } finally {
      await courier.stop();
    }
  });

  it('on a later start on another port, rewrites courier.env with that port and logs where it is', async () => {
    const courier = await spawnCourier(dataDir);
    try {
      const envFile = join(dataDir, 'courier.env');
      const written = readFileSync(envFile, 'utf8');
      assert.ok(written.includes(`QSTASH_URL=http://localhost:${courier.port}\n`), written);
      assert.ok(written.includes(`QSTASH_TOKEN=${generated.QSTASH_TOKEN}\n`), 'the same token');
      assert.equal(statSync(envFile).mode & 0o777, 0o600);
      assert.ok(courier.output().includes(`"credentials":${JSON.stringify(envFile)}`), courier.output());
      assert.ok(!courier.output().includes(generated.QSTASH_TOKEN!), 'the token is not logged');
    } finally {
      await courier.stop();
    }
  });

  for (const variable of ['QSTASH_TOKEN', 'COURIER_TOKEN']) {
    it(`lets a configured ${variable} win over the stored token`, async () => {
      const configured = `configured-${variable.toLowerCase()}-token`;
      const courier = await spawnCourier(dataDir, { [variable]: configured });
      try {
        const res = await keysWith(courier.url, configured);
        assert.equal(res.status, 200);
        await res.arrayBuffer();
        const old = await keysWith(courier.url, generated.QSTASH_TOKEN!);
        assert.equal(old.status, 401);
        await old.arrayBuffer();
        assert.ok(!/QSTASH_TOKEN=/.test(courier.output()), courier.output());
      } finally {
        await courier.stop();
      }
    });
  }
});

describe('an operator token with generated signing keys', () => {
  const OPERATOR_TOKEN = 'tok_OperatorCanary_0123456789abcdef';
  let dataDir: string;
  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'courier-operator-token-'));
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('prints and writes to courier.env the generated signing keys, never the operator’s token', async () => {
    const courier = await spawnCourier(dataDir, { QSTASH_TOKEN: OPERATOR_TOKEN });
    let output: string;
    try {
      const keys = await fetch(`${courier.url}/v2/keys`, { headers: { Authorization: `Bearer ${OPERATOR_TOKEN}` } });
      assert.equal(keys.status, 200);
      const { current, next } = (await keys.json()) as { current: string; next: string };
      output = courier.output();
      assert.ok(output.includes(`QSTASH_CURRENT_SIGNING_KEY=${current}\n`), output);
      assert.ok(output.includes(`QSTASH_NEXT_SIGNING_KEY=${next}\n`), output);
      const written = readFileSync(join(dataDir, 'courier.env'), 'utf8');
      assert.ok(written.includes(`QSTASH_CURRENT_SIGNING_KEY=${current}\n`), written);
      assert.ok(written.includes(`QSTASH_NEXT_SIGNING_KEY=${next}\n`), written);
      assert.ok(written.includes(`QSTASH_URL=http://localhost:${courier.port}\n`), written);
      assert.ok(!written.includes(OPERATOR_TOKEN), `courier.env holds the operator's token:\n${written}`);
    } finally {
      await courier.stop();
    }
    assert.ok(!courier.output().includes(OPERATOR_TOKEN), `the operator's token was printed:\n${courier.output()}`);
    assert.ok(!/^QSTASH_TOKEN=/m.test(output), output);
  });
});
