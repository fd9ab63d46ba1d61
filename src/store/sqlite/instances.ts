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
import type { Sql } from './sql.js';


export class SqliteInstances {
  constructor(private readonly sql: Sql) {}

  heartbeat(registration: InstanceRegistration, groupDefaults: InstanceGroupSettings, at: number): InstanceRecord {
    return this.sql.transaction(() => {
      this.sql
        .stmt(`INSERT INTO instance_groups (${GROUP_COLUMNS}) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`)
        .run(registration.group, groupSettingsJson(groupDefaults), at, at);
      const row = this.sql
        .stmt(`INSERT INTO instances (${INSTANCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (group_name, id) DO UPDATE SET registration = excluded.registration,
                 last_heartbeat = excluded.last_heartbeat
               RETURNING ${INSTANCE_COLUMNS}`)
        .get(registration.group, registration.id, registrationJson(registration), at, at, firstHealthJson(at)) as InstanceRow;
      return instanceFromRow(row);
    });
  }

  deregister(group: string, id: string): boolean {
    return this.sql.stmt('DELETE FROM instances WHERE group_name = ? AND id = ?').run(group, id).changes > 0;
  }

  list(group?: string): InstanceRecord[] {
    const rows = (
      group === undefined
        ? this.sql.stmt(`SELECT ${INSTANCE_COLUMNS} FROM instances ORDER BY group_name, id`).all()
        : this.sql.stmt(`SELECT ${INSTANCE_COLUMNS} FROM instances WHERE group_name = ? ORDER BY id`).all(group)
    ) as InstanceRow[];
    return rows.map(instanceFromRow);
  }

  setHealth(group: string, id: string, health: InstanceHealth): boolean {
    return (
      this.sql
        .stmt('UPDATE instances SET health = ? WHERE group_name = ? AND id = ?')
        .run(instanceHealthJson(health), group, id).changes > 0
    );
  }

  saveGroup(settings: InstanceGroupSettings, at: number): InstanceGroupRecord {
    const row = this.sql
      .stmt(`INSERT INTO instance_groups (${GROUP_COLUMNS}) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at
             RETURNING ${GROUP_COLUMNS}`)
      .get(settings.name, groupSettingsJson(settings), at, at) as InstanceGroupRow;
    return instanceGroupFromRow(row);
  }

  getGroup(name: string): InstanceGroupRecord | undefined {
    const row = this.sql.stmt(`SELECT ${GROUP_COLUMNS} FROM instance_groups WHERE name = ?`).get(name) as InstanceGroupRow | undefined;
    return row && instanceGroupFromRow(row);
  }

  listGroups(): InstanceGroupRecord[] {
    return (this.sql.stmt(`SELECT ${GROUP_COLUMNS} FROM instance_groups ORDER BY name`).all() as InstanceGroupRow[]).map(
      instanceGroupFromRow,
    );
  }

  deleteGroup(name: string): boolean {
    return this.sql.transaction(() => {
      this.sql.stmt('DELETE FROM instances WHERE group_name = ?').run(name);
      return this.sql.stmt('DELETE FROM instance_groups WHERE name = ?').run(name).changes > 0;
    });
  }
}
