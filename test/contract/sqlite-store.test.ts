/** The store contract on the embedded SQLite store: a fresh temp file per case; a reopen happens now, by the wall clock. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { runLifecycleContract } from './store-contract-lifecycle.js';
import { runStoreContract, type StoreUnderTest } from './store-contract.js';

const makeStore = async (): Promise<StoreUnderTest> => {
  const dir = await mkdtemp(join(tmpdir(), 'courier-store-contract-'));
  const path = join(dir, 'courier.db');
  let current = openSqliteStore({ path, openedAt: Date.now() });
  return {
    store: current,
    // The file is held exclusively, so the old connection must close before the new one opens.
    reopen: async () => {
      await current.close();
      current = openSqliteStore({ path, openedAt: Date.now() });
      return current;
    },
    cleanup: async () => {
      await current.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
};

runStoreContract('SqliteStore', makeStore);
runLifecycleContract('SqliteStore', makeStore);
