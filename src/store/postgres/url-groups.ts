/** URL groups on PostgreSQL: a group row and its endpoints in the order they were added. */
import type { Endpoint, EndpointSelector, UrlGroup } from '../../core/url-group.js';
import type { EndpointRemoval, UrlGroupStore } from '../port.js';
import { exec, first, rows, type Db, type Pg } from './sql.js';

interface GroupRow {
  name: string;
  created_at: number;
  updated_at: number;
  endpoints: { name: string | null; url: string }[] | null;
}

/** Endpoints come back as one JSON array per group, so a listing is one query. */
const SELECT_GROUP = `SELECT g.name, g.created_at, g.updated_at,
  (SELECT json_agg(json_build_object('name', e.name, 'url', e.url) ORDER BY e.seq)
   FROM url_group_endpoints e WHERE e.group_name = g.name) AS endpoints
  FROM url_groups g`;

function groupFromRow(row: GroupRow): UrlGroup {
  const endpoints = (row.endpoints ?? []).map(({ name, url }): Endpoint => (name === null ? { url } : { name, url }));
  return { name: row.name, endpoints, createdAt: row.created_at, updatedAt: row.updated_at };
}

/** Thrown inside a transaction to roll it back; carries the caller's answer out. */
export class Rollback<T> extends Error {
  constructor(readonly answer: T) {
    super('rollback');
  }
}

/** Runs in a transaction; throws Rollback with notFound when an item matches nothing. */
async function removeEndpoints(
  db: Db,
  group: string,
  endpoints: readonly EndpointSelector[],
  at: number,
): Promise<EndpointRemoval | undefined> {
  if (!(await first(db, 'SELECT 1 FROM url_groups WHERE name = $1 FOR UPDATE', [group]))) return undefined;
  let removed = 0;
  for (const endpoint of endpoints) {
    const changes = await exec(
      db,
      `DELETE FROM url_group_endpoints WHERE group_name = $1
       AND ($2::text IS NULL OR name = $2) AND ($3::text IS NULL OR url = $3)`,
      [group, endpoint.name ?? null, endpoint.url ?? null],
    );
    if (changes === 0) throw new Rollback<EndpointRemoval>({ notFound: endpoint });
    removed += changes;
  }
  const left = await first<{ n: number }>(db, 'SELECT count(*) AS n FROM url_group_endpoints WHERE group_name = $1', [group]);
  const groupDeleted = (left?.n ?? 0) === 0;
  if (groupDeleted) await exec(db, 'DELETE FROM url_groups WHERE name = $1', [group]);
  else await exec(db, 'UPDATE url_groups SET updated_at = $2 WHERE name = $1', [group, at]);
  return { removed, groupDeleted };
}

/** The port's URL-group verbs. */
export function postgresUrlGroups(pg: Pg): UrlGroupStore {
  return {
    /** Runs in a transaction; the group row is locked first, so concurrent edits of one group apply one after the other. */
    async addEndpoints(group: string, endpoints: readonly Endpoint[], at: number) {
      return pg.transaction(async (db) => {
        await exec(
          db,
          `INSERT INTO url_groups (name, created_at, updated_at) VALUES ($1, $2, $2)
           ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at`,
          [group, at],
        );
        for (const endpoint of endpoints) {
          // Identity (A30): the name when there is one, else the URL; a match is replaced, never duplicated.
          const replaced =
            endpoint.name === undefined
              ? await exec(db, 'UPDATE url_group_endpoints SET url = $2 WHERE group_name = $1 AND name IS NULL AND url = $2', [group, endpoint.url])
              : await exec(db, 'UPDATE url_group_endpoints SET url = $3 WHERE group_name = $1 AND name = $2', [group, endpoint.name, endpoint.url]);
          if (replaced === 0) {
            await exec(db, 'INSERT INTO url_group_endpoints (group_name, name, url) VALUES ($1, $2, $3)', [
              group,
              endpoint.name ?? null,
              endpoint.url,
            ]);
          }
        }
      });
    },

    async removeEndpoints(group, endpoints, at) {
      try {
        return await pg.transaction((tx) => removeEndpoints(tx, group, endpoints, at));
      } catch (error) {
        if (error instanceof Rollback) return error.answer as EndpointRemoval;
        throw error;
      }
    },

    async getUrlGroup(name: string) {
      const db = pg.sql;
      const row = await first<GroupRow>(db, `${SELECT_GROUP} WHERE g.name = $1`, [name]);
      return row && groupFromRow(row);
    },

    async listUrlGroups() {
      const db = pg.sql;
      return (await rows<GroupRow>(db, `${SELECT_GROUP} ORDER BY g.name COLLATE "C"`)).map(groupFromRow);
    },

    /** One statement: the group and its endpoints go together. */
    async deleteUrlGroup(name: string) {
      const db = pg.sql;
      const deleted = await rows<{ name: string }>(
        db,
        `WITH e AS (DELETE FROM url_group_endpoints WHERE group_name = $1)
         DELETE FROM url_groups WHERE name = $1 RETURNING name`,
        [name],
      );
      return deleted.length > 0;
    },
  };
}
