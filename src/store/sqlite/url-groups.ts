/** URL groups on SQLite: a group row and its endpoints in the order they were added. */
import type { Endpoint, EndpointSelector, UrlGroup } from '../../core/url-group.js';
import type { EndpointRemoval, UrlGroupStore } from '../port.js';
import { Rollback, type Sql } from './sql.js';

interface GroupRow {
  name: string;
  created_at: number;
  updated_at: number;
}

function withEndpoints(sql: Sql, row: GroupRow): UrlGroup {
  const endpoints = (
    sql.stmt('SELECT name, url FROM url_group_endpoints WHERE group_name = ? ORDER BY seq').all(row.name) as {
      name: string | null;
      url: string;
    }[]
  ).map(({ name, url }): Endpoint => (name === null ? { url } : { name, url }));
  return { name: row.name, endpoints, createdAt: row.created_at, updatedAt: row.updated_at };
}

/** The port's URL-group verbs. */
export function sqliteUrlGroups(sql: Sql): UrlGroupStore {
  return {
    async addEndpoints(group: string, endpoints: Endpoint[], at: number) {
      sql.transaction(() => {
        sql
          .stmt(`INSERT INTO url_groups (name, created_at, updated_at) VALUES (?, ?, ?)
                 ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at`)
          .run(group, at, at);
        for (const endpoint of endpoints) {
          // Identity (A30): the name when there is one, else the URL; a match is replaced, never duplicated.
          const existing = (
            endpoint.name === undefined
              ? sql.stmt('SELECT seq FROM url_group_endpoints WHERE group_name = ? AND name IS NULL AND url = ?').get(group, endpoint.url)
              : sql.stmt('SELECT seq FROM url_group_endpoints WHERE group_name = ? AND name = ?').get(group, endpoint.name)
          ) as { seq: number } | undefined;
          if (existing) sql.stmt('UPDATE url_group_endpoints SET url = ? WHERE seq = ?').run(endpoint.url, existing.seq);
          else {
            sql
              .stmt('INSERT INTO url_group_endpoints (group_name, name, url) VALUES (?, ?, ?)')
              .run(group, endpoint.name ?? null, endpoint.url);
          }
        }
      });
    },

    async removeEndpoints(group: string, endpoints: EndpointSelector[], at: number) {
      try {
        return sql.transaction(() => {
          if (!sql.stmt('SELECT 1 FROM url_groups WHERE name = ?').get(group)) return undefined;
          let removed = 0;
          for (const endpoint of endpoints) {
            const changes = sql
              .stmt(`DELETE FROM url_group_endpoints WHERE group_name = ?
                     AND (? IS NULL OR name = ?) AND (? IS NULL OR url = ?)`)
              .run(group, endpoint.name ?? null, endpoint.name ?? null, endpoint.url ?? null, endpoint.url ?? null).changes;
            if (changes === 0) throw new Rollback<EndpointRemoval>({ notFound: endpoint });
            removed += changes;
          }
          const left = sql.stmt('SELECT count(*) FROM url_group_endpoints WHERE group_name = ?').pluck().get(group) as number;
          if (left === 0) sql.stmt('DELETE FROM url_groups WHERE name = ?').run(group);
          else sql.stmt('UPDATE url_groups SET updated_at = ? WHERE name = ?').run(at, group);
          return { removed, groupDeleted: left === 0 };
        });
      } catch (error) {
        if (error instanceof Rollback) return error.answer as EndpointRemoval;
        throw error;
      }
    },

    async getUrlGroup(name: string) {
      const row = sql.stmt('SELECT name, created_at, updated_at FROM url_groups WHERE name = ?').get(name) as GroupRow | undefined;
      return row && withEndpoints(sql, row);
    },

    async listUrlGroups() {
      const rows = sql.stmt('SELECT name, created_at, updated_at FROM url_groups ORDER BY name').all() as GroupRow[];
      return rows.map((row) => withEndpoints(sql, row));
    },

    async deleteUrlGroup(name: string) {
      return sql.transaction(() => {
        sql.stmt('DELETE FROM url_group_endpoints WHERE group_name = ?').run(name);
        return sql.stmt('DELETE FROM url_groups WHERE name = ?').run(name).changes > 0;
      });
    },
  };
}
