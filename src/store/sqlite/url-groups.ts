/** URL groups on SQLite: a group row and its endpoints in the order they were added. */
import type { Endpoint, EndpointSelector, UrlGroup } from '../../core/url-group.js';
import type { EndpointRemoval } from '../port.js';
import { Rollback, type Sql } from './sql.js';

interface GroupRow {
  name: string;
  created_at: number;
  updated_at: number;
}

export class SqliteUrlGroups {
  constructor(private readonly sql: Sql) {}

  add(group: string, endpoints: Endpoint[], at: number): void {
    this.sql.transaction(() => {
      this.sql
        .stmt(`INSERT INTO url_groups (name, created_at, updated_at) VALUES (?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at`)
        .run(group, at, at);
      for (const endpoint of endpoints) {
        // Identity (A30): the name when there is one, else the URL; a match is replaced, never duplicated.
        const existing = (
          endpoint.name === undefined
            ? this.sql.stmt('SELECT seq FROM url_group_endpoints WHERE group_name = ? AND name IS NULL AND url = ?').get(group, endpoint.url)
            : this.sql.stmt('SELECT seq FROM url_group_endpoints WHERE group_name = ? AND name = ?').get(group, endpoint.name)
        ) as { seq: number } | undefined;
        if (existing) this.sql.stmt('UPDATE url_group_endpoints SET url = ? WHERE seq = ?').run(endpoint.url, existing.seq);
        else {
          this.sql
            .stmt('INSERT INTO url_group_endpoints (group_name, name, url) VALUES (?, ?, ?)')
            .run(group, endpoint.name ?? null, endpoint.url);
        }
      }
    });
  }

  remove(group: string, endpoints: EndpointSelector[], at: number): EndpointRemoval | undefined {
    try {
      return this.sql.transaction(() => {
        if (!this.sql.stmt('SELECT 1 FROM url_groups WHERE name = ?').get(group)) return undefined;
        let removed = 0;
        for (const endpoint of endpoints) {
          const changes = this.sql
            .stmt(`DELETE FROM url_group_endpoints WHERE group_name = ?
                   AND (? IS NULL OR name = ?) AND (? IS NULL OR url = ?)`)
            .run(group, endpoint.name ?? null, endpoint.name ?? null, endpoint.url ?? null, endpoint.url ?? null).changes;
          if (changes === 0) throw new Rollback<EndpointRemoval>({ notFound: endpoint });
          removed += changes;
        }
        const left = this.sql.stmt('SELECT count(*) FROM url_group_endpoints WHERE group_name = ?').pluck().get(group) as number;
        if (left === 0) this.sql.stmt('DELETE FROM url_groups WHERE name = ?').run(group);
        else this.sql.stmt('UPDATE url_groups SET updated_at = ? WHERE name = ?').run(at, group);
        return { removed, groupDeleted: left === 0 };
      });
    } catch (error) {
      if (error instanceof Rollback) return error.answer as EndpointRemoval;
      throw error;
    }
  }

  get(name: string): UrlGroup | undefined {
    const row = this.sql.stmt('SELECT name, created_at, updated_at FROM url_groups WHERE name = ?').get(name) as GroupRow | undefined;
    return row && this.withEndpoints(row);
  }

  list(): UrlGroup[] {
    const rows = this.sql.stmt('SELECT name, created_at, updated_at FROM url_groups ORDER BY name').all() as GroupRow[];
    return rows.map((row) => this.withEndpoints(row));
  }

  delete(name: string): boolean {
    return this.sql.transaction(() => {
      this.sql.stmt('DELETE FROM url_group_endpoints WHERE group_name = ?').run(name);
      return this.sql.stmt('DELETE FROM url_groups WHERE name = ?').run(name).changes > 0;
    });
  }

  private withEndpoints(row: GroupRow): UrlGroup {
    const endpoints = (
      this.sql.stmt('SELECT name, url FROM url_group_endpoints WHERE group_name = ? ORDER BY seq').all(row.name) as {
        name: string | null;
        url: string;
      }[]
    ).map(({ name, url }): Endpoint => (name === null ? { url } : { name, url }));
    return { name: row.name, endpoints, createdAt: row.created_at, updatedAt: row.updated_at };
  }
}
