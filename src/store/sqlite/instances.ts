/** Instance groups and their instances on SQLite (the gateway's registry). */
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
import type { Sql } from './sql.js';


/** The port's instance-group verbs. */
export function sqliteInstances(sql: Sql): InstanceStore {
  return {
    async heartbeatInstance(registration: InstanceRegistration, groupDefaults: InstanceGroupSettings, at: number) {
      return sql.transaction(() => {
        sql
          .stmt(`INSERT INTO instance_groups (${GROUP_COLUMNS}) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`)
          .run(registration.group, groupSettingsJson(groupDefaults), at, at);
        const row = sql
          .stmt(`INSERT INTO instances (${INSTANCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (group_name, id) DO UPDATE SET registration = excluded.registration,
                   last_heartbeat = excluded.last_heartbeat
                 RETURNING ${INSTANCE_COLUMNS}`)
          .get(registration.group, registration.id, registrationJson(registration), at, at, firstHealthJson(at)) as InstanceRow;
        return instanceFromRow(row);
      });
    },

    async deregisterInstance(group: string, id: string) {
      return sql.stmt('DELETE FROM instances WHERE group_name = ? AND id = ?').run(group, id).changes > 0;
    },

    async listInstances(group?: string) {
      const rows = (
        group === undefined
          ? sql.stmt(`SELECT ${INSTANCE_COLUMNS} FROM instances ORDER BY group_name, id`).all()
          : sql.stmt(`SELECT ${INSTANCE_COLUMNS} FROM instances WHERE group_name = ? ORDER BY id`).all(group)
      ) as InstanceRow[];
      return rows.map(instanceFromRow);
    },

    async setInstanceHealth(group: string, id: string, health: InstanceHealth) {
      return (
        sql
          .stmt('UPDATE instances SET health = ? WHERE group_name = ? AND id = ?')
          .run(instanceHealthJson(health), group, id).changes > 0
      );
    },

    async saveInstanceGroup(settings: InstanceGroupSettings, at: number) {
      const row = sql
        .stmt(`INSERT INTO instance_groups (${GROUP_COLUMNS}) VALUES (?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET settings = excluded.settings,
                 updated_at = max(excluded.updated_at, instance_groups.updated_at + 1)
               RETURNING ${GROUP_COLUMNS}`)
        .get(settings.name, groupSettingsJson(settings), at, at) as InstanceGroupRow;
      return instanceGroupFromRow(row);
    },

    async replaceInstanceGroup(expectedUpdatedAt, next, at) {
      const row = (
        expectedUpdatedAt === undefined
          ? sql
              .stmt(`INSERT INTO instance_groups (${GROUP_COLUMNS}) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING
                     RETURNING ${GROUP_COLUMNS}`)
              .get(next.name, groupSettingsJson(next), at, at)
          : sql
              .stmt(`UPDATE instance_groups SET settings = ?, updated_at = max(?, updated_at + 1)
                     WHERE name = ? AND updated_at = ? RETURNING ${GROUP_COLUMNS}`)
              .get(groupSettingsJson(next), at, next.name, expectedUpdatedAt)
      ) as InstanceGroupRow | undefined;
      return row && instanceGroupFromRow(row);
    },

    async getInstanceGroup(name: string) {
      const row = sql.stmt(`SELECT ${GROUP_COLUMNS} FROM instance_groups WHERE name = ?`).get(name) as InstanceGroupRow | undefined;
      return row && instanceGroupFromRow(row);
    },

    async listInstanceGroups() {
      return (sql.stmt(`SELECT ${GROUP_COLUMNS} FROM instance_groups ORDER BY name`).all() as InstanceGroupRow[]).map(
        instanceGroupFromRow,
      );
    },

    async deleteInstanceGroup(name: string) {
      return sql.transaction(() => {
        sql.stmt('DELETE FROM instances WHERE group_name = ?').run(name);
        return sql.stmt('DELETE FROM instance_groups WHERE name = ?').run(name).changes > 0;
      });
    },
  };
}
