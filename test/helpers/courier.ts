/** Starts a real Courier (real HTTP, real SQLite file in a temp dir) for one test file. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Receiver } from '@upstash/qstash';
import { loadConfig } from '../../src/core/config.js';
import type { Clock } from '../../src/core/clock.js';
import { createLogger } from '../../src/logging.js';
import { startCourier, type CourierServer } from '../../src/server.js';
import { freshStore } from './services.js';

export interface TestCourier {
  server: CourierServer;
  url: string;
  token: string;
  dataDir: string;
  /** The official SDK client, pointed at this Courier. */
  client: Client;
  /** The official SDK receiver with this Courier's current keys. */
  receiver(): Receiver;
  /** A raw authenticated request to the API. */
  api(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

export const TEST_TOKEN = 'test-token-0123456789';

export async function startTestCourier(env: Record<string, string> = {}, options: { clock?: Clock } = {}): Promise<TestCourier> {
  const dataDir = mkdtempSync(join(tmpdir(), 'courier-test-'));
  // COURIER_TEST_STORE picks the store, so the same suites run on SQLite, PostgreSQL and Redis.
  const store = await freshStore();
  const config = loadConfig({
    ...(store.location === undefined ? {} : { COURIER_STORE: store.location }),
    PORT: '0',
    HOST: '127.0.0.1',
    COURIER_DATA_DIR: dataDir,
    QSTASH_TOKEN: TEST_TOKEN,
    COURIER_LOG_LEVEL: process.env.COURIER_TEST_LOG_LEVEL ?? 'silent',
    ...env,
  });
  const server = await startCourier(config, { logger: createLogger(config.logLevel), ...options });
  const client = new Client({ baseUrl: server.url, token: TEST_TOKEN, enableTelemetry: true });
  return {
    server,
    url: server.url,
    token: TEST_TOKEN,
    dataDir,
    client,
    receiver() {
      const keys = server.keys.signingKeys();
      return new Receiver({ currentSigningKey: keys.current, nextSigningKey: keys.next });
    },
    api(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${TEST_TOKEN}`);
      return fetch(`${server.url}${path}`, { ...init, headers });
    },
    async stop() {
      await server.close();
      await store.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
