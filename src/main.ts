#!/usr/bin/env node
/**
 * `npm start`: Courier on the embedded SQLite store. On the first start with
 * no token or keys configured, it generates them, keeps them in the data dir,
 * and prints the lines an app pastes into its environment.
 *
 * `courier gateway` (`npm start -- gateway`): the stand-alone gateway in
 * front of hosted QStash instead (src/gateway-server.ts).
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { loadConfig, type Config } from './core/config.js';
import { loadGatewayConfig } from './gateway/gateway-config.js';
import { startGateway } from './gateway-server.js';
import { startCourier, type CourierServer } from './server.js';

function envLines(config: Config, server: CourierServer): string {
  const url = config.publicUrl ?? `http://localhost:${server.port}`;
  const keys = server.keys.signingKeys();
  return [
    `QSTASH_URL=${url}`,
    `QSTASH_TOKEN=${server.keys.token}`,
    `QSTASH_CURRENT_SIGNING_KEY=${keys.current}`,
    `QSTASH_NEXT_SIGNING_KEY=${keys.next}`,
  ].join('\n');
}

/** A configuration error is the user's to fix: say what is wrong, without a stack trace, and exit 2. */
function configOrExit<T>(load: () => T): T {
  try {
    return load();
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  }
}

async function main(): Promise<void> {
  const config = configOrExit(loadConfig);
  const server = await startCourier(config);
  const envFile = join(config.dataDir, 'courier.env');
  if (server.keys.generated) {
    // With a PostgreSQL or Redis store nothing else creates the data dir.
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    // Written for the user to copy; readable by this user only, like any credentials file.
    writeFileSync(envFile, `${envLines(config, server)}\n`, { mode: 0o600 });
    chmodSync(envFile, 0o600);
    process.stdout.write(
      `\nCourier generated credentials (kept in the ${config.store.kind} store; also in ${envFile}).\n` +
        `Put these in your app's environment:\n\n${envLines(config, server)}\n\n`,
    );
  }
  server.logger.info(
    { url: server.url, dataDir: config.dataDir, credentials: server.keys.generated ? envFile : 'unchanged' },
    `Courier listening on port ${server.port}`,
  );
  stopOnSignals(server);
}

/** SIGINT/SIGTERM: finish what is in flight, close the store, exit. */
function stopOnSignals(server: { logger: Logger; close(): Promise<void> }): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.logger.info({ signal }, 'shutting down: finishing deliveries in flight');
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        server.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function gateway(): Promise<void> {
  stopOnSignals(await startGateway(configOrExit(loadGatewayConfig)));
}

const command = process.argv[2];
if (command === undefined) await main();
else if (command === 'gateway') await gateway();
else {
  console.error(`unknown command "${command}"; usage: courier [gateway]`);
  process.exit(2);
}
