#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with Node's own test runner, with
// tsx as the TypeScript loader. Node 20's `--test` takes no glob, so the files
// are listed here; a filter argument narrows them (`npm test -- sqlite`).
//
// The end-to-end suites (test/integration) then run again on each shared store
// (COURIER_TEST_STORE=postgres, =redis), so one suite covers all three stores.
// COURIER_TEST_STORES narrows the list (e.g. `sqlite`).
//
// The shared stores are COURIER_TEST_POSTGRES_URL and COURIER_TEST_REDIS_URL
// (defaults in test-services.mjs). Before any test, each store a selected file
// needs is connected to and authenticated with its real driver: one that is
// not reachable is skipped with one line, except in CI, where it fails; one
// that answers but refuses the credentials or the database fails the run with
// one line, before a single test is cancelled over it.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Every test process loads the leak check; --test-force-exit ends a file once its tests and hooks
// are done, so a leaked handle fails the file (see the check's header) instead of hanging it.
const LEAK_CHECK = fileURLToPath(new URL('../test/helpers/leak-check.ts', import.meta.url));

import { addressOf, probe, serviceUrl, TEST_SERVICES } from './test-services.mjs';

const DEFAULT_STORES = 'sqlite,postgres,redis';

function findTests(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === 'node_modules') continue;
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

function run(files, store) {
  if (files.length === 0) return 0;
  console.log(`\n# ${files.length} test file(s) on the ${store} store`);
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--import', LEAK_CHECK, '--test', '--test-force-exit', '--test-reporter=spec', '--test-concurrency=2', ...files],
    { stdio: 'inherit', env: { ...process.env, COURIER_TEST_STORE: store } },
  );
  return result.status ?? 1;
}

const filters = process.argv.slice(2);
const files = ['src', 'test']
  .flatMap(findTests)
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

const stores = (process.env.COURIER_TEST_STORES ?? DEFAULT_STORES).split(',').map((s) => s.trim());
for (const store of stores) {
  if (store !== 'sqlite' && !(store in TEST_SERVICES)) {
    console.error(`COURIER_TEST_STORES: unknown store "${store}"`);
    process.exit(1);
  }
}
// Files that pick their store themselves run once: multi-node covers kill -9 on the shared stores;
// crash-recovery and restart-* are about the embedded store's own restart; the gateway mode and the
// seed-000 example run their own processes, each on its own SQLite file; store-outage cuts its own PostgreSQL and Redis.
const OWN_STORE = ['multi-node', 'store-outage', 'shared-store-start', 'crash-recovery', 'restart-', 'gateway-mode', 'example-seed-000'];
const endToEnd = files.filter((file) => file.includes(join('test', 'integration')) && !OWN_STORE.some((name) => file.includes(name)));
/** Files of the SQLite pass that open a shared store themselves (the store contracts, multi-node). */
const USES_SHARED = { postgres: ['postgres-store', 'multi-node', 'shared-store-start'], redis: ['redis-store', 'multi-node', 'shared-store-start'] };

// Checked once, up front, for every shared store a selected file will open.
const needed = Object.keys(TEST_SERVICES).filter(
  (store) =>
    (stores.includes(store) && endToEnd.length > 0) ||
    (stores.includes('sqlite') && files.some((file) => USES_SHARED[store].some((name) => file.includes(name)))),
);
const available = new Set();
let failed = false;
for (const store of needed) {
  const url = serviceUrl(store);
  const { env } = TEST_SERVICES[store];
  const result = await probe(store, url);
  if (result.ok) {
    available.add(store);
    continue;
  }
  if (!result.unreachable) {
    console.error(`# ${store} at ${addressOf(url)} refused the test credentials (${result.reason}): set ${env}`);
    process.exit(1);
  }
  const line = `# ${store} is not reachable at ${addressOf(url)} (${env}): the suites on it are skipped`;
  if (process.env.CI) {
    console.error(`${line} — but CI must run them`);
    failed = true;
  } else console.log(line);
}
if (failed) process.exit(1);

if (stores.includes('sqlite')) failed = run(files, 'sqlite') !== 0;
for (const store of stores.filter((s) => s !== 'sqlite')) {
  if (!available.has(store)) continue;
  failed = run(endToEnd, store) !== 0 || failed;
}
process.exit(failed ? 1 : 0);
