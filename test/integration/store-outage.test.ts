/**
 * A store that stops answering is a 503 STORE_UNAVAILABLE with Retry-After,
 * not a 500, and Courier recovers by itself when the store comes back. The
 * outage is real: Courier reaches PostgreSQL and Redis through a TCP relay
 * that this test cuts (every connection dropped, new ones refused) and
 * restores on the same port.
 */
import assert from 'node:assert/strict';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually } from '../helpers/destination.js';
import { freshStore, POSTGRES_URL, REDIS_URL, unavailable, type FreshStore } from '../helpers/services.js';

/** A TCP relay to `target` that can be cut and restored on the same port. */
class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: URL) {}

  async open(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = createConnection({ host: this.target.hostname, port: Number(this.target.port) });
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.once('close', () => upstream.destroy());
      upstream.once('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }
}

const STORES = [
  { kind: 'postgres', name: 'PostgreSQL', url: POSTGRES_URL },
  { kind: 'redis', name: 'Redis', url: REDIS_URL },
] as const;

for (const { kind, name, url } of STORES) {
  describe(`a ${name} outage`, async () => {
    const skip = await unavailable(name, url);
    let relay: Relay;
    let store: FreshStore;
    let courier: TestCourier;

    before(async () => {
      if (skip) return;
      relay = new Relay(new URL(url));
      await relay.open();
      store = await freshStore(kind);
      const location = new URL(store.location!);
      location.port = String(relay.port);
      courier = await startTestCourier({ COURIER_STORE: location.toString() });
    });
    after(async () => {
      if (skip) return;
      await relay.open();
      await courier.stop();
      await store.drop();
      await relay.cut();
    });

    const publish = () =>
      courier.api('/v2/publish/http://127.0.0.1:9/outage', { method: 'POST', body: 'x', headers: { 'Upstash-Delay': '1h' } });

    it('answers 503 STORE_UNAVAILABLE with Retry-After while the store is gone, and recovers when it is back', { skip }, async () => {
      assert.equal((await publish()).status, 200);

      await relay.cut();
      const refused = await publish();
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '1');
      const body = (await refused.json()) as { error: string; code: string };
      assert.equal(body.code, 'STORE_UNAVAILABLE');
      assert.doesNotMatch(body.error, /ECONNREFUSED|127\.0\.0\.1/, 'the driver’s words stay in the log');

      await relay.open();
      await eventually(async () => ((await publish()).status === 200 ? true : undefined), 15_000, 'a publish accepted again');
    });
  });
}
