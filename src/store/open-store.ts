/** Opens the store COURIER_STORE names. Adapters are imported only when chosen, so a SQLite node never loads a driver it does not use. */
import type { StoreLocation } from '../core/config.js';
import type { Store } from './port.js';

export async function openStore(location: StoreLocation): Promise<Store> {
  switch (location.kind) {
    case 'sqlite': {
      const { SqliteStore } = await import('./sqlite/sqlite-store.js');
      return new SqliteStore({ path: location.path, synchronous: location.synchronous });
    }
    case 'postgres':
    case 'redis':
      throw new Error(`COURIER_STORE: the ${location.kind} store is not available in this build yet`);
  }
}
