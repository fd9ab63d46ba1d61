/**
 * `npm start` on a shared store: nothing creates the data dir for SQLite's
 * sake, yet the generated credentials file must still be written there.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually } from '../helpers/destination.js';
import { freePort, killChildren, spawnServingCourier, stopMain } from '../helpers/processes.js';
import { freshStore, POSTGRES_URL, REDIS_URL, unavailable } from '../helpers/services.js';

after(killChildren);

for (const [kind, name, url] of [['postgres', 'PostgreSQL', POSTGRES_URL], ['redis', 'Redis', REDIS_URL]] as const) {
  describe(`starting on ${name}`, async () => {
    const skip = await unavailable(name, url);
    it('creates the data dir and writes the generated credentials there, mode 0600', { skip }, async () => {
      const parent = mkdtempSync(join(tmpdir(), 'courier-start-'));
      const dataDir = join(parent, 'not-yet-there');
      const store = await freshStore(kind);
      try {
        const courier = await spawnServingCourier(dataDir, await freePort(), 'start-test-token-0123456789', { COURIER_STORE: store.location! });
        try {
          const envFile = join(dataDir, 'courier.env');
          // main writes it just after the server starts answering.
          await eventually(() => (existsSync(envFile) ? true : undefined), 5_000, `${envFile} (output:\n${courier.output()})`);
          assert.equal(statSync(envFile).mode & 0o777, 0o600);
        } finally {
          await stopMain(courier);
        }
      } finally {
        await store.drop();
        rmSync(parent, { recursive: true, force: true });
      }
    });
  });
}
