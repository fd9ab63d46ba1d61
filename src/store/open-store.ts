/** Opens the store COURIER_STORE names. Adapters are imported only when chosen, so a SQLite node never loads a driver it does not use. */
import type { StoreLocation } from '../core/config.js';
import type { Store } from './port.js';

export async function openStore(location: StoreLocation): Promise<Store> {
  switch (location.kind) {
    case 'sqlite': {
      const { SqliteStore } = await import('./sqlite/sqlite-store.js');
      return new SqliteStore({ path: location.path, synchronous: location.synchronous });
    }
    case 'redis': {
      const { RedisStore } = await import('./redis/redis-store.js');
      return RedisStore.open({ url: location.url, prefix: location.prefix });
    }
    case 'postgres': {
      const { PostgresStore } = await import('./postgres/postgres-store.js');
      return PostgresStore.open(location.schema === undefined ? { url: location.url } : { url: location.url, schema: location.schema });
    }
  }
}
