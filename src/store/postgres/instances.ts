/**
 * Instance groups and their instances on PostgreSQL (the gateway's registry).
 * Several nodes take heartbeats for one group at once, so every write is one
 * statement whose conflicts PostgreSQL resolves (INSERT … ON CONFLICT): no
 * read-then-write, no lost first registration.
 */
import type { InstanceGroupRecord, InstanceGroupSettings, InstanceHealth, InstanceRecord, InstanceRegistration } from '../../core/instance.js';
import {
  firstHealthJson,
  groupSettingsJson,
  instanceFromRow,
  instanceGroupFromRow,
  instanceHealthJson,
  registrationJson,
  type InstanceGroupRow,
  type InstanceRow,
} from '../rows.js';
import { GROUP_COLUMNS, INSTANCE_COLUMNS } from '../sql-common.js';
import type { InstanceStore } from '../port.js';
import { exec, first, rows, type Pg } from './sql.js';

/** The port's instance-group verbs. */
export function postgresInstances(pg: Pg): InstanceStore {
  return {
    /**
     * One statement: the group is created with the defaults unless it exists, and
     * the instance is inserted, or its registration and heartbeat replaced
     * (keeping registered_at and health).
     */
    async heartbeatInstance(registration: InstanceRegistration, groupDefaults: InstanceGroupSettings, at: number) {
      const db = pg.sql;
      const row = await first<InstanceRow>(
        db,
        `WITH g AS (
           INSERT INTO instance_groups (${GROUP_COLUMNS}) VALUES ($1, $3, $6, $6) ON CONFLICT (name) DO NOTHING
         )
         INSERT INTO instances (${INSTANCE_COLUMNS}) VALUES ($1, $2, $4, $6, $6, $5)
         ON CONFLICT (group_name, id) DO UPDATE SET registration = excluded.registration, last_heartbeat = excluded.last_heartbeat
         RETURNING ${INSTANCE_COLUMNS}`,
        [registration.group, registration.id, groupSettingsJson(groupDefaults), registrationJson(registration), firstHealthJson(at), at],
      );
      if (!row) throw new Error('heartbeatInstance: the upsert returned no row');
      return instanceFromRow(row);
    },

    async deregisterInstance(group: string, id: string) {
      const db = pg.sql;
      return (await exec(db, 'DELETE FROM instances WHERE group_name = $1 AND id = $2', [group, id])) > 0;
    },

    async listInstances(group?: string) {
      const db = pg.sql;
      const found =
        group === undefined
          ? await rows<InstanceRow>(db, `SELECT ${INSTANCE_COLUMNS} FROM instances ORDER BY group_name COLLATE "C", id COLLATE "C"`)
          : await rows<InstanceRow>(db, `SELECT ${INSTANCE_COLUMNS} FROM instances WHERE group_name = $1 ORDER BY id COLLATE "C"`, [group]);
      return found.map(instanceFromRow);
    },

    async setInstanceHealth(group: string, id: string, health: InstanceHealth) {
      const db = pg.sql;
      const changed = await exec(db, 'UPDATE instances SET health = $3 WHERE group_name = $1 AND id = $2', [
        group,
        id,
        instanceHealthJson(health),
      ]);
      return changed > 0;
    },

    async saveInstanceGroup(settings: InstanceGroupSettings, at: number) {
      const db = pg.sql;
      const row = await first<InstanceGroupRow>(
        db,
        `INSERT INTO instance_groups (${GROUP_COLUMNS}) VALUES ($1, $2, $3, $3)
         ON CONFLICT (name) DO UPDATE SET settings = excluded.settings,
           updated_at = GREATEST(excluded.updated_at, instance_groups.updated_at + 1)
         RETURNING ${GROUP_COLUMNS}`,
        [settings.name, groupSettingsJson(settings), at],
      );
      if (!row) throw new Error('saveInstanceGroup: the upsert returned no row');
      return instanceGroupFromRow(row);
    },

    /** One statement either way: the row lock makes a concurrent replace wait, then see the new updated_at and miss. */
    async replaceInstanceGroup(expectedUpdatedAt, next, at) {
      const row =
        expectedUpdatedAt === undefined
          ? await first<InstanceGroupRow>(
              pg.sql,
              `INSERT INTO instance_groups (${GROUP_COLUMNS}) VALUES ($1, $2, $3, $3) ON CONFLICT (name) DO NOTHING
               RETURNING ${GROUP_COLUMNS}`,
              [next.name, groupSettingsJson(next), at],
            )
          : await first<InstanceGroupRow>(
              pg.sql,
              `UPDATE instance_groups SET settings = $2, updated_at = GREATEST($3, updated_at + 1)
               WHERE name = $1 AND updated_at = $4 RETURNING ${GROUP_COLUMNS}`,
              [next.name, groupSettingsJson(next), at, expectedUpdatedAt],
            );
      return row && instanceGroupFromRow(row);
    },

    async getInstanceGroup(name: string) {
      const db = pg.sql;
      const row = await first<InstanceGroupRow>(db, `SELECT ${GROUP_COLUMNS} FROM instance_groups WHERE name = $1`, [name]);
      return row && instanceGroupFromRow(row);
    },

    async listInstanceGroups() {
      const db = pg.sql;
      return (await rows<InstanceGroupRow>(db, `SELECT ${GROUP_COLUMNS} FROM instance_groups ORDER BY name COLLATE "C"`)).map(
        instanceGroupFromRow,
      );
    },

    /** One statement: the group and its instances go together. */
    async deleteInstanceGroup(name: string) {
      const db = pg.sql;
      const deleted = await rows<{ name: string }>(
        db,
        `WITH i AS (DELETE FROM instances WHERE group_name = $1)
         DELETE FROM instance_groups WHERE name = $1 RETURNING name`,
        [name],
      );
      return deleted.length > 0;
    },
  };
}
