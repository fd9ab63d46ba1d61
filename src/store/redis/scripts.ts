/**
 * The Lua scripts, one file per atomic transition under scripts/ (each with a header stating its KEYS,
 * ARGV, what it does atomically and what it returns), registered with ioredis `defineCommand` so they run
 * by EVALSHA. lib.lua (shared helpers) is prepended to each.
 *
 * `tsc` copies no .lua files, so the folder is looked up next to this module first (running from src/
 * under tsx) and then in the repository's src/store/redis/scripts (running from dist/store/redis/).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import type { Arg } from './codec.js';

export const SCRIPT_NAMES = [
  'enqueue',
  'claim-due',
  'extend-leases',
  'next-due',
  'settle',
  'cancel',
  'replay-dead-letters',
  'delete-dead-letters',
  'purge',
  'rotate-keys',
  'queue-upsert',
  'queue-pause',
  'queue-delete',
  'flow-control-change',
  'url-group-add',
  'url-group-remove',
  'schedule-save',
  'schedule-pause',
  'schedule-delete',
  'fire-schedules',
  'instance-heartbeat',
  'instance-deregister',
  'instance-health',
  'instance-group-save',
  'instance-group-replace',
  'instance-group-delete',
  'work-key-claim',
  'work-key-release',
  'stream-append',
  'stream-delete',
  'stream-expire',
] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

function scriptsDir(): string {
  const candidates = [
    new URL('./scripts/', import.meta.url),
    new URL('../../../src/store/redis/scripts/', import.meta.url),
  ];
  for (const candidate of candidates) {
    const path = fileURLToPath(candidate);
    if (existsSync(`${path}lib.lua`)) return path;
  }
  const looked = candidates.map((candidate) => fileURLToPath(candidate)).join(', ');
  throw new Error(`Redis store: Lua scripts not found (looked in ${looked})`);
}

let cached: Map<ScriptName, string> | undefined;

function sources(): Map<ScriptName, string> {
  if (!cached) {
    const dir = scriptsDir();
    const lib = readFileSync(`${dir}lib.lua`, 'utf8');
    cached = new Map(SCRIPT_NAMES.map((name) => [name, `${lib}\n${readFileSync(`${dir}${name}.lua`, 'utf8')}`]));
  }
  return cached;
}

const commandName = (name: ScriptName): string => `courier_${name.replace(/-/g, '_')}`;

type Command = (...args: Arg[]) => Promise<unknown>;

/** Runs the transitions on one connection; `prefix` is every script's first argument. */
export class Scripts {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** Defines every command and loads it into the server's script cache, so a broken script fails at open. */
  async load(): Promise<void> {
    for (const [name, lua] of sources()) {
      this.redis.defineCommand(commandName(name), { numberOfKeys: 0, lua });
      await this.redis.script('LOAD', lua);
    }
  }

  run(name: ScriptName, args: Arg[]): Promise<unknown> {
    return this.command(commandName(name))(this.prefix, ...args);
  }

  /** Same, with bulk strings answered as Buffers (for bodies). */
  runBuffer(name: ScriptName, args: Arg[]): Promise<unknown> {
    return this.command(`${commandName(name)}Buffer`)(this.prefix, ...args);
  }

  private command(method: string): Command {
    const command = (this.redis as unknown as Record<string, Command>)[method];
    if (!command) throw new Error(`Redis store: script command ${method} is not defined`);
    return command.bind(this.redis);
  }
}
