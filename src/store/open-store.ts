/** Opens the store COURIER_STORE names. Adapters are imported only when chosen, so a SQLite node never loads a driver it does not use. */
import type { StoreLocation } from '../core/config.js';
import type { Store } from './port.js';

/** `now` is the caller's clock at opening: the store itself reads none. */
export async function openStore(location: StoreLocation, now: number): Promise<Store> {
  switch (location.kind) {
    case 'sqlite': {
      const { openSqliteStore } = await import('./sqlite/sqlite-store.js');
      return openSqliteStore({ path: location.path, synchronous: location.synchronous, openedAt: now });
    }
    case 'redis': {
      const { openRedisStore } = await import('./redis/redis-store.js');
      return openRedisStore({ url: location.url, prefix: location.prefix });
    }
    case 'postgres': {
      const { openPostgresStore } = await import('./postgres/postgres-store.js');
      const schema = location.schema === undefined ? {} : { schema: location.schema };
      return openPostgresStore({ url: location.url, ...schema, openedAt: now });
    }
  }
}
