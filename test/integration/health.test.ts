/**
 * Health probes: plain answers for load balancers (open), and a detailed
 * report (the token, unless COURIER_HEALTH_DETAILED_PUBLIC=true) whose
 * backlog figures follow the real store (messages waiting, in flight, dead)
 * within a bounded refresh: they come from a snapshot taken at most once a
 * second, off the request path.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/core/config.js';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually, startDestination, type Destination } from '../helpers/destination.js';

const VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

interface DetailedReport {
  status: string;
  version: string;
  uptimeSeconds: number;
  store: { kind: string; reachable: boolean };
  backlog: { pending: number; active: number; deadLetters: number };
  inFlight: number;
}

describe('health probes', () => {
  let courier: TestCourier;
  let destination: Destination;
  before(async () => {
    courier = await startTestCourier();
    // /hang never answers (the attempt stays in flight); everything else fails for good.
    destination = await startDestination((arrival) => (arrival.path.startsWith('/hang') ? { hang: true } : { status: 500 }));
  });
  after(async () => {
    // Closing the destination first ends the hanging attempt, so the courier closes promptly.
    await destination.close();
    await courier.stop();
  });

  /** The plain probes are unauthenticated: plain fetch, no Authorization header. */
  const probe = (path: string, init?: RequestInit) => fetch(`${courier.url}${path}`, init);

  async function detailed(): Promise<DetailedReport> {
    const res = await courier.api('/health/detailed');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    return (await res.json()) as DetailedReport;
  }

  it('/health answers 200 with the text OK, without a token', async () => {
    const res = await probe('/health');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(await res.text(), 'OK');
    const head = await probe('/health', { method: 'HEAD' });
    assert.equal(head.status, 200);
  });

  it('/health/live answers 200', async () => {
    const res = await probe('/health/live');
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  });

  it('/health/ready answers 200 with JSON while the store is reachable', async () => {
    const res = await probe('/health/ready');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(typeof body, 'object');
  });

  it('/health/detailed needs the token: 401 JSON without it or with a wrong one, 200 with it', async () => {
    for (const headers of [{}, { Authorization: 'Bearer not-the-token' }] as Record<string, string>[]) {
      const res = await probe('/health/detailed', { headers });
      const text = await res.text();
      assert.equal(res.status, 401, text);
      assert.equal((JSON.parse(text) as { code: string }).code, 'UNAUTHORIZED');
    }
    const res = await courier.api('/health/detailed');
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  });

  it('/health/live and /health/ready stay open', async () => {
    for (const path of ['/health/live', '/health/ready']) {
      const res = await probe(path);
      assert.equal(res.status, 200, path);
      await res.arrayBuffer();
    }
  });

  it('/health/detailed reports version, uptime, store, an empty backlog and nothing in flight at start', async () => {
    const report = await detailed();
    assert.equal(report.version, VERSION);
    assert.equal(typeof report.uptimeSeconds, 'number');
    assert.ok(report.uptimeSeconds >= 0);
    assert.equal(typeof report.store, 'object');
    assert.equal(report.store.reachable, true);
    assert.equal(typeof report.store.kind, 'string');
    assert.deepEqual(report.backlog, { pending: 0, active: 0, deadLetters: 0 });
    assert.equal(report.inFlight, 0);
  });

  it('/health/detailed counts delayed messages as pending', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await courier.api(`/v2/publish/${destination.url(`/later-${i}`)}`, {
        method: 'POST',
        headers: { 'Upstash-Delay': '1h' },
        body: `delayed ${i}`,
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    const report = await eventually(async () => {
      const latest = await detailed();
      return latest.backlog.pending === 3 ? latest : undefined;
    }, 5_000, 'three pending messages in the report');
    assert.deepEqual(report.backlog, { pending: 3, active: 0, deadLetters: 0 });
    assert.equal(report.inFlight, 0);
  });

  it('/health/detailed counts an attempt in flight as active, and then the dead letter it becomes', async () => {
    const res = await courier.api(`/v2/publish/${destination.url('/hang')}`, {
      method: 'POST',
      // Long enough to outlast one refresh of the report's snapshot (at most a second behind).
      headers: { 'Upstash-Retries': '0', 'Upstash-Timeout': '3s' },
      body: 'hangs',
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    await destination.waitFor(1);
    const during = await eventually(async () => {
      const latest = await detailed();
      return latest.backlog.active === 1 && latest.inFlight === 1 ? latest : undefined;
    }, 5_000, 'the attempt in flight in the report');
    assert.deepEqual(during.backlog, { pending: 3, active: 1, deadLetters: 0 });
    assert.equal(during.inFlight, 1);

    // The 3 s timeout fails the only attempt; with no retries left, it is dead-lettered. On a networked
    // store the settle's commit is visible a moment before delivery counts the attempt as finished.
    const afterwards = await eventually(async () => {
      const report = await detailed();
      return report.backlog.deadLetters === 1 && report.inFlight === 0 ? report : undefined;
    }, 10_000, 'the timed-out message in the DLQ and no attempt in flight');
    assert.deepEqual(afterwards.backlog, { pending: 3, active: 0, deadLetters: 1 });
    assert.equal(afterwards.inFlight, 0);
  });

  it('/health/detailed shows no credentials', async () => {
    const text = await (await courier.api('/health/detailed')).text();
    const keys = courier.server.keys.signingKeys();
    assert.ok(!text.includes(courier.token));
    assert.ok(!text.includes(keys.current));
    assert.ok(!text.includes(keys.next));
  });
});

describe('health probes with COURIER_HEALTH_DETAILED_PUBLIC=true', () => {
  let courier: TestCourier;
  before(async () => {
    courier = await startTestCourier({ COURIER_HEALTH_DETAILED_PUBLIC: 'true' });
  });
  after(async () => {
    await courier.stop();
  });

  it('serves /health/detailed without the token', async () => {
    const res = await fetch(`${courier.url}/health/detailed`);
    assert.equal(res.status, 200);
    const report = (await res.json()) as DetailedReport;
    assert.deepEqual(report.backlog, { pending: 0, active: 0, deadLetters: 0 });
  });

  it('refuses a value that is not true or false at start', () => {
    assert.throws(() => loadConfig({ COURIER_HEALTH_DETAILED_PUBLIC: 'yes' }), /COURIER_HEALTH_DETAILED_PUBLIC/);
  });
});
