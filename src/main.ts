#!/usr/bin/env node
/**
 * `npm start`: Courier on the embedded SQLite store. On the first start with
 * no token or keys configured, it generates them, keeps them in the store,
 * and prints the lines an app pastes into its environment; every start keeps
 * those lines current in <data dir>/courier.env and logs where that file is.
 *
 * `courier gateway` (`npm start -- gateway`): the stand-alone gateway in
 * front of hosted QStash instead (src/gateway-server.ts).
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { loadConfig, type Config } from './core/config.js';
import { loadGatewayConfig } from './gateway/gateway-config.js';
import { startGateway } from './gateway-server.js';
import { startCourier, type CourierServer } from './server.js';

/**
 * The lines an app needs: the URL and the credentials Courier holds itself.
 * A value the operator configured is never printed or written (they have
 * it); a comment says where it comes from instead.
 */
function envLines(config: Config, server: CourierServer): string {
  const url = config.publicUrl ?? `http://localhost:${server.port}`;
  const own = server.keys.ownCredentials();
  const line = (name: string, value: string | undefined) => (value === undefined ? `# ${name}: as set in Courier's environment` : `${name}=${value}`);
  return [
    `QSTASH_URL=${url}`,
    line('QSTASH_TOKEN', own.token),
    line('QSTASH_CURRENT_SIGNING_KEY', own.currentSigningKey),
    line('QSTASH_NEXT_SIGNING_KEY', own.nextSigningKey),
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
  const fromEnvironment = server.keys.configured.token && server.keys.configured.signingKeys;
  const envFile = join(config.dataDir, 'courier.env');
  if (!fromEnvironment) keepEnvFileTrue(envFile, config, server);
  if (server.keys.generated) {
    process.stdout.write(
      `\nCourier generated credentials (kept in the ${config.store.kind} store; also in ${envFile}).\n` +
        `Put these in your app's environment:\n\n${envLines(config, server)}\n\n`,
    );
  }
  // Where the credentials are, on every start; never the secrets themselves.
  server.logger.info(
    { url: server.url, dataDir: config.dataDir, credentials: fromEnvironment ? 'from the environment' : envFile },
    `Courier listening on port ${server.port}`,
  );
  stopOnSignals(server);
}

/**
 * courier.env holds what an app needs to reach this Courier now: rewritten
 * when anything in it changed (the port, a configured token, keys rotated
 * since the last start), so it never shows the first start's port.
 */
function keepEnvFileTrue(envFile: string, config: Config, server: CourierServer): void {
  const wanted = `${envLines(config, server)}\n`;
  let current: string | undefined;
  try {
    current = readFileSync(envFile, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === wanted) return;
  // With a PostgreSQL or Redis store nothing else creates the data dir.
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // Credentials: readable by this user only. chmod too, as mode applies only when the file is created.
  writeFileSync(envFile, wanted, { mode: 0o600 });
  chmodSync(envFile, 0o600);
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
